//! Test guests written with Spin's own SDKs of the WASIp2 generation, built with those SDKs'
//! toolchains from the registries, so tests/spin_apps.rs runs components we did not compile
//! with our own tools:
//!
//! - tests/guests/spin-py: Spin's Python SDK (`spin-sdk` 3.4.1) with `componentize-py` 0.17.2,
//!   the pair its README names, from PyPI;
//! - tests/guests/spin-py5: the same SDK's WASIp3 generation (`spin-sdk` 5.0.0 with
//!   `componentize-py` 0.25.1, from PyPI): an async `wasi:http/handler@0.3.0` and Spin's 3.x
//!   interfaces;
//! - tests/guests/spin-js: Spin's JavaScript SDK (`@fermyon/spin-sdk` 2.0.0) bundled by esbuild
//!   and built by the SDK's own `j2w` (componentize-js 0.10), from npm;
//! - tests/guests/spin-rust2 … spin-rust5: one app (spin-rust3's source) with Spin's Rust SDK
//!   2.2.0, 3.1.1, 4.0.0 and 5.2.0 from crates.io, each with its own workspace and lock file
//!   as a user's app: 2.2.0 to 4.0.0 built for wasm32-wasip1 as Spin's templates of their
//!   time build them (core modules, which the host makes components at load), 5.2.0 for
//!   wasm32-wasip2. 2.2.0 calls `wasi:http` of WASI's 2023-10-18 release candidate.
//!
//! The toolchains go to `.tessera/tools/`, made once; the components to
//! `<target>/wasm32-wasip2/release/spin_{py,py5,js,rust2,rust3,rust4,rust5}.wasm` beside the Rust
//! guests, rebuilt when the source is newer (the Rust apps by cargo, whose check is cheap).

use crate::venv::DONE;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

const PYTHON_SDK: &str = "3.4.1";
const COMPONENTIZE_PY: &str = "0.17.2";
/// The WASIp3 generation of the Python SDK, and the componentize-py it is built for.
const PYTHON_SDK_5: &str = "5.0.0";
const COMPONENTIZE_PY_5: &str = "0.25.1";
const JS_SDK: &str = "2.0.0";
/// The newest of the `^0.10.2` the SDK asks for.
const COMPONENTIZE_JS: &str = "0.10.5";
const ESBUILD: &str = "0.28.2";
/// What Spin 3's Rust template builds for: the .wasm is a core module.
pub const MODULE_TARGET: &str = "wasm32-wasip1";
/// The Rust apps: (guest, the spin-sdk its lock file pins, the target it is built for).
const RUST_APPS: [(&str, &str, &str); 4] = [
    ("spin-rust2", "2.2.0", MODULE_TARGET),
    ("spin-rust3", "3.1.1", MODULE_TARGET),
    ("spin-rust4", "4.0.0", MODULE_TARGET),
    ("spin-rust5", "5.2.0", "wasm32-wasip2"),
];

/// Builds the guests, installing their toolchains first if needed.
pub fn build(root: &Path, state_dir: &Path, target_dir: &Path) -> Result<()> {
    let out_dir = target_dir.join("wasm32-wasip2").join("release");
    let work = target_dir.join("sdk-guests");
    std::fs::create_dir_all(&out_dir)?;
    std::fs::create_dir_all(&work)?;

    // The SDK generations name their HTTP world differently.
    for (guest, sdk, componentize_py, world) in [
        ("spin-py", PYTHON_SDK, COMPONENTIZE_PY, "spin-http"),
        ("spin-py5", PYTHON_SDK_5, COMPONENTIZE_PY_5, "http-trigger"),
    ] {
        let venv = python_toolchain(state_dir, sdk, componentize_py)?;
        let source = root.join("tests/guests").join(guest).join("app.py");
        let out = out_dir.join(format!("{}.wasm", guest.replace('-', "_")));
        if stale(&out, &source, &venv)? {
            componentize_python(&venv, &source, &work.join(guest), world, &out)
                .with_context(|| format!("building tests/guests/{guest}"))?;
        }
    }

    for (guest, sdk, target) in RUST_APPS {
        let app_target = work.join(guest);
        let file = format!("{}.wasm", guest.replace('-', "_"));
        crate::run_status(
            Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
                .current_dir(root.join("tests/guests").join(guest))
                .args(["build", "--release", "--locked", "--target", target])
                .arg("--target-dir")
                .arg(&app_target),
            &format!("build tests/guests/{guest} (spin-sdk {sdk}, {target})"),
            "see cargo's error above; it needs the wasm32-wasip1 target and crates.io",
        )?;
        std::fs::copy(
            app_target.join(target).join("release").join(&file),
            out_dir.join(&file),
        )
        .with_context(|| format!("copying {file}"))?;
    }

    let source = root.join("tests/guests/spin-js/index.js");
    let out = out_dir.join("spin_js.wasm");
    let tools = js_toolchain(state_dir)?;
    if stale(&out, &source, &tools)? {
        let bundle = work.join("spin-js").join("bundle.js");
        let modules = tools.join("node_modules");
        crate::run_status(
            Command::new(modules.join(".bin/esbuild"))
                .env("NODE_PATH", &modules)
                .arg(&source)
                .args(["--bundle", "--format=esm", "--log-level=warning"])
                // Spin's and WASI's interfaces are the component's imports, not modules.
                .args(["--external:fermyon:*", "--external:wasi:*"])
                .arg(format!("--outfile={}", bundle.display())),
            "bundle tests/guests/spin-js with esbuild",
            "see esbuild's error above",
        )?;
        crate::run_status(
            Command::new("node")
                .arg(modules.join("@fermyon/spin-sdk/bin/j2w.mjs"))
                .arg("-i")
                .arg(&bundle)
                .arg("-o")
                .arg(&out)
                .args(["-n", "spin-http"]),
            "build tests/guests/spin-js with the SDK's j2w",
            "see j2w's error above",
        )?;
    }
    Ok(())
}

