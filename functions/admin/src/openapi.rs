//! The API description: admin's own operations, and `GET /openapi.json`, the one document of
//! the whole application — each component's fragment, fetched by Spin service chaining
//! (`http://<component>.spin.internal/internal/openapi`), joined by
//! [`tessera_api::openapi::document`].

use serde_json::{Value, json};
use spin_sdk::http;
use tessera_api::openapi::{FRAGMENT_PATH, Fragment, Operation, document as join};
use tessera_spin_kit::{ApiError, StatusCode};

use crate::keys::NewKey;

/// Admin's operations (every one needs the admin role).
pub fn fragment() -> Value {
    let text = |description: &str| json!({"type": "string", "description": description});
    Fragment::new("admin")
        .op_with::<NewKey>(
            Operation::post(
                "/v1/admin/keys",
                "Make an API key; the full key is answered once",
            )
            .created_or_ok(201)
            .role("admin"),
        )
        .op(Operation::get(
            "/v1/admin/keys",
            "The tenant's keys (prefixes, never secrets)",
        )
        .role("admin"))
        .op(Operation::post(
            "/v1/admin/keys/{prefix}/rotate",
            "A new key with the same role and user; the old one revoked",
        )
        .created_or_ok(201)
        .role("admin"))
        .op(Operation::delete(
            "/v1/admin/keys/{prefix}",
            "Revoke a key (refused for the tenant's last admin key)",
        )
        .role("admin"))
        .op(
            Operation::get("/v1/admin/audit", "State-changing requests, newest first")
                .role("admin")
                .query("key_prefix", text("the key's prefix"), "only this key's")
                .query("user_id", text("a user id"), "only this user's")
                .query(
                    "method",
                    text("POST, PUT, PATCH or DELETE"),
                    "only this method",
                )
                .query("route", text("a path prefix"), "only routes under it")
                .query(
                    "status",
                    json!({"type": "integer", "minimum": 100, "maximum": 599}),
                    "only answers with this status",
                )
                .query(
                    "since",
                    json!({"type": "string", "format": "date-time"}),
                    "at or after",
                )
                .query(
                    "until",
                    json!({"type": "string", "format": "date-time"}),
                    "before",
                )
                .query(
                    "before_id",
                    json!({"type": "integer", "minimum": 1}),
                    "the page after `next_before_id`",
                )
                .query(
                    "limit",
                    json!({"type": "integer", "minimum": 1, "maximum": crate::audit::MAX_PAGE}),
                    "rows per page",
                ),
        )
        .to_json()
}

/// `GET /openapi.json`: the fragments of the components named by the variable
/// `openapi_components` (space-separated), this one's first, as one OpenAPI 3.1 document.
/// A component that cannot be asked makes the answer 502: half a contract would read as a
/// complete one.
pub async fn document() -> crate::Handled {
    let names = spin_sdk::variables::get("openapi_components")
        .await
        .unwrap_or_default();
    let mut fragments = vec![fragment()];
    for name in names.split_whitespace().filter(|n| *n != "admin") {
        fragments.push(fetch(name).await?);
    }
    let doc = join(env!("CARGO_PKG_VERSION"), &fragments)
        .map_err(|e| ApiError::internal(format!("joining the API description: {e}")))?;
    Ok((StatusCode::OK, doc))
}

async fn fetch(component: &str) -> Result<Value, ApiError> {
    let unavailable = |why: String| ApiError {
        detail: Some(format!("the API description of `{component}`: {why}")),
        ..ApiError::new(
            502,
            "upstream_unavailable",
            format!("component `{component}` did not describe its API"),
        )
    };
    let request = http::Request::get(format!("http://{component}.spin.internal{FRAGMENT_PATH}"))
        .body(http::FullBody::new(bytes::Bytes::new()))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let resp = tessera_spin_kit::outbound::send(request)
        .await
        .map_err(|e| unavailable(format!("{e:?}")))?;
    let status = resp.status().as_u16();
    let body = http::body::IncomingBodyExt::bytes(resp.into_body())
        .await
        .map_err(|e| unavailable(format!("{e:?}")))?;
    if status != 200 {
        return Err(unavailable(format!("answered {status}")));
    }
    serde_json::from_slice(&body).map_err(|e| unavailable(e.to_string()))
}
