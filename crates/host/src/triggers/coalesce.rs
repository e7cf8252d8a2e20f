//! Sends a small answer in one write.
//!
//! A component's response head reaches the host before its body: the guest writes the body
//! into a stream after returning the head. Handed to hyper as is, the head and the first
//! chunk go out in one `send` and the chunked terminator in a second one, so most answers
//! cost two trips through the loopback or network stack. On this machine a `send` is about a
//! fifth of the host's CPU per request (benches/README.md), so the host waits a moment for
//! the body: one that ends within [`YIELDS`] scheduler turns and [`MAX_BYTES`] is sent whole, with a
//! Content-Length. Anything else streams exactly as before, starting with what was read;
//! event streams are never held back.

use bytes::{Bytes, BytesMut};
use futures::{FutureExt, StreamExt};
use http_body::Frame;
use http_body_util::{BodyExt, BodyStream, Full, StreamBody};
use wasmtime_wasi_http::WasiBody;

/// How many scheduler turns the head waits for the rest of the body.
pub const YIELDS: usize = 3;
/// Larger bodies are streamed: holding them would cost memory for no saving.
pub const MAX_BYTES: usize = 64 << 10;

/// Returns `response` with its body read ahead when that body ends quickly.
pub async fn coalesce(response: http::Response<WasiBody>) -> http::Response<WasiBody> {
    if !worth_holding(&response) {
        return response;
    }
    let (parts, mut body) = response.into_parts();
    let mut read = ReadAhead::default();
    // No timer: registering one wakes the timer thread on every request, which cost more
    // than the write it saved. The guest usually finishes the body within a few turns of
    // the scheduler; a body that does not is streamed.
    for _ in 0..=YIELDS {
        while let Some(frame) = body.frame().now_or_never() {
            if let Some(done) = read.push(frame) {
                return finish(parts, body, read, done);
            }
        }
        requeue().await;
    }
    finish(parts, body, read, Done::Streaming)
}

/// Lets the runtime run other tasks once, then continues. Not `tokio::task::yield_now`: that
/// defers the wake-up until the worker next polls its I/O driver, which a worker kept busy by
/// CPU-bound guests (which yield at every epoch tick) does only every few hundred
/// milliseconds — tests/isolation.rs saw hello answers take a second. A task that wakes
/// itself is put at the back of its worker's queue at once.
fn requeue() -> impl Future<Output = ()> {
    let mut woken = false;
    std::future::poll_fn(move |cx| {
        if woken {
            return std::task::Poll::Ready(());
        }
        woken = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
}

/// Event streams must reach the client as written; a declared length needs no chunking.
fn worth_holding(response: &http::Response<WasiBody>) -> bool {
    let headers = response.headers();
    if headers.contains_key(http::header::CONTENT_LENGTH) {
        return false;
    }
    let streaming = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
    !streaming
}

#[derive(Default)]
struct ReadAhead {
    data: BytesMut,
    /// A frame that ends the read-ahead without being data (trailers, an error).
    last: Option<Result<Frame<Bytes>, wasmtime_wasi_http::Error>>,
}

enum Done {
    /// The body ended: everything is in `data`.
    Complete,
    /// Stream the rest after what was read.
    Streaming,
}

impl ReadAhead {
    fn push(
        &mut self,
        frame: Option<Result<Frame<Bytes>, wasmtime_wasi_http::Error>>,
    ) -> Option<Done> {
        match frame {
            None => Some(Done::Complete),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    self.data.extend_from_slice(&data);
                    (self.data.len() > MAX_BYTES).then_some(Done::Streaming)
                }
                Err(frame) => {
                    self.last = Some(Ok(frame));
                    Some(Done::Streaming)
                }
            },
            Some(Err(err)) => {
                self.last = Some(Err(err));
                Some(Done::Streaming)
            }
        }
    }
}

