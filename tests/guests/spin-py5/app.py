"""Test guest: a Spin app written with Spin's Python SDK 5 (spin-sdk 5.0.0, componentize-py
0.25.1, both from PyPI), the WASIp3 generation: an async `wasi:http/handler@0.3.0` export and
Spin's 3.x interfaces. `cargo xtask setup` builds it into
target/wasm32-wasip2/release/spin_py5.wasm; tests/spin_apps.rs runs it through the host.

Each route answers JSON. Errors from Spin's interfaces are reported by their class name and
value, the way a Python Spin app sees them.
"""

import json
from urllib.parse import parse_qs, urlparse

from componentize_py_types import Err
from spin_sdk import http, key_value, postgres, sqlite, variables
from spin_sdk.http import Request, Response
from spin_sdk.wit.imports import spin_mqtt_mqtt_3_0_0 as mqtt
from spin_sdk.wit.imports import spin_mysql_mysql_3_0_0 as mysql
from spin_sdk.wit.imports import spin_postgres_postgres_4_2_0 as pg_types
from spin_sdk.wit.imports import spin_redis_redis_3_0_0 as redis
from spin_sdk.wit.imports import spin_sqlite_sqlite_3_1_0 as sqlite_types
from spin_sdk.wit.imports import wasi_random_random_0_3_0_rc_2026_03_15 as random_rc


def describe(e: Err) -> str:
    value = e.value
    inner = getattr(value, "value", None)
    return type(value).__name__ if inner is None else f"{type(value).__name__}({inner})"


def answer(body: dict, status: int = 200) -> Response:
    return Response(status, {"content-type": "application/json"}, json.dumps(body).encode())


async def drain(stream) -> list:
    items = []
    with stream:
        while not stream.writer_dropped:
            items += await stream.read(64)
    return items


async def variable(q):
    try:
        return {"value": await variables.get(q["name"])}
    except Err as e:
        return {"error": describe(e)}


async def kv(q):
    try:
        with await key_value.open(q.get("label", "default")) as store:
            await store.set("py5-key", b"py5-value")
            got = await store.get("py5-key")
            exists = await store.exists("py5-key")
            keys, done = await store.get_keys()
            keys = await drain(keys)
            with done:
                await done.read()
            await store.delete("py5-key")
            return {
                "get": got.decode(),
                "exists": exists,
                "keys": keys,
                "exists_after_delete": await store.exists("py5-key"),
            }
    except Err as e:
        return {"error": describe(e)}


async def sqlite_route(q):
    V = sqlite_types
    try:
        with await sqlite.Connection.open(q.get("db", "default")) as db:

            async def run(statement, params):
                columns, rows, done = await db.execute(statement, params)
                rows = await drain(rows)
                with done:
                    await done.read()
                return columns, rows

            await run("CREATE TABLE IF NOT EXISTS py5_notes (id INTEGER PRIMARY KEY, body TEXT, score REAL)", [])
            await run("DELETE FROM py5_notes", [])
            await run(
                "INSERT INTO py5_notes (body, score) VALUES (?, ?), (?, ?)",
                [V.Value_Text("first"), V.Value_Real(1.5), V.Value_Text("second"), V.Value_Null()],
            )
            changes = await db.changes()
            rowid = await db.last_insert_rowid()
            columns, rows = await run("SELECT body, score FROM py5_notes ORDER BY id", [])
            return {
                "columns": columns,
                "rows": [[getattr(v, "value", None) for v in row.values] for row in rows],
                "changes": changes,
                "last_insert_rowid": rowid,
            }
    except Err as e:
        return {"error": describe(e)}


async def pg(q):
    try:
        with await postgres.Connection.open(await variables.get("db_url")) as db:
            columns, rows, done = await db.query(
                "SELECT $1::int4 + 1 AS next, $2::text AS word, NULL::text AS nothing",
                [pg_types.ParameterValue_Int32(41), pg_types.ParameterValue_Str("python 5")],
            )
            rows = await drain(rows)
            with done:
                await done.read()
            return {
                "columns": [c.name for c in columns],
                "rows": [[getattr(v, "value", None) for v in row] for row in rows],
            }
    except Err as e:
        return {"error": describe(e)}


async def outbound(q):
    try:
        response = await http.send(Request("GET", q["url"], {}, None))
        return {"status": response.status, "body": (response.body or b"").decode()}
    except Exception as e:
        return {"error": str(e) or type(e).__name__}


async def unconfigured(q):
    """Redis, MQTT and MySQL 3.0.0 link; `open` answers the interface's own error."""
    address = q["address"]
    try:
        match q["kind"]:
            case "redis":
                await redis.Connection.open(address)
            case "mqtt":
                await mqtt.Connection.open(address, "user", "secret", 30)
            case "mysql":
                await mysql.Connection.open(address)
        return {"opened": True}
    except Err as e:
        return {"error": describe(e)}


async def release_candidate(q):
    """Calls an interface of WASI 0.3.0-rc-2026-03-15, which the world imports beside 0.3.0."""
    return {"bytes": len(random_rc.get_random_bytes(4))}


ROUTES = {
    "variables": variable,
    "kv": kv,
    "sqlite": sqlite_route,
    "pg": pg,
    "outbound": outbound,
    "unconfigured": unconfigured,
    "release-candidate": release_candidate,
}


class HttpHandler(http.Handler):
    async def handle_request(self, request: Request) -> Response:
        url = urlparse(request.uri)
        route = url.path.rstrip("/").rsplit("/", 1)[-1]
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        handler = ROUTES.get(route)
        if handler is None:
            return answer({"error": f"no route {route}"}, 404)
        return answer(await handler(query))
