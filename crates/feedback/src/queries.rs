//! SQL the feedback component (spin-sdk, async) and the feedback-report cron component
//! (wit-bindgen, sync) both run: the same statements behind two Postgres bindings. Every
//! column is read as text or int8, so [`RatedRow`] is filled the same way by both.

use crate::report::{RatedMessage, StepUse};

/// Rated assistant messages of tenant `$1` whose current feedback was given from day `$2`
/// through day `$3` (UTC, inclusive), in scope `$4` (see [`valid_scope`]), most recently
/// rated first; one more than the clustering cap so truncation can be reported.
pub const RATED: &str = "SELECT a.id::text, coalesce(u.content, ''), u.embedding::text,
       (count(*) FILTER (WHERE f.rating = 'up'))::int8,
       (count(*) FILTER (WHERE f.rating = 'down'))::int8,
       a.cost_micros::int8,
       coalesce((SELECT json_agg(json_build_object('kind', s.kind, 'provider', coalesce(s.provider, ''),
                     'model', coalesce(s.model, ''), 'status', s.status, 'cache', s.cache_hit) ORDER BY s.ordinal)
                 FROM steps s WHERE s.message_id = a.id AND s.current), '[]')::text,
       jsonb_array_length(a.sources)::int8,
       coalesce((SELECT json_agg(DISTINCT t) FROM feedback f2, unnest(f2.tags) t
                 WHERE f2.message_id = a.id AND f2.current), '[]')::text
FROM feedback f
JOIN messages a ON a.id = f.message_id
JOIN conversations c ON c.id = a.conversation_id
LEFT JOIN messages u ON u.id = a.reply_to
WHERE f.tenant_id = $1 AND f.current
  AND f.created_at >= ($2::date::timestamp AT TIME ZONE 'UTC')
  AND f.created_at < (($3::date + 1)::timestamp AT TIME ZONE 'UTC')
  AND ($4 = 'all'
       OR ($4 LIKE 'user:%' AND f.user_id = substr($4, 6))
       OR ($4 LIKE 'page:%' AND c.context->>'page' = substr($4, 6)))
GROUP BY a.id, u.id
ORDER BY max(f.created_at) DESC
LIMIT 2001";

/// The stored report for (tenant, scope, from, to, threshold): `report::text, computed_at`.
pub const STORED: &str = "SELECT report::text, to_char(computed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')
FROM feedback_reports WHERE tenant_id = $1 AND scope = $2 AND from_day = $3::date AND to_day = $4::date AND threshold = $5";

/// Stores (or replaces) a report: `$6` is its JSON text.
pub const STORE: &str = "INSERT INTO feedback_reports (tenant_id, scope, from_day, to_day, threshold, report)
VALUES ($1, $2, $3::date, $4::date, $5, $6::jsonb)
ON CONFLICT (tenant_id, scope, from_day, to_day, threshold) DO UPDATE SET report = EXCLUDED.report, computed_at = now()";

/// The default window, the one the nightly run stores: the 30 complete UTC days before
/// today. Columns: from, to, today (all `YYYY-MM-DD`).
pub const DEFAULT_WINDOW: &str = "SELECT (d - 30)::text, (d - 1)::text, d::text FROM (SELECT (now() AT TIME ZONE 'UTC')::date AS d) t";

/// Tenants with current feedback given in days `$1` through `$2`.
pub const TENANTS_WITH_FEEDBACK: &str = "SELECT DISTINCT tenant_id FROM feedback WHERE current
  AND created_at >= ($1::date::timestamp AT TIME ZONE 'UTC') AND created_at < (($2::date + 1)::timestamp AT TIME ZONE 'UTC')";

/// One row of [`RATED`], as read from either binding.
pub struct RatedRow {
    pub message_id: String,
    pub question: String,
    /// pgvector's text form, `[0.1,0.2,…]`.
    pub embedding: Option<String>,
    pub up: i64,
    pub down: i64,
    pub cost_micros: i64,
    /// JSON array of [`StepUse`].
    pub steps: String,
    pub sources: i64,
    /// JSON array of tags.
    pub tags: String,
}

impl RatedRow {
    pub fn into_message(self) -> RatedMessage {
        RatedMessage {
            message_id: self.message_id,
            question: self.question,
            embedding: self.embedding.as_deref().and_then(parse_vector),
            up: self.up.max(0) as usize,
            down: self.down.max(0) as usize,
            cost_micros: self.cost_micros,
            steps: serde_json::from_str::<Vec<StepUse>>(&self.steps).unwrap_or_default(),
            sources: self.sources.max(0) as usize,
            tags: serde_json::from_str(&self.tags).unwrap_or_default(),
        }
    }
}

/// Parses pgvector's text form.
pub fn parse_vector(s: &str) -> Option<Vec<f32>> {
    let inner = s.trim().strip_prefix('[')?.strip_suffix(']')?;
    inner.split(',').map(|x| x.trim().parse().ok()).collect()
}

/// `YYYY-MM-DD`, a real calendar day.
pub fn valid_day(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        s.get(r)
            .filter(|p| p.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|p| p.parse::<u32>().ok())
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d) && y >= 1970
}

/// A report scope: `all`, `user:<id>` (one rater) or `page:/<path>` (conversations opened
/// on one page of a client app).
pub fn valid_scope(s: &str) -> bool {
    if s == "all" {
        return true;
    }
    if let Some(user) = s.strip_prefix("user:") {
        return !user.is_empty()
            && user.len() <= 64
            && user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    }
    s.strip_prefix("page:")
        .is_some_and(|p| p.starts_with('/') && p.len() <= 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_scopes() {
        assert!(valid_day("2024-02-29") && valid_day("2025-12-31"));
        for bad in [
            "2023-02-29",
            "2025-13-01",
            "2025-1-01",
            "2025-01-32",
            "20250101",
            "yesterday",
            "2025-00-10",
            "+025-01-01",
        ] {
            assert!(!valid_day(bad), "{bad}");
        }
        assert!(valid_scope("all") && valid_scope("user:u1") && valid_scope("page:/models/dcf"));
        for bad in ["", "everything", "user:", "user:a b", "page:models"] {
            assert!(!valid_scope(bad), "{bad}");
        }
    }

    #[test]
    fn rows_become_messages() {
        let m = RatedRow {
            message_id: "m".into(),
            question: "q".into(),
            embedding: Some("[0.5,-1,2e-3]".into()),
            up: 1,
            down: 2,
            cost_micros: 7,
            steps: r#"[{"kind":"analysis","provider":"local","model":"x","status":"completed","cache":"miss"}]"#.into(),
            sources: 4,
            tags: r#"["wrong-number"]"#.into(),
        }
        .into_message();
        assert_eq!(m.embedding, Some(vec![0.5, -1.0, 0.002]));
        assert_eq!((m.up, m.down, m.sources, m.steps.len()), (1, 2, 4, 1));
        assert_eq!(m.tags, vec!["wrong-number".to_string()]);
        assert_eq!(parse_vector("nope"), None);
    }
}
