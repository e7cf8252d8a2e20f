//! schemathesis, the property-based API fuzzer from PyPI that tests/openapi.rs runs against
//! the host with /openapi.json: a virtual environment of its own under
//! `.tessera/tools/schemathesis-<version>`, made once.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Pinned: tests/openapi.rs names the same version.
pub const VERSION: &str = "4.32.5";

/// The `schemathesis` executable, installed if missing.
pub fn ensure(state_dir: &Path) -> Result<PathBuf> {
    let venv = state_dir
        .join("tools")
        .join(format!("schemathesis-{VERSION}"));
    let bin = venv.join("bin").join("schemathesis");
    if bin.is_file() {
        return Ok(bin);
    }
    // A half-made environment (an interrupted install) is made again from scratch.
    let _ = std::fs::remove_dir_all(&venv);
    crate::run_status(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "make a Python virtual environment for schemathesis",
        "needs python3 with the venv module (Debian: apt-get install python3-venv)",
    )?;
    crate::run_status(
        Command::new(venv.join("bin").join("python"))
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .arg(format!("schemathesis=={VERSION}")),
        "install schemathesis from PyPI",
        "needs access to pypi.org",
    )?;
    bin.is_file()
        .then_some(())
        .with_context(|| format!("{} missing after the install", bin.display()))?;
    Ok(bin)
}
