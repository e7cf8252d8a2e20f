//! `wasi:keyvalue@0.2.0-draft2` (`store`, `atomics`, `batch`) as Spin 3 provides it: a
//! bucket is a key-value store label, checked against `key_value_stores`.

use super::{KeyValueView, StoreHandle, ops, view};
use crate::bindings::wasi::keyvalue::{atomics, batch, store};
use crate::state::HostState;
use anyhow::Result;
use store::{Error, KeyResponse};
use wasmtime::component::{Linker, Resource};

/// A compare-and-swap in progress: the value `key` had when it began.
pub struct Cas {
    label: String,
    key: String,
    current: Option<Vec<u8>>,
}

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    store::add_to_linker::<HostState, super::KeyValue>(linker, view)?;
    atomics::add_to_linker::<HostState, super::KeyValue>(linker, view)?;
    batch::add_to_linker::<HostState, super::KeyValue>(linker, view)?;
    Ok(())
}

impl store::Host for KeyValueView<'_> {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<StoreHandle>, Error>> {
        if !self.state.allows(&identifier) {
            return Ok(Err(Error::AccessDenied));
        }
        Ok(Ok(self.table.push(StoreHandle { label: identifier })?))
    }
}

impl store::HostBucket for KeyValueView<'_> {
    async fn get(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let (pool, label) = self.target(&bucket)?;
        Ok(ops::get(&pool, &label, &key).await.map_err(Error::Other))
    }

    async fn set(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (pool, label) = self.target(&bucket)?;
        Ok(ops::set(&pool, &label, &key, &value)
            .await
            .map_err(Error::Other))
    }

    async fn delete(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (pool, label) = self.target(&bucket)?;
        Ok(ops::delete(&pool, &label, &key).await.map_err(Error::Other))
    }

    async fn exists(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let (pool, label) = self.target(&bucket)?;
        Ok(ops::exists(&pool, &label, &key).await.map_err(Error::Other))
    }

    /// Every key at once, as Spin answers; a cursor (continuing a listing) is refused the
    /// way Spin refuses it.
    async fn list_keys(
        &mut self,
        bucket: Resource<StoreHandle>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<KeyResponse, Error>> {
        if cursor.is_some() {
            return Ok(Err(Error::Other(
                "list_keys: cursor not supported".to_string(),
            )));
        }
        let (pool, label) = self.target(&bucket)?;
        Ok(ops::keys(&pool, &label)
            .await
            .map(|keys| KeyResponse { keys, cursor: None })
            .map_err(Error::Other))
    }

    async fn drop(&mut self, bucket: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KeyValueView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let (pool, label) = self.target(&bucket)?;
        Ok(ops::increment(&pool, &label, &key, delta)
            .await
            .map_err(Error::Other))
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let cas = self.table.delete(cas)?;
        let pool = self.state.pool.clone();
        match ops::swap(&pool, &cas.label, &cas.key, cas.current.as_deref(), &value).await {
            Ok(true) => Ok(Ok(())),
            Ok(false) => {
                // Spin hands back a fresh handle at the latest value, ready to retry.
                let current = match ops::get(&pool, &cas.label, &cas.key).await {
                    Ok(v) => v,
                    Err(e) => return Ok(Err(atomics::CasError::StoreError(Error::Other(e)))),
                };
                let fresh = self.table.push(Cas { current, ..cas })?;
                Ok(Err(atomics::CasError::CasFailed(fresh)))
            }
            Err(e) => Ok(Err(atomics::CasError::StoreError(Error::Other(e)))),
        }
    }
}

impl atomics::HostCas for KeyValueView<'_> {
    async fn new(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<Cas>, Error>> {
        let (pool, label) = self.target(&bucket)?;
        let current = match ops::get(&pool, &label, &key).await {
            Ok(v) => v,
            Err(e) => return Ok(Err(Error::Other(e))),
        };
        Ok(Ok(self.table.push(Cas {
            label,
            key,
            current,
        })?))
    }

    async fn current(
        &mut self,
        cas: Resource<Cas>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        Ok(Ok(self.table.get(&cas)?.current.clone()))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for KeyValueView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<StoreHandle>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, Error>> {
        let (pool, label) = self.target(&bucket)?;
        Ok(ops::get_many(&pool, &label, &keys)
            .await
            .map_err(Error::Other))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<StoreHandle>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (pool, label) = self.target(&bucket)?;
        Ok(ops::set_many(&pool, &label, &key_values)
            .await
            .map_err(Error::Other))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<StoreHandle>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (pool, label) = self.target(&bucket)?;
        Ok(ops::delete_many(&pool, &label, &keys)
            .await
            .map_err(Error::Other))
    }
}
