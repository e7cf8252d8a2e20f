//! TLS to Postgres (issue 16, item 6): the real host reaches a server that accepts only TLS
//! with `sslmode=verify-full` and a CA file, and with `sslmode=require`; a certificate from
//! another CA and a client without TLS are refused with errors that name `database_url`.
//!
//! The server is a PostgreSQL of the test's own behind devdb's TLS front (the embedded
//! PostgreSQL is built without OpenSSL; see crates/devdb/src/tls.rs), which refuses plain
//! connections as a `hostssl`-only pg_hba.conf does — so every success here went over TLS.

use serde_json::json;
use std::time::Duration;
use tessera_devdb::tls::{Plaintext, TlsFront};
use tessera_e2e::{HostCommand, TempDir, TestDb, TestHost};

/// The test's own server, its TLS front and a database on it.
/// Dropped in this order: the front, the database, the server, then its directory.
struct Setup {
    front: TlsFront,
    db: TestDb,
    server: tessera_devdb::PgServer,
    dir: TempDir,
    _serial: std::sync::MutexGuard<'static, ()>,
}

/// One server and host at a time: the machine has two cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn setup() -> Setup {
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let state = tessera_e2e::root().join(".tessera");
    let install = tessera_devdb::ensure_installed(&state).expect("the embedded PostgreSQL");
    // Under .tessera/, which the server's system user can traverse (a temp dir may not be).
    let dir = TempDir::under(&state.join("test-pg"), "tls");
    let server = tessera_devdb::PgServer::start(&install, &dir.path().join("data"))
        .expect("a PostgreSQL of the test's own");
    server.ensure_database("postgres").expect("pgvector");
    // Created over the server's own port; the host goes through the front.
    let db = TestDb::on(&server.admin_url());
    let front = TlsFront::start(&server, &dir.path().join("tls"), Plaintext::Refused)
        .expect("the TLS front");
    Setup {
        front,
        db,
        server,
        dir,
        _serial: serial,
    }
}

impl Setup {
    /// The database's URL through the front, with `query` (e.g. `sslmode=require`).
    fn url(&self, host: &str, query: &str) -> String {
        format!("{}?{query}", self.front.url_for(host, self.db.name()))
    }

    fn verify_full(&self, host: &str) -> String {
        self.url(
            host,
            &format!(
                "sslmode=verify-full&sslrootcert={}",
                self.front.ca_file().display()
            ),
        )
    }

    /// The roundtrip component alone, allowed to reach the front by either name.
    fn host(&self, url: &str) -> HostCommand {
        self.host_for(&self.front, url)
    }

    fn host_for(&self, front: &TlsFront, url: &str) -> HostCommand {
        let port = front.port();
        let manifest = format!(
            r#"
spin_manifest_version = 2

[application]
name = "e2e-tls"

[variables]
database_url = {{ required = true, secret = true }}

[[trigger.http]]
route = "/roundtrip/..."
component = "roundtrip"

[component.roundtrip]
source = "WASM:roundtrip"
key_value_stores = ["default"]
allowed_outbound_hosts = ["postgres://localhost:{port}", "postgres://127.0.0.1:{port}"]
[component.roundtrip.variables]
db_url = "{{{{ database_url }}}}"
"#
        );
        HostCommand::new(&self.db, &manifest).database_url(url)
    }
}

/// Postgres, pgvector and the key-value store (the host's own pool) all answer.
fn assert_round_trips(host: &TestHost, how: &str) {
    let r = host.get("/roundtrip/check");
    assert_eq!(r.status, 200, "{how}: {}", r.describe());
    assert_eq!(r.json()["ok"], json!(true), "{how}: {}", r.describe());
}

fn start_failure(setup: &Setup, url: &str) -> String {
    setup
        .host(url)
        .run_to_exit(Duration::from_secs(60))
        .expect_failure()
}

#[test]
fn verify_full_with_the_ca_file_and_require_reach_a_tls_only_server() {
    let s = setup();

    let host = s.host(&s.verify_full("localhost")).start();
    assert_round_trips(&host, "verify-full, localhost");
    drop(host);

    // The certificate names 127.0.0.1 too, so the check by address passes as well.
    let host = s.host(&s.verify_full("127.0.0.1")).start();
    assert_round_trips(&host, "verify-full, 127.0.0.1");
    drop(host);

    // `require` encrypts without checking the certificate (libpq's meaning).
    let host = s.host(&s.url("localhost", "sslmode=require")).start();
    assert_round_trips(&host, "require");
    drop(host);

    // No sslmode: `prefer`, which takes TLS when the server offers it.
    let host = s.host(&s.front.url_for("localhost", s.db.name())).start();
    assert_round_trips(&host, "default (prefer)");
}

