//! A guest that traps or never returns costs one request, not the host: a trap is a JSON 500
//! with a request id, an endless loop is stopped at the deadline, a guest growing past the
//! memory cap is stopped, and other requests are served meanwhile.

use std::time::{Duration, Instant};
use tessera_e2e::{Checks, HostCommand, TestDb};

const TIMEOUT_MS: u64 = 1500;
const MEMORY_LIMIT_MB: usize = 64;

const MANIFEST: &str = r#"
spin_manifest_version = 2

[application]
name = "e2e-isolation"

[[trigger.http]]
route = "/hello"
component = "hello"

[[trigger.http]]
route = "/trap"
component = "trap"

[[trigger.http]]
route = "/busy"
component = "busy-loop"

[component.hello]
source = "WASM:hello"

[component.trap]
source = "WASM:trap"

[component.busy-loop]
source = "WASM:busy-loop"
"#;

#[test]
fn faults_are_contained() {
    let db = TestDb::new();
    let mut host = HostCommand::new(&db, MANIFEST)
        .arg("--request-timeout-ms")
        .arg(TIMEOUT_MS.to_string())
        .arg("--memory-limit-mb")
        .arg(MEMORY_LIMIT_MB.to_string())
        .start();
    let mut c = Checks::new("isolation");

    c.check("trap is a JSON 500 with the request id", || {
        let r = host.get("/trap");
        assert_eq!(r.status, 500, "{}", r.describe());
        let j = r.json();
        assert_eq!(j["error"]["code"], "component_trapped", "{j}");
        let id = j["error"]["request_id"]
            .as_str()
            .expect("the request id in the error")
            .to_string();
        assert!(!id.is_empty());
        assert!(
            !j["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("deliberate panic"),
            "guest internals should not leak to the client: {j}"
        );
        // The host logs it, with the same id.
        let log = tessera_e2e::wait_for(Duration::from_secs(2), || {
            let out = host.output();
            out.contains(&id).then_some(out)
        });
        assert!(log.is_some(), "request id {id} not in the host log");
    });

    c.check("host serves after a trap", || {
        for _ in 0..3 {
            assert_eq!(host.get("/trap").status, 500);
            assert_eq!(host.get("/hello").status, 200);
        }
    });

    c.check(
        "a guest growing past the memory cap is stopped; others are not",
        || {
            let r = host.get("/trap?grow=8");
            assert_eq!(r.status, 200, "8 MiB is within the cap: {}", r.describe());
            let r = host.get(&format!("/trap?grow={}", MEMORY_LIMIT_MB * 2));
            assert_eq!(r.status, 500, "{}", r.describe());
            assert_eq!(
                r.json()["error"]["code"],
                "component_trapped",
                "{}",
                r.describe()
            );
            assert!(
                r.json()["error"]["request_id"].is_string(),
                "{}",
                r.describe()
            );
            assert_eq!(host.get("/hello").status, 200);
        },
    );

    c.check(
        "busy loop stopped at the deadline while others are served",
        || {
            let addr = host.addr();
            let busy = std::thread::spawn(move || {
                let started = Instant::now();
                let r = tessera_e2e::http::Request::new("GET", "/busy").send(addr);
                (r, started.elapsed())
            });
            let busy2 = std::thread::spawn(move || {
                tessera_e2e::http::Request::new("GET", "/busy").send(addr)
            });
            std::thread::sleep(Duration::from_millis(200));
            // While two guests spin, hello is answered (how fast is a benchmark figure:
            // benches/README.md, "latency while guests spin").
            for _ in 0..5 {
                let r = host.get("/hello");
                assert_eq!(r.status, 200, "{}", r.describe());
            }
            let (r, elapsed) = busy.join().unwrap();
            let r = r.expect("busy-loop got a response");
            assert_eq!(r.status, 500, "{}", r.describe());
            assert_eq!(
                r.json()["error"]["code"],
                "component_timeout",
                "{}",
                r.describe()
            );
            assert!(
                r.json()["error"]["request_id"].is_string(),
                "{}",
                r.describe()
            );
            // Not stopped before its deadline (when after it is the scheduler's business).
            assert!(
                elapsed >= Duration::from_millis(TIMEOUT_MS - 100),
                "stopped after {elapsed:?}, deadline {TIMEOUT_MS} ms"
            );
            let r2 = busy2
                .join()
                .unwrap()
                .expect("second busy-loop got a response");
            assert_eq!(r2.status, 500, "{}", r2.describe());
        },
    );

    c.check("host still healthy", || {
        assert_eq!(host.get("/health").status, 200);
        assert_eq!(host.get("/hello").status, 200);
    });

    c.check("graceful stop on SIGTERM exits 0", || {
        let status = host.stop().expect("host stopped within 10 s of SIGTERM");
        assert!(status.success(), "exit status {status}");
    });

    c.finish(Some(&host));
}
