//! One component whose requests behave differently by path, so a test can put a faulty
//! request and healthy ones on the same component at the same time:
//!
//! - `/faults/ok`: answers at once;
//! - `/faults/trap`: panics (a wasm trap);
//! - `/faults/spin`: spins without yielding until the host's deadline stops it;
//! - `/faults/sleep?ms=N`: waits N ms (I/O, not CPU), then answers;
//! - `/faults/work?ms=N`: waits 500 ms (as a request reading its input would), then computes
//!   for N ms without awaiting anything — the shape of a large embeddings call, which lets
//!   an instance take other requests while it waits and then holds it while it computes;
//! - `/faults/echo`: reads the whole body and answers its length.

use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_service;
use spin_sdk::wasip3::clocks::monotonic_clock;
use std::hint::black_box;
use std::time::{Duration, Instant};

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    let path = req.uri().path().to_string();
    let ms = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("ms=")))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    let body = match path.rsplit('/').next().unwrap_or("") {
        "ok" => "ok".to_string(),
        "trap" => panic!("faults guest: deliberate trap"),
        "spin" => {
            spin_forever();
            "unreachable".to_string()
        }
        "sleep" => {
            sleep(ms).await;
            format!("slept {ms} ms")
        }
        "work" => {
            work(ms).await;
            format!("worked {ms} ms")
        }
        "echo" => match req.into_body().bytes().await {
            Ok(bytes) => format!("{} bytes", bytes.len()),
            Err(e) => {
                return Response::builder()
                    .status(400)
                    .body(format!("body unreadable: {e:?}"))
                    .unwrap();
            }
        },
        other => {
            return Response::builder()
                .status(404)
                .body(format!("no fault named {other:?}"))
                .unwrap();
        }
    };
    Response::builder().status(200).body(body).unwrap()
}

async fn sleep(ms: u64) {
    monotonic_clock::wait_for(ms * 1_000_000).await;
}

async fn work(ms: u64) {
    sleep(500).await;
    let started = Instant::now();
    let mut n: u64 = 0;
    while started.elapsed() < Duration::from_millis(ms) {
        n = black_box(n.wrapping_add(1));
    }
}

fn spin_forever() {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
        if black_box(n) == 0 {
            break;
        }
    }
}
