//! The candidate's `wasi:io/poll` and `wasi:io/streams` on wasmtime-wasi's 0.2.x
//! implementation (which is written against the `ResourceTable` itself). The candidate's
//! `poll-one` is 0.2's `pollable.block`; `forward` (dropped before 0.2.0) splices until the
//! source closes.

use super::bindings::wasi::io::{poll, streams};
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::io::{poll as latest_poll, streams as latest};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, DynPollable, IoError, StreamError, StreamResult,
};

impl poll::Host for ResourceTable {
    async fn poll_list(
        &mut self,
        pollables: Vec<Resource<DynPollable>>,
    ) -> wasmtime::Result<Vec<u32>> {
        latest_poll::Host::poll(self, pollables).await
    }

    async fn poll_one(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        latest_poll::HostPollable::block(self, pollable).await
    }
}

impl poll::HostPollable for ResourceTable {
    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        latest_poll::HostPollable::drop(self, pollable)
    }
}

impl streams::Host for ResourceTable {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        Ok(match latest::Host::convert_stream_error(self, err)? {
            latest::StreamError::LastOperationFailed(e) => {
                streams::StreamError::LastOperationFailed(e)
            }
            latest::StreamError::Closed => streams::StreamError::Closed,
        })
    }
}

impl streams::HostError for ResourceTable {
    fn to_debug_string(&mut self, err: Resource<IoError>) -> wasmtime::Result<String> {
        wasmtime_wasi::p2::bindings::io::error::HostError::to_debug_string(self, err)
    }

    fn drop(&mut self, err: Resource<IoError>) -> wasmtime::Result<()> {
        wasmtime_wasi::p2::bindings::io::error::HostError::drop(self, err)
    }
}

impl streams::HostInputStream for ResourceTable {
    fn read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        latest::HostInputStream::read(self, stream, len)
    }

    async fn blocking_read(
        &mut self,
        stream: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<Vec<u8>> {
        latest::HostInputStream::blocking_read(self, stream, len).await
    }

    fn skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        latest::HostInputStream::skip(self, stream, len)
    }

    async fn blocking_skip(
        &mut self,
        stream: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        latest::HostInputStream::blocking_skip(self, stream, len).await
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynInputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        latest::HostInputStream::subscribe(self, stream)
    }

    async fn drop(&mut self, stream: Resource<DynInputStream>) -> wasmtime::Result<()> {
        latest::HostInputStream::drop(self, stream).await
    }
}

impl streams::HostOutputStream for ResourceTable {
    fn check_write(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<u64> {
        latest::HostOutputStream::check_write(self, stream)
    }

    fn write(&mut self, stream: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        latest::HostOutputStream::write(self, stream, bytes)
    }

    async fn blocking_write_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        latest::HostOutputStream::blocking_write_and_flush(self, stream, bytes).await
    }

    fn flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        latest::HostOutputStream::flush(self, stream)
    }

    async fn blocking_flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        latest::HostOutputStream::blocking_flush(self, stream).await
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        latest::HostOutputStream::subscribe(self, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        latest::HostOutputStream::write_zeroes(self, stream, len)
    }

    async fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        latest::HostOutputStream::blocking_write_zeroes_and_flush(self, stream, len).await
    }

    fn splice(
        &mut self,
        stream: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        latest::HostOutputStream::splice(self, stream, src, len)
    }

    async fn blocking_splice(
        &mut self,
        stream: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        latest::HostOutputStream::blocking_splice(self, stream, src, len).await
    }

    async fn forward(
        &mut self,
        stream: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
    ) -> StreamResult<u64> {
        let mut total = 0u64;
        loop {
            let dst = Resource::new_borrow(stream.rep());
            let from = Resource::new_borrow(src.rep());
            match latest::HostOutputStream::blocking_splice(self, dst, from, 64 * 1024).await {
                Ok(n) => total += n,
                // The candidate reports what was forwarded when the source ends.
                Err(StreamError::Closed) => return Ok(total),
                Err(e) => return Err(e),
            }
        }
    }

    async fn drop(&mut self, stream: Resource<DynOutputStream>) -> wasmtime::Result<()> {
        latest::HostOutputStream::drop(self, stream).await
    }
}
