//! An application loaded from spin.toml: its components compiled and pre-linked, its
//! factors built, ready to instantiate per request.

use crate::engine::{self, EngineLimits};
use crate::factors::llm::local::LocalModels;
use crate::factors::llm::{LlmFactor, LlmWorker};
use crate::factors::outbound_http::OutboundHttpFactor;
use crate::factors::postgres::PostgresFactor;
use crate::factors::{Factor, Factors, key_value, runtime_config, sqlite, variables};
use crate::state::{Deadlines, HostState};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tessera_manifest::{AllowedHosts, AppManifest, FileMount, Resolver};
use wasmtime::component::{InstancePre, Linker};
use wasmtime::{Engine, Store, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;
use wasmtime_wasi_http::handler::ProxyPre;

/// Settings of `tessera up` that shape the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub manifest_path: PathBuf,
    pub state_dir: PathBuf,
    pub llm_worker: Option<LlmWorker>,
    /// Where the host finds models it runs itself for `llm.generate-embeddings`
    /// (`<dir>/all-MiniLM-L6-v2`); `None` sends every model to the worker.
    pub local_models: Option<PathBuf>,
    pub request_timeout: Duration,
    pub memory_limit_bytes: usize,
    /// Run `wizer-initialize` exports once and serve instances from the snapshot.
    pub preinit: bool,
    /// The guests' Postgres pools.
    pub pools: crate::factors::postgres::PoolSettings,
    /// Requests a WASIp3 instance serves at once (docs/adr/0011).
    pub instance_concurrency: usize,
    /// Spin's runtime config file (`--runtime-config-file`), see factors/runtime_config.rs.
    pub runtime_config_file: Option<PathBuf>,
}

/// What a factor needs to know about one component.
pub struct ComponentConfig {
    pub id: Arc<str>,
    pub allowed_hosts: Arc<AllowedHosts>,
    pub key_value_stores: Arc<[String]>,
    pub sqlite_databases: Arc<[String]>,
    pub environment: Vec<(String, String)>,
    /// `files` mounts: host directory → guest path, read-only.
    pub files: Vec<(PathBuf, String)>,
    /// `ai_models`: the models `llm` may run for it.
    pub ai_models: Arc<[String]>,
}

/// How a component is driven, decided from its exports.
pub enum Entry {
    /// `wasi:http/handler@0.3.0` (WASIp3, instances reused) or
    /// `wasi:http/incoming-handler@0.2.x` (WASIp2, one instance per request).
    Http(Arc<ProxyPre<HostState>>),
    /// `fermyon:spin-cron/spin-cron@2.0.0#handle-cron-event`.
    Cron(crate::bindings::cron::SpinCronPre<HostState>),
}

pub struct LoadedComponent {
    pub config: ComponentConfig,
    pub pre: InstancePre<HostState>,
    /// Size of the .wasm its instances start from (the snapshot when pre-initialised): what
    /// each instance may map, so admission gives large components fewer instances.
    pub image_bytes: u64,
}

impl LoadedComponent {
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// The HTTP entry point, or an error naming what the component lacks.
    pub fn http_entry(&self) -> Result<Entry> {
        if let Ok(pre) = wasmtime_wasi_http::p3::bindings::ServicePre::new(self.pre.clone()) {
            return Ok(Entry::Http(Arc::new(ProxyPre::P3(pre))));
        }
        if let Ok(pre) = wasmtime_wasi_http::p2::bindings::ProxyPre::new(self.pre.clone()) {
            return Ok(Entry::Http(Arc::new(ProxyPre::P2(pre))));
        }
        bail!(
            "component {:?} is used by an HTTP trigger but exports neither \
             wasi:http/handler@0.3.0 nor wasi:http/incoming-handler@0.2",
            self.id()
        )
    }

    pub fn cron_entry(&self) -> Result<Entry> {
        crate::bindings::cron::SpinCronPre::new(self.pre.clone())
            .map(Entry::Cron)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "component {:?} is used by a cron trigger but does not export \
                     handle-cron-event (fermyon:spin-cron@2.0.0)",
                    self.id()
                )
            })
    }
}

pub struct App {
    pub engine: Engine,
    pub manifest: AppManifest,
    pub resolver: Arc<Resolver>,
    pub factors: Factors,
    pub components: BTreeMap<String, Arc<LoadedComponent>>,
    pub config: RuntimeConfig,
}

