//! Starting the real `tessera up` for a test: manifest in a temp dir, free port, output
//! captured to files, stopped on drop.

use crate::http::{self, Request, Response};
use crate::{TempDir, TestDb};
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a host may take to answer `/health` (the first start compiles components).
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A `tessera up` to run: built up, then [`HostCommand::start`]ed (must become healthy) or
/// [`HostCommand::run_to_exit`]ed (expected to fail at start-up).
pub struct HostCommand {
    manifest: Manifest,
    /// The host's own: migrations, key-value (the owner's).
    database_url: String,
    /// The components' `database_url` (the application role, under row-level security).
    component_database_url: String,
    listen: Option<SocketAddr>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    env_remove: Vec<String>,
    auth: Auth,
    /// The manifest text came through [`HostCommand::new`]: its components' variables may
    /// be given `auth_mode` (see [`with_auth_mode`]).
    resolved: bool,
}

enum Manifest {
    Text(String),
    File(PathBuf),
}

/// How the components under test identify callers (the Spin variable `auth_mode`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// `trusted-headers`: the tests send `x-tenant-id` / `x-user-id` as a gateway would.
    TrustedHeaders,
    /// `keys`: API keys, as deployed (tests/auth.rs).
    Keys,
}

impl HostCommand {
    /// A host on `db` serving `manifest` (TOML text; `"WASM:<crate>"` sources are resolved
    /// with [`crate::resolve_wasm_sources`]).
    pub fn new(db: &TestDb, manifest: &str) -> Self {
        Self {
            manifest: Manifest::Text(crate::resolve_wasm_sources(manifest)),
            database_url: db.url().to_string(),
            component_database_url: db.app_url().to_string(),
            listen: None,
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            auth: Auth::TrustedHeaders,
            resolved: true,
        }
    }

    /// A host serving a manifest file as it is (e.g. the repository's spin.toml).
    pub fn with_manifest_file(db: &TestDb, path: impl Into<PathBuf>) -> Self {
        Self {
            manifest: Manifest::File(path.into()),
            resolved: false,
            ..Self::new(db, "")
        }
    }

    /// The manifest text exactly as given (no `WASM:` resolution): for malformed manifests.
    pub fn with_raw_manifest(db: &TestDb, text: &str) -> Self {
        Self {
            manifest: Manifest::Text(text.to_string()),
            resolved: false,
            ..Self::new(db, "")
        }
    }

    /// Components identify callers by API key (`auth_mode = "keys"`, as deployed) instead of
    /// the default for tests, trusted `x-tenant-id` / `x-user-id` headers.
    pub fn auth_keys(mut self) -> Self {
        self.auth = Auth::Keys;
        self
    }

    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.push((name.to_string(), value.into()));
        self
    }

    pub fn env_remove(mut self, name: &str) -> Self {
        self.env_remove.push(name.to_string());
        self
    }

    /// Gives the components the owner's URL instead of the application role's: for Spin
    /// apps that are not Tessera's and make their own tables (DDL), which the application
    /// role may not (migrations/0018).
    pub fn components_as_owner(mut self) -> Self {
        self.component_database_url = self.database_url.clone();
        self
    }

    /// Connects to `url` instead of the test database's URL (the same database by another
    /// route, e.g. through a TLS front), as `--database-url` and `database_url`.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = url.into();
        self.component_database_url = self.database_url.clone();
        self
    }

    fn spawn(self) -> Spawned {
        let dir = TempDir::new("tessera-e2e");
        let manifest = match &self.manifest {
            Manifest::Text(text) => {
                let path = dir.path().join("spin.toml");
                let text = match (self.resolved, self.auth) {
                    (true, Auth::TrustedHeaders) => with_auth_mode(text, "trusted-headers"),
                    _ => text.clone(),
                };
                std::fs::write(&path, text).expect("write the test manifest");
                path
            }
            Manifest::File(path) => path.clone(),
        };
        let listen = self.listen.unwrap_or_else(free_addr);
        let stdout_path = dir.path().join("stdout.log");
        let stderr_path = dir.path().join("stderr.log");
        let root = crate::root();
        let mut cmd = Command::new(crate::tessera_bin());
        cmd.arg("up")
            .arg("--manifest")
            .arg(&manifest)
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--database-url")
            .arg(&self.database_url)
            .arg("--state-dir")
            .arg(root.join(".tessera"))
            .arg("--migrations")
            .arg(root.join("migrations"))
            .args(&self.args)
            .current_dir(dir.path())
            .env("SPIN_VARIABLE_DATABASE_URL", &self.component_database_url)
            // For manifests that map the application variable (the repository's spin.toml).
            .env(
                "SPIN_VARIABLE_AUTH_MODE",
                match self.auth {
                    Auth::TrustedHeaders => "trusted-headers",
                    Auth::Keys => "keys",
                },
            )
            .stdin(Stdio::null())
            .stdout(File::create(&stdout_path).expect("create stdout log"))
            .stderr(File::create(&stderr_path).expect("create stderr log"));
        for name in &self.env_remove {
            cmd.env_remove(name);
        }
        for (name, value) in &self.env {
            cmd.env(name, value);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", crate::tessera_bin().display()));
        Spawned {
            child,
            addr: listen,
            stdout_path,
            stderr_path,
            dir,
        }
    }

    /// Starts the host and waits until `GET /health` answers 200. Panics (with the host's
    /// output) if it exits or does not become healthy within [`START_TIMEOUT`].
    pub fn start(self) -> TestHost {
        let mut spawned = self.spawn();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = spawned.child.try_wait() {
                panic!(
                    "tessera up exited with {status} before becoming healthy:\n{}",
                    spawned.output()
                );
            }
            if let Ok(r) = Request::new("GET", "/health").send(spawned.addr)
                && r.status == 200
            {
                break;
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = spawned.child.kill();
                let _ = spawned.child.wait();
                panic!(
                    "tessera up did not answer GET /health within {START_TIMEOUT:?}:\n{}",
                    spawned.output()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "tessera up healthy on {} after {:.1}s",
            spawned.addr,
            started.elapsed().as_secs_f64()
        );
        TestHost { spawned }
    }

    /// Runs the host expecting it to exit by itself (a start-up error) within `timeout`.
    pub fn run_to_exit(self, timeout: Duration) -> Exited {
        let mut spawned = self.spawn();
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Ok(Some(status)) = spawned.child.try_wait() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = spawned.child.kill();
                let _ = spawned.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Exited {
            status,
            stdout: std::fs::read_to_string(&spawned.stdout_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&spawned.stderr_path).unwrap_or_default(),
        }
    }
}

struct Spawned {
    child: Child,
    addr: SocketAddr,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    // Kept for its Drop; holds the manifest and the logs.
    #[allow(dead_code)]
    dir: TempDir,
}

impl Spawned {
    fn output(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "--- stdout ---\n{}--- stderr ---\n{}",
            read(&self.stdout_path),
            read(&self.stderr_path)
        )
    }
}

