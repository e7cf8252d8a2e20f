//! Pre-trade risk: a proposed trade against an account and the tenant's limits gives a
//! verdict — `approve`, `approve_with_warnings` or `reject` — with every reason (a stable
//! code, the limit, the value and a message).
//!
//! Hard constraints reject; nothing in the input can turn one off: [`evaluate`] takes no
//! flag, and the request types refuse fields they do not know (an `override` is a 400, not a
//! pass). Only the tenant's limits, set through their own endpoint, change what is allowed.

mod changes;
mod input;
mod rules;

pub use changes::{DEFAULT_THRESHOLD_PCT, PositionChange, large_position_changes};
pub use input::{Account, InvalidInput, Position, ProposedTrade, RiskLimits, Side, SimilarTrade};
pub use rules::{Exposure, Reason, Severity, Verdict, VerdictKind, evaluate};