impl App {
    /// Loads the manifest, checks every component's configuration, and compiles (or maps
    /// from the cache) and pre-links every component, so errors surface before serving.
    pub fn load(
        config: RuntimeConfig,
        manifest: AppManifest,
        resolver: Arc<Resolver>,
        host_pool: deadpool_postgres::Pool,
    ) -> Result<Arc<App>> {
        let engine = engine::build_engine(EngineLimits {
            max_memory_bytes: config.memory_limit_bytes,
            ..EngineLimits::default()
        })?;
        engine::start_epoch_ticker(&engine);

        let linker = build_linker(&engine)?;
        let spin_config = runtime_config::load(
            config.runtime_config_file.as_deref(),
            &config.state_dir,
            &manifest.application.name,
        )?;
        let default_sqlite = runtime_config::default_sqlite_path(
            &config.state_dir,
            &manifest.application.name,
            "default",
        );

        let factors = Factors {
            variables: variables::VariablesFactor::new(resolver.clone()),
            key_value: key_value::KeyValueFactor::new(host_pool, &spin_config.key_value_stores),
            postgres: Arc::new(PostgresFactor::new(config.pools)),
            // `--llm-url` wins over the runtime config file's `[llm_compute]`.
            llm: Arc::new(LlmFactor::new(
                config
                    .local_models
                    .as_deref()
                    .and_then(LocalModels::discover),
                config.llm_worker.clone().or(spin_config.llm_worker),
            )),
            outbound_http: Arc::new(OutboundHttpFactor::default()),
            sqlite: sqlite::SqliteFactor::new(default_sqlite, spin_config.sqlite_databases),
            unconfigured: Default::default(),
        };

        let cache_dir = config.state_dir.join("cache").join("components");
        let mut components = BTreeMap::new();
        for (id, component) in &manifest.components {
            let allowed_hosts = AllowedHosts::for_component(&manifest, id, &resolver)
                .with_context(|| format!("component.{id}.allowed_outbound_hosts"))?;
            let cfg = ComponentConfig {
                id: Arc::from(id.as_str()),
                allowed_hosts: Arc::new(allowed_hosts),
                key_value_stores: component.key_value_stores.clone().into(),
                sqlite_databases: component.sqlite_databases.clone().into(),
                environment: component
                    .environment
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                files: file_mounts(id, &manifest.base_dir, &component.files)?,
                ai_models: component.ai_models.clone().into(),
            };
            factors.validate(&cfg)?;
            check_source(id, &component.source, component.build_command.as_deref())?;
            let digest = engine::cached_file_digest(&component.source, &cache_dir)
                .with_context(|| format!("reading component {}", component.source.display()))?;
            let mut compiled =
                engine::load_component(&engine, &component.source, &digest, &cache_dir)?;
            let mut image_bytes = std::fs::metadata(&component.source)
                .map(|m| m.len())
                .unwrap_or(0);
            if config.preinit && crate::preinit::wants_preinit(&compiled) {
                let snapshot_dir = config.state_dir.join("cache").join("preinit");
                let snapshot =
                    tokio::runtime::Handle::current().block_on(crate::preinit::snapshot(
                        &engine,
                        &linker,
                        id,
                        &component.source,
                        &digest,
                        &cfg.files,
                        &snapshot_dir,
                        &cache_dir,
                        || build_store(&engine, &factors, &config, &cfg),
                    ));
                // Without a snapshot the component still works: it initialises itself on
                // first use, as it does on Spin.
                match snapshot.and_then(|(path, key)| {
                    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                    Ok((
                        engine::load_component(&engine, &path, &key, &cache_dir)?,
                        size,
                    ))
                }) {
                    Ok((preinitialised, size)) => {
                        compiled = preinitialised;
                        image_bytes = size;
                    }
                    Err(err) => tracing::warn!(component = %id, error = format!("{err:#}"),
                        "pre-initialisation failed; instances will initialise themselves"),
                }
            }
            let (pre, traps) =
                crate::check::link(&engine, &linker, &compiled).with_context(|| {
                    format!(
                        "component {id:?} ({}) imports something this host does not provide \
                         (`tessera check {}` lists what)",
                        component.source.display(),
                        component.source.display()
                    )
                })?;
            if !traps.is_empty() {
                tracing::warn!(component = %id, imports = %traps.join(", "),
                    "linked WASI 0.3.0 release candidates as traps: a call to one fails");
            }
            components.insert(
                id.clone(),
                Arc::new(LoadedComponent {
                    config: cfg,
                    pre,
                    image_bytes,
                }),
            );
        }

        Ok(Arc::new(App {
            engine,
            manifest,
            resolver,
            factors,
            components,
            config,
        }))
    }

