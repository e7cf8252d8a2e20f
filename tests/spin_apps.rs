//! Spin components that are not ours, through the real host: tests/guests/spin2 is built the
//! way spin-sdk 3.x guests are (plain wit-bindgen against Spin 2's WIT, wasi:http@0.2.0) and
//! uses variables, `wasi:config`, key-value (`fermyon:spin@2.0.0` and `wasi:keyvalue`),
//! SQLite (`@2.0.0` and `spin:sqlite@3.1.0`), Postgres (`fermyon:spin/postgres@2.0.0`,
//! `spin:postgres@3.0.0` and `@4.2.0`'s ranges and other types), Redis/MySQL/MQTT (linked, with
//! their own errors) and outbound HTTP; its stores and databases come from spin.toml and a
//! runtime config file in Spin's format. Components of Spin's Python and JavaScript SDKs run
//! the same checks: the WASIp2 generation (spin-py, spin-js) and the WASIp3 one (spin-py5).
//! `tessera check` lists what a component imports and what is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tessera_e2e::http::encode;
use tessera_e2e::{Checks, HostCommand, TempDir, TestDb, TestHost, TestServer, toml_string};

const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

fn manifest(app: &str, db: &TestDb, upstream: &TestServer) -> String {
    format!(
        r#"
spin_manifest_version = 2

[application]
name = "{app}"

[variables]
database_url = {{ required = true }}
greeting = {{ default = "hello from spin2" }}

[[trigger.http]]
route = "/spin2/..."
component = "spin2"

[[trigger.http]]
route = "/other/..."
component = "other"

[component.spin2]
source = "WASM:spin2"
allowed_outbound_hosts = ["{upstream}", "postgres://{db_host}", "redis://127.0.0.1:6379", "mysql://127.0.0.1:3306", "mqtt://127.0.0.1:1883"]
key_value_stores = ["default", "cache"]
sqlite_databases = ["default", "reports"]
[component.spin2.variables]
greeting = "{{{{ greeting }}}}"
db_url = "{{{{ database_url }}}}"

[component.other]
source = "WASM:spin2"
"#,
        upstream = upstream.origin(),
        db_host = db.host_port(),
    )
}

/// Where the host keeps the `default` SQLite database of `app` (state dir `.tessera`).
fn default_sqlite_dir(app: &str) -> PathBuf {
    tessera_e2e::root()
        .join(".tessera")
        .join("sqlite")
        .join(app)
}

