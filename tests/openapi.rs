//! The API description (issue 16, item 7): `GET /openapi.json` on the whole spin.toml is one
//! OpenAPI 3.1 document that names every route the components' routers serve — a route
//! added to a router without its description fails here — and a property-based fuzzer from
//! PyPI (schemathesis, installed by `cargo xtask setup`) run against the real host finds no
//! 5xx and only errors in the JSON error shape.

use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;
use tessera_e2e::{HostCommand, TempDir, TestDb, TestHost};

/// What `cargo xtask setup` installs (xtask/src/fuzzer.rs).
const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// Components that serve an HTTP route but are not part of the product API: the hello
/// example and the operator's self-check of the database (spin.toml says so).
const NOT_THE_API: &[&str] = &["hello", "roundtrip"];

fn host(db: &TestDb) -> TestHost {
    HostCommand::with_manifest_file(db, tessera_e2e::root().join("spin.toml"))
        .auth_keys()
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .start()
}

/// An admin key made straight in the database, as `cargo xtask up` makes the first one.
fn admin_key(db: &TestDb) -> String {
    let prefix = &tessera_e2e::random_hex()[..12];
    let secret = format!("{:0>64}", tessera_e2e::random_hex());
    db.execute(&format!(
        "INSERT INTO api_keys (tenant_id, prefix, secret_hash, role, name)
         VALUES ('acme', '{prefix}', encode(sha256(convert_to('{secret}', 'UTF8')), 'hex'),
                 'admin', 'fuzzer')"
    ));
    format!("tsk_{prefix}_{secret}")
}

/// `(METHOD, /path/{}/…)` of every arm of every router with a concrete method: the
/// components' `match (segments, method)` in `functions/<c>/src/lib.rs`, read as source.
/// `/internal/…` arms (service chaining only) are not the public API.
fn routed_operations() -> BTreeSet<(String, String)> {
    let arm = regex::Regex::new(r#"\(\[([^\]]*)\],\s*&?Method::([A-Z]+)\s*\)"#).unwrap();
    let mut out = BTreeSet::new();
    let functions = tessera_e2e::root().join("functions");
    for entry in std::fs::read_dir(&functions).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let Ok(source) = std::fs::read_to_string(dir.join("src/lib.rs")) else {
            continue;
        };
        if NOT_THE_API.contains(&name.as_str()) {
            continue;
        }
        for caps in arm.captures_iter(&source) {
            let mut paths = vec![String::new()];
            for segment in caps[1].split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let choices: Vec<String> = if segment.starts_with('"') {
                    segment
                        .split('|')
                        .map(|s| s.trim().trim_matches('"').to_string())
                        .collect()
                } else {
                    vec!["{}".into()]
                };
                paths = paths
                    .iter()
                    .flat_map(|p| choices.iter().map(move |c| format!("{p}/{c}")))
                    .collect();
            }
            for path in paths {
                if !path.starts_with("/internal/") {
                    out.insert((caps[2].to_string(), path));
                }
            }
        }
    }
    out
}

/// `(METHOD, /path/{}/…)` of every operation in the document (parameter names dropped).
fn documented_operations(doc: &Value) -> BTreeSet<(String, String)> {
    let param = regex::Regex::new(r"\{[^}]*\}").unwrap();
    let mut out = BTreeSet::new();
    for (path, methods) in doc["paths"].as_object().expect("paths") {
        for method in methods.as_object().expect("methods").keys() {
            out.insert((
                method.to_uppercase(),
                param.replace_all(path, "{}").to_string(),
            ));
        }
    }
    out
}

