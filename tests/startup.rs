//! Start-up errors: each stops `tessera up` with a non-zero exit and a message that says
//! what to fix.

use std::net::TcpListener;
use std::time::Duration;
use tessera_e2e::{HostCommand, TestDb};

const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn malformed_manifest_names_the_field() {
    let db = TestDb::new();
    let manifest = r#"
spin_manifest_version = 2

[application]
name = "e2e-bad"

[[trigger.http]]
route = "/x"
component = "x"

[component.x]
source = 42
"#;
    let output = HostCommand::with_raw_manifest(&db, manifest)
        .run_to_exit(EXIT_TIMEOUT)
        .expect_failure();
    assert!(output.contains("source"), "should name `source`:\n{output}");

    // `tessera check` agrees, without a database.
    let dir = tessera_e2e::TempDir::new("tessera-e2e-check");
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, manifest).unwrap();
    let out = std::process::Command::new(tessera_e2e::tessera_bin())
        .arg("check")
        .arg("--manifest")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "tessera check accepted a bad manifest"
    );
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("source"),
        "check should name `source`:\n{text}"
    );
}

#[test]
fn unknown_component_in_trigger_is_named() {
    let db = TestDb::new();
    let manifest = r#"
spin_manifest_version = 2

[application]
name = "e2e-bad-trigger"

[[trigger.http]]
route = "/x"
component = "does-not-exist"

[component.hello]
source = "WASM:hello"
"#;
    let output = HostCommand::new(&db, manifest)
        .run_to_exit(EXIT_TIMEOUT)
        .expect_failure();
    assert!(
        output.contains("does-not-exist"),
        "should name the missing component:\n{output}"
    );
}

#[test]
fn missing_wasm_names_path_and_build_command() {
    let db = TestDb::new();
    let missing =
        tessera_e2e::root().join("target/wasm32-wasip2/release/e2e_no_such_component.wasm");
    let manifest = format!(
        r#"
spin_manifest_version = 2

[application]
name = "e2e-missing-wasm"

[[trigger.http]]
route = "/ghost"
component = "ghost"

[component.ghost]
source = {}
[component.ghost.build]
command = "cargo build --release --target wasm32-wasip2 -p e2e-no-such-component"
"#,
        tessera_e2e::toml_string(&missing.to_string_lossy())
    );
    let output = HostCommand::with_raw_manifest(&db, &manifest)
        .run_to_exit(EXIT_TIMEOUT)
        .expect_failure();
    assert!(
        output.contains("e2e_no_such_component.wasm"),
        "should name the missing file:\n{output}"
    );
    assert!(
        output.contains("cargo build --release --target wasm32-wasip2 -p e2e-no-such-component"),
        "should name the build command:\n{output}"
    );
}

#[test]
fn port_in_use_says_so() {
    let db = TestDb::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let manifest = r#"
spin_manifest_version = 2

[application]
name = "e2e-port"

[[trigger.http]]
route = "/hello"
component = "hello"

[component.hello]
source = "WASM:hello"
"#;
    let output = HostCommand::new(&db, manifest)
        .listen(addr)
        .run_to_exit(Duration::from_secs(120))
        .expect_failure();
    assert!(
        output.to_ascii_lowercase().contains("in use"),
        "should say the address is in use:\n{output}"
    );
    assert!(
        output.contains(&addr.port().to_string()),
        "should name the port:\n{output}"
    );
    drop(taken);
}