fn finish(
    parts: http::response::Parts,
    rest: WasiBody,
    read: ReadAhead,
    done: Done,
) -> http::Response<WasiBody> {
    let data = read.data.freeze();
    let body = match done {
        Done::Complete => Full::new(data)
            .map_err(|never| match never {})
            .boxed_unsync(),
        Done::Streaming => {
            // After an error the body is finished: it is not polled again.
            let failed = matches!(read.last, Some(Err(_)));
            let head = (!data.is_empty()).then(|| Ok(Frame::data(data)));
            let prefix = futures::stream::iter(head.into_iter().chain(read.last));
            let rest = BodyStream::new(rest).take_while(move |_| std::future::ready(!failed));
            StreamBody::new(prefix.chain(rest)).boxed_unsync()
        }
    };
    http::Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body;
    use tokio::sync::mpsc;

    type FrameResult = Result<Frame<Bytes>, wasmtime_wasi_http::Error>;

    /// A body fed by the test, frame by frame, like a guest writing its stream.
    fn channel_body() -> (mpsc::UnboundedSender<FrameResult>, WasiBody) {
        let (tx, rx) = mpsc::unbounded_channel();
        let stream = frames_from(rx);
        (tx, StreamBody::new(stream).boxed_unsync())
    }

    fn frames_from(
        rx: mpsc::UnboundedReceiver<FrameResult>,
    ) -> impl futures::Stream<Item = FrameResult> + Send {
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) })
    }

    fn response(body: WasiBody, content_type: &str) -> http::Response<WasiBody> {
        http::Response::builder()
            .header(http::header::CONTENT_TYPE, content_type)
            .body(body)
            .expect("valid response")
    }

    fn data(text: &str) -> FrameResult {
        Ok(Frame::data(Bytes::copy_from_slice(text.as_bytes())))
    }

    #[tokio::test]
    async fn a_finished_body_is_sent_whole_with_its_length() {
        let (tx, body) = channel_body();
        tx.send(data("hello ")).expect("open");
        tx.send(data("world")).expect("open");
        drop(tx);
        let out = coalesce(response(body, "text/plain")).await;
        assert_eq!(out.body().size_hint().exact(), Some(11));
        let bytes = out.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&bytes[..], b"hello world");
    }

    #[tokio::test]
    async fn a_body_still_being_written_streams_what_was_read_then_the_rest() {
        let (tx, body) = channel_body();
        tx.send(data("first ")).expect("open");
        let out = coalesce(response(body, "text/plain")).await;
        assert_eq!(out.body().size_hint().exact(), None, "not held back");
        let mut body = out.into_body();
        let first = body.frame().await.expect("a frame").expect("data");
        assert_eq!(first.into_data().expect("data"), "first ");
        tx.send(data("second")).expect("open");
        drop(tx);
        let rest = body.collect().await.expect("body").to_bytes();
        assert_eq!(&rest[..], b"second");
    }

    #[tokio::test]
    async fn event_streams_are_never_held() {
        let (tx, body) = channel_body();
        tx.send(data("event: start\n\n")).expect("open");
        drop(tx);
        let out = coalesce(response(body, "text/event-stream; charset=utf-8")).await;
        assert_eq!(out.body().size_hint().exact(), None);
        let bytes = out.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&bytes[..], b"event: start\n\n");
    }

    #[tokio::test]
    async fn a_large_body_is_streamed_and_nothing_is_lost() {
        let (tx, body) = channel_body();
        let chunk = "x".repeat(16 << 10);
        for _ in 0..6 {
            tx.send(data(&chunk)).expect("open");
        }
        drop(tx);
        let out = coalesce(response(body, "application/octet-stream")).await;
        assert_eq!(out.body().size_hint().exact(), None);
        let bytes = out.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(bytes.len(), 6 * chunk.len());
    }

    #[tokio::test]
    async fn an_error_after_data_reaches_the_client_after_that_data() {
        let (tx, body) = channel_body();
        tx.send(data("partial")).expect("open");
        tx.send(Err(wasmtime_wasi_http::Error::HttpProtocolError))
            .expect("open");
        tx.send(data("never sent")).expect("open");
        let out = coalesce(response(body, "text/plain")).await;
        let mut body = out.into_body();
        let first = body.frame().await.expect("a frame").expect("data");
        assert_eq!(first.into_data().expect("data"), "partial");
        assert!(body.frame().await.expect("a frame").is_err());
        assert!(body.frame().await.is_none(), "the body ends at the error");
    }

    #[tokio::test]
    async fn trailers_are_kept() {
        let (tx, body) = channel_body();
        tx.send(data("body")).expect("open");
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-checksum", http::HeaderValue::from_static("abc"));
        tx.send(Ok(Frame::trailers(trailers))).expect("open");
        drop(tx);
        let out = coalesce(response(body, "text/plain")).await;
        let collected = out.into_body().collect().await.expect("body");
        assert_eq!(
            collected.trailers().and_then(|t| t.get("x-checksum")),
            Some(&http::HeaderValue::from_static("abc"))
        );
        assert_eq!(&collected.to_bytes()[..], b"body");
    }

    #[tokio::test]
    async fn a_declared_length_is_left_alone() {
        let (tx, body) = channel_body();
        tx.send(data("abc")).expect("open");
        let mut resp = response(body, "text/plain");
        resp.headers_mut().insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from_static("3"),
        );
        let out = coalesce(resp).await;
        drop(tx);
        let bytes = out.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&bytes[..], b"abc");
    }
}
