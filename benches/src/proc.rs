//! Child processes under measurement: started, waited for, measured (RSS), stopped.

use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process killed on drop.
pub struct Server {
    pub name: &'static str,
    pub addr: SocketAddr,
    /// Where its stderr goes.
    pub log: std::path::PathBuf,
    child: Child,
}

impl Server {
    /// Spawns `cmd` and waits until `GET path` on `addr` answers 200.
    pub fn start(name: &'static str, cmd: Command, addr: SocketAddr, path: &str) -> Result<Self> {
        Self::start_polling(
            name,
            cmd,
            addr,
            path,
            Duration::from_millis(100),
            Duration::from_secs(120),
        )
        .map(|(server, _)| server)
    }

    /// [`Server::start`], asking every `poll` for up to `limit`; also how long it took from
    /// just before the spawn to the first 200.
    pub fn start_polling(
        name: &'static str,
        mut cmd: Command,
        addr: SocketAddr,
        path: &str,
        poll: Duration,
        limit: Duration,
    ) -> Result<(Self, Duration)> {
        // stderr goes to a file: quiet while measuring, readable when start-up fails.
        let log = std::env::temp_dir().join(format!(
            "tessera-bench-{}-{}.log",
            name.replace(' ', "-"),
            addr.port()
        ));
        let stderr =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let started = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name}: {cmd:?}"))?;
        let mut server = Self {
            name,
            addr,
            log: log.clone(),
            child,
        };
        loop {
            if let Some(status) = server.child.try_wait()? {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = text
                    .lines()
                    .rev()
                    .take(10)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                bail!(
                    "{name} exited with {status} before answering; its last lines ({}):\n{}",
                    log.display(),
                    tail.join("\n")
                );
            }
            if let Ok(r) = tessera_e2e::http::Request::new("GET", path).send(addr)
                && r.status == 200
            {
                return Ok((server, started.elapsed()));
            }
            if started.elapsed() > limit {
                bail!(
                    "{name} did not answer GET {path} on {addr} within {} s",
                    limit.as_secs()
                );
            }
            std::thread::sleep(poll);
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Resident set size in MiB, from /proc.
    pub fn rss_mib(&self) -> Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .context("no VmRSS")?
            .parse()?;
        Ok(kb / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local address")
}
