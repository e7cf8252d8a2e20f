//! The guest's clock, timers and randomness, from WASI (pure crates take times as parameters).

use std::time::Duration;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A uniform number in [0, 1), for backoff jitter.
pub fn random_unit() -> f64 {
    (spin_sdk::wasip3::random::random::get_random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Waits without blocking other tasks (heartbeats go on meanwhile).
pub async fn sleep(d: Duration) {
    spin_sdk::wasip3::clocks::monotonic_clock::wait_for(
        d.as_nanos().min(u128::from(u64::MAX)) as u64
    )
    .await;
}

/// `fut`, or `None` once `limit` has passed.
pub async fn timeout<F: std::future::Future>(limit: Duration, fut: F) -> Option<F::Output> {
    use futures::future::{Either, select};
    let fut = std::pin::pin!(fut);
    let timer = std::pin::pin!(sleep(limit));
    match select(fut, timer).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}
