//! `tessera-manifest`: everything about a Spin manifest (`spin.toml`, version 2) that
//! needs no I/O beyond reading the file. Semantics follow Spin; differences are listed
//! in each module's docs.
//!
//! Public API, by module:
//!
//! - [`load`] / [`parse`]: `load(&Path) -> Result<AppManifest, ManifestError>` and
//!   `parse(text, base_dir)`. All validation happens here; errors name the field path
//!   (`component.kb.source: ...`, `trigger.http[2].component: no component "kbb" (...)`).
//! - [`manifest`]: the validated model: [`AppManifest`], [`Application`],
//!   [`Variable`], [`HttpTrigger`] / [`HttpRoute`], [`CronTrigger`], [`Component`]
//!   (absolute `source` path, templates, outbound hosts, KV stores, build hint).
//! - [`template`]: [`Template`], Spin's `{{ name }}` expressions.
//! - [`variables`]: [`Resolver::new(&manifest, env)`](Resolver::new) resolves
//!   `SPIN_VARIABLE_<NAME>` / defaults once; [`Resolver::resolve`] answers
//!   `spin:variables/get` with [`VarError`]; secret-ness is queryable.
//! - [`routes`]: [`Router`] (`route(path) -> Option<RouteMatch>`) and
//!   [`spin_headers`] / [`full_url`] for the `spin-*` request headers.
//! - [`outbound`]: [`AllowedHosts`] (`for_component`, `allows`, `allows_self`) and
//!   [`parse_target`] / [`postgres_targets`] for the destination a guest asks for.
//! - [`error`]: [`ManifestError`], [`VarError`].

pub mod error;
mod ids;
mod load;
pub mod manifest;
pub mod outbound;
mod reader;
pub mod routes;
pub mod template;
pub mod variables;

pub use error::{ManifestError, VarError};
pub use load::{load, parse};
pub use manifest::{
    AppManifest, Application, BuildConfig, Component, CronTrigger, FileMount, HttpRoute,
    HttpTrigger, Variable,
};
pub use outbound::{AllowedHosts, Target, parse_target, postgres_targets};
pub use routes::{RouteMatch, Router, full_url, spin_headers};
pub use template::{Template, TemplateError};
pub use variables::Resolver;
