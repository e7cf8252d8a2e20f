//! Command line and environment.

use crate::backend::{BackendConfig, BackendKind};
use crate::batcher::BatchPolicy;
use crate::drain::DrainConfig;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where `cargo xtask setup` puts libonnxruntime.so (xtask/src/onnxruntime.rs), relative to
/// the repository root like `--model-dir`'s default.
pub const DEFAULT_ORT_DYLIB: &str = ".tessera/onnxruntime/libonnxruntime.so";

/// The CPU backends' attention budget per model call: one input at the model's limit (so
/// inputs of 256 tokens run alone, of 128 four at a time; short sentences are bounded by
/// `--max-batch-size` first).
pub const CPU_BATCH_ATTENTION: usize = tessera_embedder::MAX_TOKENS * tessera_embedder::MAX_TOKENS;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "tessera-worker",
    about = "Tessera's embedding worker: all-MiniLM-L6-v2 behind dynamic batching; serves \
             POST /embed (Spin's remote-LLM protocol), POST /v1/embeddings (OpenAI), GET /health, \
             GET /metrics, and drains the kb's embedding_jobs queue when given a database"
)]
pub struct Config {
    #[arg(long, env = "TESSERA_WORKER_LISTEN", default_value = "127.0.0.1:3001")]
    pub listen: SocketAddr,
    /// Directory with model.onnx and tokenizer.json (made by `cargo xtask setup`).
    #[arg(
        long,
        env = "TESSERA_MODEL_DIR",
        default_value = ".tessera/models/all-MiniLM-L6-v2"
    )]
    pub model_dir: PathBuf,
    #[arg(
        long,
        value_enum,
        env = "TESSERA_WORKER_BACKEND",
        default_value = "auto"
    )]
    pub backend: BackendKind,
    /// CPU threads for inference [default: all cores].
    #[arg(long, env = "TESSERA_WORKER_THREADS")]
    pub threads: Option<usize>,
    /// libonnxruntime.so, for the auto, ort and cuda backends [default: the one `cargo xtask
    /// setup` fetched, .tessera/onnxruntime/libonnxruntime.so].
    #[arg(long, env = "ORT_DYLIB_PATH")]
    pub ort_dylib: Option<PathBuf>,
    /// onnxruntime sessions run at once; threads are split between them [default: one per
    /// thread on the CPU (measured faster than one session with all threads), one for cuda].
    #[arg(long)]
    pub ort_sessions: Option<usize>,
    /// Bearer token required on /embed and /v1/embeddings (Spin's `auth_token`). Without
    /// one the endpoints are open: bind to loopback then.
    #[arg(long, env = "TESSERA_WORKER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Most padded tokens in one model call (inputs × longest input).
    #[arg(long, default_value_t = 2048)]
    pub max_batch_tokens: usize,
    /// Most attention scores per head in one model call (inputs × longest input²)
    /// [default: one input of the model's 256-token limit, 65,536, on the CPU, where a batch
    /// of long inputs runs faster split small (benches/README.md); none for cuda].
    #[arg(long)]
    pub max_batch_attention: Option<usize>,
    /// Most inputs in one model call. Small batches suit the CPU (tract's attention tensors
    /// outgrow the caches; benches/README.md); raise it for the cuda backend.
    #[arg(long, default_value_t = 8)]
    pub max_batch_size: usize,
    /// Longest a queued input waits for its batch to fill, in milliseconds [default: 0 on
    /// the CPU, where a batch costs about its padded tokens and an idle runner gains nothing
    /// by waiting (batch-1 throughput 1.8× higher measured, benches/README.md); 2 for cuda,
    /// where fuller batches are nearly free].
    #[arg(long)]
    pub max_wait_ms: Option<u64>,
    /// Inputs the queue holds; beyond it requests get 429 with Retry-After.
    #[arg(long, default_value_t = 4096)]
    pub max_queue: usize,
    /// Most inputs in one request.
    #[arg(long, default_value_t = 512)]
    pub max_inputs: usize,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    pub max_body_bytes: usize,

    /// Postgres with the kb schema: when given, the worker drains `embedding_jobs`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Name recorded on claimed jobs [default: <hostname>-<pid>].
    #[arg(long)]
    pub worker_id: Option<String>,
    /// Jobs claimed at once by one drain task.
    #[arg(long, default_value_t = 32)]
    pub claim_size: i64,
    /// Drain tasks: more than one keeps the model busy while another task talks to Postgres.
    #[arg(long, default_value_t = 2)]
    pub drain_tasks: usize,
    /// A claimed job whose worker has not finished it by then is claimed again, in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub lease_seconds: f64,
    /// Claims per job before it (and its document) is marked failed.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: i32,
    /// Poll for jobs this often even without a NOTIFY, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub poll_ms: u64,
}

