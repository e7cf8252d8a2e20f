"""schemathesis hooks for tests/openapi.rs.

NDJSON request bodies (kb's bulk ingest, the picker's bulk loads): an array is sent as one
JSON value per line, anything else as one line; a string (kb describes its raw body as one)
is sent as it is. Lone surrogates stay in, as invalid UTF-8, for the server to refuse.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson", "application/jsonl")
def ndjson(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    rows = value if isinstance(value, list) else [value]
    return "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8")
