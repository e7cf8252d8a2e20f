//! `spin:key-value/key-value@3.0.0`, `fermyon:spin/key-value@2.0.0` (spin2.rs) and
//! `wasi:keyvalue@0.2.0-draft2` (wasi.rs), one store behind all three, in Postgres.
//!
//! Spin's local default store is a SQLite file; Tessera keeps it in the application's
//! Postgres (table `spin_key_value`, created by the host's migrations) so every instance and
//! every host process sees the same data and nothing else needs installing. A component may
//! open only the labels listed in its `key_value_stores`, as in Spin; labels other than
//! `default` are declared in the runtime config file (`[key_value_store.<label>]`).

mod spin2;
mod wasi;

pub use wasi::Cas;

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

pub struct KeyValueFactor {
    pool: Pool,
    /// Labels this host can serve: `default` and those of the runtime config file.
    known: Arc<[String]>,
}

impl KeyValueFactor {
    pub fn new(pool: Pool, extra_labels: &[String]) -> Self {
        let mut known = vec!["default".to_string()];
        known.extend(extra_labels.iter().filter(|l| *l != "default").cloned());
        Self {
            pool,
            known: known.into(),
        }
    }
}

pub struct KeyValueState {
    pool: Pool,
    allowed: Arc<[String]>,
}

impl KeyValueState {
    /// As Spin's key-value factor: a label the component was not granted is access-denied,
    /// whether or not the app defines it (start-up already refused grants of unknown stores).
    fn allows(&self, label: &str) -> bool {
        self.allowed.iter().any(|l| l == label)
    }
}

/// An open store: just its label, checked when it was opened.
pub struct StoreHandle {
    label: String,
}

impl Factor for KeyValueFactor {
    type InstanceState = KeyValueState;

    fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
        kv::add_to_linker::<HostState, KeyValue>(linker, view)?;
        spin2::add_to_linker(linker)?;
        wasi::add_to_linker(linker)?;
        Ok(())
    }

    fn validate(&self, component: &ComponentConfig) -> Result<()> {
        for label in component.key_value_stores.iter() {
            if !self.known.contains(label) {
                bail!(
                    "component.{}.key_value_stores: no store named {label:?} (this host provides: {}; \
                     declare others in the runtime config file as [key_value_store.{label}])",
                    component.id,
                    self.known.join(", ")
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

fn view(s: &mut HostState) -> KeyValueView<'_> {
    KeyValueView {
        state: &mut s.key_value,
        table: &mut s.table,
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
            if !view.state.allows(&label) {
                return Ok(Err(Error::AccessDenied));
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
        Ok(ops::get(&pool, &label, &key).await.map_err(Error::Other))
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (pool, label) = target(accessor, &store)?;
        Ok(ops::set(&pool, &label, &key, &value)
            .await
            .map_err(Error::Other))
    }

    async fn delete(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (pool, label) = target(accessor, &store)?;
        Ok(ops::delete(&pool, &label, &key).await.map_err(Error::Other))
    }

    async fn exists(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let (pool, label) = target(accessor, &store)?;
        Ok(ops::exists(&pool, &label, &key).await.map_err(Error::Other))
    }

    async fn get_keys(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), Error>>)> {
        let (pool, label) = target(accessor, &store)?;
        let keys = ops::keys(&pool, &label).await.map_err(Error::Other);
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

/// The store's operations, shared by every interface version; errors are the message an
/// interface's `other(string)` carries.
mod ops {
    use deadpool_postgres::Pool;

    fn text(err: impl std::fmt::Display) -> String {
        err.to_string()
    }

    pub async fn get(pool: &Pool, label: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        let client = pool.get().await.map_err(text)?;
        let row = client
            .query_opt(
                "SELECT value FROM spin_key_value WHERE store = $1 AND key = $2",
                &[&label, &key],
            )
            .await
            .map_err(text)?;
        Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
    }

    pub async fn set(pool: &Pool, label: &str, key: &str, value: &[u8]) -> Result<(), String> {
        let client = pool.get().await.map_err(text)?;
        client
            .execute(
                "INSERT INTO spin_key_value (store, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (store, key) DO UPDATE SET value = EXCLUDED.value",
                &[&label, &key, &value],
            )
            .await
            .map_err(text)?;
        Ok(())
    }

    pub async fn delete(pool: &Pool, label: &str, key: &str) -> Result<(), String> {
        let client = pool.get().await.map_err(text)?;
        client
            .execute(
                "DELETE FROM spin_key_value WHERE store = $1 AND key = $2",
                &[&label, &key],
            )
            .await
            .map_err(text)?;
        Ok(())
    }

    pub async fn exists(pool: &Pool, label: &str, key: &str) -> Result<bool, String> {
        let client = pool.get().await.map_err(text)?;
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM spin_key_value WHERE store = $1 AND key = $2)",
                &[&label, &key],
            )
            .await
            .map_err(text)?;
        Ok(row.get::<_, bool>(0))
    }

    pub async fn keys(pool: &Pool, label: &str) -> Result<Vec<String>, String> {
        let client = pool.get().await.map_err(text)?;
        let rows = client
            .query(
                "SELECT key FROM spin_key_value WHERE store = $1 ORDER BY key",
                &[&label],
            )
            .await
            .map_err(text)?;
        Ok(rows.into_iter().map(|r| r.get::<_, String>(0)).collect())
    }

    /// Adds `delta` to the decimal integer stored at `key` (0 when absent) in one statement,
    /// so concurrent increments never lose an update. The value is kept as ASCII decimal,
    /// as Redis's INCRBY keeps it, so a `get` reads "5".
    pub async fn increment(pool: &Pool, label: &str, key: &str, delta: i64) -> Result<i64, String> {
        let client = pool.get().await.map_err(text)?;
        let row = client
            .query_one(
                "INSERT INTO spin_key_value (store, key, value) \
                 VALUES ($1, $2, convert_to($3::bigint::text, 'UTF8')) \
                 ON CONFLICT (store, key) DO UPDATE SET value = convert_to( \
                   (convert_from(spin_key_value.value, 'UTF8')::bigint + $3::bigint)::text, 'UTF8') \
                 RETURNING convert_from(value, 'UTF8')::bigint",
                &[&label, &key, &delta],
            )
            .await
            .map_err(|e| match e.as_db_error() {
                Some(db) => format!("cannot increment {key:?}: {}", db.message()),
                None => e.to_string(),
            })?;
        Ok(row.get::<_, i64>(0))
    }

    /// Replaces the value at `key` only if it is still `expected` (`None`: still absent).
    /// Returns whether it was replaced.
    pub async fn swap(
        pool: &Pool,
        label: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, String> {
        let client = pool.get().await.map_err(text)?;
        let changed = match expected {
            Some(old) => client
                .execute(
                    "UPDATE spin_key_value SET value = $4 \
                     WHERE store = $1 AND key = $2 AND value = $3",
                    &[&label, &key, &old, &value],
                )
                .await
                .map_err(text)?,
            None => client
                .execute(
                    "INSERT INTO spin_key_value (store, key, value) VALUES ($1, $2, $3) \
                     ON CONFLICT (store, key) DO NOTHING",
                    &[&label, &key, &value],
                )
                .await
                .map_err(text)?,
        };
        Ok(changed == 1)
    }

    pub async fn get_many(
        pool: &Pool,
        label: &str,
        keys: &[String],
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, String> {
        let client = pool.get().await.map_err(text)?;
        let rows = client
            .query(
                "SELECT key, value FROM spin_key_value WHERE store = $1 AND key = ANY($2)",
                &[&label, &keys],
            )
            .await
            .map_err(text)?;
        let found: std::collections::HashMap<String, Vec<u8>> = rows
            .into_iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, Vec<u8>>(1)))
            .collect();
        // Spin answers every key asked for, in order, `none` where it is absent.
        Ok(keys
            .iter()
            .map(|k| (k.clone(), found.get(k).cloned()))
            .collect())
    }

    pub async fn set_many(
        pool: &Pool,
        label: &str,
        entries: &[(String, Vec<u8>)],
    ) -> Result<(), String> {
        let mut client = pool.get().await.map_err(text)?;
        let tx = client.transaction().await.map_err(text)?;
        for (key, value) in entries {
            tx.execute(
                "INSERT INTO spin_key_value (store, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (store, key) DO UPDATE SET value = EXCLUDED.value",
                &[&label, key, value],
            )
            .await
            .map_err(text)?;
        }
        tx.commit().await.map_err(text)
    }

    pub async fn delete_many(pool: &Pool, label: &str, keys: &[String]) -> Result<(), String> {
        let client = pool.get().await.map_err(text)?;
        client
            .execute(
                "DELETE FROM spin_key_value WHERE store = $1 AND key = ANY($2)",
                &[&label, &keys],
            )
            .await
            .map_err(text)?;
        Ok(())
    }
}
