//! `[component.<id>]` tables. Keys Spin knows but Tessera does not implement are either
//! ignored (when they change nothing for a local host: `tool`,
//! `dependencies_inherit_configuration`) or rejected by name when they would silently
//! change behaviour (`dependencies`, remote sources, ...).

use std::collections::BTreeMap;
use std::path::Path;

use toml::Value;

use crate::error::ManifestError;
use crate::ids::{check_component_id, check_label, check_variable_name};
use crate::manifest::{BuildConfig, Component, FileMount};
use crate::outbound::AllowedHost;
use crate::reader::{TableReader, wrong_type};
use crate::template::Template;

pub fn read_all(
    components: TableReader<'_>,
    base_dir: &Path,
) -> Result<BTreeMap<String, Component>, ManifestError> {
    let mut out = BTreeMap::new();
    for (id, value) in components.entries() {
        let field = components.field(id);
        check_component_id(id).map_err(|reason| ManifestError::Invalid {
            field: field.clone(),
            reason: format!("invalid component id: {reason}"),
        })?;
        let reader = TableReader::from_value(field, value)?;
        out.insert(id.clone(), read(id, reader, base_dir)?);
    }
    Ok(out)
}

fn read(id: &str, mut c: TableReader<'_>, base_dir: &Path) -> Result<Component, ManifestError> {
    let source = read_source(&mut c, base_dir)?;
    let description = c.string("description")?;

    let mut variables = BTreeMap::new();
    for (name, value, field) in c.string_map("variables")? {
        check_variable_name(&name).map_err(|reason| ManifestError::Invalid {
            field: field.clone(),
            reason: format!("invalid variable name: {reason}"),
        })?;
        variables.insert(name, parse_template(field, &value)?);
    }
    let environment = c
        .string_map("environment")?
        .into_iter()
        .map(|(k, v, _)| (k, v))
        .collect();

    let allowed_outbound_hosts = c.string_list("allowed_outbound_hosts")?;
    for (i, entry) in allowed_outbound_hosts.iter().enumerate() {
        let field = format!("{}[{i}]", c.field("allowed_outbound_hosts"));
        // Templated entries are checked once variables are resolved.
        if parse_template(field.clone(), entry)?.is_literal() {
            AllowedHost::parse(entry).map_err(|reason| ManifestError::AllowedHost {
                field,
                entry: entry.clone(),
                reason,
            })?;
        }
    }
    if !c.string_list("allowed_http_hosts")?.is_empty() {
        return Err(ManifestError::Unsupported {
            field: c.field("allowed_http_hosts"),
            reason: "deprecated by Spin; use allowed_outbound_hosts (e.g. \"https://example.com\")"
                .into(),
        });
    }

    let key_value_stores = labels(&mut c, "key_value_stores", check_label)?;
    let ai_models = labels(&mut c, "ai_models", check_component_id)?;
    let sqlite_databases = labels(&mut c, "sqlite_databases", check_label)?;
    match c.get("dependencies") {
        None => {}
        Some(Value::Table(deps)) if deps.is_empty() => {}
        Some(Value::Table(_)) => {
            return Err(unsupported(
                &c,
                "dependencies",
                id,
                "component dependencies",
            ));
        }
        Some(other) => return Err(wrong_type(c.field("dependencies"), "a table", other)),
    }
    if c.get("profile").is_some() {
        return Err(unsupported(&c, "profile", id, "component profiles"));
    }
    c.bool("dependencies_inherit_configuration")?;
    c.ignore("tool");

    let files = read_files(&mut c)?;
    let exclude_files = c.string_list("exclude_files")?;
    let build = c.table_of("build")?.map(read_build).transpose()?;
    c.finish()?;
    let build_command = build.as_ref().map(|b| b.commands.join(" && "));

    Ok(Component {
        id: id.to_string(),
        source,
        description,
        variables,
        environment,
        allowed_outbound_hosts,
        key_value_stores,
        sqlite_databases,
        ai_models,
        files,
        exclude_files,
        build,
        build_command,
    })
}

fn unsupported(c: &TableReader<'_>, key: &str, id: &str, what: &str) -> ManifestError {
    ManifestError::Unsupported {
        field: c.field(key),
        reason: format!("{what} (component {id:?}); remove `{key}`"),
    }
}

/// A local path only; made absolute against the manifest directory.
fn read_source(
    c: &mut TableReader<'_>,
    base_dir: &Path,
) -> Result<std::path::PathBuf, ManifestError> {
    let field = c.field("source");
    match c.get("source") {
        None => Err(ManifestError::Missing { field }),
        Some(Value::String(path)) if path.trim().is_empty() => Err(ManifestError::Invalid {
            field,
            reason: "must be a path to a .wasm file".into(),
        }),
        Some(Value::String(path)) => Ok(base_dir.join(path)),
        Some(Value::Table(t)) => {
            let kind = if t.contains_key("url") {
                "remote sources ({ url, digest })"
            } else {
                "registry sources ({ registry, package, version })"
            };
            Err(ManifestError::Unsupported {
                field,
                reason: format!("{kind}; build the component and give its local .wasm path"),
            })
        }
        Some(other) => Err(wrong_type(field, "a path string", other)),
    }
}

fn parse_template(field: String, text: &str) -> Result<Template, ManifestError> {
    Template::parse(text).map_err(|source| ManifestError::Template {
        field,
        template: text.to_string(),
        source,
    })
}

fn labels(
    c: &mut TableReader<'_>,
    key: &'static str,
    check: fn(&str) -> Result<(), String>,
) -> Result<Vec<String>, ManifestError> {
    let list = c.string_list(key)?;
    for (i, label) in list.iter().enumerate() {
        check(label).map_err(|reason| ManifestError::Invalid {
            field: format!("{}[{i}]", c.field(key)),
            reason: format!("invalid name {label:?}: {reason}"),
        })?;
    }
    Ok(list)
}

/// `files = ["glob", { source = "dir", destination = "/abs" }]`.
fn read_files(c: &mut TableReader<'_>) -> Result<Vec<FileMount>, ManifestError> {
    let field = c.field("files");
    let items = match c.get("files") {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(wrong_type(field, "an array", other)),
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_field = format!("{field}[{i}]");
        match item {
            Value::String(glob) => out.push(FileMount::Pattern(glob.clone())),
            Value::Table(_) => {
                let mut m = TableReader::from_value(item_field, item)?;
                let source = m.required_string("source")?;
                let destination = m.required_string("destination")?;
                if !destination.starts_with('/') {
                    return Err(ManifestError::Invalid {
                        field: m.field("destination"),
                        reason: format!("{destination:?} must be an absolute path"),
                    });
                }
                m.finish()?;
                out.push(FileMount::Placement {
                    source,
                    destination,
                });
            }
            other => {
                return Err(wrong_type(
                    item_field,
                    "a glob string or { source, destination }",
                    other,
                ));
            }
        }
    }
    Ok(out)
}

/// `[component.<id>.build]`: `command` is one string or a list.
fn read_build(mut b: TableReader<'_>) -> Result<BuildConfig, ManifestError> {
    let field = b.field("command");
    let commands = match b.get("command") {
        None => return Err(ManifestError::Missing { field }),
        Some(Value::String(cmd)) => vec![cmd.clone()],
        Some(Value::Array(_)) => b.string_list("command")?,
        Some(other) => return Err(wrong_type(field, "a string or an array of strings", other)),
    };
    let workdir = b.string("workdir")?;
    let watch = b.string_list("watch")?;
    b.finish()?;
    Ok(BuildConfig {
        commands,
        workdir,
        watch,
    })
}
