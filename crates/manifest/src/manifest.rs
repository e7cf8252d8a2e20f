//! The validated application model `load`/`parse` return. Everything in here has passed
//! the load-time checks: names, references between triggers, components and variables,
//! templates, route syntax and uniqueness, and literal `allowed_outbound_hosts` entries.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::template::Template;

/// A loaded `spin.toml` (manifest version 2).
#[derive(Clone, Debug)]
pub struct AppManifest {
    /// Directory the manifest lives in; relative paths in it are relative to this.
    pub base_dir: PathBuf,
    /// `[application]`.
    pub application: Application,
    /// `[variables]`, by name.
    pub variables: BTreeMap<String, Variable>,
    /// `[[trigger.http]]`, in manifest order.
    pub http_triggers: Vec<HttpTrigger>,
    /// `[[trigger.cron]]`, in manifest order.
    pub cron_triggers: Vec<CronTrigger>,
    /// `[component.<id>]`, by id.
    pub components: BTreeMap<String, Component>,
}

impl AppManifest {
    /// The component with this id.
    pub fn component(&self, id: &str) -> Option<&Component> {
        self.components.get(id)
    }
}

/// `[application]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Application {
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    pub authors: Vec<String>,
    /// `[application.trigger.http] base`, normalised to start with `/`; default `/`.
    pub http_base: String,
}

/// One `[variables]` entry. Exactly one of `default` / `required` is set (Spin's rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    pub default: Option<String>,
    pub required: bool,
    /// Never log the value.
    pub secret: bool,
    pub description: Option<String>,
}

/// One `[[trigger.http]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTrigger {
    /// Position in the `trigger.http` array (for error messages: `trigger.http[N]`).
    pub index: usize,
    /// Optional `id`.
    pub id: Option<String>,
    /// The component id it invokes (validated to exist).
    pub component: String,
    pub route: HttpRoute,
}

impl HttpTrigger {
    /// `trigger.http[N]`, the prefix of every error about this trigger.
    pub fn field(&self) -> String {
        format!("trigger.http[{}]", self.index)
    }
}

/// `route = "/x"` or `route = { private = true }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpRoute {
    /// A public route, as written (not yet joined with the base).
    Path(String),
    /// Reachable only in-process (service chaining, `self` requests), never from outside.
    Private,
}

/// One `[[trigger.cron]]` (the spin-trigger-cron plugin's schema).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronTrigger {
    /// Position in the `trigger.cron` array.
    pub index: usize,
    pub id: Option<String>,
    pub component: String,
    /// Passed through unparsed; the host owns the cron dialect.
    pub cron_expression: String,
}

/// One `[component.<id>]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    pub id: String,
    /// Absolute path of the Wasm file (`source` joined to the manifest directory). Not
    /// checked for existence: the host does that and can suggest the build command.
    pub source: PathBuf,
    pub description: Option<String>,
    /// Component variables: name -> template over application variables.
    pub variables: BTreeMap<String, Template>,
    /// Environment variables for the guest, literal (Spin does not template these).
    pub environment: BTreeMap<String, String>,
    /// `allowed_outbound_hosts` as written; literal entries are already validated, templated
    /// ones are checked when resolved (`AllowedHosts::for_component`).
    pub allowed_outbound_hosts: Vec<String>,
    /// Key-value store labels the component may open.
    pub key_value_stores: Vec<String>,
    /// SQLite database labels the component may open (`sqlite_databases`).
    pub sqlite_databases: Vec<String>,
    /// AI model names the component may use (`ai_models`).
    pub ai_models: Vec<String>,
    /// `files` mounts, as written (relative to `base_dir`).
    pub files: Vec<FileMount>,
    /// `exclude_files` globs, as written.
    pub exclude_files: Vec<String>,
    /// `[component.<id>.build]`, kept only so the host can say how to build a missing source.
    pub build: Option<BuildConfig>,
    /// The build commands as one shell line (`a && b`), for "run this to build it" hints.
    pub build_command: Option<String>,
}

/// A `files` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileMount {
    /// `"assets/**/*.png"`: a glob relative to the manifest directory.
    Pattern(String),
    /// `{ source = "dir", destination = "/" }`.
    Placement { source: String, destination: String },
}

/// `[component.<id>.build]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildConfig {
    /// `command`, one string or a list, run in order.
    pub commands: Vec<String>,
    /// `workdir`, relative to the manifest directory.
    pub workdir: Option<String>,
    /// `watch` globs (unused by Tessera, kept for completeness).
    pub watch: Vec<String>,
}