#[test]
fn a_certificate_from_another_ca_is_refused_naming_database_url() {
    let s = setup();
    let wrong = s.dir.path().join("other-ca.crt");
    std::fs::write(
        &wrong,
        tessera_devdb::tls::unrelated_ca_pem().expect("another CA"),
    )
    .expect("write the other CA");
    let url = s.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", wrong.display()),
    );
    let out = start_failure(&s, &url);
    assert!(
        out.contains("database_url: the server's TLS certificate did not verify")
            && out.contains("UnknownIssuer")
            && out.contains("is sslrootcert the CA that signed"),
        "{out}"
    );

    // The same through a component: the host starts with the right CA, the component's own
    // database_url names the wrong one; it answers 503 and the log says why.
    let host = s
        .host(&s.verify_full("localhost"))
        .env("SPIN_VARIABLE_DATABASE_URL", &url)
        .start();
    let r = host.post_json("/roundtrip/pg", &json!({}));
    assert_eq!(r.status, 503, "{}", r.describe());
    assert_eq!(
        r.json()["error"]["code"],
        "database_unavailable",
        "{}",
        r.describe()
    );
    let log = host.output();
    assert!(
        log.contains("the server's TLS certificate did not verify"),
        "{log}"
    );
}

#[test]
fn a_server_without_tls_and_a_client_without_it_are_refused_clearly() {
    let s = setup();
    // `require` against the server's own port, which has no TLS.
    let plain = format!("{}?sslmode=require", s.server.url_for(s.db.name()));
    let out = start_failure(&s, &plain);
    assert!(
        out.contains("database_url: the server does not accept TLS"),
        "{out}"
    );
    // `disable` against the front, which accepts only TLS.
    let out = start_failure(&s, &s.url("localhost", "sslmode=disable"));
    assert!(
        out.contains("database_url: the server requires TLS")
            && out.contains("no encryption")
            && out.contains("sslmode=require"),
        "{out}"
    );
}

#[test]
fn an_unknown_sslmode_and_a_missing_ca_file_stop_start_up_with_the_setting_named() {
    let s = setup();
    let out = start_failure(&s, &s.url("localhost", "sslmode=always"));
    assert!(
        out.contains("database_url: sslmode=always is not one of"),
        "{out}"
    );
    let out = start_failure(
        &s,
        &s.url(
            "localhost",
            "sslmode=verify-full&sslrootcert=/nonexistent/ca.crt",
        ),
    );
    assert!(
        out.contains("database_url: sslrootcert=/nonexistent/ca.crt cannot be read"),
        "{out}"
    );
}

#[test]
fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    let s = setup();
    // A certificate for `localhost` only, reached as 127.0.0.1.
    let front = TlsFront::start_for(
        &s.server,
        &s.dir.path().join("tls-localhost-only"),
        Plaintext::Refused,
        &["localhost"],
    )
    .expect("a second TLS front");
    let url = |mode: &str| {
        format!(
            "{}?sslmode={mode}&sslrootcert={}",
            front.url_for("127.0.0.1", s.db.name()),
            front.ca_file().display()
        )
    };
    let out = s
        .host_for(&front, &url("verify-full"))
        .run_to_exit(Duration::from_secs(60))
        .expect_failure();
    assert!(
        out.contains("database_url: the server's TLS certificate did not verify")
            && out.contains("must be a name on the certificate"),
        "{out}"
    );
    let host = s.host_for(&front, &url("verify-ca")).start();
    assert_round_trips(&host, "verify-ca, 127.0.0.1 not on the certificate");
    drop(host);
    // `require` with a CA file verifies the chain, as libpq does: another CA fails.
    let other = s.dir.path().join("unrelated.crt");
    std::fs::write(
        &other,
        tessera_devdb::tls::unrelated_ca_pem().expect("a CA"),
    )
    .expect("write");
    let out = s
        .host_for(
            &front,
            &format!(
                "{}?sslmode=require&sslrootcert={}",
                front.url_for("localhost", s.db.name()),
                other.display()
            ),
        )
        .run_to_exit(Duration::from_secs(60))
        .expect_failure();
    assert!(out.contains("UnknownIssuer"), "{out}");
}
