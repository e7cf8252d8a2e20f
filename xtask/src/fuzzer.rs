//! schemathesis, the property-based API fuzzer from PyPI that tests/openapi.rs runs against
//! the host with /openapi.json: a virtual environment of its own under
//! `.tessera/tools/schemathesis-<version>`, made once.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Pinned: tests/openapi.rs names the same version.
pub const VERSION: &str = "4.32.5";

/// The `schemathesis` executable, installed if missing.
pub fn ensure(state_dir: &Path) -> Result<PathBuf> {
    let venv = state_dir
        .join("tools")
        .join(format!("schemathesis-{VERSION}"));
    crate::venv::ensure(&venv, &[format!("schemathesis=={VERSION}")], "schemathesis")?;
    let bin = venv.join("bin").join("schemathesis");
    bin.is_file()
        .then_some(())
        .with_context(|| format!("{} missing after the install", bin.display()))?;
    Ok(bin)
}
