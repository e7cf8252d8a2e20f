//! Native embedding costs: model load + optimise, latency per query and per passage, and
//! throughput on 32 passages at several batch sizes. Prints medians of wall-clock time and of
//! time on CPU (which leaves out waiting for a core on a busy machine).
//!
//!     taskset -c 1 cargo run --release -p tessera-embedder --example embed_bench
//!
//! Options: `--state-dir DIR` (default: the workspace's `.tessera`), `--quick` (fewer runs).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tessera_embedder::Embedder;
use tessera_embedder::setup::ensure_model;

const WORDS: &str = "A discounted cash flow model projects free cash flow and discounts it at the \
    weighted average cost of capital; the terminal value often dominates, so analysts test the \
    long run growth rate and the discount rate, compare the implied exit multiple with trading \
    comparables, reconcile net debt, minority interests and diluted shares, and document every \
    assumption so that a reviewer can trace each number to its source. Portfolio beta, value at \
    risk, drawdown limits and position sizing keep the risk of a trading book within the mandate \
    while the Sharpe ratio and the information ratio measure what the risk earned.";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let state_dir = args
        .iter()
        .position(|a| a == "--state-dir")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
            crate_dir
                .ancestors()
                .nth(2)
                .unwrap_or(crate_dir)
                .join(".tessera")
        });
    let files = ensure_model(&state_dir)?;
    let onnx = std::fs::read(&files.onnx)?;
    let tokenizer = std::fs::read(&files.tokenizer)?;
    let runs = |full: usize| if quick { full.div_ceil(5) } else { full };

    let load = measure(runs(7), || {
        Embedder::from_bytes(&onnx, &tokenizer).expect("load");
    });
    println!("model load + optimise (from bytes): {load}");
    let embedder = Embedder::from_bytes(&onnx, &tokenizer)?;

    let query = text_of_tokens(
        &embedder,
        "What is the Sharpe ratio of a leveraged equity portfolio",
        12,
    )?;
    let passage = text_of_tokens(&embedder, WORDS, 128)?;
    let long = text_of_tokens(&embedder, &WORDS.repeat(3), 256)?;
    for (label, text, n) in [
        ("query", &query, runs(30)),
        ("passage", &passage, runs(30)),
        ("passage", &long, runs(15)),
    ] {
        let tokens = embedder.count_tokens(text)?;
        let t = measure(n, || {
            embedder.embed_one(text).expect("embed");
        });
        println!("{label} of {tokens} tokens, one call: {t} (median of {n})");
    }

    // 32 different 128-token passages (rotated word order), embedded in one `embed` call.
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let passages: Vec<String> = (0..32)
        .map(|i| {
            let rotated: Vec<&str> = words[i..].iter().chain(&words[..i]).copied().collect();
            text_of_tokens(&embedder, &rotated.join(" "), 128)
        })
        .collect::<anyhow::Result<_>>()?;
    for batch_size in [1, 2, 4, 8, 32] {
        let e = embedder.clone().with_batch_size(batch_size);
        let t = measure(runs(7), || {
            e.embed(&passages).expect("embed");
        });
        let per_second = |d: Duration| 32.0 / d.as_secs_f64();
        println!(
            "32 passages of 128 tokens, batch size {batch_size:>2}: {t}; {:.1} passages/s wall{}",
            per_second(t.wall),
            t.cpu
                .map(|c| format!(", {:.1} per CPU-second", per_second(c)))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// The longest prefix of `words` (repeated as needed) that tokenizes to at most `tokens`.
fn text_of_tokens(embedder: &Embedder, words: &str, tokens: usize) -> anyhow::Result<String> {
    let all: Vec<&str> = words.split_whitespace().cycle().take(tokens * 2).collect();
    let mut best = String::new();
    for n in 1..=all.len() {
        let candidate = all[..n].join(" ");
        if embedder.count_tokens(&candidate)? > tokens {
            break;
        }
        best = candidate;
    }
    Ok(best)
}

/// Time this thread spent on a CPU (Linux `/proc/thread-self/schedstat`, nanoseconds): on a
/// machine shared with other work it leaves out the time the thread waited to be scheduled,
/// which wall-clock time does not. The kernel updates it at scheduler ticks (a few ms), so
/// [`measure`] only reads it around samples of 100 ms or more. `None` elsewhere.
fn on_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Medians over `n` samples of the wall-clock and on-CPU time of one call of `f`; a sample
/// repeats `f` until it has run 100 ms, so short calls are timed in groups.
fn measure(n: usize, mut f: impl FnMut()) -> Timing {
    let t = Instant::now();
    f();
    let once = t.elapsed().max(Duration::from_micros(1));
    let calls = (Duration::from_millis(100).as_secs_f64() / once.as_secs_f64()).ceil() as u32;
    let calls = calls.clamp(1, 1000);
    let mut wall = Vec::with_capacity(n);
    let mut cpu = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let (c, t) = (on_cpu(), Instant::now());
        for _ in 0..calls {
            f();
        }
        wall.push(t.elapsed() / calls);
        if let (Some(before), Some(after)) = (c, on_cpu()) {
            cpu.push(after.saturating_sub(before) / calls);
        }
    }
    let mid = |mut v: Vec<Duration>| {
        v.sort();
        v.get(v.len() / 2).copied()
    };
    Timing {
        wall: mid(wall).unwrap_or_default(),
        cpu: mid(cpu),
    }
}

struct Timing {
    wall: Duration,
    cpu: Option<Duration>,
}

impl std::fmt::Display for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} wall", ms(self.wall))?;
        if let Some(cpu) = self.cpu {
            write!(f, ", {} on CPU", ms(cpu))?;
        }
        Ok(())
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}
