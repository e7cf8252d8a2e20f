//! `tessera-bench`: benchmarks that start the real parts (host, database, components), drive
//! them with a load tool and print medians. Run through `cargo xtask bench <scenario>`, which
//! builds everything and provides the database; results go to benches/README.md.

mod alerts;
mod alerts_outage;
mod bm25_reference;
mod chat;
mod cpu;
mod embed;
mod host;
mod kb;
mod kb_ingest;
mod picker;
mod proc;
mod receiver;
mod startup;
mod stats;
mod validator;
mod wrk;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tessera-bench",
    about = "Tessera benchmarks (see benches/README.md)"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// hello on `tessera up` against `wasmtime serve` and a plain hyper server; idle RSS.
    Host(host::HostArgs),
    /// The embedding worker (tract, optionally onnxruntime) against sentence-transformers.
    Embed(embed::EmbedArgs),
    /// Recall@5/10, MRR@10 and nDCG@10 of vector, text and hybrid search on the demo
    /// evaluation set, beside an independent BM25 reference.
    KbEval(kb::EvalArgs),
    /// Query embedding in the component vs natively, ingest throughput, search latency and
    /// HNSW recall over a large corpus.
    Kb(kb::KbArgs),
    /// Bulk ingest through the embedding worker (NDJSON until every document is ready)
    /// against sentence-transformers encoding the same chunks.
    KbIngest(kb_ingest::KbIngestArgs),
    /// The chat step (issue 5): local-mode turn, gateway overhead against the provider double,
    /// cache hits, and paid tokens of the progressive protocol against a single-shot prompt.
    Chat(chat::ChatArgs),
    /// The validator (issue 14): trade validation with the similar-setup search over 100k
    /// stored trade embeddings, and a 10,000-cell formula sheet.
    Validator(validator::ValidatorArgs),
    /// Alerts (issue 15): event → first delivery attempt, the dispatcher's drain of a
    /// backlog, and inbound signed webhooks verified and stored.
    Alerts(alerts::AlertsArgs),
    /// Alerts through a real receiver outage (issue 15): alerts raised while the endpoint is
    /// down for `--outage-s` (300), the production retry schedule, then exactly once and in
    /// order after it recovers.
    AlertsOutage(alerts_outage::OutageArgs),
    /// The picker (issue 13): bulk bar ingest, a discovery run over 500 symbols, suggestion
    /// reads, and a walk-forward backtest of the pickers and the ensemble.
    Picker(picker::PickerArgs),
    /// Start-up (issue 17): process start to the first answer with the whole spin.toml, with
    /// a warm compile cache and with an empty one (each component's compile time).
    Startup(startup::StartupArgs),
    /// Serves `hello from tessera` from plain hyper (the no-Wasm baseline), until killed.
    Baseline {
        #[arg(long)]
        listen: std::net::SocketAddr,
    },
}

fn main() -> Result<()> {
    match Cli::parse().scenario {
        Scenario::Host(args) => host::run(args),
        Scenario::Embed(args) => embed::run(args),
        Scenario::KbEval(args) => kb::eval(args),
        Scenario::Kb(args) => kb::run(args),
        Scenario::KbIngest(args) => kb_ingest::run(args),
        Scenario::Chat(args) => chat::run(args),
        Scenario::Validator(args) => validator::run(args),
        Scenario::Picker(args) => picker::run(args),
        Scenario::Alerts(args) => alerts::run(args),
        Scenario::Startup(args) => startup::run(args),
        Scenario::AlertsOutage(args) => alerts_outage::run(args),
        Scenario::Baseline { listen } => host::serve_baseline(listen),
    }
}
