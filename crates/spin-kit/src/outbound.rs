//! Outbound HTTP that does not stall.
//!
//! `spin_sdk::http::send` hands the request body to a task it spawns (wasip3's
//! `http_into_wasi_request` → `wit_bindgen::spawn`). wit-bindgen 0.57's executor adds a task
//! spawned during a poll to its set *after* that poll and then goes to sleep unless something
//! woke it, so the body writer is first polled only when some unrelated event (a timer)
//! arrives. Against a server that reads the whole body before answering — every LLM API —
//! each call waited for the next such event: up to the chat's 5 s heartbeat per call,
//! measured. [`send`] wakes the task once after the first poll, so the executor turns again
//! and polls the new writer at once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use spin_sdk::http::{IntoRequest, Response};

/// `spin_sdk::http::send`, with the body writer started at once (see the module docs).
pub async fn send(
    request: impl IntoRequest,
) -> Result<Response, spin_sdk::wasip3::http::types::ErrorCode> {
    NudgeOnce {
        inner: std::pin::pin!(spin_sdk::http::send(request)),
        nudged: false,
    }
    .await
}

/// Polls `inner`; the first time it is pending, wakes the task once more.
struct NudgeOnce<F> {
    inner: F,
    nudged: bool,
}

impl<F: Future + Unpin> Future for NudgeOnce<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let poll = Pin::new(&mut self.inner).poll(cx);
        if poll.is_pending() && !self.nudged {
            self.nudged = true;
            cx.waker().wake_by_ref();
        }
        poll
    }
}
