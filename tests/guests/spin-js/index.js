// Test guest: a Spin app written with Spin's JavaScript SDK (@fermyon/spin-sdk 2.0.0 with
// componentize-js 0.10, from npm), the WASIp2 generation. `cargo xtask setup` bundles it with
// esbuild and builds it with the SDK's j2w into target/wasm32-wasip2/release/spin_js.wasm;
// tests/spin_apps.rs runs it through the host.
//
// Each route answers JSON. An error from Spin's interfaces is reported as its WIT variant
// (componentize-js throws it with the variant as `payload`).

import { Kv, Postgres, Sqlite, Variables } from "@fermyon/spin-sdk";

function describe(e) {
  return e && e.payload !== undefined ? e.payload : { message: String(e) };
}

const routes = {
  variables(q) {
    // The SDK answers null for a variable the host refuses or does not know.
    return { value: Variables.get(q.get("name")) };
  },
  kv(q) {
    try {
      const store = Kv.open(q.get("label") ?? "default");
      store.set("js-key", "js-value");
      const got = new TextDecoder().decode(store.get("js-key"));
      const exists = store.exists("js-key");
      const keys = store.getKeys();
      store.delete("js-key");
      return { get: got, exists, keys, exists_after_delete: store.exists("js-key") };
    } catch (e) {
      return { error: describe(e) };
    }
  },
  sqlite(q) {
    try {
      const db = Sqlite.open(q.get("db") ?? "default");
      db.execute("CREATE TABLE IF NOT EXISTS js_notes (id INTEGER PRIMARY KEY, body TEXT, score REAL)", []);
      db.execute("DELETE FROM js_notes", []);
      db.execute("INSERT INTO js_notes (body, score) VALUES (?, ?), (?, ?)", ["first", 1.5, "second", 2.5]);
      const result = db.execute("SELECT body, score FROM js_notes ORDER BY id", []);
      return { columns: result.columns, rows: result.rows };
    } catch (e) {
      return { error: describe(e) };
    }
  },
  pg() {
    try {
      const db = Postgres.open(Variables.get("db_url"));
      const result = db.query("SELECT $1::int4 + 1 AS next, $2::text AS word, NULL::text AS nothing", [41, "javascript"]);
      return { columns: result.columns.map((c) => c.name), rows: result.rows };
    } catch (e) {
      return { error: describe(e) };
    }
  },
  async outbound(q) {
    try {
      const response = await fetch(q.get("url"));
      return { status: response.status, body: await response.text() };
    } catch (e) {
      return { error: String(e) };
    }
  },
};

async function handle(request) {
  const url = new URL(request.url);
  const route = url.pathname.replace(/\/+$/, "").split("/").pop();
  const handler = routes[route];
  const [status, body] = handler ? [200, await handler(url.searchParams)] : [404, { error: `no route ${route}` }];
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

addEventListener("fetch", (event) => event.respondWith(handle(event.request)));
