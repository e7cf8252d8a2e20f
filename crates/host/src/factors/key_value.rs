//! `spin:key-value/key-value@3.0.0`, stored in Postgres.
//!
//! Spin's local default store is a SQLite file; Tessera keeps it in the application's
//! Postgres (table `spin_key_value`, created by the host's migrations) so every instance and
//! every host process sees the same data and nothing else needs installing. A component may
//! open only the labels listed in its `key_value_stores`, as in Spin.

use super::Factor;
use crate::app::ComponentConfig;
use crate::bindings::spin::key_value::key_value::{self as kv, Error};
use crate::state::HostState;
use anyhow::{Result, bail};
use deadpool_postgres::Pool;
use std::sync::Arc;
use wasmtime::component::{
    Accessor, FutureReader, HasData, Linker, Resource, ResourceTable, StreamReader,
};

/// Labels this host can serve.
const KNOWN_STORES: &[&str] = &["default"];

pub struct KeyValueFactor {
    pool: Pool,
}

impl KeyValueFactor {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

pub struct KeyValueState {
    pool: Pool,
    allowed: Arc<[String]>,
}

/// An open store: just its label, checked when it was opened.
pub struct StoreHandle {
    label: String,
}

impl Factor for KeyValueFactor {
    type InstanceState = KeyValueState;

    fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
        kv::add_to_linker::<HostState, KeyValue>(linker, |s| KeyValueView {
            state: &mut s.key_value,
            table: &mut s.table,
        })?;
        Ok(())
    }

    fn validate(&self, component: &ComponentConfig) -> Result<()> {
        for label in component.key_value_stores.iter() {
            if !KNOWN_STORES.contains(&label.as_str()) {
                bail!(
                    "component.{}.key_value_stores: no store named {label:?} (this host provides: {})",
                    component.id,
                    KNOWN_STORES.join(", ")
                );
            }
        }
        Ok(())
    }

    fn instance_state(&self, component: &ComponentConfig) -> KeyValueState {
        KeyValueState {
            pool: self.pool.clone(),
            allowed: component.key_value_stores.clone(),
        }
    }
}

pub struct KeyValue;

impl HasData for KeyValue {
    type Data<'a> = KeyValueView<'a>;
}

pub struct KeyValueView<'a> {
    state: &'a mut KeyValueState,
    table: &'a mut ResourceTable,
}

impl kv::Host for KeyValueView<'_> {}

impl kv::HostStore for KeyValueView<'_> {
    fn drop(&mut self, store: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

fn other(err: impl std::fmt::Display) -> Error {
    Error::Other(err.to_string())
}

/// Clones what an operation needs out of the store, so the await happens without it.
fn target<T>(
    accessor: &Accessor<T, KeyValue>,
    store: &Resource<StoreHandle>,
) -> wasmtime::Result<(Pool, String)> {
    accessor.with(|mut access| {
        let view = access.get();
        let label = view.table.get(store)?.label.clone();
        Ok((view.state.pool.clone(), label))
    })
}

impl<T> kv::HostStoreWithStore<T> for KeyValue {
    async fn open(
        accessor: &Accessor<T, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<StoreHandle>, Error>> {
        accessor.with(|mut access| {
            let view = access.get();
            if !view.state.allowed.iter().any(|l| *l == label) {
                return Ok(Err(if KNOWN_STORES.contains(&label.as_str()) {
                    Error::AccessDenied
                } else {
                    Error::NoSuchStore
                }));
            }
            Ok(Ok(view.table.push(StoreHandle { label })?))
        })
    }

    async fn get(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let (pool, label) = target(accessor, &store)?;
        Ok(async {
            let client = pool.get().await.map_err(other)?;
            let row = client
                .query_opt(
                    "SELECT value FROM spin_key_value WHERE store = $1 AND key = $2",
                    &[&label, &key],
                )
                .await
                .map_err(other)?;
            Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
        }
        .await)
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (pool, label) = target(accessor, &store)?;
        Ok(async {
            let client = pool.get().await.map_err(other)?;
            client
                .execute(
                    "INSERT INTO spin_key_value (store, key, value) VALUES ($1, $2, $3) \
                     ON CONFLICT (store, key) DO UPDATE SET value = EXCLUDED.value",
                    &[&label, &key, &value],
                )
                .await
                .map_err(other)?;
            Ok(())
        }
        .await)
    }

    async fn delete(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (pool, label) = target(accessor, &store)?;
        Ok(async {
            let client = pool.get().await.map_err(other)?;
            client
                .execute(
                    "DELETE FROM spin_key_value WHERE store = $1 AND key = $2",
                    &[&label, &key],
                )
                .await
                .map_err(other)?;
            Ok(())
        }
        .await)
    }

    async fn exists(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let (pool, label) = target(accessor, &store)?;
        Ok(async {
            let client = pool.get().await.map_err(other)?;
            let row = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM spin_key_value WHERE store = $1 AND key = $2)",
                    &[&label, &key],
                )
                .await
                .map_err(other)?;
            Ok(row.get::<_, bool>(0))
        }
        .await)
    }

    async fn get_keys(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), Error>>)> {
        let (pool, label) = target(accessor, &store)?;
        let keys: Result<Vec<String>, Error> = async {
            let client = pool.get().await.map_err(other)?;
            let rows = client
                .query(
                    "SELECT key FROM spin_key_value WHERE store = $1 ORDER BY key",
                    &[&label],
                )
                .await
                .map_err(other)?;
            Ok(rows.into_iter().map(|r| r.get::<_, String>(0)).collect())
        }
        .await;
        accessor.with(|mut access| {
            let (keys, result) = match keys {
                Ok(keys) => (keys, Ok(())),
                Err(err) => (Vec::new(), Err(err)),
            };
            let stream = StreamReader::new(&mut access, keys)?;
            let done =
                FutureReader::new(&mut access, async move { Ok::<_, wasmtime::Error>(result) })?;
            Ok((stream, done))
        })
    }
}
