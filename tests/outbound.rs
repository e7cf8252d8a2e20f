//! Outbound HTTP: a host in `allowed_outbound_hosts` is reachable; any other is refused
//! before a connection is made, the guest sees an error, and the host keeps serving.
//! Requests to one origin share the host's kept-alive connections (docs/adr/0016).

use tessera_e2e::http::encode;
use tessera_e2e::{Checks, HostCommand, TestDb, TestServer};

#[test]
fn outbound_http() {
    let allowed = TestServer::start("pong");
    let denied = TestServer::start("must not be reached");
    // An allowed port with nothing listening on it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("reserve a local port")
        .port();
    let manifest = format!(
        r#"
spin_manifest_version = 2

[application]
name = "e2e-outbound"

[[trigger.http]]
route = "/outbound"
component = "outbound"

[[trigger.http]]
route = "/hello"
component = "hello"

[component.outbound]
source = "WASM:outbound"
allowed_outbound_hosts = ["{}", "http://127.0.0.1:{closed}"]

[component.hello]
source = "WASM:hello"
"#,
        allowed.origin()
    );
    let db = TestDb::new();
    let host = HostCommand::new(&db, &manifest).start();
    let mut c = Checks::new("outbound");

    c.check("allowed host succeeds", || {
        let url = format!("{}/ping?n=1", allowed.origin());
        let r = host.get(&format!("/outbound?url={}", encode(&url)));
        assert_eq!(r.status, 200, "{}", r.describe());
        let j = r.json();
        assert_eq!(j["status"], 200, "{j}");
        assert_eq!(j["body"], "pong", "{j}");
        assert!(
            allowed
                .requests()
                .iter()
                .any(|l| l.starts_with("GET /ping?n=1 ")),
            "the allowed server saw {:?}",
            allowed.requests()
        );
    });

    c.check(
        "denied host: guest sees an error, server gets nothing",
        || {
            let url = format!("{}/secret", denied.origin());
            let r = host.get(&format!("/outbound?url={}", encode(&url)));
            assert_eq!(r.status, 502, "{}", r.describe());
            let error = r.json()["error"].as_str().unwrap_or_default().to_string();
            assert!(!error.is_empty(), "{}", r.describe());
            eprintln!("guest saw: {error}");
            assert!(
                error.to_ascii_lowercase().contains("denied"),
                "expected an HttpRequestDenied-style error, got {error:?}"
            );
            // Give a stray connection a moment to show up before counting.
            std::thread::sleep(std::time::Duration::from_millis(200));
            assert_eq!(
                denied.hits(),
                0,
                "denied server saw {:?}",
                denied.requests()
            );
        },
    );

    c.check("same host, other port is denied", || {
        // 127.0.0.1 is allowed only on the allowed server's port.
        let url = format!("http://127.0.0.1:{}/x", denied.addr().port());
        let r = host.get(&format!("/outbound?url={}", encode(&url)));
        assert_eq!(r.status, 502, "{}", r.describe());
        assert_eq!(denied.hits(), 0);
    });

    c.check(
        "successive requests to one origin reuse a connection",
        || {
            let before = (allowed.hits(), allowed.connections());
            for i in 0..10 {
                let url = format!("{}/again?i={i}", allowed.origin());
                let r = host.get(&format!("/outbound?url={}", encode(&url)));
                assert_eq!(r.status, 200, "{}", r.describe());
            }
            let requests = allowed.hits() - before.0;
            let connections = allowed.connections() - before.1;
            assert_eq!(requests, 10);
            assert!(
                connections < requests,
                "10 requests opened {connections} connections: none was kept alive"
            );
        },
    );

    c.check(
        "nothing listening: the guest sees connection refused",
        || {
            let url = format!("http://127.0.0.1:{closed}/x");
            let r = host.get(&format!("/outbound?url={}", encode(&url)));
            assert_eq!(r.status, 502, "{}", r.describe());
            let error = r.json()["error"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase();
            assert!(error.contains("refused"), "{}", r.describe());
        },
    );

    c.check("host keeps serving after a denial", || {
        assert_eq!(host.get("/hello").status, 200);
        let url = format!("{}/again", allowed.origin());
        let r = host.get(&format!("/outbound?url={}", encode(&url)));
        assert_eq!(r.status, 200, "{}", r.describe());
    });

    c.finish(Some(&host));
}
