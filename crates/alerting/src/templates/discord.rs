//! Discord "Execute Webhook" body: a one-line `content` and one embed per event, within
//! Discord's limits (content 2000 characters, 10 embeds, embed title 256, description 4096,
//! footer 2048, 6000 characters across a message's embeds).

use serde_json::{Value, json};

use super::{headline, labels_line, one_line, payload_text, rfc3339_utc, truncate_chars};
use crate::event::Severity;
use crate::grouping::Notification;

pub const CONTENT_MAX: usize = 2000;
pub const EMBEDS_MAX: usize = 10;
pub const TITLE_MAX: usize = 256;
pub const DESCRIPTION_MAX: usize = 4096;
pub const FOOTER_MAX: usize = 2048;
pub const EMBEDS_TOTAL_MAX: usize = 6000;
/// Kept back from a description's cut so the closing code fence always fits.
const FENCE_RESERVE: usize = 8;

fn color(severity: Severity) -> u32 {
    match severity {
        Severity::Info => 0x3498db,
        Severity::Warning => 0xf1c40f,
        Severity::Critical => 0xe74c3c,
    }
}

pub fn body(n: &Notification) -> Value {
    let mut embeds = Vec::new();
    let mut used = 0usize;
    for e in &n.events {
        if embeds.len() == EMBEDS_MAX {
            break;
        }
        let title = truncate_chars(&one_line(e.title()), TITLE_MAX).into_owned();
        let footer = truncate_chars(&e.event_type, FOOTER_MAX).into_owned();
        let budget_left = EMBEDS_TOTAL_MAX.saturating_sub(used);
        let fixed = title.chars().count() + footer.chars().count();
        if fixed >= budget_left {
            break;
        }
        let description = description(e, DESCRIPTION_MAX.min(budget_left - fixed));
        used += fixed + description.chars().count();
        embeds.push(json!({
            "title": title,
            "description": description,
            "color": color(e.severity),
            "timestamp": rfc3339_utc(e.occurred_at_ms),
            "footer": { "text": footer },
        }));
    }
    let mut content = headline(n);
    let hidden = n.events.len() - embeds.len();
    if hidden > 0 {
        content.push_str(&format!(" (+{hidden} not shown)"));
    }
    json!({
        "content": truncate_chars(&content, CONTENT_MAX),
        "embeds": embeds,
        // Event text must never ping @everyone or a role.
        "allowed_mentions": { "parse": [] },
    })
}

/// Labels, then the payload in a code block; cut to `max` characters with the fence kept.
fn description(e: &crate::event::Event, max: usize) -> String {
    let mut text = labels_line(e);
    if let Some(payload) = payload_text(e) {
        let room = max.saturating_sub(text.chars().count() + FENCE_RESERVE);
        if room > 0 {
            // "```" inside the payload would close the block early.
            let payload = payload.replace("```", "'''");
            text.push_str(&format!(
                "\n```json\n{}\n```",
                truncate_chars(&payload, room.saturating_sub(FENCE_RESERVE))
            ));
        }
    }
    truncate_chars(&text, max).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::test_event;
    use crate::templates::test_notification;

    fn chars(v: &Value) -> usize {
        v.as_str().unwrap().chars().count()
    }

    #[test]
    fn one_event() {
        let mut e = test_event("price.move", &[("symbol", "AAPL")]);
        e.summary = Some("AAPL up 6.2 %".into());
        e.payload = json!({"change": 0.062});
        e.occurred_at_ms = 1_614_265_330_000;
        let body = body(&test_notification(vec![e]));
        assert_eq!(body["content"], "[WARNING] AAPL up 6.2 %");
        assert_eq!(body["allowed_mentions"], json!({"parse": []}));
        let embed = &body["embeds"][0];
        assert_eq!(embed["title"], "AAPL up 6.2 %");
        assert_eq!(
            embed["description"],
            "symbol=AAPL\n```json\n{\n  \"change\": 0.062\n}\n```"
        );
        assert_eq!(embed["color"], 0xf1c40f);
        assert_eq!(embed["timestamp"], "2021-02-25T15:02:10.000Z");
        assert_eq!(embed["footer"]["text"], "price.move");
    }

    #[test]
    fn limits_hold_for_huge_events() {
        let events: Vec<_> = (0..12)
            .map(|i| {
                let mut e = test_event("t", &[("i", &i.to_string())]);
                e.summary = Some("€".repeat(300));
                e.payload = json!({ "text": "😀".repeat(5000) });
                e
            })
            .collect();
        let body = body(&test_notification(events));
        let embeds = body["embeds"].as_array().unwrap();
        assert!(embeds.len() <= EMBEDS_MAX);
        let mut total = 0;
        for embed in embeds {
            assert_eq!(chars(&embed["title"]), TITLE_MAX);
            assert!(chars(&embed["description"]) <= DESCRIPTION_MAX);
            // The code block survives the cut.
            assert!(embed["description"].as_str().unwrap().ends_with("\n```"));
            total += chars(&embed["title"]) + chars(&embed["description"]) + 1;
        }
        assert!(total <= EMBEDS_TOTAL_MAX, "{total}");
        // 256 + 1 + 4096 per full embed: one full, the second cut to the budget, no third.
        assert_eq!(embeds.len(), 2);
        assert_eq!(
            body["content"],
            "[WARNING] 12 alerts: moves (+10 not shown)"
        );
        assert!(chars(&body["content"]) <= CONTENT_MAX);
    }
}
