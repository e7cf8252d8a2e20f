//! onnxruntime for the embedding worker's default backend: libonnxruntime.so from the PyPI
//! wheel `onnxruntime` (pinned by version and hash, fetched once with `python3 -m pip
//! download`, unpacked with `python3 -m zipfile`) into `.tessera/onnxruntime/`. The worker
//! loads it at run time and falls back to tract without it, so nothing links against it.

use anyhow::{Context, Result, anyhow};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The version the worker's `ort` crate speaks (its `api-31` feature).
const VERSION: &str = "1.31.1";
/// One wheel for every machine: the library inside does not depend on the Python version,
/// so pip is told which wheel to take instead of the one matching the local Python.
const WHEEL_TAGS: [&str; 8] = [
    "--python-version",
    "3.12",
    "--implementation",
    "cp",
    "--abi",
    "cp312",
    "--platform",
    "manylinux_2_28_x86_64",
];
const WHEEL_SHA256: &str = "1f3dea47f2f0e5117c2404cea7d21fd253ae7836a3bf167a501cdfbb2600d536";
const LIBRARY_IN_WHEEL: &str = "onnxruntime/capi/libonnxruntime.so.1.31.1";
/// Where the worker looks by default (`tessera-worker --ort-dylib`, relative to the
/// repository root), kept equal to gpu-worker/src/config.rs's `DEFAULT_ORT_DYLIB`.
pub const LIBRARY: &str = "onnxruntime/libonnxruntime.so";

/// Fetches and unpacks the library unless the pinned one is there; returns its path, or
/// `None` on machines the wheel is not built for (the worker then runs tract).
pub fn ensure(state_dir: &Path) -> Result<Option<PathBuf>> {
    if !(cfg!(target_os = "linux") && cfg!(target_arch = "x86_64")) {
        println!("xtask: no onnxruntime wheel pinned for this platform; the worker will run tract");
        return Ok(None);
    }
    let library = state_dir.join(LIBRARY);
    let dir = library.parent().expect("LIBRARY has a directory");
    let marker = dir.join("VERSION");
    let want = format!("onnxruntime=={VERSION} sha256:{WHEEL_SHA256}\n");
    if library.is_file() && std::fs::read_to_string(&marker).is_ok_and(|m| m == want) {
        return Ok(Some(library));
    }
    // A fresh staging directory each time: a killed run leaves nothing that looks done.
    let staging = dir.with_file_name("onnxruntime.partial");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::create_dir_all(&staging)?;
    let requirements = staging.join("requirements.txt");
    std::fs::write(
        &requirements,
        format!("onnxruntime=={VERSION} --hash=sha256:{WHEEL_SHA256}\n"),
    )?;
    crate::run_status(
        Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
            .args(["--require-hashes", "--disable-pip-version-check", "-q"])
            .args(WHEEL_TAGS)
            .arg("-d")
            .arg(&staging)
            .arg("-r")
            .arg(&requirements),
        &format!("download onnxruntime {VERSION} from PyPI"),
        "needs python3 with pip and access to pypi.org",
    )?;
    let wheel = std::fs::read_dir(&staging)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| anyhow!("pip left no wheel in {}", staging.display()))?;
    let unpacked = staging.join("unpacked");
    crate::run_status(
        Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&unpacked),
        "unpack the onnxruntime wheel",
        "delete .tessera/onnxruntime.partial and retry",
    )?;
    let from = unpacked.join(LIBRARY_IN_WHEEL);
    let final_dir = staging.join("done");
    std::fs::create_dir_all(&final_dir)?;
    let name = library.file_name().expect("LIBRARY has a file name");
    std::fs::rename(&from, final_dir.join(name)).with_context(|| {
        format!("the wheel has no {LIBRARY_IN_WHEEL}: its layout changed; expected onnxruntime {VERSION}")
    })?;
    std::fs::write(final_dir.join("VERSION"), &want)?;
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::rename(&final_dir, dir)?;
    std::fs::remove_dir_all(&staging)?;
    println!("xtask: onnxruntime {VERSION} in {}", library.display());
    Ok(Some(library))
}
