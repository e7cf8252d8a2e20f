//! `GET /v1/kb/documents`: the caller's documents, newest first, filtered by scope,
//! metadata, status and creation time, a page at a time (keyset on `(created_at, id)`,
//! which `kb_documents_tenant` serves).

use crate::documents::{DOCUMENT_COLUMNS, document_json};
use crate::sql::{self, P};
use crate::{Answer, refused};
use serde_json::{Value, json};
use tessera_retrieval::{Cursor, ListQuery};
use tessera_spin_kit::{StatusCode, connect};

/// `(created_at, id)` of a row as a cursor: created_at in µs since the epoch, exactly
/// (extract gives numeric).
const CURSOR_COLUMNS: &str = "(extract(epoch FROM created_at) * 1000000)::int8, id::text";

/// A time parameter (µs since the epoch) as a timestamptz, in integer arithmetic.
fn at(param: usize) -> String {
    format!("('epoch'::timestamptz + ${param}::int8 * interval '1 microsecond')")
}

pub async fn list(raw_query: &str, tenant: &str) -> Answer {
    let decoded = tessera_api::Query::parse(raw_query)?;
    let names: Vec<&str> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map_or(p, |(k, _)| k))
        .collect();
    let q = ListQuery::parse(&names, |n| decoded.get(n)).map_err(refused)?;
    if let Some(scope) = &q.scope {
        scope.check_for(tenant).map_err(refused)?;
    }

    let mut conditions = vec!["tenant_id = $1".to_string()];
    let mut params = vec![P::Str(tenant.into())];
    if let Some(scope) = &q.scope {
        params.push(P::Str(scope.to_string()));
        conditions.push(format!("scope = ${}", params.len()));
    }
    if !q.filter.is_empty() {
        params.push(sql::jsonb(&q.filter.to_json()));
        conditions.push(format!("metadata @> ${}::jsonb", params.len()));
    }
    if let Some(status) = q.status {
        params.push(P::Str(status.as_str().into()));
        conditions.push(format!("status = ${}", params.len()));
    }
    if let Some(after) = q.created_after {
        params.push(P::Int64(after));
        conditions.push(format!("created_at >= {}", at(params.len())));
    }
    if let Some(before) = q.created_before {
        params.push(P::Int64(before));
        conditions.push(format!("created_at < {}", at(params.len())));
    }
    if let Some(cursor) = &q.cursor {
        params.push(P::Int64(cursor.created_micros));
        params.push(P::Str(cursor.id.clone()));
        conditions.push(format!(
            "(created_at, id) < ({}, ${}::uuid)",
            at(params.len() - 1),
            params.len()
        ));
    }
    // One row more than the page tells whether another page follows.
    let sql = format!(
        "SELECT {DOCUMENT_COLUMNS}, {CURSOR_COLUMNS} FROM kb_documents d
         WHERE {} ORDER BY d.created_at DESC, d.id DESC LIMIT {}",
        conditions.join(" AND "),
        q.limit + 1
    );
    let db = connect(tenant).await?;
    let rows = sql::rows(&db, "list documents", &sql, params).await?;
    let more = rows.len() > q.limit;
    let page = &rows[..rows.len().min(q.limit)];
    let next_cursor = match page.last() {
        Some(last) if more => Value::String(
            Cursor {
                created_micros: sql::int(last, 10),
                id: sql::text(last, 11),
            }
            .encode(),
        ),
        _ => Value::Null,
    };
    Ok((
        StatusCode::OK,
        json!({
            "documents": page.iter().map(document_json).collect::<Vec<_>>(),
            "next_cursor": next_cursor,
        }),
    ))
}
