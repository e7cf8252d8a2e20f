//! The generic webhook body, in the envelope Standard Webhooks recommends:
//! `{"type": …, "timestamp": RFC 3339, "data": …}`. Signed by the adapter with
//! [`crate::standard_webhooks::outgoing_headers`] over exactly these bytes.

use serde_json::{Value, json};

use super::rfc3339_utc;
use crate::grouping::Notification;

pub const EVENT_TYPE: &str = "alert.notification";

pub fn body(n: &Notification) -> Value {
    json!({
        "type": EVENT_TYPE,
        "timestamp": rfc3339_utc(n.at_ms),
        "data": n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::test_event;
    use crate::templates::test_notification;

    #[test]
    fn envelope() {
        let body = body(&test_notification(vec![test_event(
            "price.move",
            &[("symbol", "AAPL")],
        )]));
        assert_eq!(
            body,
            json!({
                "type": "alert.notification",
                "timestamp": "2021-02-25T15:02:10.000Z",
                "data": {
                    "group_key": "moves:{}",
                    "rule_id": "moves",
                    "group_labels": {},
                    "kind": "initial",
                    "events": [{
                        "type": "price.move",
                        "severity": "warning",
                        "labels": {"symbol": "AAPL"},
                        "payload": null,
                        "occurred_at_ms": 0
                    }],
                    "new_count": 1,
                    "at_ms": 1_614_265_330_000i64
                }
            })
        );
    }
}
