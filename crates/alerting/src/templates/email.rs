//! E-mail through Postmark's HTTP API: the JSON body of `POST https://api.postmarkapp.com/email`
//! (the server token goes in the `X-Postmark-Server-Token` header, added by the adapter).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{headline, labels_line, payload_text, rfc3339_utc, truncate_chars};
use crate::grouping::Notification;

/// Postmark accepts at most 50 recipients across To.
pub const RECIPIENTS_MAX: usize = 50;
/// Kept well inside a header line (RFC 5322 allows 998 characters).
pub const SUBJECT_MAX: usize = 200;
pub const DEFAULT_MESSAGE_STREAM: &str = "outbound";

/// The channel's e-mail settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailChannel {
    /// A sender signature confirmed in Postmark, e.g. `Tessera Alerts <alerts@example.com>`.
    pub from: String,
    pub to: Vec<String>,
    #[serde(default = "default_stream")]
    pub message_stream: String,
}

fn default_stream() -> String {
    DEFAULT_MESSAGE_STREAM.to_string()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailError {
    NoRecipients,
    TooManyRecipients(usize),
}

impl std::fmt::Display for EmailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoRecipients => f.write_str("the e-mail channel has no recipient"),
            Self::TooManyRecipients(n) => {
                write!(f, "{n} recipients; Postmark takes at most {RECIPIENTS_MAX}")
            }
        }
    }
}

impl std::error::Error for EmailError {}

pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn body(n: &Notification, channel: &EmailChannel) -> Result<Value, EmailError> {
    match channel.to.len() {
        0 => return Err(EmailError::NoRecipients),
        k if k > RECIPIENTS_MAX => return Err(EmailError::TooManyRecipients(k)),
        _ => {}
    }
    let subject = headline(n);
    let mut text = String::new();
    let mut html = format!("<h2>{}</h2>\n", escape_html(&subject));
    for e in &n.events {
        let when = rfc3339_utc(e.occurred_at_ms);
        let labels = labels_line(e);
        text.push_str(&format!("{}\n  {} · {}\n", e.title(), e.event_type, when));
        html.push_str(&format!(
            "<h3>{}</h3>\n<p>{} · {}</p>\n",
            escape_html(e.title()),
            escape_html(&e.event_type),
            when
        ));
        if !labels.is_empty() {
            text.push_str(&format!("  {labels}\n"));
            html.push_str(&format!("<p>{}</p>\n", escape_html(&labels)));
        }
        if let Some(payload) = payload_text(e) {
            text.push_str(&format!("{payload}\n"));
            html.push_str(&format!("<pre>{}</pre>\n", escape_html(&payload)));
        }
        text.push('\n');
    }
    text.push_str(&format!("rule {} · group {}\n", n.rule_id, n.group_key));
    Ok(json!({
        "From": channel.from,
        "To": channel.to.join(", "),
        "Subject": truncate_chars(&subject, SUBJECT_MAX),
        "TextBody": text,
        "HtmlBody": html,
        "MessageStream": channel.message_stream,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::test_event;
    use crate::templates::test_notification;

    fn channel(to: &[&str]) -> EmailChannel {
        serde_json::from_value(json!({
            "from": "Tessera <alerts@example.com>",
            "to": to,
        }))
        .unwrap()
    }

    #[test]
    fn postmark_shape() {
        let mut e = test_event("circuit_breaker.tripped", &[("account", "<main>")]);
        e.summary = Some("Breaker tripped: drawdown 5 % > 4 %".into());
        e.occurred_at_ms = 1_614_265_330_000;
        let body = body(
            &test_notification(vec![e]),
            &channel(&["a@example.com", "b@example.com"]),
        )
        .unwrap();
        assert_eq!(body["From"], "Tessera <alerts@example.com>");
        assert_eq!(body["To"], "a@example.com, b@example.com");
        assert_eq!(
            body["Subject"],
            "[WARNING] Breaker tripped: drawdown 5 % > 4 %"
        );
        assert_eq!(body["MessageStream"], "outbound");
        assert_eq!(
            body["TextBody"],
            "Breaker tripped: drawdown 5 % > 4 %\n  circuit_breaker.tripped · \
             2021-02-25T15:02:10.000Z\n  account=<main>\n\nrule moves · group moves:{}\n"
        );
        let html = body["HtmlBody"].as_str().unwrap();
        assert!(html.starts_with("<h2>[WARNING] Breaker tripped: drawdown 5 % &gt; 4 %</h2>"));
        assert!(html.contains("<p>account=&lt;main&gt;</p>"));
        assert!(!html.contains("<main>"));
    }

    #[test]
    fn recipients_are_bounded() {
        let n = test_notification(vec![test_event("t", &[])]);
        assert_eq!(body(&n, &channel(&[])), Err(EmailError::NoRecipients));
        let many: Vec<String> = (0..51).map(|i| format!("u{i}@example.com")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            body(&n, &channel(&many)),
            Err(EmailError::TooManyRecipients(51))
        );
    }

    #[test]
    fn html_escaping() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
