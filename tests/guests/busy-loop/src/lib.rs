//! Spins forever on every request without yielding, so only the host's deadline (epoch
//! interruption) can stop it.

use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;
use std::hint::black_box;

#[http_service]
async fn handle(_req: Request) -> impl IntoResponse {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
        if black_box(n) == 0 {
            // Never reached in practice (2^64 iterations); keeps the loop's exit opaque
            // to the optimiser without making it infinite in the type system.
            break;
        }
    }
    "unreachable\n"
}
