//! `--runtime-config-file`: the TOML file real Spin reads with `spin up
//! --runtime-config-file`, in Spin's format, for the parts this host has a backend for:
//!
//! - `[sqlite_database.<label>]` `type = "spin"`, `path = "…"` (relative to the file's
//!   directory, as in Spin; default `<state dir>/sqlite/<app>/<label>.db`);
//! - `[key_value_store.<label>]` `type = "spin"`: the label is served from the app's Postgres
//!   like `default` (docs/adr/0002); a `path` is refused, since no file would be used;
//! - `[[config_provider]]` / `[[variables_provider]]` `type = "env"` with Spin's prefix
//!   `SPIN_VARIABLE` (what the host resolves already);
//! - `[llm_compute]` `type = "remote_http"`, `url`, `auth_token`: the embedding worker.
//!
//! Anything else (a Redis store, libSQL, Vault) stops start-up with the field named, rather
//! than running with a backend other than the one the file asks for.

use super::llm::LlmWorker;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// What the file configures, resolved to paths and settings.
#[derive(Debug, Default, Clone)]
pub struct SpinRuntimeConfig {
    /// SQLite label → database file (the `default` label included only if the file names it).
    pub sqlite_databases: BTreeMap<String, PathBuf>,
    /// Key-value labels beyond `default`.
    pub key_value_stores: Vec<String>,
    pub llm_worker: Option<LlmWorker>,
}

/// Where the `default` SQLite database of `app` lives, and other labels without a `path`.
pub fn default_sqlite_path(state_dir: &Path, app: &str, label: &str) -> PathBuf {
    // The app name becomes a directory name: keep it to characters safe everywhere.
    let dir: String = app
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    state_dir
        .join("sqlite")
        .join(dir)
        .join(format!("{label}.db"))
}

/// Reads `path` (when given); `None` configures nothing beyond the defaults.
pub fn load(path: Option<&Path>, state_dir: &Path, app: &str) -> Result<SpinRuntimeConfig> {
    let Some(path) = path else {
        return Ok(SpinRuntimeConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the runtime config file {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base, state_dir, app)
        .with_context(|| format!("runtime config file {}", path.display()))
}

pub fn parse(text: &str, base: &Path, state_dir: &Path, app: &str) -> Result<SpinRuntimeConfig> {
    let table: Table = text.parse().context("invalid TOML")?;
    let mut out = SpinRuntimeConfig::default();
    for (key, value) in &table {
        match key.as_str() {
            "sqlite_database" => {
                for (label, entry) in labelled(key, value)? {
                    let field = format!("sqlite_database.{label}");
                    let entry = entry_table(&field, entry)?;
                    expect_type(&field, entry, "spin", "SQLite files (type = \"spin\")")?;
                    only_keys(&field, entry, &["type", "path"])?;
                    let file = match entry.get("path") {
                        None => default_sqlite_path(state_dir, app, label),
                        Some(Value::String(p)) => base.join(p),
                        Some(other) => {
                            bail!(
                                "{field}.path: expected a string, found {}",
                                other.type_str()
                            )
                        }
                    };
                    out.sqlite_databases.insert(label.clone(), file);
                }
            }
            "key_value_store" => {
                for (label, entry) in labelled(key, value)? {
                    let field = format!("key_value_store.{label}");
                    let entry = entry_table(&field, entry)?;
                    expect_type(
                        &field,
                        entry,
                        "spin",
                        "stores of type \"spin\", kept in the app's Postgres",
                    )?;
                    if entry.contains_key("path") {
                        bail!(
                            "{field}.path: this host keeps key-value stores in the app's \
                             Postgres (docs/adr/0002), not in a file; remove `path`"
                        );
                    }
                    only_keys(&field, entry, &["type"])?;
                    if label != "default" {
                        out.key_value_stores.push(label.clone());
                    }
                }
            }
            "config_provider" | "variables_provider" => {
                let Value::Array(providers) = value else {
                    bail!("{key}: expected an array of tables ([[{key}]])");
                };
                for (i, provider) in providers.iter().enumerate() {
                    let field = format!("{key}[{i}]");
                    let provider = entry_table(&field, provider)?;
                    expect_type(&field, provider, "env", "the environment (type = \"env\")")?;
                    only_keys(&field, provider, &["type", "prefix", "dotenv_path"])?;
                    match provider.get("prefix") {
                        None => {}
                        Some(Value::String(p)) if p == "SPIN_VARIABLE" => {}
                        Some(other) => bail!(
                            "{field}.prefix: this host reads variables from SPIN_VARIABLE_*; \
                             found {other}"
                        ),
                    }
                    if provider.contains_key("dotenv_path") {
                        bail!(
                            "{field}.dotenv_path: not supported by this host; set the variables in the environment"
                        );
                    }
                }
            }
            "llm_compute" => {
                let field = "llm_compute";
                let entry = entry_table(field, value)?;
                expect_type(field, entry, "remote_http", "remote_http")?;
                only_keys(field, entry, &["type", "url", "auth_token"])?;
                let Some(Value::String(url)) = entry.get("url") else {
                    bail!("llm_compute.url: expected a string");
                };
                let token = match entry.get("auth_token") {
                    None => None,
                    Some(Value::String(t)) => Some(t.clone()),
                    Some(other) => bail!(
                        "llm_compute.auth_token: expected a string, found {}",
                        other.type_str()
                    ),
                };
                out.llm_worker = Some(LlmWorker {
                    url: url.clone(),
                    token,
                });
            }
            other => bail!(
                "{other}: not supported by this host (it reads sqlite_database, \
                 key_value_store, config_provider/variables_provider and llm_compute)"
            ),
        }
    }
    Ok(out)
}

fn labelled<'a>(
    key: &str,
    value: &'a Value,
) -> Result<impl Iterator<Item = (&'a String, &'a Value)>> {
    let Value::Table(entries) = value else {
        bail!("{key}: expected tables ([{key}.<label>])");
    };
    for label in entries.keys() {
        // The labels spin.toml accepts (tessera-manifest checks the same there).
        let ok = label.starts_with(|c: char| c.is_ascii_lowercase())
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !ok {
            bail!("{key}.{label}: invalid label: expected kebab-case or snake_case");
        }
    }
    Ok(entries.iter())
}

fn entry_table<'a>(field: &str, value: &'a Value) -> Result<&'a Table> {
    match value {
        Value::Table(t) => Ok(t),
        other => bail!("{field}: expected a table, found {}", other.type_str()),
    }
}

