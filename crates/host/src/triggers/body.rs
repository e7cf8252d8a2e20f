//! Body wrappers of the HTTP trigger: a read deadline on what clients send, and a value
//! kept alive until what the host sends back is finished.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

/// A request body that must be complete within `limit` of the request head. A client that
/// stops sending (or trickles) would otherwise hold an instance until the request deadline;
/// past the limit the guest's read fails and `expired` tells the trigger to answer 408.
pub struct ReadDeadline {
    inner: WasiBody,
    sleep: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
    done: bool,
}

impl ReadDeadline {
    pub fn new(inner: WasiBody, limit: Duration) -> (Self, Arc<AtomicBool>) {
        let expired = Arc::new(AtomicBool::new(false));
        let body = Self {
            done: inner.is_end_stream(),
            inner,
            sleep: Box::pin(tokio::time::sleep(limit)),
            expired: expired.clone(),
        };
        (body, expired)
    }
}

impl Body for ReadDeadline {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(frame) => Poll::Ready(frame),
            Poll::Pending => match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.done = true;
                    self.expired.store(true, Ordering::Relaxed);
                    Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that holds `guard` until it ends or is dropped (the client went away):
/// an instance streaming its answer is busy until the last frame.
pub struct Holding<G> {
    inner: WasiBody,
    guard: Option<G>,
}

impl<G: Send + Unpin + 'static> Holding<G> {
    pub fn wrap(inner: WasiBody, guard: G) -> WasiBody {
        use http_body_util::BodyExt;
        if inner.is_end_stream() {
            return inner;
        }
        Self {
            inner,
            guard: Some(guard),
        }
        .boxed_unsync()
    }
}

impl<G: Unpin> Body for Holding<G> {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn stalled() -> WasiBody {
        let frames = futures::stream::pending::<Result<Frame<Bytes>, HttpError>>();
        StreamBody::new(frames).boxed_unsync()
    }

    #[tokio::test]
    async fn a_stalled_body_fails_at_the_deadline_and_says_so() {
        let (body, expired) = ReadDeadline::new(stalled(), Duration::from_millis(10));
        let err = body.collect().await.err().expect("the read fails");
        assert!(matches!(err, HttpError::ConnectionReadTimeout), "{err:?}");
        assert!(expired.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn a_complete_body_passes_untouched() {
        let inner = crate::errors::full("hello");
        let (body, expired) = ReadDeadline::new(inner, Duration::from_secs(60));
        let bytes = body.collect().await.expect("read").to_bytes();
        assert_eq!(&bytes[..], b"hello");
        assert!(!expired.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn the_guard_lives_until_the_last_frame() {
        let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Frame<Bytes>, HttpError>>();
        let guard = Arc::new(());
        let body = Holding::wrap(StreamBody::new(rx).boxed_unsync(), guard.clone());
        assert_eq!(Arc::strong_count(&guard), 2, "held while the body streams");
        tx.unbounded_send(Ok(Frame::data(Bytes::from_static(b"x"))))
            .expect("send");
        drop(tx);
        let bytes = body.collect().await.expect("read").to_bytes();
        assert_eq!(&bytes[..], b"x");
        assert_eq!(Arc::strong_count(&guard), 1, "released at the end");
    }
}
