//! The SQL of the two search sides, as text: the kb component runs it, and the kb benchmark
//! runs the same text under `EXPLAIN (ANALYZE, BUFFERS)` to show each plan.
//!
//! Both take the filters as an SQL predicate over `kb_chunks` columns whose first parameter
//! is `$2` (`tenant_id = $2`, then scope and metadata clauses); `$1` is the query: its vector
//! as pgvector text for the vector side, its text for the text side. The text side also
//! hands the scope and metadata filters to `kb_text_matches` as arguments
//! ([`TextFilters`]), so its bound counts only chunks the search may return.

use crate::bm25;

/// At most this many chunks matching a query word are scored: enough to hold every match
/// of a specific query in a large corpus, a bound on the work for very common words.
/// Measured at 100k chunks (benches/README.md): the text SQL's p50 over the 89 demo
/// questions is 39 ms at 5,000, 16 ms at 2,000 and 9 ms at 1,000; the demo and public
/// evaluation sets rank the same at each, since no word of theirs reaches the bound.
pub const MAX_TEXT_CANDIDATES: usize = 1000;

/// The search's filters as the text side needs them: the predicate over `kb_chunks`
/// columns, and the same scope and metadata filters as SQL arguments of
/// `kb_text_matches` (a parameter such as `$3::text[]`, or `NULL` when there is none).
pub struct TextFilters<'a> {
    pub predicate: &'a str,
    pub scopes: &'a str,
    pub metadata: &'a str,
}

/// Nearest chunks by cosine distance (`id`, `distance`), `depth` of them. Run with
/// `hnsw.iterative_scan` on, pgvector keeps walking the graph until enough rows pass the
/// filters instead of returning fewer than asked.
pub fn vector_side(filters: &str, depth: usize) -> String {
    format!(
        "SELECT id, embedding <=> $1::vector AS distance FROM kb_chunks
         WHERE {filters} AND embedding IS NOT NULL
         ORDER BY embedding <=> $1::vector LIMIT {depth}"
    )
}

/// Full text ranked by Okapi BM25 (`id`, `score`), `depth` of them: candidates are chunks
/// the GIN index finds containing a query word (stemmed, stop words dropped, as the stored
/// tsvector), within the filters; each is scored with the tenant's document frequencies and
/// average chunk length (kb_text_stats, kb_term_stats), which triggers keep in step with the
/// chunks.
///
/// Which words fetch candidates: the rarest first, adding the next while the chunks the
/// words already chosen occur in stay under `max_candidates` (the rarest always). A chunk
/// holding only words more common than that has the lowest BM25 weights of all and ranks
/// below those found; every candidate is still scored on all the query's words. A specific
/// query in a large corpus thus reads the few chunks of its rare words instead of every
/// chunk holding a common one.
pub fn text_side(filters: &TextFilters<'_>, depth: usize, max_candidates: usize) -> String {
    let TextFilters {
        predicate,
        scopes,
        metadata,
    } = filters;
    format!(
        "WITH q AS (
            SELECT array_agg(DISTINCT lexeme) AS lexemes
            FROM unnest(to_tsvector('english', $1))),
         stats AS (
            SELECT chunks::float8 AS n,
                   greatest(total_length::float8 / greatest(chunks, 1), 1.0) AS avg_length
            FROM kb_text_stats WHERE tenant_id = $2),
         known AS (
            SELECT t.lexeme, t.chunks,
                   sum(t.chunks) OVER (ORDER BY t.chunks, t.lexeme) AS running
            FROM q, kb_term_stats t
            WHERE t.tenant_id = $2 AND t.lexeme = ANY(q.lexemes)),
         terms AS (
            SELECT k.lexeme,
                   ln(1.0 + (s.n - k.chunks + 0.5) / (k.chunks + 0.5)) AS weight
            FROM known k, stats s),
         -- The rarest words whose chunks stay under the bound, as a tsquery of lexemes
         -- (quoted; one with a backslash, which that syntax escapes differently, is left
         -- to scoring).
         seeds AS (
            SELECT string_agg(quote_literal(lexeme), ' | ')::tsquery AS query
            FROM known
            WHERE running - chunks < {max_candidates} AND strpos(lexeme, chr(92)) = 0),
         cand AS MATERIALIZED (
            -- Each candidate's tsvector cut down to the query's lexemes (marked with weight
            -- A, then filtered), so scoring reads a few entries, not the whole chunk.
            SELECT c.id, c.text_length::float8 AS length,
                   ts_filter(setweight(setweight(c.tsv, 'D'), 'A', q.lexemes), '{{a}}') AS matched
            -- kb_text_matches: the GIN index lookup, which row-level security would
            -- otherwise turn into a scan of the tenant's chunks (migrations/0018), bounded
            -- inside the function (migrations/0020).
            FROM seeds CROSS JOIN q
            CROSS JOIN LATERAL kb_text_matches(seeds.query, {max_candidates}, {scopes}, {metadata}) AS c
            WHERE {predicate})
         SELECT c.id, sum({score}) AS score
         FROM cand c CROSS JOIN stats s
         CROSS JOIN LATERAL (
            SELECT x.lexeme, coalesce(array_length(x.positions, 1), 1)::float8 AS freq
            FROM unnest(c.matched) AS x) AS u
         JOIN terms ON terms.lexeme = u.lexeme
         CROSS JOIN LATERAL (SELECT terms.weight, u.freq, c.length, s.avg_length)
            AS v(idf, tf, len, avgdl)
         GROUP BY c.id ORDER BY score DESC, c.id LIMIT {depth}",
        score = bm25::sql_term_score(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The highest `$n` a statement uses.
    fn last_parameter(sql: &str) -> usize {
        sql.split('$')
            .skip(1)
            .filter_map(|s| {
                let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
                digits.parse().ok()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn filters_and_limits_land_where_they_belong() {
        let filters = "tenant_id = $2 AND scope = ANY($3::text[])";
        let text = text_side(
            &TextFilters {
                predicate: filters,
                scopes: "$3::text[]",
                metadata: "NULL",
            },
            40,
            1234,
        );
        assert!(text.contains(&format!("WHERE {filters})")), "{text}");
        assert!(
            text.contains("kb_text_matches(seeds.query, 1234, $3::text[], NULL)"),
            "{text}"
        );
        assert!(text.contains("running - chunks < 1234"), "{text}");
        assert!(text.ends_with("LIMIT 40"), "{text}");
        assert_eq!(last_parameter(&text), 3);

        let vector = vector_side(filters, 10);
        assert!(vector.contains(filters), "{vector}");
        assert!(vector.ends_with("LIMIT 10"), "{vector}");
        assert_eq!(last_parameter(&vector), 3);
    }
}
