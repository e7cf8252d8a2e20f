//! `cargo xtask dist --pgo`: the dist host built twice, instrumented and then optimised with
//! a profile of its own request path (rustc's `-Cprofile-generate` / `-Cprofile-use`, LLVM's
//! `llvm-profdata` from rustup's `llvm-tools`). Measured 1.11× the plain dist build's hello
//! throughput (benches/README.md, "Profile-guided optimisation", "Final run").
//!
//! The builds go to their own target directory with an explicit `--target`, so the profile
//! flags reach the host's code and not build scripts or proc macros, and the ordinary
//! release and dist builds keep their caches.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Instrument, train, merge, optimise; returns the optimised host binary. `target_dir` holds
/// both builds (`target/pgo`); `train` runs the instrumented binary it is given under load
/// and stops it cleanly (profiles are written at exit).
pub fn build_host(
    cargo: &Command,
    target_dir: &Path,
    train: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let triple = host_triple()?;
    let profdata_tool = llvm_profdata(&triple)?;
    let raw = target_dir.join("profiles");
    let merged = target_dir.join("tessera.profdata");
    // Profiles of an earlier build describe other code: start from none.
    let _ = std::fs::remove_dir_all(&raw);
    std::fs::create_dir_all(&raw)?;

    println!("xtask: pgo 1/4: instrumented build ({triple})");
    let flags = format!("-Cprofile-generate={}", raw.display());
    let instrumented = build(cargo, target_dir, &triple, &flags)?;

    println!(
        "xtask: pgo 2/4: training load on {}",
        instrumented.display()
    );
    train(&instrumented)?;
    let profiles = std::fs::read_dir(&raw)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "profraw"))
        .count();
    if profiles == 0 {
        bail!(
            "the training run wrote no profile into {} (the host must exit normally: \
             SIGINT or SIGTERM, not SIGKILL)",
            raw.display()
        );
    }

    println!("xtask: pgo 3/4: merging {profiles} profile(s)");
    let status = Command::new(&profdata_tool)
        .arg("merge")
        .arg("-o")
        .arg(&merged)
        .arg(&raw)
        .status()
        .with_context(|| format!("running {}", profdata_tool.display()))?;
    if !status.success() {
        bail!("llvm-profdata merge exited with {status}");
    }

    println!("xtask: pgo 4/4: optimised build");
    // A function the training never ran is still compiled; the warning that says so for
    // each one is noise here.
    let flags = format!(
        "-Cprofile-use={} -Cllvm-args=-pgo-warn-missing-function=false",
        merged.display()
    );
    build(cargo, target_dir, &triple, &flags)
}

fn build(cargo: &Command, target_dir: &Path, triple: &str, rustflags: &str) -> Result<PathBuf> {
    let mut cmd = Command::new(cargo.get_program());
    if let Some(dir) = cargo.get_current_dir() {
        cmd.current_dir(dir);
    }
    cmd.env("CARGO_TARGET_DIR", target_dir)
        .env("RUSTFLAGS", rustflags)
        .args(["build", "--profile", "dist", "--target", triple])
        .args(["-p", "tessera-host", "--bin", "tessera"]);
    let status = cmd.status().context("running cargo")?;
    if !status.success() {
        bail!("the dist build with RUSTFLAGS={rustflags:?} exited with {status}");
    }
    Ok(target_dir.join(triple).join("dist").join("tessera"))
}

/// The triple rustc builds for by default (`host:` of `rustc -vV`).
fn host_triple() -> Result<String> {
    let out = Command::new("rustc").arg("-vV").output()?;
    parse_host_triple(&String::from_utf8_lossy(&out.stdout))
        .context("`rustc -vV` printed no `host:` line")
}

fn parse_host_triple(version: &str) -> Option<String> {
    version
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|t| t.trim().to_string())
}

/// `llvm-profdata` of the toolchain's own LLVM (a system one may read another profile
/// format version), installing rustup's `llvm-tools` when it is missing.
fn llvm_profdata(triple: &str) -> Result<PathBuf> {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    let tool = sysroot
        .join("lib/rustlib")
        .join(triple)
        .join("bin/llvm-profdata");
    if tool.is_file() {
        return Ok(tool);
    }
    println!("xtask: installing rustup's llvm-tools (for llvm-profdata)");
    let status = Command::new("rustup")
        .args(["component", "add", "llvm-tools"])
        .status()
        .context("cannot run rustup")?;
    if !status.success() || !tool.is_file() {
        bail!(
            "llvm-profdata not found at {} (hint: `rustup component add llvm-tools`)",
            tool.display()
        );
    }
    Ok(tool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_triple_is_read_from_rustc() {
        let out = "rustc 1.95.0 (abc 2026-01-01)\nbinary: rustc\nhost: x86_64-unknown-linux-gnu\nrelease: 1.95.0\n";
        assert_eq!(
            parse_host_triple(out).as_deref(),
            Some("x86_64-unknown-linux-gnu")
        );
        assert_eq!(parse_host_triple("rustc 1.95.0\n"), None);
    }
}
