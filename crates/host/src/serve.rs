//! `tessera up`: migrate, load, serve HTTP and cron until Ctrl-C or SIGTERM.

use crate::app::{App, RuntimeConfig};
use crate::migrate::{self, Migration};
use crate::triggers::http::{HttpSettings, HttpTrigger, Probes};
use anyhow::Result;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tessera_manifest::Resolver;

pub struct UpOptions {
    pub runtime: RuntimeConfig,
    pub database_url: String,
    pub migrations_dir: PathBuf,
    pub http: HttpSettings,
}

/// Opens a small pool for the host's own queries (migrations, key-value, readiness).
pub fn host_pool(database_url: &str) -> Result<Pool> {
    // sslmode/sslrootcert as libpq reads them (crates/pg-tls).
    let target = tessera_pg_tls::parse(database_url).map_err(anyhow::Error::msg)?;
    let manager = Manager::from_config(
        target.config,
        target.tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    // Waits are bounded like the guests' pools: a key-value call finding no connection fails
    // within seconds instead of hanging its request.
    let wait = Some(Duration::from_secs(5));
    Ok(Pool::builder(manager)
        .max_size(16)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(wait)
        .create_timeout(wait)
        .recycle_timeout(wait)
        .build()?)
}

/// Applies the migrations in `dir` and reports the database and pgvector versions.
pub async fn migrate_database(pool: &Pool, dir: &std::path::Path) -> Result<Vec<Migration>> {
    let migrations = migrate::read_dir(dir)?;
    let mut client = pool
        .get()
        .await
        .map_err(|e| anyhow::anyhow!(tessera_pg_tls::explain_pool(&e)))?;
    let applied = migrate::apply(&mut client, &migrations).await?;
    let row = client
        .query_one(
            "SELECT current_setting('server_version'), \
             (SELECT extversion FROM pg_extension WHERE extname = 'vector')",
            &[],
        )
        .await?;
    let server: String = row.get(0);
    let vector: Option<String> = row.get(1);
    tracing::info!(
        postgres = %server,
        pgvector = vector.as_deref().unwrap_or("not installed"),
        applied = applied.len(),
        total = migrations.len(),
        "database ready"
    );
    Ok(migrations)
}

struct DbProbe {
    pool: Pool,
    migrations: Vec<Migration>,
}

impl Probes for DbProbe {
    fn ready(&self) -> futures::future::BoxFuture<'static, Result<(), String>> {
        let pool = self.pool.clone();
        let migrations = self.migrations.clone();
        Box::pin(async move {
            let check = async {
                let client = pool
                    .get()
                    .await
                    .map_err(|e| format!("database unreachable: {e}"))?;
                match migrate::all_applied(&client, &migrations).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err("migrations not applied".to_string()),
                    Err(e) => Err(format!("database error: {e}")),
                }
            };
            tokio::time::timeout(Duration::from_secs(2), check)
                .await
                .unwrap_or_else(|_| Err("database did not answer within 2 s".into()))
        })
    }
}

pub async fn up(options: UpOptions) -> Result<()> {
    let manifest = tessera_manifest::load(&options.runtime.manifest_path)?;
    let resolver = Arc::new(Resolver::new(&manifest, |name| std::env::var(name).ok())?);
    if let Some(endpoint) = tessera_otlp::install("tessera")? {
        tracing::info!(%endpoint, "exporting spans over OTLP");
    }

    let pool = host_pool(&options.database_url)?;
    let migrations = migrate_database(&pool, &options.migrations_dir).await?;

    let app = tokio::task::block_in_place(|| {
        App::load(options.runtime.clone(), manifest, resolver, pool.clone())
    })?;
    let cron_jobs = crate::triggers::cron::jobs(&app)?;
    let configs: Vec<_> = app.components.values().map(|c| &c.config).collect();
    app.factors.llm.preload_for(&configs);
    if let Some(dir) = app.factors.llm.local_model_dir() {
        tracing::info!(dir = %dir.display(), "llm.generate-embeddings runs all-minilm-l6-v2 in this process");
    }
    let probes = Arc::new(DbProbe { pool, migrations });
    let trigger = HttpTrigger::new(app.clone(), options.http, probes)?;
    let listener = trigger.bind().await?;
    let cron_tasks: Vec<_> = cron_jobs
        .into_iter()
        .map(|job| tokio::spawn(job.run()))
        .collect();

    println!("tessera: listening on http://{}", listener.local_addr()?);
    tracing::info!(
        components = app.components.len(),
        routes = app.manifest.http_triggers.len(),
        cron = cron_tasks.len(),
        "serving"
    );
    trigger
        .serve(listener, shutdown_signal(), Duration::from_secs(10))
        .await?;
    for task in cron_tasks {
        task.abort();
    }
    // The SDK waits for its export task, which runs on this runtime's other workers.
    tokio::task::block_in_place(tessera_otlp::shutdown);
    tracing::info!("stopped");
    Ok(())
}

/// `tessera prepare`: compiles every component into the cache and pre-initialises those that
/// ask for it, without a database, so that the first `tessera up` (or test) starts fast.
pub async fn prepare(runtime: RuntimeConfig) -> Result<()> {
    let manifest = tessera_manifest::load(&runtime.manifest_path)?;
    // Variables with no value and no default are only needed when requests run.
    let unset: Vec<String> = manifest
        .variables
        .iter()
        .filter(|(_, v)| v.default.is_none())
        .map(|(name, _)| format!("SPIN_VARIABLE_{}", name.to_uppercase()))
        .collect();
    let resolver = Arc::new(Resolver::new(&manifest, |name| {
        std::env::var(name)
            .ok()
            .or_else(|| unset.iter().any(|u| u == name).then(String::new))
    })?);
    // Never connected: nothing here runs a query.
    let pool = host_pool("postgres://127.0.0.1:1/unused")?;
    let started = std::time::Instant::now();
    let app = tokio::task::block_in_place(|| App::load(runtime, manifest, resolver, pool))?;
    println!(
        "tessera: {} components compiled and cached in {:.1}s",
        app.components.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
