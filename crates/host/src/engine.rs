//! The wasmtime engine and the compiled-component cache.
//!
//! One engine serves every component. Compiling a 20 MB component takes seconds, so each
//! compiled artifact is kept on disk keyed by the .wasm's SHA-256 and the engine's
//! compatibility hash; a restart maps it back in (copy-on-write) instead of recompiling.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; a runaway guest is noticed within one tick of its deadline,
/// and a running guest yields its worker once per tick, so the tick also bounds how long a
/// CPU-bound guest holds a worker before other tasks on it run (2 ms: hello under two
/// spinning guests ≤ 20 ms with `EVENT_INTERVAL` 8, ≤ 93 ms at 10 ms ticks).
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Limits applied to every instance.
#[derive(Debug, Clone, Copy)]
pub struct EngineLimits {
    /// Linear-memory cap per instance, in bytes.
    pub max_memory_bytes: usize,
    /// Instances the pooling allocator reserves slots for.
    pub max_instances: u32,
}

impl Default for EngineLimits {
    fn default() -> Self {
        Self {
            max_memory_bytes: 1024 << 20,
            max_instances: 256,
        }
    }
}

pub fn build_engine(limits: EngineLimits) -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_async(true);
    config.epoch_interruption(true);
    config.memory_init_cow(true);

    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(limits.max_instances);
    // A Rust component built by cargo has one or two core instances per library it
    // links; leave generous room per component.
    pool.total_core_instances(limits.max_instances * 8);
    pool.max_core_instances_per_component(64);
    pool.total_memories(limits.max_instances * 2);
    pool.max_memories_per_component(4);
    pool.total_tables(limits.max_instances * 8);
    pool.total_stacks(limits.max_instances);
    pool.max_memory_size(limits.max_memory_bytes);
    // Components that embed model weights in a data segment are large.
    pool.max_component_instance_size(16 << 20);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

    match Engine::new(&config) {
        Ok(engine) => Ok(engine),
        // The pool reserves virtual memory up front; a constrained environment (ulimit -v,
        // some containers) refuses it. Fall back to on-demand allocation and say so.
        Err(err) => {
            tracing::warn!(error = %err, "pooling allocator unavailable, using on-demand allocation");
            config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            Engine::new(&config)
                .map_err(anyhow::Error::from)
                .context("creating the wasmtime engine")
        }
    }
}

/// Advances the engine's epoch forever on a plain thread, so deadlines fire even when every
/// async worker is busy running guest code.
pub fn start_epoch_ticker(engine: &Engine) {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}

/// Loads a component from `wasm_path`, compiling it only when no cached artifact exists.
/// `key` names the file's content: its SHA-256 ([`file_digest`]) or, for a snapshot this host
/// wrote, the key it was written under. A hit never reads the .wasm: pre-initialised
/// components are hundreds of MB, and reading one whole left that much resident.
pub fn load_component(
    engine: &Engine,
    wasm_path: &Path,
    key: &[u8; 32],
    cache_dir: &Path,
) -> Result<Component> {
    let cache_path = cache_path(engine, key, cache_dir);
    if cache_path.exists() {
        // SAFETY: the file was written by `Component::serialize` from this same engine
        // configuration (the name includes the engine's compatibility hash), and the cache
        // directory belongs to this host.
        match unsafe { Component::deserialize_file(engine, &cache_path) } {
            Ok(component) => return Ok(component),
            Err(err) => tracing::warn!(path = %cache_path.display(), error = %err,
                "discarding unusable compiled-component cache entry"),
        }
    }
    let started = Instant::now();
    let component = if starts_as_core_module(wasm_path)? {
        let bytes =
            std::fs::read(wasm_path).with_context(|| format!("reading {}", wasm_path.display()))?;
        let bytes = crate::componentize::componentize(bytes)
            .with_context(|| format!("making a component of {}", wasm_path.display()))?;
        Component::new(engine, &bytes)
    } else {
        Component::from_file(engine, wasm_path)
    }
    .map_err(anyhow::Error::from)
    .with_context(|| format!("compiling component {}", wasm_path.display()))?;
    tracing::info!(path = %wasm_path.display(), elapsed_ms = started.elapsed().as_millis() as u64,
        "compiled component");
    if let Err(err) = write_cache(&component, &cache_path) {
        tracing::warn!(error = %err, "could not write compiled-component cache");
    }
    Ok(component)
}

