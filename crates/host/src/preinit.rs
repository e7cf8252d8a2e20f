//! Pre-initialisation: a component that exports `wizer-initialize` (world
//! `tessera:platform/preinit`) has that function run once, in an instance with its normal
//! imports and `files` mounts, and the instance's memory snapshotted into a new component
//! with wasmtime's Wizer. Every later instance starts from the snapshot, copy-on-write, so
//! work such as loading an embedding model (0.5 s in wasm) is not repeated each time Spin's
//! instance rules recycle an instance. The snapshot is cached in the state directory, keyed
//! by the component's hash and by the files it could have read.

use crate::state::HostState;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Instant;
use wasmtime::Store;
use wasmtime::component::{Component, Instance, Lift, Linker, WasmList};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

/// The export Wizer calls (its default name).
pub const INIT_EXPORT: &str = "wizer-initialize";
/// Bumped when what goes into a snapshot changes, so old cache entries are not reused.
const SNAPSHOT_FORMAT: &str = "wizer-48.0.8-v2";

/// Whether `component` asks to be pre-initialised.
pub fn wants_preinit(component: &Component) -> bool {
    component.get_export(None, INIT_EXPORT).is_some()
}

/// The pre-initialised form of `source` (whose SHA-256 is `source_digest`), from the cache or
/// made now, and the key it is cached under (its compiled form is cached under the same key,
/// so a start-up never hashes the snapshot itself). `store` builds a store with the
/// component's usual state (WASI with its `files` mounts, the factors).
pub async fn snapshot(
    engine: &wasmtime::Engine,
    linker: &Linker<HostState>,
    id: &str,
    source: &Path,
    source_digest: &[u8; 32],
    mounts: &[(PathBuf, String)],
    cache_dir: &Path,
    compiled_cache_dir: &Path,
    store: impl FnOnce() -> Store<HostState>,
) -> Result<(PathBuf, [u8; 32])> {
    let key = cache_key(source_digest, mounts);
    let path = cache_dir.join(format!("{id}-{}.wasm", hex::encode(key)));
    if path.is_file() {
        return Ok((path, key));
    }
    let wasm = std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
    let wasm = wasm.as_slice();
    let started = Instant::now();
    let mut wizer = Wizer::new();
    // Removing the export leaves the component's lift of it dangling (wizer 48 rewrites the
    // root export, not the core alias); keeping it costs nothing, a second call is a no-op.
    wizer.keep_init_func(true);
    let (cx, instrumented) = wizer
        .instrument_component(wasm)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("component {id:?}: preparing it for pre-initialisation"))?;
    let component = Component::new(engine, &instrumented)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("component {id:?}: compiling it for pre-initialisation"))?;
    let mut store = store();
    // Wizer reads each memory back as one list: allow more than the default 128 MiB.
    store.set_hostcall_fuel(usize::MAX);
    let instance = linker
        .instantiate_async(&mut store, &component)
        .await
        .map_err(anyhow::Error::from)
        .with_context(|| format!("component {id:?}: instantiating it for pre-initialisation"))?;
    let init = instance
        .get_typed_func::<(), ()>(&mut store, INIT_EXPORT)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("component {id:?}: `{INIT_EXPORT}` must have type func()"))?;
    init.call_async(&mut store, ())
        .await
        .map_err(anyhow::Error::from)
        .with_context(|| format!("component {id:?}: `{INIT_EXPORT}` trapped"))?;
    let snapshot = wizer
        .snapshot_component(
            &cx,
            &mut Snapshotting {
                store: &mut store,
                instance,
            },
        )
        .await
        .map_err(anyhow::Error::from)
        .with_context(|| format!("component {id:?}: snapshotting its memory"))?;
    crate::engine::write_atomically(&path, &snapshot)
        .with_context(|| format!("writing {}", path.display()))?;
    prune_older(engine, id, &path, compiled_cache_dir);
    tracing::info!(
        component = id,
        elapsed_ms = started.elapsed().as_millis() as u64,
        bytes = snapshot.len(),
        "pre-initialised component"
    );
    Ok((path, key))
}

