//! A component that is not built with spin-sdk 7: plain `wit-bindgen` against Spin 2's WIT
//! (`fermyon:spin@2.0.0`, `spin:sqlite@3.1.0`, `wasi:config`, `wasi:keyvalue`; the world is
//! `tessera:platform/spin2-guest`) and `wasi:http@0.2.0` from the `wasi` crate, the way
//! spin-sdk 3.x guests are put together. Each route exercises one interface and answers
//! JSON with what the interface returned, errors included (as `{"error": "<variant>"}`), so
//! tests/spin_apps.rs can check the host's answers exactly.
//!
//! Routes (the last path segment):
//! - `GET /variables?name=N` — `fermyon:spin/variables.get`
//! - `GET /config?name=N`, `GET /config-all` — `wasi:config/store`
//! - `GET /kv?label=L` — `fermyon:spin/key-value`: set, get, exists, get-keys, delete
//! - `GET /wasi-kv?label=L` — `wasi:keyvalue`: set, get, increment, compare-and-swap
//! - `GET /batch?label=L` — `wasi:keyvalue/batch`
//! - `GET /unconfigured?host=H` — `open` of `fermyon:spin/redis`, `mysql`, `mqtt` on `H`
//! - `GET /sqlite?db=D&v=2|3` — `fermyon:spin/sqlite` or `spin:sqlite@3.1.0`
//! - `GET /pg` — `fermyon:spin/postgres` (the `db_url` variable)
//! - `GET /pg3`, `GET /pg4` — `spin:postgres@3.0.0`, `spin:postgres@4.2.0` types
//! - `GET /outbound?url=U` — `wasi:http/outgoing-handler@0.2.0`

/// `spin:postgres@3.0.0`, from the WIT root the host keeps it in (wit/compat).
mod bindings3 {
    wit_bindgen::generate!({
        path: "../../../wit/compat",
        world: "tessera:compat/host",
        generate_all,
    });
}

/// In a module of its own: its `wasi` (config, keyvalue) would clash with the `wasi` crate.
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "tessera:platform/spin2-guest",
        generate_all,
    });
}

use ::wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam,
    Scheme,
};
use bindings::fermyon::spin::{
    key_value, postgres, rdbms_types as rdbms, sqlite as sqlite2, variables,
};
use bindings::spin::sqlite::sqlite as sqlite3;
use bindings::wasi::config::store as config;
use serde_json::{Value as Json, json};

struct Spin2;

impl ::wasi::exports::http::incoming_handler::Guest for Spin2 {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let target = request.path_with_query().unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let param = |name: &str| query_param(query, name);
        // The last path segment names the route, so one build serves any trigger route.
        let route = path.rsplit('/').next().unwrap_or_default();
        let (status, body) = match route {
            "variables" => ok(match variables::get(&param("name").unwrap_or_default()) {
                Ok(v) => json!({ "value": v }),
                Err(e) => json!({ "error": format!("{e:?}") }),
            }),
            "config" => ok(match config::get(&param("name").unwrap_or_default()) {
                Ok(v) => json!({ "value": v }),
                Err(e) => json!({ "error": format!("{e:?}") }),
            }),
            "config-all" => ok(match config::get_all() {
                Ok(all) => json!({ "values": all }),
                Err(e) => json!({ "error": format!("{e:?}") }),
            }),
            "kv" => ok(kv(&param("label").unwrap_or_default())),
            "wasi-kv" => ok(wasi_kv(&param("label").unwrap_or_default())),
            "sqlite" => ok(match param("v").as_deref() {
                Some("3") => sqlite_v3(&param("db").unwrap_or_default()),
                _ => sqlite_v2(&param("db").unwrap_or_default()),
            }),
            "batch" => ok(batch(&param("label").unwrap_or_default())),
            "unconfigured" => ok(unconfigured(&param("host").unwrap_or_default())),
            "pg" => ok(pg()),
            "pg3" => ok(pg3()),
            "pg4" => ok(pg4()),
            "outbound" => match outbound(&param("url").unwrap_or_default()) {
                Ok((status, body)) => (200, json!({ "status": status, "body": body })),
                Err(e) => (502, json!({ "error": e })),
            },
            _ => (404, json!({ "error": "no such route" })),
        };
        respond(out, status, &body);
    }
}

