//! Python tools from PyPI, each in a virtual environment of its own under `.tessera/tools/`,
//! made once.

use anyhow::Result;
use std::path::Path;
use std::process::Command;

/// Written last into a tool's directory: a directory without it (an interrupted install) is
/// made again from scratch.
pub const DONE: &str = "tessera-installed";

/// Makes the virtual environment `dir` with `packages` (pinned requirement strings) unless it
/// is there already; `what` names the tool in errors.
pub fn ensure(dir: &Path, packages: &[String], what: &str) -> Result<()> {
    if dir.join(DONE).is_file() {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(dir);
    crate::run_status(
        Command::new("python3").args(["-m", "venv"]).arg(dir),
        &format!("make a Python virtual environment for {what}"),
        "needs python3 with the venv module (Debian: apt-get install python3-venv)",
    )?;
    crate::run_status(
        Command::new(dir.join("bin/python"))
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(packages),
        &format!("install {} from PyPI", packages.join(" ")),
        "needs access to pypi.org",
    )?;
    std::fs::write(dir.join(DONE), "")?;
    Ok(())
}
