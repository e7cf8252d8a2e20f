//! `spin:variables/variables@3.0.0`, `fermyon:spin/variables@2.0.0` and
//! `wasi:config/store@0.2.0-draft-2024-09-27`: component variables resolved from the
//! manifest's templates, application variables and `SPIN_VARIABLE_*` overrides.

use super::Factor;
use crate::app::ComponentConfig;
use crate::bindings::fermyon::spin::variables as variables_v2;
use crate::bindings::spin::variables::variables::{self, Error};
use crate::bindings::wasi::config::store as wasi_config;
use crate::state::HostState;
use anyhow::Result;
use std::sync::Arc;
use tessera_manifest::Resolver;
use wasmtime::component::{Accessor, HasData, Linker};

pub struct VariablesFactor {
    resolver: Arc<Resolver>,
}

impl VariablesFactor {
    pub fn new(resolver: Arc<Resolver>) -> Self {
        Self { resolver }
    }
}

pub struct VariablesState {
    resolver: Arc<Resolver>,
    component: Arc<str>,
}

impl Factor for VariablesFactor {
    type InstanceState = VariablesState;

    fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
        variables::add_to_linker::<HostState, Variables>(linker, |s| &mut s.variables)?;
        variables_v2::add_to_linker::<HostState, Variables>(linker, |s| &mut s.variables)?;
        wasi_config::add_to_linker::<HostState, Variables>(linker, |s| &mut s.variables)?;
        Ok(())
    }

    fn instance_state(&self, component: &ComponentConfig) -> VariablesState {
        VariablesState {
            resolver: self.resolver.clone(),
            component: component.id.clone(),
        }
    }
}

pub struct Variables;

impl HasData for Variables {
    type Data<'a> = &'a mut VariablesState;
}

impl variables::Host for VariablesState {}

impl<T> variables::HostWithStore<T> for Variables {
    async fn get(
        accessor: &Accessor<T, Self>,
        name: String,
    ) -> wasmtime::Result<Result<String, Error>> {
        Ok(accessor.with(|mut access| {
            let state = access.get();
            state
                .resolver
                .resolve(&state.component, &name)
                .map_err(|err| match err {
                    tessera_manifest::VarError::InvalidName(n) => Error::InvalidName(n),
                    tessera_manifest::VarError::Undefined(n) => Error::Undefined(n),
                })
        }))
    }
}

impl VariablesState {
    fn resolve(&self, name: &str) -> Result<String, tessera_manifest::VarError> {
        self.resolver.resolve(&self.component, name)
    }
}

impl variables_v2::Host for VariablesState {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, variables_v2::Error>> {
        Ok(self.resolve(&name).map_err(|err| match err {
            tessera_manifest::VarError::InvalidName(n) => variables_v2::Error::InvalidName(n),
            tessera_manifest::VarError::Undefined(n) => variables_v2::Error::Undefined(n),
        }))
    }
}

/// As Spin maps it: an undefined or invalid key is "not found" (`none`), not an error.
impl wasi_config::Host for VariablesState {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, wasi_config::Error>> {
        Ok(Ok(self.resolve(&key).ok()))
    }

    fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, wasi_config::Error>> {
        Ok(Ok(self.resolver.resolve_all(&self.component)))
    }
}