::wasi::http::proxy::export!(Spin2);

fn ok(body: Json) -> (u16, Json) {
    (200, body)
}

fn kv(label: &str) -> Json {
    let store = match key_value::Store::open(label) {
        Ok(s) => s,
        Err(e) => return json!({ "error": format!("{e:?}") }),
    };
    let run = || -> Result<Json, key_value::Error> {
        store.set("spin2-key", b"v2-value")?;
        let got = store.get("spin2-key")?;
        let exists = store.exists("spin2-key")?;
        let keys = store.get_keys()?;
        store.delete("spin2-key")?;
        Ok(json!({
            "get": got.map(|v: Vec<u8>| String::from_utf8_lossy(&v).into_owned()),
            "exists": exists,
            "keys": keys,
            "exists_after_delete": store.exists("spin2-key")?,
        }))
    };
    run().unwrap_or_else(|e| json!({ "error": format!("{e:?}") }))
}

fn wasi_kv(label: &str) -> Json {
    use bindings::wasi::keyvalue::{atomics, store};
    let bucket = match store::open(label) {
        Ok(b) => b,
        Err(e) => return json!({ "error": format!("{e:?}") }),
    };
    let run = || -> Result<Json, String> {
        let e = |e: store::Error| format!("{e:?}");
        bucket.set("w-key", b"w-value").map_err(e)?;
        let got = bucket.get("w-key").map_err(e)?;
        let first = atomics::increment(&bucket, "w-counter", 5).map_err(e)?;
        let second = atomics::increment(&bucket, "w-counter", 5).map_err(e)?;
        let counter = bucket.get("w-counter").map_err(e)?;
        let cas = atomics::Cas::new(&bucket, "w-key").map_err(e)?;
        let before = cas.current().map_err(e)?;
        // Another writer changes the key: the swap must fail and hand back a fresh handle.
        bucket.set("w-key", b"changed").map_err(e)?;
        let stale = match atomics::swap(cas, b"lost") {
            Ok(()) => "swapped".to_string(),
            Err(atomics::CasError::CasFailed(fresh)) => {
                let current = fresh.current().map_err(e)?;
                atomics::swap(fresh, b"won").map_err(|e| format!("{e:?}"))?;
                format!(
                    "cas-failed at {}",
                    String::from_utf8_lossy(&current.unwrap_or_default())
                )
            }
            Err(other) => format!("{other:?}"),
        };
        let keys = bucket.list_keys(None).map_err(e)?.keys;
        Ok(json!({
            "get": got.map(|v: Vec<u8>| String::from_utf8_lossy(&v).into_owned()),
            "increments": [first, second],
            "counter": counter.map(|v: Vec<u8>| String::from_utf8_lossy(&v).into_owned()),
            "cas_before": before.map(|v: Vec<u8>| String::from_utf8_lossy(&v).into_owned()),
            "stale_swap": stale,
            "after_swap": bucket.get("w-key").map_err(e)?.map(|v: Vec<u8>| String::from_utf8_lossy(&v).into_owned()),
            "keys": keys,
        }))
    };
    run().unwrap_or_else(|e| json!({ "error": e }))
}