/// Whether `out` is missing or older than its source or its toolchain.
fn stale(out: &Path, source: &Path, toolchain: &Path) -> Result<bool> {
    let modified = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .with_context(|| format!("reading {}", p.display()))
    };
    let Ok(built) = modified(out) else {
        return Ok(true);
    };
    Ok(built < modified(source)? || built < modified(&toolchain.join(DONE))?)
}

fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    if let Some(path) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(paths).unwrap_or_default()
}

/// Builds one Python app into a component with componentize-py and the SDK's `world`.
fn componentize_python(
    venv: &Path,
    source: &Path,
    dir: &Path,
    world: &str,
    out: &Path,
) -> Result<()> {
    // componentize-py runs the app once to snapshot it and writes `__pycache__` beside it:
    // build from a copy so the source tree stays clean.
    std::fs::create_dir_all(dir)?;
    std::fs::copy(source, dir.join("app.py"))?;
    crate::run_status(
        Command::new(venv.join("bin/componentize-py"))
            .current_dir(dir)
            // It finds the SDK's WIT through the environment's site-packages.
            .env("VIRTUAL_ENV", venv)
            .env("PATH", path_with(&venv.join("bin")))
            .args(["-w", world, "componentize", "app", "-o"])
            .arg(out),
        "build a Python guest with componentize-py",
        "see componentize-py's error above",
    )
}

/// `.tessera/tools/spin-python-sdk-<v>`: a virtual environment with the SDK and componentize-py.
fn python_toolchain(state_dir: &Path, sdk: &str, componentize_py: &str) -> Result<PathBuf> {
    let venv = state_dir
        .join("tools")
        .join(format!("spin-python-sdk-{sdk}"));
    crate::venv::ensure(
        &venv,
        &[
            format!("spin-sdk=={sdk}"),
            format!("componentize-py=={componentize_py}"),
        ],
        &format!("Spin's Python SDK {sdk}"),
    )?;
    Ok(venv)
}

/// `.tessera/tools/spin-js-sdk-<v>`: node_modules with the SDK, componentize-js and esbuild.
fn js_toolchain(state_dir: &Path) -> Result<PathBuf> {
    let dir = state_dir
        .join("tools")
        .join(format!("spin-js-sdk-{JS_SDK}"));
    if dir.join(DONE).is_file() {
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let npm_hint = "needs node 18 or newer with npm, and access to registry.npmjs.org";
    crate::run_status(
        Command::new("npm")
            .args(["pack", "--silent", &format!("@fermyon/spin-sdk@{JS_SDK}")])
            .current_dir(&dir),
        "fetch @fermyon/spin-sdk from npm",
        npm_hint,
    )?;
    let tarball = format!("fermyon-spin-sdk-{JS_SDK}.tgz");
    crate::run_status(
        Command::new("tar")
            .args(["xzf", &tarball])
            .current_dir(&dir),
        "unpack @fermyon/spin-sdk",
        "needs tar",
    )?;
    // The SDK's postinstall (`knitwit`) merges the WIT of other npm packages into its world and
    // is itself fetched from GitHub, not npm. This app uses only the SDK's own interfaces, whose
    // WIT ships in the package (bin/wit), so both go.
    let manifest = dir.join("package/package.json");
    let mut package: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest)?)
        .with_context(|| format!("reading {}", manifest.display()))?;
    for (section, key) in [
        ("dependencies", "@fermyon/knitwit"),
        ("dependencies", "typedoc-plugin-missing-exports"),
        ("scripts", "postinstall"),
    ] {
        if let Some(map) = package[section].as_object_mut() {
            map.remove(key);
        }
    }
    std::fs::write(&manifest, serde_json::to_string_pretty(&package)?)?;
    std::fs::remove_file(dir.join(&tarball))?;
    // A tarball, not a folder: npm installs a folder as a link without its dependencies.
    crate::run_status(
        Command::new("npm")
            .args(["pack", "--silent", "--pack-destination", ".."])
            .current_dir(dir.join("package")),
        "repack @fermyon/spin-sdk",
        npm_hint,
    )?;
    std::fs::remove_dir_all(dir.join("package"))?;
    let app = serde_json::json!({
        "name": "tessera-spin-js-guest-toolchain",
        "private": true,
        "dependencies": {
            "@fermyon/spin-sdk": format!("file:./{tarball}"),
            "@bytecodealliance/componentize-js": COMPONENTIZE_JS,
            "esbuild": ESBUILD,
        }
    });
    std::fs::write(
        dir.join("package.json"),
        serde_json::to_string_pretty(&app)?,
    )?;
    crate::run_status(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir),
        "install Spin's JavaScript SDK toolchain from npm",
        npm_hint,
    )?;
    std::fs::write(dir.join(DONE), "")?;
    Ok(dir)
}
