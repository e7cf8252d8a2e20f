//! `tessera`: run a Spin application locally (see `tessera --help`).

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tessera_host::app::RuntimeConfig;
use tessera_host::factors::llm::LlmWorker;
use tessera_host::serve::{self, UpOptions};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Runs a Spin application (spin.toml) on wasmtime"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations, load every component and serve HTTP and cron triggers.
    Up {
        #[arg(long, default_value = "spin.toml")]
        manifest: PathBuf,
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        /// Postgres with pgvector, e.g. postgres://user@127.0.0.1:5432/tessera
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// Local state: compiled-component cache, models.
        #[arg(long, default_value = ".tessera")]
        state_dir: PathBuf,
        /// Migrations directory [default: <manifest dir>/migrations]
        #[arg(long)]
        migrations: Option<PathBuf>,
        /// Embedding worker for llm.generate-embeddings (Spin's remote-LLM protocol).
        #[arg(long, env = "TESSERA_LLM_URL")]
        llm_url: Option<String>,
        #[arg(long, env = "TESSERA_LLM_TOKEN", hide_env_values = true)]
        llm_token: Option<String>,
        /// Deadline for a component to produce its response head.
        #[arg(long, default_value_t = 30_000)]
        request_timeout_ms: u64,
        /// Linear-memory cap per component instance. The kb component holds the embedding
        /// model (~90 MB of weights, about three times that while it loads).
        #[arg(long, default_value_t = 1024)]
        memory_limit_mb: usize,
        /// Do not pre-initialise components that export `wizer-initialize` (for comparison:
        /// every instance then initialises itself on first use, as on Spin).
        #[arg(long)]
        no_preinit: bool,
        /// Largest request body accepted.
        #[arg(long, default_value_t = 8 << 20)]
        max_body_bytes: u64,
    },
    /// Apply pending migrations and exit.
    Migrate {
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
        #[arg(long, default_value = "migrations")]
        migrations: PathBuf,
    },
    /// Compile every component into the cache and pre-initialise those that export
    /// `wizer-initialize`, then exit (no database needed).
    Prepare {
        #[arg(long, default_value = "spin.toml")]
        manifest: PathBuf,
        #[arg(long, default_value = ".tessera")]
        state_dir: PathBuf,
        #[arg(long, default_value_t = 1024)]
        memory_limit_mb: usize,
    },
    /// Validate a manifest and exit.
    Check {
        #[arg(long, default_value = "spin.toml")]
        manifest: PathBuf,
    },
}

/// Scheduler ticks between polls of the I/O driver. tokio's default (61) assumes short task
/// polls; a guest spinning to its deadline holds a worker for a whole epoch tick per poll, so
/// with two such guests a new connection waited up to 61 ticks (~0.6 s) to be noticed.
/// Measured with two spinning guests: hello answers in ≤ 93 ms at 8 (≤ 587 ms at 61), and
/// hello throughput did not move beyond the noise (benches/README.md).
const EVENT_INTERVAL: u32 = 8;

fn main() {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .event_interval(EVENT_INTERVAL)
        .build()
    {
        Ok(rt) => rt,
        Err(err) => fail(err.into()),
    };
    if let Err(err) = runtime.block_on(run(cli.command)) {
        fail(err);
    }
}

fn fail(err: anyhow::Error) -> ! {
    eprintln!("error: {err:#}");
    std::process::exit(1);
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Up {
            manifest,
            listen,
            database_url,
            state_dir,
            migrations,
            llm_url,
            llm_token,
            request_timeout_ms,
            memory_limit_mb,
            no_preinit,
            max_body_bytes,
        } => {
            let migrations_dir = migrations.unwrap_or_else(|| {
                manifest
                    .parent()
                    .map(|p| p.join("migrations"))
                    .unwrap_or_else(|| "migrations".into())
            });
            serve::up(UpOptions {
                runtime: RuntimeConfig {
                    manifest_path: manifest,
                    state_dir,
                    llm_worker: llm_url.map(|url| LlmWorker {
                        url,
                        token: llm_token,
                    }),
                    request_timeout: Duration::from_millis(request_timeout_ms),
                    memory_limit_bytes: memory_limit_mb << 20,
                    preinit: !no_preinit,
                },
                listen,
                database_url,
                migrations_dir,
                max_body_bytes,
            })
            .await
        }
        Command::Migrate {
            database_url,
            migrations,
        } => {
            let pool = serve::host_pool(&database_url)?;
            serve::migrate_database(&pool, &migrations).await?;
            Ok(())
        }
        Command::Prepare {
            manifest,
            state_dir,
            memory_limit_mb,
        } => {
            serve::prepare(RuntimeConfig {
                manifest_path: manifest,
                state_dir,
                llm_worker: None,
                request_timeout: Duration::from_secs(30),
                memory_limit_bytes: memory_limit_mb << 20,
                preinit: true,
            })
            .await
        }
        Command::Check { manifest } => {
            let manifest = tessera_manifest::load(&manifest)?;
            println!(
                "ok: {} components, {} http routes, {} cron triggers",
                manifest.components.len(),
                manifest.http_triggers.len(),
                manifest.cron_triggers.len()
            );
            Ok(())
        }
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,cranelift_codegen=warn,wasmtime=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
