//! Typed errors. Every manifest error names the exact field path it is about
//! (`component.kb.source`, `trigger.http[2].component`) so a user can find the line to fix
//! without reading our source.

use std::path::PathBuf;

use crate::template::TemplateError;

/// Anything wrong with a manifest, found at load time or when the host prepares it
/// (required variables, templated outbound hosts).
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest file could not be read.
    #[error("cannot read manifest {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML (the message carries line and column).
    #[error("invalid TOML: {0}")]
    Syntax(String),
    /// `spin_manifest_version` is not `2`.
    #[error(
        "spin_manifest_version: expected 2, found {found} (only Spin manifest version 2 is supported)"
    )]
    Version { found: String },
    /// A required field is absent.
    #[error("{field}: missing required field")]
    Missing { field: String },
    /// A field has the wrong TOML type.
    #[error("{field}: expected {expected}, found {found}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    /// A key Spin's schema does not know (a typo, usually).
    #[error("{field}: unknown field (expected one of: {})", allowed.join(", "))]
    UnknownField { field: String, allowed: Vec<String> },
    /// A value with the right type but an invalid shape (names, routes, paths).
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// Valid Spin, but a feature Tessera does not implement.
    #[error("{field}: not supported by Tessera: {reason}")]
    Unsupported { field: String, reason: String },
    /// A trigger names a component that is not defined.
    #[error(
        "{field}: no component {component:?} (components: {})",
        list(available)
    )]
    UnknownComponent {
        field: String,
        component: String,
        available: Vec<String>,
    },
    /// Two public HTTP routes would match exactly the same requests.
    #[error(
        "{field}: route {route:?} duplicates {other_field} (route {other_route:?}, component {other_component:?})"
    )]
    DuplicateRoute {
        field: String,
        route: String,
        other_field: String,
        other_route: String,
        other_component: String,
    },
    /// A `{{ ... }}` template is malformed.
    #[error("{field}: invalid template {template:?}: {source}")]
    Template {
        field: String,
        template: String,
        #[source]
        source: TemplateError,
    },
    /// A template references an application variable that `[variables]` does not define.
    #[error(
        "{field}: references undefined application variable {variable:?} (variables: {})",
        list(defined)
    )]
    UndefinedVariable {
        field: String,
        variable: String,
        defined: Vec<String>,
    },
    /// A `required = true` variable has no value in the environment.
    #[error("variable {name:?} is required but not set (set {env})")]
    RequiredVariable { name: String, env: String },
    /// An `allowed_outbound_hosts` entry does not parse. For templated entries `entry` is
    /// the template as written, never the resolved value, because it may hold a secret.
    #[error("{field}: invalid allowed outbound host {entry:?}: {reason}")]
    AllowedHost {
        field: String,
        entry: String,
        reason: String,
    },
}

/// What `spin:variables` guests see; mirrors the two Spin `variables@3` error cases a
/// lookup can produce (the host maps them 1:1 onto the WIT `error` variants).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarError {
    /// The requested name is not a valid variable name (Spin's `Key` rules).
    #[error("invalid variable name: {0}")]
    InvalidName(String),
    /// The component has no variable of that name.
    #[error("undefined variable: {0}")]
    Undefined(String),
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}
