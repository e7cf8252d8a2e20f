//! The response stream: events in, bytes to the client; notices a client that has gone.
//!
//! The body is a channel (spin-sdk's streaming body). When the client disconnects, the host
//! drops the response stream, the SDK's writer task ends and drops the receiving side, and
//! every later send fails: [`Sink::gone`] turns true and the turn makes no further paid call.
//! Heartbeats (SSE comments) are written on a timer meanwhile, so a quiet step still shows
//! the client is alive (and a dead one is noticed).

use std::time::Duration;

use futures::SinkExt;
use futures::channel::{mpsc, oneshot};
use tessera_progressive::ChatEvent;
use tessera_progressive::events::{DONE, heartbeat};

pub struct Sink {
    tx: mpsc::Sender<String>,
    stop_heartbeat: Option<oneshot::Sender<()>>,
}

impl Sink {
    /// The response for an SSE stream and the sink that writes it. Starts the heartbeat.
    pub fn open(every: Duration) -> (Self, crate::Answer) {
        use spin_sdk::http::IntoResponse;
        let (tx, body) = spin_sdk::http::body::stream::<String>();
        let (stop, stopped) = oneshot::channel();
        spin_sdk::wasip3::spawn(beat(tx.clone(), stopped, every));
        let resp = http::Response::builder()
            .status(200)
            .header("content-type", "text/event-stream; charset=utf-8")
            .header("cache-control", "no-cache")
            // Proxies (nginx) must not buffer the stream.
            .header("x-accel-buffering", "no")
            .body(body)
            .expect("static headers are valid")
            .into_response();
        (
            Self {
                tx,
                stop_heartbeat: Some(stop),
            },
            resp,
        )
    }

    /// Whether the client has gone away.
    pub fn gone(&self) -> bool {
        self.tx.is_closed()
    }

    /// Starts finding out whether the client is still there, by writing to it: a client that
    /// has gone is only noticed when a write fails, and between steps nothing may have been
    /// written for a while. So before a paid call the turn writes a comment (ignored by
    /// clients); the writer task hands it to the host, which refuses it at once if the
    /// connection has closed, and [`Sink::gone`] says so after the next scheduling turn —
    /// the gateway checks it after its database reads, just before the call. `false` if the
    /// client is known to be gone already.
    pub async fn probe(&mut self) -> bool {
        self.tx.send(heartbeat()).await.is_ok()
    }

    /// Writes an event; `false` once the client is gone.
    pub async fn send(&mut self, event: &ChatEvent) -> bool {
        self.tx.send(event.encode()).await.is_ok()
    }

    /// Ends the stream with `[DONE]` and stops the heartbeat.
    pub async fn close(mut self) {
        let _ = self.tx.send(DONE.to_string()).await;
        if let Some(stop) = self.stop_heartbeat.take() {
            let _ = stop.send(());
        }
        self.tx.close_channel();
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop_heartbeat.take() {
            let _ = stop.send(());
        }
    }
}

async fn beat(mut tx: mpsc::Sender<String>, mut stopped: oneshot::Receiver<()>, every: Duration) {
    use futures::future::{Either, select};
    loop {
        let tick = std::pin::pin!(crate::clock::sleep(every));
        match select(tick, &mut stopped).await {
            Either::Left(_) => {
                if tx.send(heartbeat()).await.is_err() {
                    return;
                }
            }
            Either::Right(_) => return,
        }
    }
}