fn expect_type(field: &str, entry: &Table, wanted: &str, supported: &str) -> Result<()> {
    match entry.get("type") {
        Some(Value::String(t)) if t == wanted => Ok(()),
        Some(Value::String(t)) => {
            bail!("{field}.type: {t:?} is not supported by this host (it supports {supported})")
        }
        Some(other) => bail!(
            "{field}.type: expected a string, found {}",
            other.type_str()
        ),
        None => bail!("{field}.type: missing"),
    }
}

fn only_keys(field: &str, entry: &Table, allowed: &[&str]) -> Result<()> {
    for key in entry.keys() {
        if !allowed.contains(&key.as_str()) {
            bail!(
                "{field}.{key}: unknown field (expected one of: {})",
                allowed.join(", ")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> SpinRuntimeConfig {
        parse(text, Path::new("/cfg"), Path::new("/state"), "my app").expect("valid")
    }

    fn parse_err(text: &str) -> String {
        format!(
            "{:#}",
            parse(text, Path::new("/cfg"), Path::new("/state"), "app").expect_err("invalid")
        )
    }

    #[test]
    fn reads_spins_sqlite_and_key_value_tables() {
        let c = parse_ok(
            r#"
[sqlite_database.default]
type = "spin"
path = "data/app.db"

[sqlite_database.reports]
type = "spin"

[key_value_store.cache]
type = "spin"

[[config_provider]]
type = "env"
prefix = "SPIN_VARIABLE"

[llm_compute]
type = "remote_http"
url = "http://127.0.0.1:3001"
auth_token = "t"
"#,
        );
        assert_eq!(
            c.sqlite_databases["default"],
            PathBuf::from("/cfg/data/app.db")
        );
        assert_eq!(
            c.sqlite_databases["reports"],
            PathBuf::from("/state/sqlite/my_app/reports.db")
        );
        assert_eq!(c.key_value_stores, ["cache"]);
        let llm = c.llm_worker.expect("llm");
        assert_eq!(llm.url, "http://127.0.0.1:3001");
        assert_eq!(llm.token.as_deref(), Some("t"));
    }

    #[test]
    fn refuses_backends_it_does_not_have_naming_the_field() {
        assert_eq!(
            parse_err("[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://x\""),
            "key_value_store.default.type: \"redis\" is not supported by this host (it supports stores of type \"spin\", kept in the app's Postgres)"
        );
        assert_eq!(
            parse_err("[sqlite_database.x]\ntype = \"libsql\""),
            "sqlite_database.x.type: \"libsql\" is not supported by this host (it supports SQLite files (type = \"spin\"))"
        );
        assert_eq!(
            parse_err("[sqlite_database.x]\ntype = \"spin\"\npth = \"a\""),
            "sqlite_database.x.pth: unknown field (expected one of: type, path)"
        );
        assert!(
            parse_err("[[variables_provider]]\ntype = \"vault\"")
                .starts_with("variables_provider[0].type")
        );
        assert!(
            parse_err("[sqlite_database.\"b@d\"]\ntype = \"spin\"")
                .starts_with("sqlite_database.b@d: invalid label")
        );
        assert!(parse_err("[nope]\n").starts_with("nope: not supported"));
        assert!(parse_err("[sqlite_database.x\n").starts_with("invalid TOML"));
    }

    #[test]
    fn the_projects_deployment_file_names_what_this_host_lacks() {
        // infra/runtime-config.toml is for Spin with Redis; this host says so by field.
        let text = include_str!("../../../../infra/runtime-config.toml");
        assert!(parse_err(text).starts_with("key_value_store.default.type: \"redis\""));
    }
}
