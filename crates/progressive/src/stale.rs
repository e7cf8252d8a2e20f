//! Turns that will never finish. A turn writes its message and steps as it runs; when it is
//! cut off — the host's request deadline traps the instance, the client disconnects while
//! the instance is gone, the host crashes — nothing is left to mark them, and a message
//! stuck `running` would refuse every later post to its conversation (409). A running
//! message not touched for longer than any request may live is therefore dead: it is
//! marked failed (its running steps failed, its pending ones skipped) with
//! [`REASON`], by the chat component before a new post or edit in that conversation and by
//! the `chat-sweep` cron component every minute for all of them.

/// Seconds after which a running turn is stale: a little over the host's request timeout
/// (30 s, which also ends a streamed answer), so no live turn is ever closed.
pub const DEFAULT_STALE_AFTER_S: u32 = 45;

/// The error stored on a closed turn's message and steps.
pub const REASON: &str =
    "the turn was cut off before it finished (request deadline, disconnect or host restart)";

/// The threshold from the variable's text: empty means [`DEFAULT_STALE_AFTER_S`]; otherwise
/// whole seconds from 1 to a day.
pub fn stale_after(text: &str) -> Result<u32, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(DEFAULT_STALE_AFTER_S);
    }
    text.parse::<u32>()
        .ok()
        .filter(|s| (1..=86_400).contains(s))
        .ok_or_else(|| format!("{text:?} is not a number of seconds from 1 to 86400"))
}

/// Closes stale turns in one statement (so a message is never failed with its steps left
/// running). `$1`: the threshold in seconds (int4), `$2`: the reason; with `conversation`,
/// `$3` (a uuid as text) limits it to that conversation. Answers one row: messages closed,
/// steps closed.
pub fn close_sql(conversation: bool) -> String {
    let only = if conversation {
        " AND conversation_id = $3::uuid"
    } else {
        ""
    };
    format!(
        "WITH stale AS (
             UPDATE messages SET status = 'failed', error = $2, updated_at = now()
             WHERE status = 'running' AND updated_at < now() - $1::int4 * interval '1 second'{only}
             RETURNING id
         ), closed AS (
             UPDATE steps SET status = CASE WHEN status = 'running' THEN 'failed' ELSE 'skipped' END,
                 error = coalesce(error, $2), finished_at = now(),
                 duration_ms = (extract(epoch FROM now() - started_at) * 1000)::int4
             WHERE message_id IN (SELECT id FROM stale) AND status IN ('pending', 'running')
             RETURNING 1
         )
         SELECT (SELECT count(*) FROM stale)::int8, (SELECT count(*) FROM closed)::int8"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        assert_eq!(stale_after(""), Ok(DEFAULT_STALE_AFTER_S));
        assert_eq!(stale_after(" 90 "), Ok(90));
        for bad in ["0", "-1", "1.5", "abc", "86401"] {
            assert!(stale_after(bad).is_err(), "{bad}");
        }
        // Never at or below the host's 30 s request timeout by default.
        const { assert!(DEFAULT_STALE_AFTER_S > 30) };
    }

    #[test]
    fn one_statement_for_all_or_one_conversation() {
        let all = close_sql(false);
        let one = close_sql(true);
        assert!(!all.contains("$3"));
        assert!(one.contains("conversation_id = $3::uuid"));
        for sql in [&all, &one] {
            assert!(sql.contains("status = 'running'") && sql.contains("$1::int4"));
            assert!(sql.contains("message_id IN (SELECT id FROM stale)"));
        }
    }
}