    pub fn component(&self, id: &str) -> Result<&Arc<LoadedComponent>> {
        self.components
            .get(id)
            .with_context(|| format!("no component {id:?}"))
    }

    /// A fresh store for one instance of `component`, with its limits and deadline.
    pub fn new_store(&self, component: &LoadedComponent) -> Store<HostState> {
        build_store(&self.engine, &self.factors, &self.config, &component.config)
    }
}

/// Everything a component may import from this host: WASI 0.2 and 0.3 (with wasi:http), the
/// HTTP of WASI's 2023-10-18 candidate (spin-sdk 2.x) and every factor. `tessera check` asks this same linker what a component lacks.
pub fn build_linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker = Linker::<HostState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    crate::wasi_2023_10_18::add_to_linker(&mut linker)?;
    Factors::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// A fresh store for one instance of a component, with its limits and deadline.
fn build_store(
    engine: &Engine,
    factors: &Factors,
    config: &RuntimeConfig,
    cfg: &ComponentConfig,
) -> Store<HostState> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdout().inherit_stderr();
    for (k, v) in &cfg.environment {
        wasi.env(k, v);
    }
    for (host, guest) in &cfg.files {
        // Checked at load; a directory removed since then fails only this instance.
        if let Err(err) = wasi.preopened_dir(host, guest, FsPerms::ReadOnly) {
            tracing::warn!(component = %cfg.id, dir = %host.display(), error = %err, "cannot mount files");
        }
    }
    let state = HostState {
        component: cfg.id.clone(),
        table: Default::default(),
        wasi: wasi.build(),
        http: WasiHttpCtx::new(),
        outbound_http: factors.outbound_http.instance_state(cfg),
        variables: factors.variables.instance_state(cfg),
        key_value: factors.key_value.instance_state(cfg),
        postgres: factors.postgres.instance_state(cfg),
        llm: factors.llm.instance_state(cfg),
        sqlite: factors.sqlite.instance_state(cfg),
        unconfigured: factors.unconfigured.instance_state(cfg),
        limits: StoreLimitsBuilder::new()
            .memory_size(config.memory_limit_bytes)
            .trap_on_grow_failure(true)
            .build(),
        deadlines: Deadlines::new(config.request_timeout),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    // Every epoch tick the running guest yields to other tasks; once a request it is
    // working on is past its deadline, it is interrupted instead.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| {
        Ok(if ctx.data().deadlines.expired() {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });
    store
}

/// Resolves `files` mounts. Spin copies files matched by glob patterns; this host mounts
/// directories in place, so only `{ source = "<dir>", destination = "/<path>" }` is supported.
fn file_mounts(id: &str, base_dir: &Path, files: &[FileMount]) -> Result<Vec<(PathBuf, String)>> {
    let mut mounts = Vec::new();
    for (i, mount) in files.iter().enumerate() {
        match mount {
            FileMount::Pattern(glob) => bail!(
                "component.{id}.files[{i}]: glob patterns ({glob:?}) are not supported by this \
                 host; mount a directory with {{ source = \"<dir>\", destination = \"/<path>\" }}"
            ),
            FileMount::Placement {
                source,
                destination,
            } => {
                let host = base_dir.join(source);
                if !host.is_dir() {
                    bail!(
                        "component.{id}.files[{i}].source: {} is not a directory{}",
                        host.display(),
                        if host.starts_with(base_dir.join(".tessera")) {
                            " (it is made by `cargo xtask setup`)"
                        } else {
                            ""
                        }
                    );
                }
                mounts.push((host, destination.clone()));
            }
        }
    }
    Ok(mounts)
}

fn check_source(id: &str, source: &Path, build_command: Option<&str>) -> Result<()> {
    if source.is_file() {
        return Ok(());
    }
    let build = build_command
        .map(str::to_string)
        .unwrap_or_else(|| format!("cargo build --release --target wasm32-wasip2 -p {id}"));
    bail!(
        "component.{id}.source: {} does not exist; build it with `{build}` (or run `cargo xtask up`)",
        source.display()
    )
}
