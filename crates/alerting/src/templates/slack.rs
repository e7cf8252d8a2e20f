//! Slack incoming-webhook body: `text` (the notification fallback) and Block Kit `blocks`
//! (a header, a section per event, a context line), within Slack's limits (50 blocks, header
//! text 150 characters, section text 3000).

use serde_json::{Value, json};

use super::{headline, labels_line, one_line, payload_text, truncate_chars};
use crate::grouping::Notification;

pub const BLOCKS_MAX: usize = 50;
pub const HEADER_MAX: usize = 150;
pub const SECTION_MAX: usize = 3000;
/// Slack truncates a message's `text` beyond this.
pub const TEXT_MAX: usize = 40_000;
/// Header, context and the "more" line leave this many blocks for events.
const EVENT_SECTIONS_MAX: usize = BLOCKS_MAX - 3;

/// `&`, `<` and `>` are Slack's control characters in mrkdwn (links, mentions).
pub fn escape_mrkdwn(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn body(n: &Notification) -> Value {
    let head = headline(n);
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": truncate_chars(&head, HEADER_MAX), "emoji": true },
    })];
    for e in n.events.iter().take(EVENT_SECTIONS_MAX) {
        let mut text = format!("*{}*", escape_mrkdwn(&one_line(e.title())));
        let labels = labels_line(e);
        if !labels.is_empty() {
            text.push_str(&format!("\n{}", escape_mrkdwn(&labels)));
        }
        if let Some(payload) = payload_text(e) {
            // Leaves room for the fences; the whole text is cut again below in any case.
            let room = SECTION_MAX.saturating_sub(text.chars().count() + 10);
            let payload = escape_mrkdwn(&payload.replace("```", "'''"));
            text.push_str(&format!("\n```{}```", truncate_chars(&payload, room)));
        }
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": truncate_chars(&text, SECTION_MAX) },
        }));
    }
    let hidden = n.events.len().saturating_sub(EVENT_SECTIONS_MAX);
    if hidden > 0 {
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": format!("…and {hidden} more") },
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{
            "type": "mrkdwn",
            "text": escape_mrkdwn(&format!("rule {} · group {}", n.rule_id, n.group_key)),
        }],
    }));
    json!({
        "text": truncate_chars(&escape_mrkdwn(&head), TEXT_MAX),
        "blocks": blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::test_event;
    use crate::templates::test_notification;

    #[test]
    fn one_event_escaped() {
        let mut e = test_event("system.error", &[("component", "kb")]);
        e.summary = Some("5xx rate > 5% <kb> & chat".into());
        let body = body(&test_notification(vec![e]));
        assert_eq!(
            body["text"],
            "[WARNING] 5xx rate &gt; 5% &lt;kb&gt; &amp; chat"
        );
        let blocks = body["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(
            blocks[0]["text"]["text"],
            "[WARNING] 5xx rate > 5% <kb> & chat"
        );
        assert_eq!(
            blocks[1]["text"]["text"],
            "*5xx rate &gt; 5% &lt;kb&gt; &amp; chat*\ncomponent=kb"
        );
        assert_eq!(
            blocks[2]["elements"][0]["text"],
            "rule moves · group moves:{}"
        );
    }

    #[test]
    fn limits_hold_for_many_large_events() {
        let events: Vec<_> = (0..60)
            .map(|i| {
                let mut e = test_event("t", &[("i", &i.to_string())]);
                e.payload = json!({ "x": "ü".repeat(4000) });
                e
            })
            .collect();
        let body = body(&test_notification(events));
        let blocks = body["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), BLOCKS_MAX);
        assert_eq!(blocks[48]["text"]["text"], "…and 13 more");
        for b in &blocks[1..48] {
            let text = b["text"]["text"].as_str().unwrap();
            assert!(text.chars().count() <= SECTION_MAX);
            assert!(text.ends_with("```"), "the code block is closed");
        }
    }
}
