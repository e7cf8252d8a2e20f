//! Starting the real `tessera-worker` (the embedding worker) for a test: free port, the
//! repository's model, output captured to files, stopped on drop — or killed with SIGKILL
//! when a test needs a worker to die mid-batch.

use crate::http::{Request, Response};
use crate::{TempDir, TestDb};
use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a worker may take to answer `/health` (loading the model takes under a second).
pub const WORKER_START_TIMEOUT: Duration = Duration::from_secs(60);

/// The worker binary: `TESSERA_WORKER_BIN`, else `tessera-worker` next to the host binary
/// (`cargo xtask setup` builds both into one target directory).
pub fn worker_bin() -> PathBuf {
    let bin = match std::env::var_os("TESSERA_WORKER_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => crate::tessera_bin().with_file_name("tessera-worker"),
    };
    assert!(
        bin.is_file(),
        "the worker binary {} does not exist: build it with `cargo build --release -p \
         tessera-worker` or run the tests with `cargo xtask test`",
        bin.display()
    );
    bin
}

/// The model directory `cargo xtask setup` prepares.
pub fn model_dir() -> PathBuf {
    crate::root().join(".tessera/models/all-MiniLM-L6-v2")
}

/// A `tessera-worker` to start.
pub struct WorkerCommand {
    args: Vec<String>,
    token: Option<String>,
    env: Vec<(String, String)>,
}

impl Default for WorkerCommand {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkerCommand {
    /// libonnxruntime.so as `cargo xtask setup` leaves it, where the worker's default
    /// (`--backend auto`) looks for it from the repository root.
    pub fn setup_ort_dylib() -> PathBuf {
        crate::root().join(".tessera/onnxruntime/libonnxruntime.so")
    }

    /// HTTP only, on the worker's default backend (onnxruntime where `cargo xtask setup`
    /// fetched it, else tract), with the repository's model.
    pub fn new() -> Self {
        Self {
            args: Vec::new(),
            token: None,
            env: Vec::new(),
        }
    }

    /// Drains `embedding_jobs` of `db` (whose schema the host has migrated).
    pub fn database(self, db: &TestDb) -> Self {
        self.arg("--database-url").arg(db.url())
    }

    /// Requires this bearer token on the embedding endpoints.
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// An environment variable for the worker (e.g. `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.push((name.to_string(), value.into()));
        self
    }

    /// Several arguments, e.g. `["--lease-seconds", "2"]`.
    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Starts the worker and waits until `GET /health` answers 200.
    pub fn start(self) -> TestWorker {
        let dir = TempDir::new("tessera-e2e-worker");
        let addr = crate::host::free_addr();
        let log_path = dir.path().join("worker.log");
        let mut cmd = Command::new(worker_bin());
        // From the repository root, as `cargo xtask up` runs it: the default library path
        // is relative to it.
        cmd.current_dir(crate::root())
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--model-dir")
            .arg(model_dir())
            .args(&self.args)
            .env_remove("DATABASE_URL")
            .env_remove("TESSERA_WORKER_TOKEN")
            .env_remove("ORT_DYLIB_PATH")
            .env_remove("TESSERA_WORKER_BACKEND")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        // One file for both streams, so the log keeps their order.
        let log = File::create(&log_path).expect("create worker log");
        cmd.stdout(log.try_clone().expect("clone worker log"))
            .stderr(log);
        if let Some(token) = &self.token {
            cmd.env("TESSERA_WORKER_TOKEN", token);
        }
        for (name, value) in &self.env {
            cmd.env(name, value);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", worker_bin().display()));
        let mut worker = TestWorker {
            child,
            addr,
            token: self.token,
            log_path,
            _dir: dir,
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = worker.child.try_wait() {
                panic!(
                    "tessera-worker exited with {status} before becoming healthy:\n{}",
                    worker.output()
                );
            }
            if let Ok(r) = Request::new("GET", "/health").send(addr)
                && r.status == 200
            {
                break;
            }
            if started.elapsed() > WORKER_START_TIMEOUT {
                panic!(
                    "tessera-worker did not answer GET /health within {WORKER_START_TIMEOUT:?}:\n{}",
                    worker.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        worker
    }
}

/// A running worker; stopped (SIGTERM, then SIGKILL) on drop.
pub struct TestWorker {
    child: Child,
    addr: SocketAddr,
    token: Option<String>,
    log_path: PathBuf,
    _dir: TempDir,
}

impl TestWorker {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:port`, for the host's `--llm-url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> Response {
        Request::new("GET", path)
            .send(self.addr)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// POSTs JSON with the worker's own token (if it has one).
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Response {
        self.post_json_with(path, body, self.token.as_deref())
    }

    /// POSTs JSON with the given bearer token, or none.
    pub fn post_json_with(
        &self,
        path: &str,
        body: &serde_json::Value,
        token: Option<&str>,
    ) -> Response {
        let mut request = Request::new("POST", path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request
            .json(body)
            .send(self.addr)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// SIGKILL: the worker dies at once, holding whatever it had claimed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        if !self.is_running() {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "----- worker output -----\n{}\n-------------------------",
                self.output()
            );
        }
    }
}
