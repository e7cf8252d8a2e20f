//! `fermyon:spin/key-value@2.0.0` (Spin 2's SDKs): the same stores as v3, with v2's
//! synchronous functions and error variants.

use super::{KeyValueView, StoreHandle, ops, view};
use crate::bindings::fermyon::spin::key_value::{self as v2, Error};
use crate::state::HostState;
use anyhow::Result;
use deadpool_postgres::Pool;
use wasmtime::component::{Linker, Resource};

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    v2::add_to_linker::<HostState, super::KeyValue>(linker, view)?;
    Ok(())
}

impl KeyValueView<'_> {
    pub(super) fn target(&self, store: &Resource<StoreHandle>) -> wasmtime::Result<(Pool, String)> {
        Ok((
            self.state.pool.clone(),
            self.table.get(store)?.label.clone(),
        ))
    }
}

impl v2::Host for KeyValueView<'_> {}

impl v2::HostStore for KeyValueView<'_> {
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<StoreHandle>, Error>> {
        if !self.state.allows(&label) {
            return Ok(Err(Error::AccessDenied));
        }
        Ok(Ok(self.table.push(StoreHandle { label })?))
    }

    async fn get(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let (pool, label) = self.target(&store)?;
        Ok(ops::get(&pool, &label, &key).await.map_err(Error::Other))
    }

    async fn set(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (pool, label) = self.target(&store)?;
        Ok(ops::set(&pool, &label, &key, &value)
            .await
            .map_err(Error::Other))
    }

    async fn delete(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (pool, label) = self.target(&store)?;
        Ok(ops::delete(&pool, &label, &key).await.map_err(Error::Other))
    }

    async fn exists(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let (pool, label) = self.target(&store)?;
        Ok(ops::exists(&pool, &label, &key).await.map_err(Error::Other))
    }

    async fn get_keys(
        &mut self,
        store: Resource<StoreHandle>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let (pool, label) = self.target(&store)?;
        Ok(ops::keys(&pool, &label).await.map_err(Error::Other))
    }

    async fn drop(&mut self, store: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}
