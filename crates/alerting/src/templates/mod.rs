//! Per-channel request bodies for a [`Notification`]: Discord and Slack webhooks, Postmark
//! e-mail and the generic (Standard Webhooks) JSON. Each module knows its channel's limits;
//! text is cut only between characters, never inside one.

pub mod discord;
pub mod email;
pub mod slack;
pub mod webhook;

use std::borrow::Cow;

use crate::event::{Event, Severity};
use crate::grouping::Notification;

const ELLIPSIS: char = '…';

/// `text` cut to at most `max_chars` characters (Unicode scalar values), ending in `…` when
/// cut. Slicing at a `char_indices` boundary is what keeps UTF-8 whole.
pub fn truncate_chars(text: &str, max_chars: usize) -> Cow<'_, str> {
    if max_chars == 0 {
        return Cow::Borrowed("");
    }
    match text.char_indices().nth(max_chars) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let keep = text
                .char_indices()
                .nth(max_chars - 1)
                .map_or(text.len(), |(i, _)| i);
            let mut out = String::with_capacity(keep + ELLIPSIS.len_utf8());
            out.push_str(&text[..keep]);
            out.push(ELLIPSIS);
            Cow::Owned(out)
        }
    }
}

/// The highest severity among the notification's events.
pub fn severity(n: &Notification) -> Severity {
    n.events
        .iter()
        .map(|e| e.severity)
        .max()
        .unwrap_or(Severity::Info)
}

/// One line naming the notification: the event's title, or a count for a group.
pub fn headline(n: &Notification) -> String {
    let sev = severity(n).as_str().to_ascii_uppercase();
    match n.events.as_slice() {
        [one] => format!("[{sev}] {}", one_line(one.title())),
        many => {
            let labels: Vec<String> = n
                .group_labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let scope = if labels.is_empty() {
                n.rule_id.clone()
            } else {
                labels.join(", ")
            };
            format!("[{sev}] {} alerts: {}", many.len(), one_line(&scope))
        }
    }
}

/// Newlines and other control characters become spaces (titles and subjects are one line).
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The event's labels as `name=value` pairs, sorted.
pub fn labels_line(e: &Event) -> String {
    e.labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The payload, pretty-printed, or nothing for `null`.
pub fn payload_text(e: &Event) -> Option<String> {
    (!e.payload.is_null()).then(|| serde_json::to_string_pretty(&e.payload).unwrap_or_default())
}

/// RFC 3339 UTC with milliseconds, from unix milliseconds (`1970-01-01T00:00:00.000Z`).
pub fn rfc3339_utc(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let millis = unix_ms.rem_euclid(1000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
pub(crate) fn test_notification(events: Vec<Event>) -> Notification {
    use crate::grouping::NotificationKind;
    Notification {
        group_key: "moves:{}".into(),
        rule_id: "moves".into(),
        group_labels: Default::default(),
        kind: NotificationKind::Initial,
        new_count: events.len(),
        events,
        at_ms: 1_614_265_330_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::test_event;

    #[test]
    fn truncation_never_splits_a_character() {
        assert_eq!(truncate_chars("hello", 5), "hello");
        assert_eq!(truncate_chars("hello!", 5), "hell…");
        // "é" is 2 bytes, "€" 3, "😀" 4: counted as one character each.
        assert_eq!(truncate_chars("ééé€😀x", 6), "ééé€😀x");
        assert_eq!(truncate_chars("ééé€😀x", 5), "ééé€…");
        assert_eq!(truncate_chars("😀😀", 1), "…");
        assert_eq!(truncate_chars("abc", 0), "");
        assert!(matches!(truncate_chars("abc", 3), Cow::Borrowed(_)));
    }

    #[test]
    fn rfc3339_from_unix_millis() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
        // date -u -d @1614265330 → 2021-02-25 15:02:10 UTC
        assert_eq!(rfc3339_utc(1_614_265_330_123), "2021-02-25T15:02:10.123Z");
        // A leap day, and the day before the epoch.
        assert_eq!(rfc3339_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn headlines() {
        let mut one = test_event("price.move", &[("symbol", "AAPL")]);
        one.summary = Some("AAPL up 6.2 %\nin 15 min".into());
        assert_eq!(
            headline(&test_notification(vec![one.clone()])),
            "[WARNING] AAPL up 6.2 % in 15 min"
        );
        let mut two = test_event("price.move", &[("symbol", "MSFT")]);
        two.severity = Severity::Critical;
        let mut n = test_notification(vec![one, two]);
        assert_eq!(headline(&n), "[CRITICAL] 2 alerts: moves");
        n.group_labels.insert("type".into(), "price.move".into());
        assert_eq!(headline(&n), "[CRITICAL] 2 alerts: type=price.move");
    }
}
