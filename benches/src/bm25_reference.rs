//! An Okapi BM25 ranker written for the benchmark alone (not the kb's code), the yardstick
//! the kb's text side must match: the same passages, tokenised by Postgres's `english`
//! configuration (stemming and stop words, asked of the database with plain SQL), scored
//! here with k1 = 1.2, b = 0.75 and Lucene's non-negative idf.

use anyhow::Result;
use std::collections::HashMap;
use tessera_e2e::TestDb;

const K1: f64 = 1.2;
const B: f64 = 0.75;

pub struct Bm25Reference {
    /// (chunk id, document label, term → frequency, length in tokens)
    passages: Vec<(i64, String, HashMap<String, f64>, f64)>,
    df: HashMap<String, f64>,
    avg_length: f64,
}

/// A SQL string literal (standard_conforming_strings is on).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl Bm25Reference {
    /// Every chunk of `tenant`, labelled with its document's `metadata->>'doc'`.
    pub fn load(db: &TestDb, tenant: &str) -> Result<Bm25Reference> {
        let rows = db
            .query(&format!(
                "SELECT c.id, coalesce(d.metadata->>'doc', ''), u.lexeme,
                        coalesce(array_length(u.positions, 1), 1)
                 FROM kb_chunks c JOIN kb_documents d ON d.id = c.document_id,
                      unnest(to_tsvector('english', c.heading || E'\\n' || c.content)) AS u
                 WHERE c.tenant_id = {}",
                literal(tenant)
            ))
            .map_err(anyhow::Error::msg)?;
        let mut by_id: HashMap<i64, (String, HashMap<String, f64>)> = HashMap::new();
        for row in &rows {
            let entry = by_id
                .entry(row.get::<_, i64>(0))
                .or_insert_with(|| (row.get::<_, String>(1), HashMap::new()));
            entry
                .1
                .insert(row.get::<_, String>(2), f64::from(row.get::<_, i32>(3)));
        }
        let mut passages: Vec<_> = by_id
            .into_iter()
            .map(|(id, (doc, terms))| {
                let length = terms.values().sum();
                (id, doc, terms, length)
            })
            .collect();
        passages.sort_by_key(|p| p.0);
        let mut df: HashMap<String, f64> = HashMap::new();
        for (_, _, terms, _) in &passages {
            for term in terms.keys() {
                *df.entry(term.clone()).or_default() += 1.0;
            }
        }
        let avg_length = passages.iter().map(|p| p.3).sum::<f64>() / passages.len().max(1) as f64;
        Ok(Bm25Reference {
            passages,
            df,
            avg_length,
        })
    }

    pub fn passages(&self) -> usize {
        self.passages.len()
    }

    /// The query's terms as Postgres analyses them (distinct).
    pub fn query_terms(db: &TestDb, query: &str) -> Result<Vec<String>> {
        Ok(db
            .query(&format!(
                "SELECT lexeme FROM unnest(to_tsvector('english', {}))",
                literal(query)
            ))
            .map_err(anyhow::Error::msg)?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect())
    }

    /// Document labels of the best `depth` passages, best first (ties by chunk id).
    pub fn rank(&self, terms: &[String], depth: usize) -> Vec<String> {
        let n = self.passages.len() as f64;
        let mut scored: Vec<(f64, i64, &str)> = self
            .passages
            .iter()
            .filter_map(|(id, doc, tf, length)| {
                let mut score = 0.0;
                for term in terms {
                    let Some(&f) = tf.get(term) else { continue };
                    let df = self.df.get(term).copied().unwrap_or(0.0);
                    let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                    score +=
                        idf * f * (K1 + 1.0) / (f + K1 * (1.0 - B + B * length / self.avg_length));
                }
                (score > 0.0).then_some((score, *id, doc.as_str()))
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored
            .into_iter()
            .take(depth)
            .map(|(_, _, doc)| doc.to_string())
            .collect()
    }
}
