//! Reading `spin.toml`: TOML syntax, manifest version, then each section (one file per
//! section), then the cross-references between them (`validate.rs`). Field names and
//! rules are Spin's manifest v2 schema (`spin-manifest/src/schema/v2.rs`).

mod application;
mod component;
mod trigger;
mod validate;
mod variables;

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::error::ManifestError;
use crate::manifest::AppManifest;
use crate::reader::TableReader;

/// Reads and validates a manifest file. Relative paths inside it are resolved against
/// the file's directory. Component sources are not checked for existence.
pub fn load(path: &Path) -> Result<AppManifest, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let path = absolute(path);
    let base_dir = match path.parent() {
        Some(dir) => dir.to_path_buf(),
        None => PathBuf::from("/"),
    };
    parse(&text, &base_dir)
}

/// Parses and validates manifest text; `base_dir` plays the role of the manifest's
/// directory (made absolute against the current directory if relative).
pub fn parse(text: &str, base_dir: &Path) -> Result<AppManifest, ManifestError> {
    let table: Table = text.parse().map_err(|e: toml::de::Error| {
        ManifestError::Syntax(e.to_string().trim_end().to_string())
    })?;
    check_version(&table)?;
    let base_dir = absolute(base_dir);

    let mut top = TableReader::new("", &table);
    top.ignore("spin_manifest_version");
    let application = match top.table_of("application")? {
        Some(app) => application::read(app)?,
        None => {
            return Err(ManifestError::Missing {
                field: "application".into(),
            });
        }
    };
    let variables = match top.table_of("variables")? {
        Some(vars) => variables::read(vars)?,
        None => Default::default(),
    };
    let components = match top.table_of("component")? {
        Some(components) => component::read_all(components, &base_dir)?,
        None => Default::default(),
    };
    let (http_triggers, cron_triggers) = match top.table_of("trigger")? {
        Some(triggers) => trigger::read_all(triggers)?,
        None => Default::default(),
    };
    top.finish()?;

    let manifest = AppManifest {
        base_dir,
        application,
        variables,
        http_triggers,
        cron_triggers,
        components,
    };
    validate::cross_references(&manifest)?;
    Ok(manifest)
}

/// Only manifest version 2 exists for us; say so clearly for v1 files (which use
/// `spin_manifest_version = "1"` or the older `spin_version = "1"`).
fn check_version(table: &Table) -> Result<(), ManifestError> {
    match table.get("spin_manifest_version") {
        Some(Value::Integer(2)) => Ok(()),
        Some(other) => Err(ManifestError::Version {
            found: other.to_string(),
        }),
        None => match table.get("spin_version") {
            Some(v1) => Err(ManifestError::Version {
                found: format!("spin_version = {v1}"),
            }),
            None => Err(ManifestError::Missing {
                field: "spin_manifest_version".into(),
            }),
        },
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests;