/// Whether the file's header is a core module's (read before deciding how to load it, so a
/// component is still compiled from the file without reading it whole).
fn starts_as_core_module(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut header = [0u8; 8];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(file.read_exact(&mut header).is_ok() && crate::componentize::is_core_module(&header))
}

/// SHA-256 of a file, read in chunks.
pub fn file_digest(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hasher.finalize().into())
}

/// [`file_digest`], remembered in `<cache_dir>/digests/` beside the file's identity (device,
/// inode, size, modification time in ns): a start with unchanged components reads none of
/// them (13 files, 139 MB, were hashed on every start). A rebuilt file has a new
/// modification time, so it is hashed again; any trouble with the record just hashes.
pub fn cached_file_digest(path: &Path, cache_dir: &Path) -> std::io::Result<[u8; 32]> {
    let meta = std::fs::metadata(path)?;
    let identity = file_identity(&meta);
    let record = cache_dir.join("digests").join(hex::encode(Sha256::digest(
        path.to_string_lossy().as_bytes(),
    )));
    if let Ok(text) = std::fs::read_to_string(&record)
        && let Some((seen, digest)) = text.trim().rsplit_once(' ')
        && seen == identity
        && let Ok(bytes) = hex::decode(digest)
        && let Ok(digest) = <[u8; 32]>::try_from(bytes)
    {
        return Ok(digest);
    }
    let digest = file_digest(path)?;
    // Only when the file did not change while it was read.
    if std::fs::metadata(path).map(|m| file_identity(&m)).ok() == Some(identity.clone()) {
        let _ = write_atomically(
            &record,
            format!("{identity} {}", hex::encode(digest)).as_bytes(),
        );
    }
    Ok(digest)
}

fn file_identity(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!(
        "{}:{}:{}:{}.{:09}",
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec()
    )
}

/// Writes via a temporary file and a rename, so a concurrent reader never sees half a file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Where the compiled form of the .wasm whose content `key` names is cached.
pub(crate) fn cache_path(engine: &Engine, key: &[u8; 32], cache_dir: &Path) -> PathBuf {
    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let key = hex::encode(key);
    cache_dir.join(format!("{key}-{:016x}.cwasm", engine_hash.finish()))
}

/// Serializes `component` into the cache (see [`write_atomically`]).
fn write_cache(component: &Component, path: &Path) -> Result<()> {
    let bytes = component.serialize()?;
    write_atomically(path, &bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_digest_follows_the_file() {
        let dir = std::env::temp_dir().join(format!("tessera-digest-{}", uuid::Uuid::new_v4()));
        let (file, cache) = (dir.join("c.wasm"), dir.join("cache"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&file, b"first").unwrap();
        let first = cached_file_digest(&file, &cache).unwrap();
        assert_eq!(first, file_digest(&file).unwrap());
        // Remembered: the same answer from the record.
        assert_eq!(cached_file_digest(&file, &cache).unwrap(), first);
        assert_eq!(std::fs::read_dir(cache.join("digests")).unwrap().count(), 1);

        // A rebuilt file (new content, so a new size and identity) is hashed again.
        std::fs::write(&file, b"second build").unwrap();
        let second = cached_file_digest(&file, &cache).unwrap();
        assert_eq!(second, file_digest(&file).unwrap());
        assert_ne!(second, first);

        // A damaged record is ignored, not believed.
        for entry in std::fs::read_dir(cache.join("digests")).unwrap() {
            std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
        }
        assert_eq!(cached_file_digest(&file, &cache).unwrap(), second);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
