//! `[[trigger.http]]` (Spin's `HttpTriggerConfig`) and `[[trigger.cron]]` (the
//! spin-trigger-cron plugin's `component` + `cron_expression`). Other trigger types are
//! rejected by name.

use toml::Value;

use crate::error::ManifestError;
use crate::manifest::{CronTrigger, HttpRoute, HttpTrigger};
use crate::reader::{TableReader, wrong_type};

pub fn read_all(
    triggers: TableReader<'_>,
) -> Result<(Vec<HttpTrigger>, Vec<CronTrigger>), ManifestError> {
    let mut http = Vec::new();
    let mut cron = Vec::new();
    for (kind, value) in triggers.entries() {
        let field = triggers.field(kind);
        if kind != "http" && kind != "cron" {
            return Err(ManifestError::Unsupported {
                field,
                reason: format!("trigger type {kind:?} (supported: http, cron)"),
            });
        }
        let items = match value {
            Value::Array(items) => items,
            other => {
                return Err(wrong_type(
                    field,
                    "an array of tables ([[trigger.<type>]])",
                    other,
                ));
            }
        };
        for (index, item) in items.iter().enumerate() {
            let reader = TableReader::from_value(format!("{field}[{index}]"), item)?;
            if kind == "http" {
                http.push(read_http(index, reader)?);
            } else {
                cron.push(read_cron(index, reader)?);
            }
        }
    }
    Ok((http, cron))
}

fn read_http(index: usize, mut t: TableReader<'_>) -> Result<HttpTrigger, ManifestError> {
    let id = t.string("id")?;
    let component = component_ref(&mut t)?;
    let route = read_route(&mut t)?;
    if let Some(executor) = t.table_of("executor")? {
        check_executor(executor)?;
    }
    if t.get("static_response").is_some() {
        return Err(ManifestError::Unsupported {
            field: t.field("static_response"),
            reason: "static responses; point the route at a component".into(),
        });
    }
    t.finish()?;
    Ok(HttpTrigger {
        index,
        id,
        component,
        route,
    })
}

fn read_cron(index: usize, mut t: TableReader<'_>) -> Result<CronTrigger, ManifestError> {
    let id = t.string("id")?;
    let component = component_ref(&mut t)?;
    let cron_expression = t.required_string("cron_expression")?;
    if cron_expression.trim().is_empty() {
        return Err(ManifestError::Invalid {
            field: t.field("cron_expression"),
            reason: "must not be empty".into(),
        });
    }
    t.finish()?;
    Ok(CronTrigger {
        index,
        id,
        component,
        cron_expression,
    })
}

/// `component = "id"`; Spin's inline `component = { source = ... }` is not supported, nor
/// its reserved `components` key.
fn component_ref(t: &mut TableReader<'_>) -> Result<String, ManifestError> {
    if t.get("components").is_some() {
        return Err(ManifestError::Unsupported {
            field: t.field("components"),
            reason: "`components` is reserved by Spin; use `component = \"<id>\"`".into(),
        });
    }
    let field = t.field("component");
    match t.get("component") {
        None => Err(ManifestError::Missing { field }),
        Some(Value::String(id)) => Ok(id.clone()),
        Some(Value::Table(_)) => Err(ManifestError::Unsupported {
            field,
            reason: "inline component tables; define [component.<id>] and use component = \"<id>\""
                .into(),
        }),
        Some(other) => Err(wrong_type(field, "a component id string", other)),
    }
}

/// `route = "/path"` or `route = { private = true }`.
fn read_route(t: &mut TableReader<'_>) -> Result<HttpRoute, ManifestError> {
    let field = t.field("route");
    match t.get("route") {
        None => Err(ManifestError::Missing { field }),
        Some(Value::String(route)) => Ok(HttpRoute::Path(route.clone())),
        Some(value @ Value::Table(_)) => {
            let mut r = TableReader::from_value(field.clone(), value)?;
            let private = r.bool("private")?;
            r.finish()?;
            match private {
                Some(true) => Ok(HttpRoute::Private),
                // Spin's wording for `{ private = false }`.
                Some(false) => Err(ManifestError::Invalid {
                    field,
                    reason: "route must be a string pattern or '{ private = true }'".into(),
                }),
                None => Err(ManifestError::Missing {
                    field: format!("{field}.private"),
                }),
            }
        }
        Some(other) => Err(wrong_type(
            field,
            "a route string or { private = true }",
            other,
        )),
    }
}

/// `executor = { type = "spin" }` (alias `http`) is the default and fine; Wagi is not.
fn check_executor(mut e: TableReader<'_>) -> Result<(), ManifestError> {
    let field = e.field("type");
    match e.required_string("type")?.as_str() {
        "spin" | "http" => e.finish(),
        "wagi" => Err(ManifestError::Unsupported {
            field,
            reason: "the Wagi executor; build the component for wasi:http".into(),
        }),
        other => Err(ManifestError::Invalid {
            field,
            reason: format!("unknown executor type {other:?} (expected \"spin\" or \"http\")"),
        }),
    }
}
