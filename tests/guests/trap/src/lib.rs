//! Fails on every request, in one of two ways the host must contain:
//! - by default a Rust panic, which is a wasm trap;
//! - with `?grow=<MiB>`, by allocating and touching that much memory, which traps when it
//!   goes past the host's per-instance memory cap (`--memory-limit-mb`).
//!
//! Either way the host must answer 500 with a request id and keep serving.

use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    let grow_mib = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("grow=")))
        .and_then(|n| n.parse::<usize>().ok());
    if let Some(mib) = grow_mib {
        let mut blocks = Vec::new();
        for i in 0..mib {
            // Touch each MiB so the memory is really used, not just reserved.
            blocks.push(vec![i as u8; 1 << 20]);
        }
        return format!("allocated {} MiB without hitting the cap\n", blocks.len());
    }
    panic!(
        "trap guest: deliberate panic on {} {}",
        req.method(),
        req.uri()
    );
}