fn batch(label: &str) -> Json {
    use bindings::wasi::keyvalue::{batch, store};
    let bucket = match store::open(label) {
        Ok(b) => b,
        Err(e) => return json!({ "error": format!("{e:?}") }),
    };
    let run = || -> Result<Json, store::Error> {
        batch::set_many(
            &bucket,
            &[
                ("b1".to_string(), b"one".to_vec()),
                ("b2".to_string(), b"two".to_vec()),
            ],
        )?;
        let keys = ["b2".to_string(), "b1".to_string(), "absent".to_string()];
        let got: Vec<Json> = batch::get_many(&bucket, &keys)?
            .into_iter()
            .map(|(k, v)| json!([k, v.map(|v| String::from_utf8_lossy(&v).into_owned())]))
            .collect();
        batch::delete_many(&bucket, &["b1".to_string()])?;
        Ok(
            json!({ "got": got, "b1_after_delete": bucket.exists("b1")?, "b2": bucket.exists("b2")? }),
        )
    };
    run().unwrap_or_else(|e| json!({ "error": format!("{e:?}") }))
}

/// What `open` answers, on each service's default port of `host`, for the interfaces the
/// host links without a backend.
fn unconfigured(host: &str) -> Json {
    use bindings::fermyon::spin::{mqtt, mysql, redis};
    let redis = redis::Connection::open(&format!("redis://{host}:6379"));
    let mysql = mysql::Connection::open(&format!("mysql://{host}:3306"));
    let mqtt = mqtt::Connection::open(&format!("mqtt://{host}:1883"), "user", "pass", 30);
    json!({
        "redis": redis.err().map(|e| format!("{e:?}")),
        "mysql": mysql.err().map(|e| format!("{e:?}")),
        "mqtt": mqtt.err().map(|e| format!("{e:?}")),
    })
}

const SQLITE_SETUP: &str = "CREATE TABLE IF NOT EXISTS spin2 \
    (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL, data BLOB, note TEXT)";

fn sqlite_v2(db: &str) -> Json {
    use sqlite2::Value as V;
    let conn = match sqlite2::Connection::open(db) {
        Ok(c) => c,
        Err(e) => return json!({ "error": format!("{e:?}") }),
    };
    let run = || -> Result<Json, sqlite2::Error> {
        conn.execute(SQLITE_SETUP, &[])?;
        conn.execute(
            "INSERT INTO spin2 (name, score, data, note) VALUES (?, ?, ?, ?)",
            &[
                V::Text("v2".into()),
                V::Real(1.5),
                V::Blob(vec![1, 2, 3]),
                V::Null,
            ],
        )?;
        let result = conn.execute(
            "SELECT name, score, data, note, 40 + 2 AS answer FROM spin2 WHERE name = ? ORDER BY id DESC LIMIT 1",
            &[V::Text("v2".into())],
        )?;
        let rows: Vec<Json> = result
            .rows
            .iter()
            .map(|r| Json::Array(r.values.iter().map(sqlite2_json).collect()))
            .collect();
        Ok(json!({ "columns": result.columns, "rows": rows }))
    };
    run().unwrap_or_else(|e| json!({ "error": format!("{e:?}") }))
}

fn sqlite2_json(v: &sqlite2::Value) -> Json {
    match v {
        sqlite2::Value::Integer(i) => json!({ "integer": i }),
        sqlite2::Value::Real(f) => json!({ "real": f }),
        sqlite2::Value::Text(t) => json!({ "text": t }),
        sqlite2::Value::Blob(b) => json!({ "blob": b }),
        sqlite2::Value::Null => json!("null"),
    }
}

fn sqlite_v3(db: &str) -> Json {
    use sqlite3::Value as V;
    let conn = match sqlite3::Connection::open(db) {
        Ok(c) => c,
        Err(e) => return json!({ "error": format!("{e:?}") }),
    };
    let run = || -> Result<Json, sqlite3::Error> {
        conn.execute(SQLITE_SETUP, &[])?;
        conn.execute(
            "INSERT INTO spin2 (name, score) VALUES (?, ?), (?, ?)",
            &[
                V::Text("v3-a".into()),
                V::Integer(7),
                V::Text("v3-b".into()),
                V::Integer(8),
            ],
        )?;
        let inserted = conn.changes();
        let last = conn.last_insert_rowid();
        let result = conn.execute(
            "SELECT id, name FROM spin2 WHERE id = ?",
            &[V::Integer(last)],
        )?;
        let name = match result.rows.first().and_then(|r| r.values.get(1)) {
            Some(V::Text(t)) => t.clone(),
            other => format!("{other:?}"),
        };
        let syntax = match conn.execute("SELEKT 1", &[]) {
            Ok(_) => "accepted".to_string(),
            Err(e) => format!("{e:?}"),
        };
        Ok(json!({ "changes": inserted, "last_name": name, "bad_sql": syntax }))
    };
    run().unwrap_or_else(|e| json!({ "error": format!("{e:?}") }))
}