/// Snapshots are hundreds of MB: keep only the newest per component, with its compiled form.
fn prune_older(engine: &wasmtime::Engine, id: &str, keep: &Path, compiled_cache_dir: &Path) {
    let Some(dir) = keep.parent() else { return };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{id}-");
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(hex_key) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".wasm"))
        else {
            continue;
        };
        // `<id>-<key>.wasm` only: "kb-tools-<key>.wasm" belongs to another component.
        let mut key = [0u8; 32];
        if path == keep || hex::decode_to_slice(hex_key, &mut key).is_err() {
            continue;
        }
        let _ = std::fs::remove_file(crate::engine::cache_path(engine, &key, compiled_cache_dir));
        let _ = std::fs::remove_file(&path);
        tracing::info!(component = id, path = %path.display(), "removed an older snapshot");
    }
}

/// SHA-256 over the component and, for each mounted directory, the names, sizes and
/// modification times of its files (a new model means a new snapshot).
fn cache_key(wasm_digest: &[u8; 32], mounts: &[(PathBuf, String)]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(SNAPSHOT_FORMAT.as_bytes());
    h.update(wasm_digest);
    for (dir, guest) in mounts {
        h.update(guest.as_bytes());
        let mut files = Vec::new();
        list_files(dir, &mut files);
        files.sort();
        for (name, len, modified) in files {
            h.update(format!("{name}\0{len}\0{modified}\n").as_bytes());
        }
    }
    h.finalize().into()
}

fn list_files(dir: &Path, out: &mut Vec<(String, u64, u128)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            list_files(&path, out);
        } else {
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            out.push((path.to_string_lossy().into_owned(), meta.len(), modified));
        }
    }
}

/// Wizer reads an instance's globals and memories through functions its instrumentation
/// exports; this calls them on our store.
struct Snapshotting<'a> {
    store: &'a mut Store<HostState>,
    instance: Instance,
}

impl Snapshotting<'_> {
    async fn call<R: Lift + Send + Sync + 'static>(&mut self, instance: &str, func: &str) -> R {
        let (_, exported) = self
            .instance
            .get_export(&mut *self.store, None, instance)
            .expect("wizer's instrumentation exports this instance");
        let (_, func) = self
            .instance
            .get_export(&mut *self.store, Some(&exported), func)
            .expect("wizer's instrumentation exports this function");
        let func = self
            .instance
            .get_typed_func::<(), (R,)>(&mut *self.store, func)
            .expect("wizer's instrumentation gives this type");
        func.call_async(&mut *self.store, ())
            .await
            .expect("reading instrumented state")
            .0
    }
}

impl ComponentInstanceState for Snapshotting<'_> {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        let list: WasmList<u8> = self.call(instance, func).await;
        contents(list.as_le_slice(&*self.store));
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func).await
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func).await
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call::<f32>(instance, func).await.to_bits()
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call::<f64>(instance, func).await.to_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_removes_older_snapshots_of_this_component_and_their_compiled_forms() {
        let root = std::env::temp_dir().join(format!("tessera-prune-{}", uuid::Uuid::new_v4()));
        let (snapshots, compiled) = (root.join("preinit"), root.join("components"));
        std::fs::create_dir_all(&snapshots).unwrap();
        std::fs::create_dir_all(&compiled).unwrap();
        let engine = wasmtime::Engine::default();
        let snapshot = |id: &str, key: [u8; 32]| {
            let path = snapshots.join(format!("{id}-{}.wasm", hex::encode(key)));
            std::fs::write(&path, b"").unwrap();
            let cwasm = crate::engine::cache_path(&engine, &key, &compiled);
            std::fs::write(&cwasm, b"").unwrap();
            (path, cwasm)
        };
        let newest = snapshot("kb", [1; 32]);
        let older = snapshot("kb", [2; 32]);
        let other_component = snapshot("kb-tools", [3; 32]);

        prune_older(&engine, "kb", &newest.0, &compiled);

        assert!(newest.0.exists() && newest.1.exists());
        assert!(!older.0.exists() && !older.1.exists());
        assert!(other_component.0.exists() && other_component.1.exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
