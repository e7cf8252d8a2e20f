//! `files` mounts: a directory mounted read-only at a guest path; unsupported forms and
//! missing directories stop start-up with the field named.

use std::time::Duration;
use tessera_e2e::{HostCommand, TempDir, TestDb, toml_string};

fn manifest(files: &str) -> String {
    format!(
        r#"
spin_manifest_version = 2

[application]
name = "e2e-files"

[[trigger.http]]
route = "/echo/..."
component = "echo"

[component.echo]
source = "WASM:echo"
files = [{files}]
"#
    )
}

#[test]
fn directory_is_mounted_read_only() {
    let db = TestDb::new();
    let dir = TempDir::new("tessera-e2e-files");
    std::fs::write(dir.path().join("note.txt"), "mounted text").unwrap();
    let files = format!(
        "{{ source = {}, destination = \"/data\" }}",
        toml_string(&dir.path().to_string_lossy())
    );
    let host = HostCommand::new(&db, &manifest(&files)).start();

    let r = host.get("/echo/x?file=/data/note.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json()["file"], "mounted text", "{}", r.describe());

    // Outside the mount nothing is visible.
    let r = host.get("/echo/x?file=/etc/hostname");
    assert!(r.json()["file_error"].is_string(), "{}", r.describe());
}

#[test]
fn glob_patterns_and_missing_directories_are_named() {
    let db = TestDb::new();
    let out = HostCommand::new(&db, &manifest("\"assets/*.txt\""))
        .run_to_exit(Duration::from_secs(60))
        .expect_failure();
    assert!(out.contains("component.echo.files[0]"), "{out}");

    let out = HostCommand::new(
        &db,
        &manifest("{ source = \"/nonexistent/tessera\", destination = \"/d\" }"),
    )
    .run_to_exit(Duration::from_secs(60))
    .expect_failure();
    assert!(out.contains("component.echo.files[0].source"), "{out}");
    assert!(out.contains("/nonexistent/tessera"), "{out}");
}