/// How a host that was expected to fail ended.
#[derive(Debug)]
pub struct Exited {
    /// `None`: it was still running at the timeout (and was killed).
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Exited {
    /// Asserts a non-zero exit and returns stderr+stdout for message checks.
    pub fn expect_failure(&self) -> String {
        match self.status {
            None => panic!(
                "tessera up was expected to fail at start-up but was still running:\n{}\n{}",
                self.stdout, self.stderr
            ),
            Some(s) if s.success() => panic!(
                "tessera up was expected to fail but exited 0:\n{}\n{}",
                self.stdout, self.stderr
            ),
            Some(_) => format!("{}\n{}", self.stderr, self.stdout),
        }
    }
}

/// A running `tessera up`; stopped (SIGTERM, then SIGKILL) on drop.
pub struct TestHost {
    spawned: Spawned,
}

impl TestHost {
    pub fn addr(&self) -> SocketAddr {
        self.spawned.addr
    }

    /// Everything the host printed so far.
    pub fn output(&self) -> String {
        self.spawned.output()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.spawned.stderr_path).unwrap_or_default()
    }

    /// The host's process id (to sample its memory).
    pub fn pid(&self) -> u32 {
        self.spawned.child.id()
    }

    /// Kills the host at once (SIGKILL), as a crash would: nothing is drained or flushed.
    pub fn kill(&mut self) {
        let _ = self.spawned.child.kill();
        let _ = self.spawned.child.wait();
    }

    /// Whether the host process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.spawned.child.try_wait(), Ok(None))
    }

    pub fn send(&self, request: Request<'_>) -> Response {
        let what = format!("{} {}", request.method, request.path);
        request
            .send(self.addr())
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    pub fn get(&self, path: &str) -> Response {
        self.send(Request::new("GET", path))
    }

    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Response {
        Request::new("POST", path)
            .json(body)
            .send(self.addr())
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// Sends raw bytes (for malformed requests).
    pub fn raw(&self, bytes: &[u8]) -> std::io::Result<Response> {
        http::raw(self.addr(), bytes)
    }

    /// Stops the host with SIGTERM and returns its exit status (None if it had to be killed).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let child = &mut self.spawned.child;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "----- host output -----\n{}\n-----------------------",
                self.output()
            );
        }
    }
}

/// `text` with `auth_mode = "<mode>"` in every `[component.<id>.variables]` table that does
/// not set it: test manifests written inline do not map the application variable, and a
/// component without it fails closed to `keys`.
fn with_auth_mode(text: &str, mode: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::with_capacity(text.len() + 256);
    for (i, line) in lines.iter().enumerate() {
        out.push_str(line);
        out.push('\n');
        let header = line.trim();
        if header.starts_with("[component.") && header.ends_with(".variables]") {
            let table_sets_it = lines[i + 1..]
                .iter()
                .take_while(|l| !l.trim_start().starts_with('['))
                .any(|l| l.trim_start().starts_with("auth_mode"));
            if !table_sets_it {
                out.push_str(&format!("auth_mode = \"{mode}\"\n"));
            }
        }
    }
    out
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address")
}
