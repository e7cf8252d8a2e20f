//! Connection hygiene (docs/adr/0011): a client that sends nothing, or half a head, is cut
//! off; one address cannot hold more than its share of connections; an oversized request
//! target or head is refused in the same JSON error shape as every other answer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use tessera_e2e::http::Request;
use tessera_e2e::{Checks, HostCommand, TestDb};

const MANIFEST: &str = r#"
spin_manifest_version = 2

[application]
name = "e2e-connections"

[[trigger.http]]
route = "/hello"
component = "hello"

[component.hello]
source = "WASM:hello"
"#;

/// Whether the server closes `stream` within `within` (reading whatever it sends first).
fn closed_by_server(mut stream: TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).expect("timeout");
    let mut sink = Vec::new();
    match stream.read_to_end(&mut sink) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

#[test]
fn slow_and_idle_clients_are_cut_off() {
    let db = TestDb::new();
    let host = HostCommand::new(&db, MANIFEST)
        .arg("--header-timeout-ms")
        .arg("500")
        .start();
    let addr = host.addr();
    let mut c = Checks::new("connections");

    c.check("a connection that never sends a request is closed", || {
        let stream = TcpStream::connect(addr).expect("connect");
        assert!(
            closed_by_server(stream, Duration::from_secs(20)),
            "the idle connection stayed open"
        );
    });

    c.check("a head that stops half way is cut off", || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n")
            .expect("write");
        assert!(
            closed_by_server(stream, Duration::from_secs(20)),
            "the half-sent head held the connection"
        );
    });

    c.check(
        "a keep-alive connection idle after its answer is closed",
        || {
            let mut stream = TcpStream::connect(addr).expect("connect");
            stream
                .write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n\r\n")
                .expect("write");
            let mut buf = [0u8; 4096];
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .expect("timeout");
            let n = stream.read(&mut buf).expect("the answer");
            assert!(
                String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
                "{}",
                String::from_utf8_lossy(&buf[..n])
            );
            assert!(closed_by_server(stream, Duration::from_secs(20)));
        },
    );

    c.check("a request target over the limit is a JSON 414", || {
        let path = format!("/hello?{}", "q".repeat(9 << 10));
        let r = Request::new("GET", &path).send(addr).expect("send");
        assert_eq!(r.status, 414, "{}", r.describe());
        assert_eq!(
            r.json()["error"]["code"],
            "uri_too_long",
            "{}",
            r.describe()
        );
    });

    c.check("too many header fields is a JSON 431", || {
        let names: Vec<String> = (0..150).map(|i| format!("x-field-{i}")).collect();
        let mut request = Request::new("GET", "/hello");
        for name in &names {
            request = request.header(name, "v");
        }
        let r = request.send(addr).expect("send");
        assert_eq!(r.status, 431, "{}", r.describe());
        assert_eq!(
            r.json()["error"]["code"],
            "headers_too_large",
            "{}",
            r.describe()
        );
    });

    c.check("a header section over the byte limit is a JSON 431", || {
        let r = Request::new("GET", "/hello")
            .header("x-big", "v".repeat(40 << 10))
            .send(addr)
            .expect("send");
        assert_eq!(r.status, 431, "{}", r.describe());
        assert_eq!(
            r.json()["error"]["code"],
            "headers_too_large",
            "{}",
            r.describe()
        );
    });

    c.check("metrics show each component's instance slots", || {
        let r = host.get("/metrics");
        assert_eq!(r.status, 200, "{}", r.describe());
        let text = r.text();
        assert!(
            text.contains("tessera_instance_slots{component=\"hello\"} "),
            "{text}"
        );
        assert!(
            text.contains("# TYPE tessera_pg_pool_waiting gauge"),
            "{text}"
        );
    });

    c.check("ordinary requests still work", || {
        assert_eq!(host.get("/hello").status, 200);
    });

    c.finish(Some(&host));
}

#[test]
fn one_client_cannot_hold_every_connection() {
    let db = TestDb::new();
    let host = HostCommand::new(&db, MANIFEST)
        .arg("--max-connections-per-client")
        .arg("3")
        .start();
    let addr: SocketAddr = host.addr();
    let mut c = Checks::new("client-limit");

    c.check(
        "past its limit a client gets a JSON 429, then is served again",
        || {
            let held: Vec<TcpStream> = (0..3)
                .map(|_| TcpStream::connect(addr).expect("connect"))
                .collect();
            // The server counts a connection once it accepts it; give it a moment to.
            let refused = tessera_e2e::wait_for(Duration::from_secs(10), || {
                let r = host.get("/hello");
                (r.status == 429).then_some(r)
            })
            .expect("a fourth connection is refused");
            assert_eq!(
                refused.json()["error"]["code"],
                "too_many_connections",
                "{}",
                refused.describe()
            );
            assert_eq!(refused.header("retry-after"), Some("1"));
            drop(held);
            let served = tessera_e2e::wait_for(Duration::from_secs(10), || {
                let r = host.get("/hello");
                (r.status == 200).then_some(r)
            });
            assert!(
                served.is_some(),
                "closed connections free the client's slots"
            );
        },
    );

    c.finish(Some(&host));
}
