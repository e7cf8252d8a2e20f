//! The validator's domain logic, with no I/O (it builds for wasm32-wasip2 and natively):
//!
//! - [`formula`]: spreadsheet formulas — parser, evaluator, sheets in dependency order;
//! - [`finance`]: NPV, IRR, XNPV, XIRR, PMT, PV, FV, RATE with spreadsheet semantics;
//! - [`trade`]: pre-trade risk rules and the verdict;
//! - [`breaker`]: the trading circuit breaker's state machine and auto-resume check;
//! - [`model`]: DCF and LBO model checks;
//! - [`limits`]: bounds on the work any input can cause;
//! - [`queries`]: the breaker's SQL text, shared by the HTTP and cron components.

pub mod breaker;
pub mod finance;
pub mod formula;
pub mod limits;
pub mod model;
pub mod queries;
pub mod trade;