fn pg() -> Json {
    use rdbms::ParameterValue as P;
    let url = match variables::get("db_url") {
        Ok(u) => u,
        Err(e) => return json!({ "error": format!("db_url: {e:?}") }),
    };
    let conn = match postgres::Connection::open(&url) {
        Ok(c) => c,
        Err(e) => return json!({ "error": format!("{e:?}") }),
    };
    let run = || -> Result<Json, rdbms::Error> {
        conn.execute(
            "CREATE TABLE IF NOT EXISTS spin2_pg (id int, name text, big bigint, flag boolean)",
            &[],
        )?;
        let inserted = conn.execute(
            "INSERT INTO spin2_pg VALUES ($1, $2, $3, $4)",
            &[
                P::Int32(1),
                P::Str("pg-v2".into()),
                P::Uint32(4_000_000_000),
                P::Boolean(true),
            ],
        )?;
        let set = conn.query(
            "SELECT id, name, big, flag, now() AS at FROM spin2_pg WHERE name = $1",
            &[P::Str("pg-v2".into())],
        )?;
        let columns: Vec<Json> = set
            .columns
            .iter()
            .map(|c| json!([c.name, format!("{:?}", c.data_type)]))
            .collect();
        let rows: Vec<Json> = set
            .rows
            .iter()
            .map(|r| Json::Array(r.iter().map(|v| json!(format!("{v:?}"))).collect()))
            .collect();
        let too_big = match conn.execute("SELECT $1", &[P::Uint64(u64::MAX)]) {
            Ok(_) => "accepted".to_string(),
            Err(e) => format!("{e:?}"),
        };
        Ok(json!({ "inserted": inserted, "columns": columns, "rows": rows, "too_big": too_big }))
    };
    run().unwrap_or_else(|e| json!({ "error": format!("{e:?}") }))
}

/// Rows as the Debug text of each value: the test compares them exactly.
fn debug_rows<R: std::fmt::Debug>(rows: &[Vec<R>]) -> Json {
    rows.iter()
        .map(|r| Json::Array(r.iter().map(|v| json!(format!("{v:?}"))).collect()))
        .collect()
}

fn db_url() -> Result<String, Json> {
    variables::get("db_url").map_err(|e| json!({ "error": format!("db_url: {e:?}") }))
}

fn pg3() -> Json {
    use bindings3::spin::postgres::postgres::{Connection, ParameterValue as P};
    let url = match db_url() {
        Ok(u) => u,
        Err(e) => return e,
    };
    let run = || -> Result<Json, String> {
        let conn = Connection::open(&url).map_err(|e| format!("{e:?}"))?;
        let set = conn
            .query(
                "SELECT $1::int4 + 1 AS n, $2 AS d, '[1,2)'::int4range AS r",
                &[P::Int32(41), P::Date((2024, 2, 29))],
            )
            .map_err(|e| format!("{e:?}"))?;
        let columns: Vec<Json> = set
            .columns
            .iter()
            .map(|c| json!(format!("{}: {:?}", c.name, c.data_type)))
            .collect();
        let bad = match conn.query("SELEKT 1", &[]) {
            Ok(_) => "accepted".to_string(),
            Err(e) => format!("{e:?}"),
        };
        Ok(json!({ "columns": columns, "rows": debug_rows(&set.rows), "bad_sql": bad }))
    };
    run().unwrap_or_else(|e| json!({ "error": e }))
}

