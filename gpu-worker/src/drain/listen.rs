//! `LISTEN embedding_jobs` on a connection of its own: every notification wakes the drain
//! tasks. Notifications are only a hint (the poll interval covers a lost one or a dropped
//! connection), so a broken connection is simply opened again.

use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

pub const CHANNEL: &str = "embedding_jobs";

pub async fn run(
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    while !*stop.borrow() {
        match listen(&config, &tls, &wake).await {
            Ok(()) => backoff = Duration::from_millis(200),
            Err(e) => {
                tracing::debug!(error = %e, "LISTEN connection failed; polling covers the gap")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Listens until the connection ends.
async fn listen(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    wake: &Notify,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tls.clone()).await?;
    let (messages_tx, mut messages) = tokio::sync::mpsc::unbounded_channel();
    // The connection must be polled for the LISTEN below to complete and for
    // notifications to arrive.
    let pump = tokio::spawn(async move {
        let mut stream = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = stream.next().await {
            if messages_tx.send(message).is_err() {
                break;
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    tracing::debug!("listening on {CHANNEL}");
    // Jobs queued before LISTEN took effect are found by the drain's first claim.
    wake.notify_waiters();
    while let Some(message) = messages.recv().await {
        match message {
            Ok(AsyncMessage::Notification(_)) => {
                // Wakes every task waiting now, and leaves a permit for one that is busy.
                wake.notify_waiters();
                wake.notify_one();
            }
            Ok(_) => {}
            Err(e) => {
                pump.abort();
                return Err(e);
            }
        }
    }
    drop(client);
    Ok(())
}
