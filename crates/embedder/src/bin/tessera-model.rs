//! `tessera-model`: prepares the embedding model for `cargo xtask` and for deployments.
//!
//! `tessera-model ensure [--state-dir .tessera]` downloads, converts and verifies
//! all-MiniLM-L6-v2 into `<state-dir>/models/all-MiniLM-L6-v2/` (a no-op once done) and
//! prints the directory; `tessera-model embed "text"` prints one embedding as JSON.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera-model: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: tessera-model ensure [--state-dir DIR] | embed [--state-dir DIR] TEXT";

fn run(args: &[String]) -> anyhow::Result<()> {
    let (command, rest) = args.split_first().ok_or_else(|| anyhow::anyhow!(USAGE))?;
    let mut state_dir = PathBuf::from(".tessera");
    let mut positional = Vec::new();
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--state-dir" => {
                state_dir = it
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--state-dir needs a value"))?
                    .into();
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => positional.push(other.to_string()),
        }
    }
    let files = tessera_embedder::setup::ensure_model(&state_dir)?;
    match (command.as_str(), positional.as_slice()) {
        ("ensure", []) => {
            println!("{}", files.dir.display());
            Ok(())
        }
        ("embed", [text]) => {
            let embedding = files.load()?.embed_one(text)?;
            println!("{}", serde_json::to_string(&embedding)?);
            Ok(())
        }
        _ => anyhow::bail!(USAGE),
    }
}
