//! Start-up (issue 17, item 4): from just before `tessera up` is spawned with the
//! repository's whole spin.toml to the first 200 from a component (`--path`, asked every
//! millisecond):
//!
//! 1. warm: the compile cache and snapshots `cargo xtask up` leaves in `.tessera/`, after one
//!    unmeasured start; the median of `--starts` starts;
//! 2. empty cache (unless `--skip-empty`): a fresh state directory (the model directory
//!    linked in, so the host loads what it always does), one start; each component's
//!    compile and pre-initialisation time from the host's JSON log.

use crate::proc::{Server, free_addr};
use crate::stats::median;
use anyhow::{Context, Result};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[derive(clap::Args)]
pub struct StartupArgs {
    /// Measured starts with a warm cache.
    #[arg(long, default_value_t = 7)]
    starts: usize,
    /// The request that counts as the first answer.
    #[arg(long, default_value = "/hello")]
    path: String,
    /// Skip the start with an empty cache (it compiles every component: minutes).
    #[arg(long)]
    skip_empty: bool,
}

pub fn run(args: StartupArgs) -> Result<()> {
    let db = tessera_e2e::TestDb::new();
    let root = tessera_e2e::root();
    let state = root.join(".tessera");
    let components = component_count(&root)?;
    println!(
        "start-up benchmark: `tessera up` with spin.toml ({components} components) to the first 200 from GET {}",
        args.path
    );
    // Applies the migrations to the fresh database and warms the page cache.
    start(&db, &state, &args.path)?;
    let mut warm = Vec::with_capacity(args.starts);
    for _ in 0..args.starts {
        warm.push(start(&db, &state, &args.path)?.0.as_secs_f64() * 1e3);
    }
    let mut sorted = warm.clone();
    sorted.sort_by(f64::total_cmp);
    println!();
    println!("| measurement | result |");
    println!("|---|---:|");
    println!(
        "| warm cache: process start → first answer, median of {} (min–max) | {:.1} ms ({:.1}–{:.1}) |",
        args.starts,
        median(&warm),
        sorted[0],
        sorted[sorted.len() - 1]
    );
    if args.skip_empty {
        return Ok(());
    }
    let empty = tempdir()?;
    std::os::unix::fs::symlink(state.join("models"), empty.join("models"))
        .context("linking the model directory into the empty state directory")?;
    let (first, log) = start(&db, &empty, &args.path)?;
    println!(
        "| empty cache: process start → first answer | {:.1} s |",
        first.as_secs_f64()
    );
    for (what, ms) in startup_work(&log)? {
        println!("|   {what} | {:.1} s |", ms / 1e3);
    }
    let _ = std::fs::remove_dir_all(&empty);
    Ok(())
}

/// One start: the time to the first answer and the host's log.
fn start(db: &tessera_e2e::TestDb, state: &Path, path: &str) -> Result<(Duration, String)> {
    let root = tessera_e2e::root();
    let addr = free_addr();
    let mut cmd = Command::new(std::env::var("TESSERA_BIN").context("TESSERA_BIN is not set")?);
    cmd.arg("--log-format")
        .arg("json")
        .arg("up")
        .arg("--manifest")
        .arg(root.join("spin.toml"))
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--database-url")
        .arg(db.url())
        .arg("--state-dir")
        .arg(state)
        .env("SPIN_VARIABLE_DATABASE_URL", db.app_url())
        .env("RUST_LOG", "info")
        .current_dir(&root);
    let (server, took) = Server::start_polling(
        "tessera up (start-up)",
        cmd,
        addr,
        path,
        Duration::from_millis(1),
        Duration::from_secs(1800),
    )?;
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    Ok((took, log))
}

/// Each component's compile and pre-initialisation, from the host's JSON log lines
/// ("compiled component" with its file, "pre-initialised component" with its id).
fn startup_work(log: &str) -> Result<Vec<(String, f64)>> {
    let mut work = Vec::new();
    for line in log.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let f = &v["fields"];
        let ms = f["elapsed_ms"].as_f64().unwrap_or(0.0);
        match f["message"].as_str() {
            Some("compiled component") => {
                let file = f["path"].as_str().unwrap_or("?");
                let name = Path::new(file)
                    .file_name()
                    .map_or(file.to_string(), |n| n.to_string_lossy().into_owned());
                work.push((format!("compile {name}"), ms));
            }
            Some("pre-initialised component") => {
                let id = f["component"].as_str().unwrap_or("?");
                work.push((format!("pre-initialise {id}"), ms));
            }
            _ => {}
        }
    }
    Ok(work)
}

fn component_count(root: &Path) -> Result<usize> {
    let text = std::fs::read_to_string(root.join("spin.toml"))?;
    // `[component.<id>]` headers, not their sub-tables (`[component.<id>.build]`).
    Ok(text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("[component.")?.strip_suffix(']'))
        .filter(|id| !id.contains('.'))
        .count())
}

fn tempdir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("tessera-bench-startup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