/// Every `$ref` in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                if k == "$ref" {
                    out.extend(x.as_str());
                } else {
                    refs(x, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn the_description_names_every_route_the_routers_serve() {
    let db = TestDb::new();
    let host = host(&db);
    // Public, like /health: no key.
    let r = host.get("/openapi.json");
    assert_eq!(r.status, 200, "{}", r.describe());
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");

    let routed = routed_operations();
    assert!(routed.len() > 50, "the routers were read: {routed:?}");
    let documented = documented_operations(&doc);
    let host_own: BTreeSet<(String, String)> = [("GET", "/health"), ("GET", "/ready")]
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes served but missing from /openapi.json (describe them in the component's \
         src/openapi.rs): {undocumented:?}"
    );
    let unrouted: Vec<_> = documented
        .difference(&routed)
        .filter(|op| !host_own.contains(*op))
        .collect();
    assert!(
        unrouted.is_empty(),
        "described in /openapi.json but served by no router: {unrouted:?}"
    );

    // Every HTTP route of spin.toml (but the non-API ones) leads to described operations.
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(tessera_e2e::root().join("spin.toml")).unwrap())
            .unwrap();
    for trigger in manifest["trigger"]["http"].as_array().unwrap() {
        let component = trigger["component"].as_str().unwrap();
        let route = trigger["route"].as_str().unwrap();
        if NOT_THE_API.contains(&component) {
            continue;
        }
        let prefix = route.trim_end_matches("...").trim_end_matches('/');
        assert!(
            documented
                .iter()
                .any(|(_, p)| p == prefix || p.starts_with(&format!("{prefix}/")))
                || route == "/openapi.json",
            "spin.toml routes {route} to {component}, and /openapi.json describes nothing there"
        );
    }

    // Every reference resolves within the document.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external $ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "$ref {r} does not resolve");
    }
    // Bodies come from the handlers' own types (schemars), not hand-written copies.
    assert!(
        doc["components"]["schemas"].as_object().unwrap().len() > 10,
        "{}",
        doc["components"]["schemas"]
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// schemathesis as `cargo xtask setup` installed it.
fn schemathesis() -> std::path::PathBuf {
    let bin = tessera_e2e::root()
        .join(".tessera/tools")
        .join(format!("schemathesis-{SCHEMATHESIS_VERSION}"))
        .join("bin/schemathesis");
    assert!(
        bin.is_file(),
        "{} is missing: `cargo xtask setup` installs schemathesis {SCHEMATHESIS_VERSION} from PyPI",
        bin.display()
    );
    bin
}

#[test]
fn a_fuzzer_finds_no_server_error_and_only_json_errors() {
    let bin = schemathesis();
    let db = TestDb::new();
    let host = host(&db);
    let key = admin_key(&db);
    let dir = TempDir::new("schemathesis");
    let base = format!("http://{}", host.addr());
    // Bounded for CI; `TESSERA_FUZZ_EXAMPLES=200 cargo test … --test openapi` digs deeper.
    let examples = std::env::var("TESSERA_FUZZ_EXAMPLES").unwrap_or_else(|_| "12".into());
    let out = Command::new(&bin)
        .current_dir(dir.path())
        .args(["run", &format!("{base}/openapi.json")])
        .args(["--url", &base])
        .args(["-H", &format!("Authorization: Bearer {key}")])
        // Generated from the schemas: bodies, parameters and query strings that conform and
        // ones that do not (the coverage phase's negative cases).
        .args(["--phases", "examples,coverage,fuzzing"])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", &examples, "--seed", "16"])
        .args(["--workers", "2", "--request-timeout", "30"])
        .args(["--suppress-health-check", "all"])
        .args(["--no-color", "--warnings", "off"])
        // Serializers for the NDJSON bodies schemathesis has none for.
        .env(
            "SCHEMATHESIS_HOOKS",
            tessera_e2e::root().join("tests/fuzz_hooks.py"),
        )
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found failures (exit {:?}):\n{stdout}\n{stderr}\n--- host log ---\n{}",
        out.status.code(),
        tail(&host.stderr(), 60)
    );
    // It tested operations, not an empty document.
    assert!(stdout.contains("passed"), "{stdout}");
    println!("{stdout}");
}
