//! `tessera`: run a Spin application locally (see `tessera --help`).

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tessera_host::admission::AdmissionSettings;
use tessera_host::app::RuntimeConfig;
use tessera_host::error_watch::ErrorWatchSettings;
use tessera_host::factors::llm::LlmWorker;
use tessera_host::factors::postgres::PoolSettings;
use tessera_host::serve::{self, UpOptions};
use tessera_host::triggers::http::HttpSettings;

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
        /// Models the host runs itself for llm.generate-embeddings (all-minilm-l6-v2 from
        /// <dir>/all-MiniLM-L6-v2, as `cargo xtask setup` prepares it); other models go to
        /// --llm-url [default: <state dir>/models]
        #[arg(long)]
        models_dir: Option<PathBuf>,
        /// Run no model in the host: every llm.generate-embeddings goes to --llm-url.
        #[arg(long, conflicts_with = "models_dir")]
        no_local_models: bool,
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
        /// Spin's runtime config file (the one `spin up --runtime-config-file` reads):
        /// SQLite databases, key-value stores, variables provider, llm_compute.
        #[arg(long)]
        runtime_config_file: Option<PathBuf>,
        #[command(flatten)]
        limits: ServeLimits,
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
        #[arg(long)]
        runtime_config_file: Option<PathBuf>,
    },
    /// Validate a manifest, and list each import of each component (of the manifest, or one
    /// .wasm) with whether this host provides it; exits non-zero if something is missing.
    Check {
        /// A component (.wasm) or a manifest (.toml) [default: spin.toml]
        path: Option<PathBuf>,
        /// The manifest (same as giving it as PATH).
        #[arg(long, conflicts_with = "path")]
        manifest: Option<PathBuf>,
        /// Where compiled components are cached.
        #[arg(long, default_value = ".tessera")]
        state_dir: PathBuf,
    },
}

