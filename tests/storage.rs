//! Key-value and Postgres through the `roundtrip` component, served from the repository's
//! own spin.toml (so the app manifest itself is exercised): every Postgres type round-trips
//! exactly, including NULL and a vector(384).

use serde_json::{Value, json};
use tessera_e2e::{Checks, HostCommand, TestDb};

#[test]
fn key_value_and_postgres() {
    let db = TestDb::new();
    let host = HostCommand::with_manifest_file(&db, tessera_e2e::root().join("spin.toml"))
        // The app allows Postgres at {{ database_host }}; point it at the test server.
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .start();
    let mut c = Checks::new("storage");

    let kv = |body: Value| {
        let r = host.post_json("/roundtrip/kv", &body);
        assert_eq!(r.status, 200, "{body} -> {}", r.describe());
        r.json()
    };

    c.check("kv: set, get, exists, delete", || {
        let key = "greeting";
        assert_eq!(
            kv(json!({"op": "set", "key": key, "value": "hello ✓"}))["ok"],
            true
        );
        let j = kv(json!({"op": "get", "key": key}));
        assert_eq!(
            (j["found"].clone(), j["value"].clone()),
            (json!(true), json!("hello ✓")),
            "{j}"
        );
        assert_eq!(kv(json!({"op": "exists", "key": key}))["exists"], true);
        assert_eq!(
            kv(json!({"op": "set", "key": key, "value": "second"}))["ok"],
            true
        );
        assert_eq!(kv(json!({"op": "get", "key": key}))["value"], "second");
        assert_eq!(kv(json!({"op": "delete", "key": key}))["ok"], true);
        assert_eq!(kv(json!({"op": "exists", "key": key}))["exists"], false);
        let j = kv(json!({"op": "get", "key": key}));
        assert_eq!(
            (j["found"].clone(), j["value"].clone()),
            (json!(false), Value::Null),
            "{j}"
        );
        // Deleting a missing key is not an error.
        assert_eq!(kv(json!({"op": "delete", "key": key}))["ok"], true);
    });

    c.check("kv: values live in Postgres", || {
        kv(json!({"op": "set", "key": "persisted", "value": "in postgres"}));
        let rows = db
            .query("SELECT store, convert_from(value, 'UTF8') FROM spin_key_value WHERE key = 'persisted'")
            .expect("spin_key_value is readable");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<_, String>(0), "default");
        assert_eq!(rows[0].get::<_, String>(1), "in postgres");
    });

    c.check("kv: bad input is a JSON 400 naming the field", || {
        for (body, field) in [
            (json!({"key": "k"}), "op"),
            (json!({"op": "rename", "key": "k"}), "op"),
            (json!({"op": "get"}), "key"),
            (json!({"op": "get", "key": ""}), "key"),
            (json!({"op": "get", "key": 7}), "key"),
            (json!({"op": "set", "key": "k"}), "value"),
        ] {
            let r = host.post_json("/roundtrip/kv", &body);
            assert_eq!(r.status, 400, "{body} -> {}", r.describe());
            let j = r.json();
            assert_eq!(j["error"]["field"], field, "{body} -> {j}");
            assert!(
                j["error"]["code"].is_string() && j["error"]["message"].is_string(),
                "{j}"
            );
        }
        let r = tessera_e2e::http::Request::new("POST", "/roundtrip/kv")
            .body(b"{not json")
            .send(host.addr())
            .unwrap();
        assert_eq!(r.status, 400, "{}", r.describe());
        assert_eq!(r.json()["error"]["code"], "invalid_json");
    });

    c.check("pg: built-in values of every type round-trip", || {
        let r = host.post_json("/roundtrip/pg", &json!({}));
        assert_eq!(r.status, 200, "{}", r.describe());
        let j = r.json();
        assert_eq!(j["mismatches"], json!([]), "{j}");
        let v = &j["values"];
        assert_eq!(v["int32"], json!(i32::MIN), "{j}");
        assert_eq!(v["int64"], json!(9_007_199_254_740_993_i64), "{j}");
        assert_eq!(v["float64"].as_f64(), Some(0.1 + 0.2), "{j}");
        assert_eq!(v["bool"], true, "{j}");
        assert_eq!(v["uuid"], "0b5f8a8e-3c1d-4e2a-9f6b-7d8c9e0a1b2c", "{j}");
        assert_eq!(v["timestamp"], 1_700_000_000, "{j}");
        assert_eq!(j["timestamp_utc"], "2023-11-14T22:13:20Z", "{j}");
        assert_eq!(v["null"], Value::Null, "{j}");
        assert_eq!(
            j["types"],
            json!({
                "int32": "int32", "int64": "int64", "float64": "floating64", "text": "str",
                "bool": "boolean", "jsonb": "jsonb", "uuid": "uuid", "timestamp": "datetime",
                "null": "db-null"
            }),
            "{j}"
        );
    });

    c.check("pg: chosen values round-trip exactly", || {
        let cases = [
            json!({
                "int32": i32::MAX, "int64": i64::MIN, "float64": -1.5e300,
                "text": "line1\nline2\ttab 'q' \"dq\" \\ \u{1F600} ünïcødé",
                "bool": false, "jsonb": [1, "two", {"three": [3.5, null, true]}],
                "uuid": "FFFFFFFF-0000-4000-8000-ABCDEFABCDEF", "timestamp": 0
            }),
            json!({
                "int32": 0, "int64": i64::MAX, "float64": 5e-324, "text": "",
                "bool": true, "jsonb": {"nested": {"deep": {"k": "v"}}, "empty": {}},
                "uuid": "00000000-0000-0000-0000-000000000000", "timestamp": -86_400
            }),
            json!({"float64": 1.7976931348623157e308, "jsonb": "just a string", "timestamp": 4_102_444_800_i64}),
            json!({"jsonb": null}),
        ];
        for sent in cases {
            let r = host.post_json("/roundtrip/pg", &sent);
            assert_eq!(r.status, 200, "{sent} -> {}", r.describe());
            let j = r.json();
            assert_eq!(j["mismatches"], json!([]), "{sent} -> {j}");
            for (field, value) in sent.as_object().unwrap() {
                let expected = match field.as_str() {
                    "uuid" => json!(value.as_str().unwrap().to_ascii_lowercase()),
                    _ => value.clone(),
                };
                assert_eq!(j["values"][field], expected, "{field}: {sent} -> {j}");
            }
            assert_eq!(j["values"]["null"], Value::Null);
        }
    });

    c.check(
        "pg: statements the host keeps prepared survive a change of the table under them",
        || {
            // The round trips above left the SELECT prepared on the pooled connections;
            // changing a column's type makes the server refuse those cached plans
            // ("cached plan must not change result type"). The host prepares them again.
            db.execute("ALTER TABLE roundtrip_values ALTER COLUMN v_null TYPE varchar(40)");
            for _ in 0..4 {
                let r = host.post_json("/roundtrip/pg", &json!({"text": "after alter"}));
                assert_eq!(r.status, 200, "{}", r.describe());
                assert_eq!(r.json()["values"]["text"], "after alter");
            }
            db.execute("ALTER TABLE roundtrip_values ALTER COLUMN v_null TYPE text");
        },
    );

    c.check("pg: bad input is a JSON 400 naming the field", || {
        for (body, field) in [
            (json!({"int32": 2_147_483_648_i64}), "int32"),
            (json!({"int64": 1.5}), "int64"),
            (json!({"float64": "x"}), "float64"),
            (json!({"bool": "yes"}), "bool"),
            (json!({"uuid": "not-a-uuid"}), "uuid"),
            (json!({"timestamp": "2024-01-01"}), "timestamp"),
            (json!({"text": "nul\u{0}byte"}), "text"),
        ] {
            let r = host.post_json("/roundtrip/pg", &body);
            assert_eq!(r.status, 400, "{body} -> {}", r.describe());
            assert_eq!(
                r.json()["error"]["field"],
                field,
                "{body} -> {}",
                r.describe()
            );
        }
    });

    c.check("pg: vector(384) round-trips through text", || {
        // Multiples of 1/512 in [-0.75, 0.75): exact in float4.
        let embedding: Vec<f64> = (0..384)
            .map(|i| (i as f64 - 192.0) / 256.0 + 1.0 / 512.0)
            .collect();
        let r = host.post_json("/roundtrip/vector", &json!({ "embedding": embedding }));
        assert_eq!(r.status, 200, "{}", r.describe());
        let j = r.json();
        assert_eq!(j["dims"], 384, "{j}");
        assert_eq!(j["matches"], true, "{j}");
        let back: Vec<f64> = j["embedding"]
            .as_array()
            .expect("embedding array")
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(back, embedding);
        let text = j["text"].as_str().unwrap();
        assert!(text.starts_with('[') && text.ends_with(']'), "{text}");
    });

    c.check("pg: vector bad input", || {
        let r = host.post_json("/roundtrip/vector", &json!({"embedding": vec![0.5; 383]}));
        assert_eq!(r.status, 400, "{}", r.describe());
        assert_eq!(r.json()["error"]["field"], "embedding");
        let mut v = vec![json!(0.5); 384];
        v[5] = json!("x");
        let r = host.post_json("/roundtrip/vector", &json!({ "embedding": v }));
        assert_eq!(r.status, 400, "{}", r.describe());
        assert_eq!(r.json()["error"]["field"], "embedding[5]");
        let r = host.post_json("/roundtrip/vector", &json!({}));
        assert_eq!(r.status, 400, "{}", r.describe());
        assert_eq!(r.json()["error"]["field"], "embedding");
    });

    c.check("self-check endpoint", || {
        let r = host.get("/roundtrip/check");
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.json()["ok"], true, "{}", r.describe());
    });

    c.check("roundtrip: index, unknown endpoint, wrong method", || {
        let r = host.get("/roundtrip/");
        assert_eq!(r.status, 200, "{}", r.describe());
        assert!(r.json()["endpoints"].is_object(), "{}", r.describe());
        let r = host.get("/roundtrip/nope");
        assert_eq!(r.status, 404, "{}", r.describe());
        assert_eq!(r.json()["error"]["code"], "not_found", "{}", r.describe());
        let r = host.get("/roundtrip/kv");
        assert_eq!(r.status, 405, "{}", r.describe());
        assert_eq!(r.header("allow"), Some("POST"), "{}", r.describe());
    });

    c.check("hello from the app manifest", || {
        let r = host.get("/hello");
        assert_eq!((r.status, r.text().as_str()), (200, "hello from tessera\n"));
    });

    c.finish(Some(&host));
}