#[test]
fn a_spin2_component_runs_with_spins_interfaces() {
    let upstream = TestServer::start("pong");
    let db = TestDb::new();
    let app = format!("e2e-spin2-{}", db.name());
    let dir = TempDir::new("tessera-e2e-spin2");
    let reports = dir.path().join("reports.db");
    let runtime_config = dir.path().join("runtime-config.toml");
    std::fs::write(
        &runtime_config,
        format!(
            "[sqlite_database.reports]\ntype = \"spin\"\npath = {}\n\n\
             [key_value_store.cache]\ntype = \"spin\"\n",
            toml_string(&reports.to_string_lossy())
        ),
    )
    .unwrap();
    // Spin apps of their own making: spin2 creates its table.
    let host = HostCommand::new(&db, &manifest(&app, &db, &upstream))
        .components_as_owner()
        .arg("--runtime-config-file")
        .arg(runtime_config.to_string_lossy())
        .start();
    let mut c = Checks::new("spin_apps");
    let get = |path: &str| get_json(&host, path);

    c.check("fermyon:spin/variables@2.0.0", || {
        assert_eq!(
            get("/spin2/variables?name=greeting")["value"],
            "hello from spin2"
        );
        assert_eq!(
            get("/spin2/variables?name=nope")["error"],
            "Error::Undefined(\"no variable for \\\"spin2\\\".\\\"nope\\\"\")"
        );
    });

    c.check("wasi:config/store", || {
        assert_eq!(
            get("/spin2/config?name=greeting")["value"],
            "hello from spin2"
        );
        assert_eq!(
            get("/spin2/config?name=nope")["value"],
            serde_json::Value::Null
        );
        let all = get("/spin2/config-all");
        let values = all["values"].as_array().expect("values");
        assert!(
            values.contains(&serde_json::json!(["greeting", "hello from spin2"])),
            "{all}"
        );
    });

    c.check("fermyon:spin/key-value@2.0.0", || {
        for label in ["default", "cache"] {
            let j = get(&format!("/spin2/kv?label={label}"));
            assert_eq!(j["get"], "v2-value", "{label}: {j}");
            assert_eq!(j["exists"], true, "{label}: {j}");
            assert_eq!(j["keys"], serde_json::json!(["spin2-key"]), "{label}: {j}");
            assert_eq!(j["exists_after_delete"], false, "{label}: {j}");
        }
        // As Spin: a store the component was not granted is access-denied, defined or not.
        assert_eq!(get("/spin2/kv?label=nope")["error"], "Error::AccessDenied");
        assert_eq!(
            get("/other/kv?label=default")["error"],
            "Error::AccessDenied"
        );
    });

    c.check("wasi:keyvalue@0.2.0-draft2 store, atomics", || {
        let j = get("/spin2/wasi-kv?label=default");
        assert_eq!(j["get"], "w-value", "{j}");
        assert_eq!(j["increments"], serde_json::json!([5, 10]), "{j}");
        assert_eq!(j["counter"], "10", "{j}");
        assert_eq!(j["cas_before"], "w-value", "{j}");
        assert_eq!(j["stale_swap"], "cas-failed at changed", "{j}");
        assert_eq!(j["after_swap"], "won", "{j}");
        assert_eq!(j["keys"], serde_json::json!(["w-counter", "w-key"]), "{j}");
        assert_eq!(
            get("/other/wasi-kv?label=default")["error"],
            "Error::AccessDenied"
        );
    });

    c.check("wasi:keyvalue@0.2.0-draft2 batch", || {
        let j = get("/spin2/batch?label=cache");
        assert_eq!(
            j,
            serde_json::json!({
                "got": [["b2", "two"], ["b1", "one"], ["absent", null]],
                "b1_after_delete": false,
                "b2": true,
            })
        );
        assert_eq!(
            get("/other/batch?label=cache")["error"],
            "Error::AccessDenied"
        );
    });

    c.check("redis, mysql, mqtt link and answer their own errors", || {
        let not_here = |what: &str| {
            format!(
                "{what} is not available on this host (component spin2): it has no {what} \
                 client; deploy on Spin with a {what} server for this interface"
            )
        };
        assert_eq!(
            get("/spin2/unconfigured?host=127.0.0.1"),
            serde_json::json!({
                "redis": format!("Error::Other({:?})", not_here("Redis")),
                "mysql": format!("Error::ConnectionFailed({:?})", not_here("MySQL")),
                "mqtt": format!("Error::ConnectionFailed({:?})", not_here("MQTT")),
            })
        );
        // Not in allowed_outbound_hosts: each interface's own refusal, as Spin answers.
        assert_eq!(
            get("/other/unconfigured?host=127.0.0.1"),
            serde_json::json!({
                "redis": "Error::InvalidAddress",
                "mysql": "Error::ConnectionFailed(\"address mysql://127.0.0.1:3306 is not permitted: add it to component.other.allowed_outbound_hosts\")",
                "mqtt": "Error::InvalidAddress",
            })
        );
    });

    c.check("fermyon:spin/sqlite@2.0.0 on the default database", || {
        let j = get("/spin2/sqlite?db=default&v=2");
        assert_eq!(
            j["columns"],
            serde_json::json!(["name", "score", "data", "note", "answer"]),
            "{j}"
        );
        assert_eq!(
            j["rows"][0],
            serde_json::json!([
                {"text": "v2"}, {"real": 1.5}, {"blob": [1, 2, 3]}, "null", {"integer": 42}
            ]),
            "{j}"
        );
        assert!(
            default_sqlite_dir(&app).join("default.db").is_file(),
            "the default database is a file in the state directory"
        );
    });

    c.check("spin:sqlite@3.1.0 on a runtime-config database", || {
        let j = get("/spin2/sqlite?db=reports&v=3");
        assert_eq!(j["changes"], 2, "{j}");
        assert_eq!(j["last_name"], "v3-b", "{j}");
        let bad = j["bad_sql"].as_str().unwrap_or_default();
        assert!(
            bad.starts_with("Error::Io(") && bad.contains("syntax error"),
            "{j}"
        );
        assert!(
            reports.is_file(),
            "the runtime config's path holds the database"
        );
    });

    c.check("sqlite: labels not granted are access-denied", || {
        assert_eq!(
            get("/other/sqlite?db=default&v=3")["error"],
            "Error::AccessDenied"
        );
        assert_eq!(
            get("/spin2/sqlite?db=nope&v=2")["error"],
            "Error::AccessDenied"
        );
    });

    c.check("fermyon:spin/postgres@2.0.0", || {
        let j = get("/spin2/pg");
        assert_eq!(j["inserted"], 1, "{j}");
        assert_eq!(
            j["columns"],
            serde_json::json!([
                ["id", "DbDataType::Int32"],
                ["name", "DbDataType::Str"],
                ["big", "DbDataType::Int64"],
                ["flag", "DbDataType::Boolean"],
                ["at", "DbDataType::Other"]
            ]),
            "{j}"
        );
        assert_eq!(
            j["rows"][0],
            serde_json::json!([
                "DbValue::Int32(1)",
                "DbValue::Str(\"pg-v2\")",
                "DbValue::Int64(4000000000)",
                "DbValue::Boolean(true)",
                "DbValue::Unsupported"
            ]),
            "{j}"
        );
        let too_big = j["too_big"].as_str().unwrap_or_default();
        assert!(
            too_big.starts_with("Error::BadParameter(\"$1: 18446744073709551615"),
            "{j}"
        );
        let other = get("/other/pg");
        let error = other["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("db_url: Error::Undefined("), "{other}");
    });

    c.check("spin:postgres@4.2.0: ranges, arrays, interval, decimal, JSON, UUID", || {
        let j = get("/spin2/pg4");
        assert_eq!(
            j["columns"],
            serde_json::json!([
                "r32: DbDataType::RangeInt32",
                "has5: DbDataType::Boolean",
                "r64: DbDataType::RangeInt64",
                "rnum: DbDataType::RangeDecimal",
                "empty: DbDataType::RangeInt32",
                "arr: DbDataType::ArrayInt32",
                "iv: DbDataType::Interval",
                "dec: DbDataType::Decimal",
                "js: DbDataType::Jsonb",
                "id: DbDataType::Uuid",
                "canon: DbDataType::RangeInt32"
            ]),
            "{j}"
        );
        let json_bytes: Vec<String> = br#"{"a":[1,true]}"#.iter().map(|b| b.to_string()).collect();
        assert_eq!(
            j["rows"][0],
            serde_json::json!([
                "DbValue::RangeInt32((Some((1, RangeBoundKind::Inclusive)), Some((10, RangeBoundKind::Exclusive))))",
                // The range parameter works in a predicate, the case issue 19 reported.
                "DbValue::Boolean(true)",
                // Postgres stores integer ranges canonically: (,5] is (,6).
                "DbValue::RangeInt64((None, Some((6, RangeBoundKind::Exclusive))))",
                "DbValue::RangeDecimal((Some((\"1.5\", RangeBoundKind::Exclusive)), Some((\"2.25\", RangeBoundKind::Inclusive))))",
                // An empty range has no bounds, as Spin reads it.
                "DbValue::RangeInt32((None, None))",
                "DbValue::ArrayInt32([Some(1), None, Some(3)])",
                "DbValue::Interval(Interval { micros: 1500000, days: 2, months: 1 })",
                "DbValue::Decimal(\"12.345\")",
                format!("DbValue::Jsonb([{}])", json_bytes.join(", ")),
                "DbValue::Uuid(\"6b8b4567-327b-4c4d-9f3a-8f1e2d3c4b5a\")",
                "DbValue::RangeInt32((Some((1, RangeBoundKind::Inclusive)), Some((11, RangeBoundKind::Exclusive))))"
            ]),
            "{j}"
        );
        assert_eq!(
            j["bad_decimal"],
            "Error::BadParameter(\"$1: invalid decimal \\\"one\\\": Invalid decimal: unknown character\")",
            "{j}"
        );
    });

    c.check("spin:postgres@3.0.0", || {
        let j = get("/spin2/pg3");
        assert_eq!(
            j["columns"],
            serde_json::json!([
                "n: DbDataType::Int32",
                "d: DbDataType::Date",
                "r: DbDataType::Other"
            ]),
            "{j}"
        );
        assert_eq!(
            j["rows"][0],
            serde_json::json!([
                "DbValue::Int32(42)",
                "DbValue::Date((2024, 2, 29))",
                "DbValue::Unsupported"
            ]),
            "{j}"
        );
        assert_eq!(
            j["bad_sql"], "Error::QueryFailed(\"ERROR: syntax error at or near \\\"SELEKT\\\"\")",
            "{j}"
        );
    });

    c.check("wasi:http@0.2.0 outbound, allowed and denied", || {
        let url = format!("{}/ping", upstream.origin());
        let j = get(&format!("/spin2/outbound?url={}", encode(&url)));
        assert_eq!(j, serde_json::json!({"status": 200, "body": "pong"}));
        let r = host.get(&format!("/other/outbound?url={}", encode(&url)));
        assert_eq!(r.status, 502, "{}", r.describe());
        assert_eq!(r.json()["error"], "ErrorCode::HttpRequestDenied");
    });

    c.finish(Some(&host));
    drop(host);
    let _ = std::fs::remove_dir_all(default_sqlite_dir(&app));
}

/// The same app written with Spin's Python SDK and with its JavaScript SDK (both of the WASIp2
/// generation, built by `cargo xtask setup` from tests/guests/spin-py and spin-js with the
/// SDKs' own toolchains from PyPI and npm), each granted its stores but not the `reports` ones.
fn sdk_manifest(app: &str, db: &TestDb, upstream: &TestServer) -> String {
    let component = |name: &str| {
        format!(
            r#"
[[trigger.http]]
route = "/{name}/..."
component = "{name}"

[component.{name}]
source = "WASM:spin-{name}"
allowed_outbound_hosts = ["{upstream}", "postgres://{db_host}"]
key_value_stores = ["default"]
sqlite_databases = ["default"]
[component.{name}.variables]
greeting = "hello from {name}"
db_url = "{{{{ database_url }}}}"
"#,
            upstream = upstream.origin(),
            db_host = db.host_port(),
        )
    };
    format!(
        r#"
spin_manifest_version = 2

[application]
name = "{app}"

[variables]
database_url = {{ required = true }}
{py}{js}"#,
        py = component("py"),
        js = component("js"),
    )
}

#[test]
fn python_and_javascript_sdk_components_run() {
    let upstream = TestServer::start("pong");
    let denied = TestServer::start("never reached");
    let db = TestDb::new();
    let app = format!("e2e-sdks-{}", db.name());
    let host = HostCommand::new(&db, &sdk_manifest(&app, &db, &upstream))
        .components_as_owner()
        .start();
    let mut c = Checks::new("spin_sdks");
    let get = |path: &str| get_json(&host, path);

    c.check("variables, from Python and JavaScript", || {
        for sdk in ["py", "js"] {
            assert_eq!(
                get(&format!("/{sdk}/variables?name=greeting"))["value"],
                format!("hello from {sdk}")
            );
        }
        assert_eq!(
            get("/py/variables?name=nope")["error"],
            "Error_Undefined(no variable for \"py\".\"nope\")"
        );
        // The JavaScript SDK turns every error into null.
        assert_eq!(
            get("/js/variables?name=nope")["value"],
            serde_json::Value::Null
        );
    });

    c.check(
        "key-value: the default store, and a store not granted",
        || {
            for (sdk, key, value) in [("py", "py-key", "py-value"), ("js", "js-key", "js-value")] {
                let j = get(&format!("/{sdk}/kv"));
                assert_eq!(
                    j,
                    serde_json::json!({
                        "get": value, "exists": true, "keys": [key], "exists_after_delete": false
                    }),
                    "{sdk}"
                );
            }
            assert_eq!(get("/py/kv?label=reports")["error"], "Error_AccessDenied");
            assert_eq!(
                get("/js/kv?label=reports")["error"],
                serde_json::json!({"tag": "access-denied"})
            );
        },
    );

    c.check(
        "SQLite: the default database, and a database not granted",
        || {
            assert_eq!(
                get("/py/sqlite"),
                serde_json::json!({
                    "columns": ["body", "score"],
                    "rows": [["first", 1.5], ["second", null]],
                    // sqlite3_changes(): rows of the last INSERT, UPDATE or DELETE.
                    "changes": 2,
                })
            );
            assert_eq!(
                get("/js/sqlite"),
                serde_json::json!({
                    "columns": ["body", "score"],
                    "rows": [{"body": "first", "score": 1.5}, {"body": "second", "score": 2.5}],
                })
            );
            assert_eq!(get("/py/sqlite?db=reports")["error"], "Error_AccessDenied");
            assert_eq!(
                get("/js/sqlite?db=reports")["error"],
                serde_json::json!({"tag": "access-denied"})
            );
        },
    );

    c.check("Postgres with parameters and a NULL", || {
        assert_eq!(
            get("/py/pg"),
            serde_json::json!({
                "columns": ["next", "word", "nothing"],
                "rows": [[42, "python", null]],
            })
        );
        assert_eq!(
            get("/js/pg"),
            serde_json::json!({
                "columns": ["next", "word", "nothing"],
                "rows": [{"next": 42, "word": "javascript", "nothing": null}],
            })
        );
    });

    c.check(
        "outbound HTTP: an allowed host answers, another is refused",
        || {
            let allowed = format!("{}/ping", upstream.origin());
            let refused = format!("{}/ping", denied.origin());
            for sdk in ["py", "js"] {
                assert_eq!(
                    get(&format!("/{sdk}/outbound?url={}", encode(&allowed))),
                    serde_json::json!({"status": 200, "body": "pong"}),
                    "{sdk}"
                );
                let j = get(&format!("/{sdk}/outbound?url={}", encode(&refused)));
                assert!(
                    j["error"].is_string() && j.get("status").is_none(),
                    "{sdk}: {j}"
                );
            }
            // Spin checks the host inside the response future, as this host does: the Python SDK
            // writes the (empty) body alongside and sees that stream closed first.
            assert!(denied.requests().is_empty(), "{:?}", denied.requests());
        },
    );

    c.finish(Some(&host));
    drop(host);
    let _ = std::fs::remove_dir_all(default_sqlite_dir(&app));
}

/// The app of tests/guests/spin-py5 (Spin's Python SDK 5, WASIp3), granted its stores but not
/// the `reports` ones, and the Redis, MQTT and MySQL addresses it tries.
fn sdk5_manifest(app: &str, db: &TestDb, upstream: &TestServer) -> String {
    format!(
        r#"
spin_manifest_version = 2

[application]
name = "{app}"

[variables]
database_url = {{ required = true }}

[[trigger.http]]
route = "/py5/..."
component = "py5"

[component.py5]
source = "WASM:spin-py5"
allowed_outbound_hosts = ["{upstream}", "postgres://{db_host}", "redis://127.0.0.1:6379", "mqtt://127.0.0.1:1883", "mysql://127.0.0.1:3306"]
key_value_stores = ["default"]
sqlite_databases = ["default"]
[component.py5.variables]
greeting = "hello from py5"
db_url = "{{{{ database_url }}}}"
"#,
        upstream = upstream.origin(),
        db_host = db.host_port(),
    )
}

#[test]
fn python_sdk_5_component_runs() {
    let upstream = TestServer::start("pong");
    let denied = TestServer::start("never reached");
    let db = TestDb::new();
    let app = format!("e2e-sdk5-{}", db.name());
    let host = HostCommand::new(&db, &sdk5_manifest(&app, &db, &upstream))
        .components_as_owner()
        .start();
    let mut c = Checks::new("spin_sdk5");
    let get = |path: &str| get_json(&host, path);

    c.check("spin:variables@3.0.0", || {
        assert_eq!(
            get("/py5/variables?name=greeting")["value"],
            "hello from py5"
        );
        assert_eq!(
            get("/py5/variables?name=nope")["error"],
            "Error_Undefined(no variable for \"py5\".\"nope\")"
        );
    });

    c.check(
        "spin:key-value@3.0.0: keys as a stream, a store not granted",
        || {
            assert_eq!(
                get("/py5/kv"),
                serde_json::json!({
                    "get": "py5-value", "exists": true, "keys": ["py5-key"],
                    "exists_after_delete": false
                })
            );
            assert_eq!(get("/py5/kv?label=reports")["error"], "Error_AccessDenied");
        },
    );

    c.check(
        "spin:sqlite@3.1.0: open-async, rows as a stream, changes, last rowid",
        || {
            assert_eq!(
                get("/py5/sqlite"),
                serde_json::json!({
                    "columns": ["body", "score"],
                    "rows": [["first", 1.5], ["second", null]],
                    "changes": 2,
                    "last_insert_rowid": 2,
                })
            );
            assert_eq!(get("/py5/sqlite?db=reports")["error"], "Error_AccessDenied");
        },
    );

    c.check("spin:postgres@4.2.0 query-async with a NULL", || {
        assert_eq!(
            get("/py5/pg"),
            serde_json::json!({
                "columns": ["next", "word", "nothing"],
                "rows": [[42, "python 5", null]],
            })
        );
    });

    c.check(
        "wasi:http@0.3.0 client: an allowed host answers, another is denied",
        || {
            let allowed = format!("{}/ping", upstream.origin());
            assert_eq!(
                get(&format!("/py5/outbound?url={}", encode(&allowed))),
                serde_json::json!({"status": 200, "body": "pong"})
            );
            let refused = format!("{}/ping", denied.origin());
            assert_eq!(
                get(&format!("/py5/outbound?url={}", encode(&refused))),
                serde_json::json!({"error": "ErrorCode_HttpRequestDenied()"})
            );
            assert!(denied.requests().is_empty(), "{:?}", denied.requests());
        },
    );

    c.check(
        "Redis, MQTT and MySQL 3.0.0 link and answer their own errors",
        || {
            let open = |kind: &str, address: &str| {
                get(&format!(
                    "/py5/unconfigured?kind={kind}&address={}",
                    encode(address)
                ))["error"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            };
            assert!(
                open("redis", "redis://127.0.0.1:6379")
                    .starts_with("Error_Other(Redis is not available on this host"),
            );
            assert_eq!(
                open("redis", "redis://10.0.0.1:6379"),
                "Error_InvalidAddress"
            );
            assert!(
                open("mqtt", "mqtt://127.0.0.1:1883")
                    .starts_with("Error_ConnectionFailed(MQTT is not available on this host"),
            );
            assert_eq!(open("mqtt", "mqtt://10.0.0.1:1883"), "Error_InvalidAddress");
            assert!(
                open("mysql", "mysql://127.0.0.1:3306")
                    .starts_with("Error_ConnectionFailed(MySQL is not available on this host"),
            );
            assert!(open("mysql", "mysql://10.0.0.1:3306").starts_with(
                "Error_ConnectionFailed(address mysql://10.0.0.1:3306 is not permitted"
            ),);
        },
    );

    c.check(
        "a WASI 0.3.0 release candidate links as a trap: that request fails, the next is served",
        || {
            let r = host.get("/py5/release-candidate");
            assert_eq!(r.status, 500, "{}", r.describe());
            assert_eq!(r.json()["error"]["code"], "component_trapped");
            assert_eq!(
                get("/py5/variables?name=greeting")["value"],
                "hello from py5"
            );
            let log = host.output();
            assert!(
                log.contains(
                    "`wasi:random/random@0.3.0-rc-2026-03-15#get-random-bytes` is not provided"
                ),
                "the trap names the import:\n{log}"
            );
        },
    );

    c.finish(Some(&host));
    drop(host);
    let _ = std::fs::remove_dir_all(default_sqlite_dir(&app));
}

/// tests/guests/spin-rust2: the same app with spin-sdk 2.2.0 (Spin 2.0–2.2), a core module
/// whose SDK speaks `wasi:http` of WASI's 2023-10-18 release candidate, in and out.
#[test]
fn a_spin_sdk_2_rust_module_runs() {
    rust_sdk_app_runs("spin-rust2", Build::CoreModule);
}

/// tests/guests/spin-rust3: Spin's Rust SDK 3.1.1 built for wasm32-wasip1, a core module as
/// Spin 3's template makes one; the host makes it a component at load, as `spin up` does.
#[test]
fn a_spin_sdk_3_rust_module_runs() {
    rust_sdk_app_runs("spin-rust3", Build::CoreModule);
}

/// tests/guests/spin-rust4: the same app with spin-sdk 4.0.0, also a core module.
#[test]
fn a_spin_sdk_4_rust_module_runs() {
    rust_sdk_app_runs("spin-rust4", Build::CoreModule);
}

/// tests/guests/spin-rust5: the same app with spin-sdk 5.2.0, built for wasm32-wasip2.
#[test]
fn a_spin_sdk_5_rust_component_runs() {
    rust_sdk_app_runs("spin-rust5", Build::Component);
}

/// What the Rust app's .wasm is: the host componentizes a core module at load.
enum Build {
    CoreModule,
    Component,
}

/// One app (spin-rust3's source) built with one of Spin's Rust SDKs: variables, key-value,
/// SQLite and outbound HTTP through the real host, each also refused where not granted.
fn rust_sdk_app_runs(guest: &str, build: Build) {
    let upstream = TestServer::start("pong");
    let denied = TestServer::start("never reached");
    let db = TestDb::new();
    let app = format!("e2e-{guest}-{}", db.name());
    let manifest = format!(
        r#"
spin_manifest_version = 2

[application]
name = "{app}"

[[trigger.http]]
route = "/rust/..."
component = "rust"

[component.rust]
source = "WASM:{guest}"
allowed_outbound_hosts = ["{upstream}"]
key_value_stores = ["default"]
sqlite_databases = ["default"]
[component.rust.variables]
greeting = "hello from {guest}"
"#,
        upstream = upstream.origin(),
    );
    let module = tessera_e2e::wasm(guest);
    let bytes = std::fs::read(&module)
        .unwrap_or_else(|e| panic!("{}: {e}; run cargo xtask setup", module.display()));
    // A core module's version field is 1; a component's is 0x0d, layer 1.
    let header: &[u8] = match build {
        Build::CoreModule => b"\0asm\x01\x00\x00\x00",
        Build::Component => b"\0asm\x0d\x00\x01\x00",
    };
    assert_eq!(&bytes[..8], header, "{}", module.display());
    let host = HostCommand::new(&db, &manifest).start();
    let mut c = Checks::new(&guest.replace('-', "_"));
    let get = |path: &str| get_json(&host, path);

    c.check("tessera check takes it, every import provided", || {
        let (ok, text) = tessera_check(&module);
        assert!(ok, "{text}");
        assert!(text.contains(" 0 not provided"), "{text}");
        assert!(
            text.contains("provided      fermyon:spin/variables@2.0.0"),
            "{text}"
        );
    });

    c.check("variables", || {
        assert_eq!(
            get("/rust/variables?name=greeting")["value"],
            format!("hello from {guest}")
        );
        assert!(
            get("/rust/variables?name=nope")["error"]
                .as_str()
                .unwrap_or_default()
                .contains("Undefined"),
        );
    });

    c.check(
        "key-value: the default store, and a store not granted",
        || {
            assert_eq!(
                get("/rust/kv"),
                serde_json::json!({
                    "get": "rust3-value", "exists": true, "keys": ["rust3-key"],
                    "exists_after_delete": false
                })
            );
            assert_eq!(
                get("/rust/kv?label=reports")["error"],
                "Error::AccessDenied"
            );
        },
    );

    c.check("SQLite: the default database, and one not granted", || {
        assert_eq!(
            get("/rust/sqlite"),
            serde_json::json!({
                "columns": ["body", "score"],
                "rows": [["first", 1.5], ["second", null]],
            })
        );
        assert_eq!(
            get("/rust/sqlite?db=reports")["error"],
            "Error::AccessDenied"
        );
    });

    c.check(
        "outbound HTTP: an allowed host answers, another is refused",
        || {
            let allowed = format!("{}/ping", upstream.origin());
            assert_eq!(
                get(&format!("/rust/outbound?url={}", encode(&allowed))),
                serde_json::json!({"status": 200, "body": "pong"})
            );
            let refused = format!("{}/ping", denied.origin());
            let j = get(&format!("/rust/outbound?url={}", encode(&refused)));
            assert!(j["error"].is_string(), "{j}");
            assert!(denied.requests().is_empty(), "{:?}", denied.requests());
        },
    );

    c.finish(Some(&host));
    drop(host);
    let _ = std::fs::remove_dir_all(default_sqlite_dir(&app));
}

/// `GET path`, which must answer 200; its JSON body.
fn get_json(host: &TestHost, path: &str) -> serde_json::Value {
    let r = host.get(path);
    assert_eq!(r.status, 200, "{path}: {}", r.describe());
    r.json()
}

fn tessera_check(target: &Path) -> (bool, String) {
    let out = Command::new(tessera_e2e::tessera_bin())
        .arg("check")
        .arg(target)
        .arg("--state-dir")
        .arg(tessera_e2e::root().join(".tessera"))
        .output()
        .expect("run tessera check");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn tessera_check_lists_each_import_and_what_is_missing() {
    let mut c = Checks::new("tessera_check");

    c.check("a component whose imports are all provided passes", || {
        let (ok, text) = tessera_check(&tessera_e2e::wasm("spin2"));
        assert!(ok, "{text}");
        for import in [
            "fermyon:spin/variables@2.0.0",
            "fermyon:spin/key-value@2.0.0",
            "fermyon:spin/sqlite@2.0.0",
            "fermyon:spin/postgres@2.0.0",
            "fermyon:spin/redis@2.0.0",
            "fermyon:spin/mysql@2.0.0",
            "fermyon:spin/mqtt@2.0.0",
            "spin:sqlite/sqlite@3.1.0",
            "spin:postgres/postgres@3.0.0",
            "spin:postgres/postgres@4.2.0",
            "wasi:config/store@0.2.0-draft-2024-09-27",
            "wasi:keyvalue/store@0.2.0-draft2",
            "wasi:keyvalue/atomics@0.2.0-draft2",
            "wasi:keyvalue/batch@0.2.0-draft2",
            // The `wasi` crate's 0.2.0, unified with std's newer 0.2.x by the component linker.
            "wasi:http/outgoing-handler@0.2.",
        ] {
            assert!(
                text.lines()
                    .any(|l| l.trim().starts_with(&format!("provided      {import}"))),
                "{import} should be listed as provided:\n{text}"
            );
        }
        assert!(text.contains(" 0 not provided"), "{text}");
    });

    c.check(
        "components of Spin's Python and JavaScript SDKs pass",
        || {
            for sdk in ["spin-py", "spin-js"] {
                let (ok, text) = tessera_check(&tessera_e2e::wasm(sdk));
                assert!(ok, "{sdk}: {text}");
                assert!(text.contains(" 0 not provided"), "{sdk}: {text}");
                assert!(
                    text.contains("provided      fermyon:spin/key-value@2.0.0"),
                    "{sdk}: {text}"
                );
            }
        },
    );

    c.check(
        "Spin's Python SDK 5: WASI 0.3.0 release candidates link as traps, the rest is provided",
        || {
            let (ok, text) = tessera_check(&tessera_e2e::wasm("spin-py5"));
            assert!(ok, "{text}");
            assert!(text.contains(" 0 not provided"), "{text}");
            for import in [
                "spin:sqlite/sqlite@3.1.0",
                "spin:redis/redis@3.0.0",
                "spin:mqtt/mqtt@3.0.0",
                "spin:mysql/mysql@3.0.0",
                "wasi:http/client@0.3.0",
            ] {
                assert!(
                    text.contains(&format!("provided      {import}\n")),
                    "{import}: {text}"
                );
            }
            assert!(
                text.contains("traps         wasi:http/client@0.3.0-rc-2026-03-15"),
                "{text}"
            );
        },
    );

    c.check(
        "a missing import is named and the exit status fails",
        || {
            let (ok, text) = tessera_check(&tessera_e2e::wasm("spin1-config"));
            assert!(!ok, "{text}");
            let line = text
                .lines()
                .find(|l| l.contains("fermyon:spin/config"))
                .unwrap_or_else(|| panic!("no line for fermyon:spin/config:\n{text}"));
            assert!(
                line.trim_start()
                    .starts_with("not provided  fermyon:spin/config"),
                "{text}"
            );
            assert!(text.contains(" 1 not provided"), "{text}");
        },
    );

    c.check("a manifest: every component, and what is not built", || {
        let dir = TempDir::new("tessera-e2e-check");
        let path = dir.path().join("spin.toml");
        std::fs::write(
            &path,
            tessera_e2e::resolve_wasm_sources(
                r#"
spin_manifest_version = 2
[application]
name = "check"
[[trigger.http]]
route = "/a"
component = "a"
[[trigger.http]]
route = "/b"
component = "b"
[[trigger.http]]
route = "/c"
component = "c"
[component.a]
source = "WASM:spin2"
[component.b]
source = "WASM:spin1-config"
[component.c]
source = "missing.wasm"
"#,
            ),
        )
        .unwrap();
        let (ok, text) = tessera_check(&path);
        assert!(!ok, "{text}");
        assert!(text.contains("ok: 3 components"), "{text}");
        assert!(text.contains("component a ("), "{text}");
        assert!(text.contains("not provided  fermyon:spin/config"), "{text}");
        assert!(text.contains("not built:"), "{text}");
    });

    c.finish(None);
}

#[test]
fn the_runtime_config_file_is_checked_at_start_up() {
    let db = TestDb::new();
    let dir = TempDir::new("tessera-e2e-rc");
    let manifest = r#"
spin_manifest_version = 2
[application]
name = "e2e-rc"
[[trigger.http]]
route = "/..."
component = "spin2"
[component.spin2]
source = "WASM:spin2"
sqlite_databases = ["reports"]
"#;
    let mut c = Checks::new("runtime_config");

    c.check("an undeclared sqlite label stops start-up, named", || {
        let out = HostCommand::new(&db, manifest)
            .run_to_exit(EXIT_TIMEOUT)
            .expect_failure();
        assert!(
            out.contains("component.spin2.sqlite_databases: no database named \"reports\""),
            "{out}"
        );
    });

    c.check("a backend this host lacks stops start-up, named", || {
        let path = dir.path().join("redis.toml");
        std::fs::write(
            &path,
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\n",
        )
        .unwrap();
        let out = HostCommand::new(&db, manifest)
            .arg("--runtime-config-file")
            .arg(path.to_string_lossy())
            .run_to_exit(EXIT_TIMEOUT)
            .expect_failure();
        assert!(
            out.contains("key_value_store.default.type: \"redis\" is not supported by this host"),
            "{out}"
        );
    });

    c.finish(None);
}
