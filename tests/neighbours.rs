//! A fault costs only the request that caused it (docs/adr/0011): a trap, a deadline or a
//! stalled request body on one component fails that request while other requests to the
//! same component, in flight at the same moment, succeed; a CPU-bound request does not hold
//! up a light one; and a component whose slots are all busy answers 503 with `Retry-After`
//! instead of queueing without bound.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;
use tessera_e2e::http::Request;
use tessera_e2e::{Checks, HostCommand, Response, TestDb, TestHost};

const MANIFEST: &str = r#"
spin_manifest_version = 2

[application]
name = "e2e-neighbours"

[[trigger.http]]
route = "/faults/..."
component = "faults"

[component.faults]
source = "WASM:faults"
"#;

fn get(addr: SocketAddr, path: &'static str) -> JoinHandle<Response> {
    thread::spawn(move || {
        Request::new("GET", path)
            .send(addr)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    })
}

/// Sends a POST head promising `promised` bytes and only part of them, then holds the
/// connection open: the request is in flight, its guest waiting on the body.
fn stalled_upload(addr: SocketAddr, promised: usize) -> JoinHandle<Response> {
    thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(tessera_e2e::http::READ_TIMEOUT))
            .expect("timeout");
        let head = format!(
            "POST /faults/echo HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\
             content-length: {promised}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).expect("write head");
        stream
            .write_all(b"only part of it")
            .expect("write some body");
        let mut raw = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stream, &mut raw);
        tessera_e2e::http::parse_response(&raw).expect("a response")
    })
}

fn assert_ok(r: &Response, what: &str) {
    assert_eq!(r.status, 200, "{what}: {}", r.describe());
}

fn assert_error(r: &Response, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.describe());
    assert_eq!(r.json()["error"]["code"], code, "{}", r.describe());
}

fn start(db: &TestDb, args: &[(&str, &str)]) -> TestHost {
    let mut command = HostCommand::new(db, MANIFEST);
    for (flag, value) in args {
        command = command.arg(*flag).arg(*value);
    }
    command.start()
}

#[test]
fn faults_fail_only_their_own_request() {
    let db = TestDb::new();
    // The deadline is long enough for the work below, short enough to hit within the test;
    // the body timeout is longer than the deadline so the stalled upload meets the deadline.
    let host = start(
        &db,
        &[
            ("--request-timeout-ms", "5000"),
            ("--body-timeout-ms", "60000"),
        ],
    );
    let addr = host.addr();
    let mut c = Checks::new("neighbours");

    c.check("a trap fails only the trapping request", || {
        let sleepers: Vec<_> = (0..3).map(|_| get(addr, "/faults/sleep?ms=1500")).collect();
        thread::sleep(Duration::from_millis(300));
        let trapped = get(addr, "/faults/trap").join().expect("trap thread");
        assert_error(&trapped, 500, "component_trapped");
        for s in sleepers {
            assert_ok(
                &s.join().expect("sleeper"),
                "a request in flight during the trap",
            );
        }
    });

    c.check("a request past its deadline fails alone", || {
        let stalled = stalled_upload(addr, 1 << 20);
        thread::sleep(Duration::from_millis(3000));
        // Computing when the stalled request reaches its deadline (5 s after it started):
        // an instance shared with it would be interrupted in the middle of this work.
        let worker = get(addr, "/faults/work?ms=2000");
        assert_error(&stalled.join().expect("stalled"), 500, "component_timeout");
        assert_ok(
            &worker.join().expect("worker"),
            "work in flight at the deadline",
        );
    });

    c.check(
        "a spinning guest is stopped while others on its component answer",
        || {
            let spinner = get(addr, "/faults/spin");
            thread::sleep(Duration::from_millis(300));
            for _ in 0..3 {
                assert_ok(
                    &get(addr, "/faults/ok").join().expect("ok"),
                    "ok beside a spinner",
                );
            }
            assert_error(&spinner.join().expect("spinner"), 500, "component_timeout");
        },
    );

    c.check("the host still serves", || {
        assert_ok(&host.get("/faults/ok"), "ok");
        assert_eq!(host.get("/health").status, 200);
    });

    c.finish(Some(&host));
}

/// On a fresh host, so that no idle instance is around to take the light request: it must
/// get an instance of its own rather than share the heavy one's.
#[test]
fn a_cpu_bound_request_does_not_hold_up_a_light_one() {
    let db = TestDb::new();
    let host = start(&db, &[]);
    let addr = host.addr();
    let mut c = Checks::new("cpu-bound");

    c.check("a CPU-bound request does not hold up a light one", || {
        let (tx, rx) = std::sync::mpsc::channel();
        let heavy_tx = tx.clone();
        let heavy = thread::spawn(move || {
            let r = Request::new("GET", "/faults/work?ms=2500").send(addr);
            heavy_tx.send("heavy").expect("send");
            r
        });
        // Sent while the heavy request still waits for its input (500 ms), so an instance
        // serving several requests at once would have taken it beside the heavy one.
        thread::sleep(Duration::from_millis(300));
        let light = thread::spawn(move || {
            let r = Request::new("GET", "/faults/sleep?ms=10").send(addr);
            tx.send("light").expect("send");
            r
        });
        assert_ok(
            &light.join().expect("light").expect("light response"),
            "light",
        );
        assert_ok(
            &heavy.join().expect("heavy").expect("heavy response"),
            "heavy",
        );
        let order: Vec<_> = rx.try_iter().collect();
        assert_eq!(
            order,
            ["light", "heavy"],
            "the light request, sent after the heavy one started, finishes first"
        );
    });

    c.finish(Some(&host));
}

#[test]
fn a_stalled_upload_gets_408_and_its_neighbours_are_served() {
    let db = TestDb::new();
    let host = start(&db, &[("--body-timeout-ms", "2000")]);
    let addr = host.addr();
    let mut c = Checks::new("stalled-upload");

    c.check(
        "stalled body: 408 for it, 200 for uploads beside it",
        || {
            let stalled = stalled_upload(addr, 4096);
            thread::sleep(Duration::from_millis(300));
            let body = vec![b'x'; 4096];
            for _ in 0..3 {
                let r = Request::new("POST", "/faults/echo")
                    .body(&body)
                    .send(addr)
                    .expect("upload");
                assert_ok(&r, "a complete upload");
                assert_eq!(r.text(), "4096 bytes");
            }
            let r = stalled.join().expect("stalled");
            assert_error(&r, 408, "request_body_timeout");
        },
    );

    c.finish(Some(&host));
}

#[test]
fn a_full_component_answers_503_with_retry_after() {
    let db = TestDb::new();
    let host = start(
        &db,
        &[
            ("--max-instances-per-component", "2"),
            ("--instance-wait-ms", "200"),
        ],
    );
    let addr = host.addr();
    let mut c = Checks::new("admission");

    c.check(
        "past its slots a component refuses with 503, then recovers",
        || {
            let busy: Vec<_> = (0..2).map(|_| get(addr, "/faults/sleep?ms=3000")).collect();
            thread::sleep(Duration::from_millis(500));
            let refused = host.get("/faults/ok");
            assert_error(&refused, 503, "component_busy");
            assert_eq!(
                refused.header("retry-after"),
                Some("1"),
                "{}",
                refused.describe()
            );
            for b in busy {
                assert_ok(&b.join().expect("busy"), "the requests holding the slots");
            }
            assert_ok(&host.get("/faults/ok"), "after the slots freed");
        },
    );

    c.finish(Some(&host));
}
