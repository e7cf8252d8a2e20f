//! Capabilities the host gives components, one module each, modelled on Spin's "factors".
//!
//! A factor owns the app-wide part of a capability (a connection pool, the variable
//! resolver), checks each component's configuration at start-up, builds the small state each
//! instance carries in its `Store`, and links its WIT imports. Adding a capability means a
//! new module here, one field in [`crate::state::HostState`] and one line in
//! [`Factors::add_to_linker`].

pub mod key_value;
pub mod llm;
pub mod outbound_http;
pub mod postgres;
pub mod runtime_config;
pub mod sqlite;
pub mod unconfigured;
pub mod variables;

use crate::app::ComponentConfig;
use crate::state::HostState;
use anyhow::Result;
use std::sync::Arc;
use wasmtime::component::Linker;

pub trait Factor: Send + Sync + 'static {
    /// What one instance of a component keeps in its store for this capability.
    type InstanceState: Send + 'static;

    /// Links this capability's imports.
    fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()>;

    /// Validates a component's configuration for this capability at start-up, so a
    /// mistake stops `tessera up` instead of failing requests.
    fn validate(&self, component: &ComponentConfig) -> Result<()> {
        let _ = component;
        Ok(())
    }

    /// Builds the state for a new instance of `component`.
    fn instance_state(&self, component: &ComponentConfig) -> Self::InstanceState;
}

/// Every factor the host runs, built once per application.
pub struct Factors {
    pub variables: variables::VariablesFactor,
    pub key_value: key_value::KeyValueFactor,
    pub postgres: Arc<postgres::PostgresFactor>,
    pub llm: Arc<llm::LlmFactor>,
    pub outbound_http: Arc<outbound_http::OutboundHttpFactor>,
    pub sqlite: sqlite::SqliteFactor,
    pub unconfigured: unconfigured::UnconfiguredFactor,
}

impl Factors {
    pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
        variables::VariablesFactor::add_to_linker(linker)?;
        key_value::KeyValueFactor::add_to_linker(linker)?;
        <Arc<postgres::PostgresFactor>>::add_to_linker(linker)?;
        <Arc<llm::LlmFactor>>::add_to_linker(linker)?;
        <Arc<outbound_http::OutboundHttpFactor>>::add_to_linker(linker)?;
        sqlite::SqliteFactor::add_to_linker(linker)?;
        unconfigured::UnconfiguredFactor::add_to_linker(linker)?;
        Ok(())
    }

    pub fn validate(&self, component: &ComponentConfig) -> Result<()> {
        self.variables.validate(component)?;
        self.key_value.validate(component)?;
        self.postgres.validate(component)?;
        self.llm.validate(component)?;
        self.outbound_http.validate(component)?;
        self.sqlite.validate(component)?;
        Ok(())
    }
}
