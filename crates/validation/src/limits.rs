//! Bounds on the work any input can cause, and which one was hit.

use serde::Serialize;

/// Spreadsheet-like bounds: Excel allows 8,192 characters and 64 nested functions in a
/// formula; the rest keep one request's work small whatever it contains.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Characters in one cell's formula.
    pub formula_length: usize,
    /// Tokens in one formula.
    pub tokens: usize,
    /// Nested parentheses, function arguments and signs in one formula.
    pub depth: usize,
    /// Height of a formula's tree (operators chain: `1+1+…` is as deep as it is long).
    pub tree_height: usize,
    /// Cells in one request.
    pub cells: usize,
    /// Cells read through ranges while building the graph and evaluating, in total.
    pub range_reads: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            formula_length: 8_192,
            tokens: 4_096,
            depth: 64,
            tree_height: 512,
            cells: 20_000,
            range_reads: 5_000_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitHit {
    /// `formula_length`, `tokens`, `depth`, `tree_height`, `cells` or `range_reads`.
    pub limit: &'static str,
    pub max: usize,
}
