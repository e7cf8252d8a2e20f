//! Tessera's host: runs a Spin application (spin.toml + .wasm components) on wasmtime with
//! Spin's semantics, for local development, tests and single-machine deployments.
//!
//! Map: [`app`] loads the manifest and components; [`factors`] are the capabilities given to
//! components (one module each); [`triggers`] drive components from HTTP and cron;
//! [`instances`] applies Spin's instance reuse rules and deadlines; [`engine`] configures
//! wasmtime and caches compiled components; [`migrate`] applies SQL migrations; [`serve`]
//! wires it all together for `tessera up`.

pub mod admission;
pub mod app;
pub mod bindings;
pub mod check;
pub mod componentize;
pub mod engine;
pub mod error_watch;
pub mod errors;
pub mod factors;
pub mod instances;
pub mod metrics;
pub mod migrate;
pub mod preinit;
pub mod serve;
pub mod state;
pub mod trace;
pub mod triggers;
pub mod wasi_2023_10_18;
