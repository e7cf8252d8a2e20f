"""Test guest: a Spin app written with Spin's Python SDK (spin-sdk 3.4.1, componentize-py
0.17.2, both from PyPI), the WASIp2 generation. `cargo xtask setup` builds it into
target/wasm32-wasip2/release/spin_py.wasm; tests/spin_apps.rs runs it through the host.

Each route answers JSON. Errors from Spin's interfaces are reported by their class name and
value, the way a Python Spin app sees them.
"""

import json
from urllib.parse import parse_qs, urlparse

from spin_sdk import http, key_value, postgres, variables
from spin_sdk.http import Request, Response
from spin_sdk.wit.imports import rdbms_types as rdbms
from spin_sdk.wit.imports import spin_sqlite_sqlite as sqlite3
from spin_sdk.wit.types import Err


def describe(e: Err) -> str:
    value = e.value
    inner = getattr(value, "value", None)
    return type(value).__name__ if inner is None else f"{type(value).__name__}({inner})"


def answer(body: dict, status: int = 200) -> Response:
    return Response(status, {"content-type": "application/json"}, json.dumps(body).encode())


def variable(q):
    try:
        return {"value": variables.get(q["name"])}
    except Err as e:
        return {"error": describe(e)}


def kv(q):
    try:
        with key_value.open(q.get("label", "default")) as store:
            store.set("py-key", b"py-value")
            got = store.get("py-key")
            exists = store.exists("py-key")
            keys = store.get_keys()
            store.delete("py-key")
            return {
                "get": got.decode(),
                "exists": exists,
                "keys": keys,
                "exists_after_delete": store.exists("py-key"),
            }
    except Err as e:
        return {"error": describe(e)}


def sqlite(q):
    try:
        with sqlite3.Connection.open(q.get("db", "default")) as db:
            db.execute("CREATE TABLE IF NOT EXISTS py_notes (id INTEGER PRIMARY KEY, body TEXT, score REAL)", [])
            db.execute("DELETE FROM py_notes", [])
            db.execute(
                "INSERT INTO py_notes (body, score) VALUES (?, ?), (?, ?)",
                [sqlite3.Value_Text("first"), sqlite3.Value_Real(1.5), sqlite3.Value_Text("second"), sqlite3.Value_Null()],
            )
            result = db.execute("SELECT body, score FROM py_notes ORDER BY id", [])
            rows = [[getattr(v, "value", None) for v in row.values] for row in result.rows]
            return {"columns": result.columns, "rows": rows, "changes": db.changes()}
    except Err as e:
        return {"error": describe(e)}


def pg(q):
    try:
        with postgres.open(variables.get("db_url")) as db:
            rows = db.query(
                "SELECT $1::int4 + 1 AS next, $2::text AS word, NULL::text AS nothing",
                [rdbms.ParameterValue_Int32(41), rdbms.ParameterValue_Str("python")],
            )
            return {
                "columns": [c.name for c in rows.columns],
                "rows": [[getattr(v, "value", None) for v in row] for row in rows.rows],
            }
    except Err as e:
        return {"error": describe(e)}


def outbound(q):
    try:
        response = http.send(Request("GET", q["url"], {}, None))
        return {"status": response.status, "body": (response.body or b"").decode()}
    except Exception as e:
        return {"error": str(e)}


ROUTES = {"variables": variable, "kv": kv, "sqlite": sqlite, "pg": pg, "outbound": outbound}


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        url = urlparse(request.uri)
        route = url.path.rstrip("/").rsplit("/", 1)[-1]
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        handler = ROUTES.get(route)
        if handler is None:
            return answer({"error": f"no route {route}"}, 404)
        return answer(handler(query))