fn pg4() -> Json {
    use bindings::spin::postgres::postgres::{
        Connection, Interval, ParameterValue as P, RangeBoundKind as K,
    };
    let url = match db_url() {
        Ok(u) => u,
        Err(e) => return e,
    };
    let run = || -> Result<Json, String> {
        let conn = Connection::open(&url).map_err(|e| format!("{e:?}"))?;
        let set = conn
            .query(
                "SELECT $1 AS r32, $1 @> 5 AS has5, $2 AS r64, $3 AS rnum, $4 AS empty, \
                 $5 AS arr, $6 AS iv, $7 AS dec, $8 AS js, $9 AS id, \
                 int4range(1, 10, '[]') AS canon",
                &[
                    P::RangeInt32((Some((1, K::Inclusive)), Some((10, K::Exclusive)))),
                    P::RangeInt64((None, Some((5, K::Inclusive)))),
                    P::RangeDecimal((
                        Some(("1.5".into(), K::Exclusive)),
                        Some(("2.25".into(), K::Inclusive)),
                    )),
                    P::RangeInt32((Some((3, K::Inclusive)), Some((3, K::Exclusive)))),
                    P::ArrayInt32(vec![Some(1), None, Some(3)]),
                    P::Interval(Interval {
                        micros: 1_500_000,
                        days: 2,
                        months: 1,
                    }),
                    P::Decimal("12.345".into()),
                    P::Jsonb(br#"{"a":[1,true]}"#.to_vec()),
                    P::Uuid("6b8b4567-327b-4c4d-9f3a-8f1e2d3c4b5a".into()),
                ],
            )
            .map_err(|e| format!("{e:?}"))?;
        let columns: Vec<Json> = set
            .columns
            .iter()
            .map(|c| json!(format!("{}: {:?}", c.name, c.data_type)))
            .collect();
        let bad = match conn.query(
            "SELECT $1",
            &[P::RangeDecimal((Some(("one".into(), K::Inclusive)), None))],
        ) {
            Ok(_) => "accepted".to_string(),
            Err(e) => format!("{e:?}"),
        };
        Ok(json!({ "columns": columns, "rows": debug_rows(&set.rows), "bad_decimal": bad }))
    };
    run().unwrap_or_else(|e| json!({ "error": e }))
}

/// GET `url` through wasi:http@0.2.0: (status, body) or the error the host gave.
fn outbound(url: &str) -> Result<(u16, String), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("not a URL: {url:?}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| "scheme".to_string())?;
    request
        .set_authority(Some(authority))
        .map_err(|()| "authority".to_string())?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| "path".to_string())?;
    let pending =
        ::wasi::http::outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    let response = pending
        .get()
        .ok_or("no response")?
        .map_err(|()| "response taken twice".to_string())?
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    let body = response
        .consume()
        .map_err(|()| "body taken twice".to_string())?;
    let stream = body
        .stream()
        .map_err(|()| "stream taken twice".to_string())?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(::wasi::io::streams::StreamError::Closed) => break,
            Err(e) => return Err(format!("reading the body: {e:?}")),
        }
    }
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

fn respond(out: ResponseOutparam, status: u16, body: &Json) {
    let bytes = body.to_string().into_bytes();
    let headers = Fields::from_list(&[("content-type".to_string(), b"application/json".to_vec())])
        .unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(headers);
    // Both only fail for a status outside 100-599 or a body taken twice: neither happens.
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        // blocking-write-and-flush takes at most 4096 bytes a call.
        for chunk in bytes.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                return;
            }
        }
        drop(stream);
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

/// The first value of `name` in a query string, percent-decoded.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match bytes[i] {
            b'%' if i + 2 < bytes.len() => hex(bytes[i + 1])
                .zip(hex(bytes[i + 2]))
                .map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match (decoded, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