impl Config {
    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    }

    /// Refuses settings that cannot work, naming the flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_batch_tokens < tessera_embedder::MAX_TOKENS {
            return Err(format!(
                "--max-batch-tokens {} is below one input of the model's limit ({}); inputs \
                 that long would run alone over budget",
                self.max_batch_tokens,
                tessera_embedder::MAX_TOKENS
            ));
        }
        if self.max_batch_size == 0 || self.max_inputs == 0 || self.max_queue == 0 {
            return Err("--max-batch-size, --max-inputs and --max-queue must be at least 1".into());
        }
        if self.max_inputs > self.max_queue {
            return Err(format!(
                "--max-inputs {} exceeds --max-queue {}: such a request could never be queued",
                self.max_inputs, self.max_queue
            ));
        }
        if self.database_url.is_some() && self.claim_size as usize > self.max_queue {
            return Err(format!(
                "--claim-size {} exceeds --max-queue {}",
                self.claim_size, self.max_queue
            ));
        }
        if !(self.lease_seconds > 0.0) || self.claim_size < 1 || self.max_attempts < 1 {
            return Err("--lease-seconds, --claim-size and --max-attempts must be positive".into());
        }
        if let Some(url) = self
            .database_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        {
            // Refused at start, not in the drain's retry loop: a bad sslmode never heals.
            tessera_pg_tls::parse(url).map_err(|e| format!("--database-url: {e}"))?;
        }
        if self.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err("--token is empty".into());
        }
        Ok(())
    }

    pub fn backend(&self) -> BackendConfig {
        BackendConfig {
            kind: self.backend,
            model_dir: self.model_dir.clone(),
            threads: self.threads(),
            ort_dylib: self
                .ort_dylib
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_ORT_DYLIB)),
            ort_sessions: self.ort_sessions.unwrap_or(match self.backend {
                BackendKind::Cuda => 1,
                _ => self.threads(),
            }),
        }
    }

    pub fn policy(&self) -> BatchPolicy {
        BatchPolicy {
            max_batch_tokens: self.max_batch_tokens,
            max_batch_attention: self.max_batch_attention.unwrap_or(match self.backend {
                BackendKind::Cuda => usize::MAX,
                _ => CPU_BATCH_ATTENTION,
            }),
            max_batch_size: self.max_batch_size,
            max_wait: Duration::from_millis(self.max_wait_ms.unwrap_or(match self.backend {
                BackendKind::Cuda => 2,
                _ => 0,
            })),
        }
    }

    pub fn drain(&self) -> Option<DrainConfig> {
        let url = self.database_url.clone().filter(|u| !u.trim().is_empty())?;
        Some(DrainConfig {
            database_url: url,
            worker_id: self.worker_id.clone().unwrap_or_else(default_worker_id),
            claim_size: self.claim_size,
            tasks: self.drain_tasks.max(1),
            lease: Duration::from_secs_f64(self.lease_seconds),
            max_attempts: self.max_attempts,
            poll: Duration::from_millis(self.poll_ms.max(10)),
        })
    }
}

fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        Config::try_parse_from(std::iter::once("tessera-worker").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn defaults_are_valid() {
        let c = parse(&[]);
        c.validate().unwrap();
        assert_eq!(c.backend, BackendKind::Auto);
        if std::env::var_os("ORT_DYLIB_PATH").is_none() {
            assert_eq!(c.backend().ort_dylib, PathBuf::from(DEFAULT_ORT_DYLIB));
        }
        assert!(c.drain().is_none() || std::env::var("DATABASE_URL").is_ok());
    }

    #[test]
    fn impossible_settings_name_the_flag() {
        let e = parse(&["--max-batch-tokens", "100"])
            .validate()
            .unwrap_err();
        assert!(e.contains("--max-batch-tokens"), "{e}");
        let e = parse(&["--max-inputs", "10", "--max-queue", "5"])
            .validate()
            .unwrap_err();
        assert!(e.contains("--max-inputs"), "{e}");
        let e = parse(&["--lease-seconds", "0"]).validate().unwrap_err();
        assert!(e.contains("--lease-seconds"), "{e}");
    }

    #[test]
    fn batches_wait_only_on_the_gpu_unless_told() {
        let wait = |args: &[&str]| parse(args).policy().max_wait;
        assert_eq!(wait(&[]), Duration::ZERO);
        assert_eq!(wait(&["--backend", "tract"]), Duration::ZERO);
        assert_eq!(wait(&["--backend", "cuda"]), Duration::from_millis(2));
        assert_eq!(
            wait(&["--backend", "ort", "--max-wait-ms", "5"]),
            Duration::from_millis(5)
        );
    }

    #[test]
    fn attention_is_bounded_on_the_cpu_unless_told() {
        let attention = |args: &[&str]| parse(args).policy().max_batch_attention;
        assert_eq!(attention(&[]), 65_536);
        assert_eq!(attention(&["--backend", "tract"]), CPU_BATCH_ATTENTION);
        assert_eq!(attention(&["--backend", "cuda"]), usize::MAX);
        assert_eq!(
            attention(&["--backend", "ort", "--max-batch-attention", "500000"]),
            500_000
        );
    }

    #[test]
    fn drain_settings() {
        let c = parse(&[
            "--database-url",
            "postgres://u@h/db",
            "--worker-id",
            "w1",
            "--lease-seconds",
            "2.5",
        ]);
        let d = c.drain().unwrap();
        assert_eq!(d.worker_id, "w1");
        assert_eq!(d.lease, Duration::from_millis(2500));
        assert_eq!(d.tasks, 2);
    }
}
