use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = tessera_worker::config::Config::parse();
    if let Err(e) = tessera_worker::run(config).await {
        eprintln!("tessera-worker: error: {e:#}");
        std::process::exit(1);
    }
}