/// How much the host takes on at once, and how long it waits for clients (docs/adr/0011).
#[derive(clap::Args)]
struct ServeLimits {
    /// Requests one WASIp3 instance serves at once. 1 isolates requests: a trap or deadline
    /// ends only its own request and a CPU-bound one never delays another.
    #[arg(long, default_value_t = 1)]
    instance_concurrency: usize,
    /// Requests (so instances) one component runs at once, at most.
    #[arg(long, default_value_t = 64)]
    max_instances_per_component: usize,
    /// Memory the instances of one component may map: a component with a large image (the
    /// kb's pre-initialised model) gets this divided by its image size, at least 2.
    #[arg(long, default_value_t = 1024)]
    instance_memory_mb: u64,
    /// Client requests the host runs at once.
    #[arg(long, default_value_t = 256)]
    max_client_requests: usize,
    /// How long a request waits for an instance slot before a 503.
    #[arg(long, default_value_t = 10_000)]
    instance_wait_ms: u64,
    /// Postgres connections one component may hold per address.
    #[arg(long, default_value_t = 16)]
    pg_pool_size: usize,
    /// How long a guest waits for a Postgres connection before `connection-failed`.
    #[arg(long, default_value_t = 5_000)]
    pg_pool_wait_ms: u64,
    /// Time a client has to send a request head; also how long an idle keep-alive
    /// connection stays open.
    #[arg(long, default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// Time a client has to send a request body after its head (408 past it).
    #[arg(long, default_value_t = 10_000)]
    body_timeout_ms: u64,
    /// Open connections one client address may have (429 past it).
    #[arg(long, default_value_t = 256)]
    max_connections_per_client: usize,
    /// Also send each request's id in this response header (e.g. x-request-id). By default
    /// answers carry only what the component wrote, as on Spin; the id is in the log.
    #[arg(long)]
    request_id_header: Option<http::HeaderName>,
    /// Tell this component (at `/internal/system-errors`, by service chaining) when another
    /// component's answers to clients turn 5xx; Tessera's `alert` raises `system.error`.
    #[arg(long)]
    report_errors_to: Option<String>,
    /// The window a component's 5xx answers are counted over.
    #[arg(long, default_value_t = 300)]
    error_window_s: u64,
    /// Fewest 5xx answers in the window that make a report.
    #[arg(long, default_value_t = 5)]
    error_min_count: u64,
    /// Smallest share of 5xx answers in the window that makes a report.
    #[arg(long, default_value_t = 0.1)]
    error_min_rate: f64,
    /// Quiet time before a reported component is reported again.
    #[arg(long, default_value_t = 900)]
    error_cooldown_s: u64,
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
            models_dir,
            no_local_models,
            request_timeout_ms,
            memory_limit_mb,
            no_preinit,
            max_body_bytes,
            runtime_config_file,
            limits,
        } => {
            let migrations_dir = migrations.unwrap_or_else(|| {
                manifest
                    .parent()
                    .map(|p| p.join("migrations"))
                    .unwrap_or_else(|| "migrations".into())
            });
            let local_models =
                (!no_local_models).then(|| models_dir.unwrap_or_else(|| state_dir.join("models")));
            serve::up(UpOptions {
                runtime: RuntimeConfig {
                    manifest_path: manifest,
                    state_dir,
                    llm_worker: llm_url.map(|url| LlmWorker {
                        url,
                        token: llm_token,
                    }),
                    local_models,
                    request_timeout: Duration::from_millis(request_timeout_ms),
                    memory_limit_bytes: memory_limit_mb << 20,
                    preinit: !no_preinit,
                    pools: PoolSettings {
                        size_per_component: limits.pg_pool_size.max(1),
                        wait: Duration::from_millis(limits.pg_pool_wait_ms),
                    },
                    instance_concurrency: limits.instance_concurrency.max(1),
                    runtime_config_file,
                },
                database_url,
                migrations_dir,
                http: HttpSettings {
                    header_timeout: Duration::from_millis(limits.header_timeout_ms),
                    body_timeout: Duration::from_millis(limits.body_timeout_ms),
                    max_connections_per_client: limits.max_connections_per_client.max(1),
                    request_id_header: limits.request_id_header,
                    report_errors_to: limits.report_errors_to,
                    error_watch: ErrorWatchSettings {
                        window: Duration::from_secs(limits.error_window_s.max(1)),
                        min_errors: limits.error_min_count.max(1),
                        min_rate: limits.error_min_rate.clamp(0.0, 1.0),
                        cooldown: Duration::from_secs(limits.error_cooldown_s),
                    },
                    admission: AdmissionSettings {
                        max_per_component: limits.max_instances_per_component.max(1),
                        max_external: limits.max_client_requests.max(1),
                        instance_memory_budget: limits.instance_memory_mb << 20,
                        wait: Duration::from_millis(limits.instance_wait_ms),
                        ..AdmissionSettings::default()
                    },
                    ..HttpSettings::new(listen, max_body_bytes)
                },
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
            runtime_config_file,
        } => {
            serve::prepare(RuntimeConfig {
                manifest_path: manifest,
                state_dir,
                llm_worker: None,
                local_models: None,
                request_timeout: Duration::from_secs(30),
                memory_limit_bytes: memory_limit_mb << 20,
                preinit: true,
                pools: PoolSettings::default(),
                instance_concurrency: 1,
                runtime_config_file,
            })
            .await
        }
        Command::Check {
            path,
            manifest,
            state_dir,
        } => {
            let path = manifest.or(path).unwrap_or_else(|| "spin.toml".into());
            let missing = tokio::task::block_in_place(|| check(&path, &state_dir))?;
            if missing > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// `tessera check`: returns how many imports are not provided, over every component.
fn check(path: &std::path::Path, state_dir: &std::path::Path) -> Result<usize> {
    use anyhow::Context;
    use tessera_host::engine;
    let is_manifest = path.extension().is_some_and(|e| e == "toml");
    let sources: Vec<(String, PathBuf)> = if is_manifest {
        let manifest = tessera_manifest::load(path)?;
        println!(
            "ok: {} components, {} http routes, {} cron triggers",
            manifest.components.len(),
            manifest.http_triggers.len(),
            manifest.cron_triggers.len()
        );
        manifest
            .components
            .iter()
            .map(|(id, c)| {
                (
                    format!("component {id} ({})", c.source.display()),
                    c.source.clone(),
                )
            })
            .collect()
    } else {
        vec![(format!("component {}", path.display()), path.to_path_buf())]
    };
    let engine = engine::build_engine(engine::EngineLimits::default())?;
    let linker = tessera_host::app::build_linker(&engine)?;
    let cache_dir = state_dir.join("cache").join("components");
    let mut missing = 0;
    for (label, source) in sources {
        if !source.is_file() {
            println!("{label}\n  not built: {} does not exist", source.display());
            missing += 1;
            continue;
        }
        let digest = engine::file_digest(&source)
            .with_context(|| format!("reading {}", source.display()))?;
        let component = engine::load_component(&engine, &source, &digest, &cache_dir)?;
        let report = tessera_host::check::imports(&engine, &linker, &component)
            .with_context(|| format!("checking {}", source.display()))?;
        missing += tessera_host::check::print(&label, &report);
    }
    Ok(missing)
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,cranelift_codegen=warn,wasmtime=warn"));
    // tokio-postgres logs each statement's parameters at debug (API key hashes, users'
    // text): kept quiet even under RUST_LOG=debug unless asked for by name.
    let named = std::env::var("RUST_LOG").is_ok_and(|v| v.contains("tokio_postgres"));
    let filter = match "tokio_postgres=info".parse() {
        Ok(directive) if !named => filter.add_directive(directive),
        _ => filter,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        // A line logged while a request runs names its `request_id` and `trace_id` under
        // "span" (the request's own line has them among its fields); the span list would
        // only repeat them.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
