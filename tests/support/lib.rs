//! Support for Tessera's end-to-end tests: they start the real `tessera` binary on real
//! `.wasm` files against a real PostgreSQL (with pgvector).
//!
//! Environment (set by `cargo xtask test`):
//! - `TESSERA_TEST_DATABASE_URL`: a PostgreSQL URL whose role may create databases; every
//!   test gets a fresh database `t_<random>` ([`TestDb`]), dropped afterwards.
//! - `TESSERA_BIN`: the host binary (default `$TESSERA_ROOT/target/release/tessera`).
//! - `TESSERA_ROOT`: the repository root (default: the parent of this crate).
//!
//! Components must be built first:
//! `cargo build --release --target wasm32-wasip2 -p <guest> …` (`cargo xtask setup` does it).

mod checks;
mod db;
mod host;
pub mod http;
/// The picker's test manifest and generated market data.
pub mod market;
pub mod otlp;
pub mod provider_double;
mod server;
/// Embedding vectors in JSON answers: cosine similarity, parsing.
pub mod vectors;
mod worker;

pub use checks::Checks;
pub use db::TestDb;
pub use host::{Exited, HostCommand, TestHost};
pub use http::Response;
pub use provider_double::{ProviderDouble, Recorded, Reply};
pub use server::TestServer;
pub use worker::{TestWorker, WorkerCommand, model_dir, worker_bin};

use std::path::PathBuf;

/// The repository root.
pub fn root() -> PathBuf {
    match std::env::var_os("TESSERA_ROOT") {
        Some(root) => PathBuf::from(root),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the tests crate lives inside the repository")
            .to_path_buf(),
    }
}

/// The `tessera` binary under test.
pub fn tessera_bin() -> PathBuf {
    let bin = match std::env::var_os("TESSERA_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => root().join("target/release/tessera"),
    };
    assert!(
        bin.is_file(),
        "the host binary {} does not exist: build it with `cargo build --release -p tessera-host` \
         or run the tests with `cargo xtask test`",
        bin.display()
    );
    bin
}

/// The built component of crate `name` (`target/wasm32-wasip2/release/<name>.wasm`, dashes
/// become underscores). Panics with the build command when it is missing.
pub fn wasm(name: &str) -> PathBuf {
    let file = format!("{}.wasm", name.replace('-', "_"));
    // Components built into the same target directory as the host under test come first
    // (CARGO_TARGET_DIR elsewhere than `target/`), then the repository's `target/`.
    let beside_host = std::env::var_os("TESSERA_BIN")
        .map(PathBuf::from)
        .and_then(|bin| {
            Some(
                bin.parent()?
                    .parent()?
                    .join("wasm32-wasip2/release")
                    .join(&file),
            )
        })
        .filter(|p| p.is_file());
    let path =
        beside_host.unwrap_or_else(|| root().join("target/wasm32-wasip2/release").join(&file));
    assert!(
        path.is_file(),
        "component {} is not built: run `cargo build --release --target wasm32-wasip2 -p {name}` \
         (or `cargo xtask setup`)",
        path.display()
    );
    path
}

/// Replaces every `"WASM:<crate>"` in a manifest with the quoted absolute path of that
/// crate's built component, so test manifests can be written as plain text.
pub fn resolve_wasm_sources(manifest: &str) -> String {
    let mut out = String::with_capacity(manifest.len());
    let mut rest = manifest;
    while let Some(i) = rest.find("\"WASM:") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "\"WASM:".len()..];
        let end = after
            .find('"')
            .expect("unterminated \"WASM:<crate>\" in test manifest");
        let path = wasm(&after[..end]);
        out.push_str(&toml_string(&path.to_string_lossy()));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A TOML basic string.
pub fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A lowercase hex string that differs between calls and processes.
pub fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", h.finish())
}

/// A unique directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", random_hex()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        Self(dir)
    }

    /// A unique directory under `parent` (created if missing), removed on drop.
    pub fn under(parent: &std::path::Path, prefix: &str) -> Self {
        let dir = parent.join(format!("{prefix}-{}", random_hex()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        Self(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `f` every 100 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: std::time::Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
