//! Okapi BM25 (Robertson et al., TREC-3), the text side's ranking. The kb computes it in
//! SQL over candidates from the full-text index, with collection statistics it keeps per
//! tenant (migrations/0012_kb_text.sql); these are its parameters and the formula, so
//! the SQL and the tests share one definition.
//!
//! score(d, q) = Σ_{t ∈ q} idf(t) · tf·(k1 + 1) / (tf + k1·(1 − b + b·|d| / avgdl))
//! idf(t) = ln(1 + (N − df + 0.5) / (df + 0.5))   (never negative, as in Lucene)

/// Term-frequency saturation: the usual 1.2.
pub const K1: f64 = 1.2;
/// Length normalisation: the usual 0.75 (0 ignores length, 1 divides by it fully).
pub const B: f64 = 0.75;

/// Inverse document frequency of a term in `df` of `n` chunks.
pub fn idf(n: f64, df: f64) -> f64 {
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// One term's contribution for a chunk of `length` tokens where it occurs `tf` times.
pub fn term_score(idf: f64, tf: f64, length: f64, avg_length: f64) -> f64 {
    let norm = 1.0 - B + B * length / avg_length.max(1.0);
    idf * tf * (K1 + 1.0) / (tf + K1 * norm)
}

/// The same formula as a SQL expression over columns named `idf`, `tf`, `len` and `avgdl`
/// (float8), for the kb's query.
pub fn sql_term_score() -> String {
    format!(
        "idf * tf * {k1p1} / (tf + {K1} * (1 - {B} + {B} * len / avgdl))",
        k1p1 = K1 + 1.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rare_terms_weigh_more_and_idf_is_never_negative() {
        assert!(idf(1000.0, 1.0) > idf(1000.0, 100.0));
        assert!(idf(10.0, 10.0) > 0.0);
        assert!((idf(1.0, 0.0) - (1.0f64 + 1.5 / 0.5).ln()).abs() < 1e-12);
    }

    #[test]
    fn frequency_saturates_and_long_chunks_are_normalised() {
        let one = term_score(1.0, 1.0, 100.0, 100.0);
        let two = term_score(1.0, 2.0, 100.0, 100.0);
        let many = term_score(1.0, 50.0, 100.0, 100.0);
        assert!(two > one && many > two);
        assert!(many < K1 + 1.0, "bounded by k1 + 1");
        // At the average length a single occurrence scores exactly 1 · idf.
        assert!((one - 1.0).abs() < 1e-12);
        assert!(term_score(1.0, 1.0, 400.0, 100.0) < term_score(1.0, 1.0, 50.0, 100.0));
    }

    #[test]
    fn the_sql_expression_names_the_parameters() {
        assert_eq!(
            sql_term_score(),
            "idf * tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * len / avgdl))"
        );
    }
}
