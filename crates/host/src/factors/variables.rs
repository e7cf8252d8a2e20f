//! `spin:variables/variables@3.0.0`: component variables resolved from the manifest's
//! templates, application variables and `SPIN_VARIABLE_*` overrides.

use super::Factor;
use crate::app::ComponentConfig;
use crate::bindings::spin::variables::variables::{self, Error};
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
