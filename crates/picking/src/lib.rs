//! Picker domain logic for Tessera: every rule behind symbol discovery, with no I/O.
//!
//! `functions/picker` is a thin adapter from HTTP and cron to these functions and to storage.
//! Time and randomness are always parameters (a [`date::Timestamp`], a [`date::Date`], a seed),
//! so every score and statistic is reproducible; the crate builds for `wasm32-wasip2`.
//!
//! # Modules and their public API
//!
//! - [`date`]: [`date::Date`] (civil day, `"YYYY-MM-DD"` in JSON; `from_ymd`, `weekday`,
//!   `add_days`, `nth_weekday`, `last_weekday`, `from_timestamp`, `midnight_utc`) and
//!   [`date::Timestamp`] (Unix seconds, UTC).
//! - [`market`]: [`market::Symbol`] (fundamentals optional, `generated` flag, `validate`),
//!   [`market::Interval`] (`1m`/`1d`), [`market::Bar`], and [`market::BarRow::validate`], which
//!   turns an incoming row into a `Bar` or a [`market::FieldError`] naming the field
//!   (non-finite/negative numbers, high < low, open/close outside [low, high], unknown
//!   interval, time off the grid: whole minutes for `1m`, 00:00 UTC of the trading date for
//!   `1d`). Whether the symbol exists is the adapter's check.
//! - [`calendar`]: [`calendar::TradingCalendar`] (`is_trading_day`, `next_trading_day`,
//!   `previous_trading_day`, `add_trading_days`, `trading_days`) and [`calendar::Nyse`]
//!   (`holiday`, `is_early_close`, `session_utc`, `is_market_open`), holidays by rule and
//!   DST by the US rule; [`calendar::easter_sunday`], [`calendar::new_york_utc_offset`].
//! - [`indicators`]: `average_volume`, `average_dollar_volume`, `realised_volatility`
//!   (annualised, √252), `momentum`, `beta`, `max_drawdown`, `current_drawdown`,
//!   `align_closes`; [`indicators::SymbolFeatures::from_bars`] with
//!   [`indicators::FeatureWindows`].
//! - [`pick`]: the shared vocabulary — [`pick::PickerId`], [`pick::Verdict`]
//!   (pass/fail/unavailable), [`pick::Reason`] (code, value, threshold, message),
//!   [`pick::SymbolScore`], [`pick::PickerOutput`], [`pick::Candidate`] (symbol + features;
//!   [`pick::Candidate::as_of`] builds it from the bars known on a day), [`pick::Portfolio`].
//! - [`conditions`]: [`conditions::MarketConditions::from_bars`] (index trend, realised
//!   volatility, breadth, sector returns as of a day) and its `describe` line for prompts and
//!   embeddings.
//! - [`metric`]: [`metric::MetricPicker`] with [`metric::MetricCriteria`] (volume, spread,
//!   market-cap and beta ranges); unknown inputs make a symbol `Unavailable` with `missing`.
//! - [`fuzzy`]: [`fuzzy::FuzzyPicker`] with [`fuzzy::FuzzyConfig`] ([`fuzzy::Membership`]
//!   trapezoids/triangles, [`fuzzy::FuzzyWeights`]) and the adjustment from
//!   [`fuzzy::SimilarTrade`]s, shown as a reason.
//! - [`llm`]: [`llm::build_prompt`] from an [`llm::LlmContext`] (portfolio, market
//!   conditions, similar past conditions and what followed, candidates) and
//!   [`llm::parse_answer`], the strict schema check whose [`llm::AnswerError`] gives the
//!   `repair_message` for the one repair attempt.
//! - [`ensemble`]: [`ensemble::EnsembleCombiner::combine`] — weighted merge with
//!   renormalisation over missing pickers, dedupe, deterministic ranking, and
//!   [`ensemble::Divergence`] records.
//! - [`discovery`]: [`discovery::DiscoverySettings`] (per tenant, checked field by field),
//!   [`discovery::select_suggestions`] (the ensemble's and each picker's top symbols, with
//!   their sources), candidate/trade descriptions for embeddings, and
//!   [`discovery::equal_weight_index`].
//! - [`watchlist`]: [`watchlist::Watchlist`] (`add_manual`, `remove`, `merge_discovered`),
//!   eviction by ensemble score, manual entries never evicted, every change a
//!   [`watchlist::Change`].
//! - [`forward`]: [`forward::forward_returns`] / [`forward::forward_return`] (1/5/20 trading
//!   days, entry at the close of the first trading day after the suggestion, no look-ahead)
//!   and [`forward::universe_forward_return`] (the equal-weight benchmark).
//! - [`scorecard`]: [`scorecard::scorecard`] per source (count, win rate, mean/median return,
//!   mean excess over the universe, bootstrap intervals) and [`scorecard::bootstrap_mean_ci`].
//! - [`schedule`]: [`schedule::due_jobs`], which of the picker's jobs (snapshot,
//!   discovery every four session hours, nightly forward returns) an hourly cron tick runs.
//! - [`synth`]: [`synth::generate`] a seeded universe from [`synth::SynthParams`]
//!   (calibration documented there); generated symbols are marked `generated`.
//! - [`sampledata`]: [`sampledata::parse_stocks_csv`], the real daily series of the PyPI
//!   wheel `bokeh_sampledata` (split- and dividend-adjusted), marked real.
//! - [`rng`]: [`rng::SeededRng`], the ChaCha8 stream used by `synth` and the bootstrap.

pub mod calendar;
pub mod conditions;
pub mod date;
pub mod discovery;
pub mod ensemble;
pub mod forward;
pub mod fuzzy;
pub mod indicators;
pub mod llm;
pub mod market;
pub mod metric;
pub mod pick;
pub mod rng;
pub mod sampledata;
pub mod schedule;
pub mod scorecard;
pub mod synth;
pub mod watchlist;
