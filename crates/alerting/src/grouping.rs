//! An aggregation group's state machine (Alertmanager's): events join a group, identical ones
//! (same fingerprint) are deduplicated, and [`AlertGroup::flush_due`] says, given the time,
//! what notification is due. The state is plain data the adapter stores between cron ticks.
//!
//! Timing: the first notification `group_wait` after the group's first alert; then every
//! `group_interval` a notification if alerts were added since the last one, or if
//! `repeat_interval` has passed since it; an alert not raised again within `resolve_timeout`
//! is over and leaves the group; a group without alerts is finished.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use sha2_11::{Digest, Sha256};

use crate::event::{Event, Fingerprint, Labels};
use crate::routing::{GroupKey, GroupTiming, Rule, route};
use crate::silence::{Silence, muted_by};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveAlert {
    /// The latest occurrence (fresher payload), under the first one's identity.
    pub event: Event,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentRecord {
    pub at_ms: i64,
    pub fingerprints: BTreeSet<Fingerprint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertGroup {
    pub key: GroupKey,
    pub timing: GroupTiming,
    pub next_flush_at_ms: i64,
    pub alerts: BTreeMap<Fingerprint, ActiveAlert>,
    pub last_sent: Option<SentRecord>,
}

/// What [`AlertGroup::observe`] made of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// A new alert in this group.
    New,
    /// The same alert (fingerprint) is already firing here: refreshed, not notified anew.
    Duplicate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// The group's first notification.
    Initial,
    /// Alerts were added since the last notification.
    Update,
    /// Nothing new; `repeat_interval` passed.
    Repeat,
}

/// What a flush sends to each of the rule's channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// [`GroupKey::id`].
    pub group_key: String,
    pub rule_id: String,
    pub group_labels: Labels,
    pub kind: NotificationKind,
    /// The unmuted firing alerts, oldest first.
    pub events: Vec<Event>,
    /// How many of `events` were not in the previous notification.
    pub new_count: usize,
    pub at_ms: i64,
}

impl Notification {
    /// The delivery's `webhook-id` for one channel: `msg_` and 32 hex digits, derived from the
    /// group, the flush time and the channel, so writing the same flush's deliveries again
    /// (after a crash before commit) yields the same ids and an `ON CONFLICT DO NOTHING`
    /// insert cannot create a second delivery.
    pub fn delivery_id(&self, channel_id: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.group_key.as_bytes());
        h.update([0xff]);
        h.update(self.at_ms.to_string().as_bytes());
        h.update([0xff]);
        h.update(channel_id.as_bytes());
        format!("msg_{}", hex::encode(&h.finalize()[..16]))
    }
}

/// Where [`ingest`] put an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// [`GroupKey::id`], the key of `groups`.
    pub group_key: String,
    pub observed: Observed,
}

/// Routes `event` through `rules` into `groups` (keyed by [`GroupKey::id`]), creating the
/// groups it starts. The adapter loads the groups it needs (their keys come from
/// [`route`]), calls this, and stores them back.
pub fn ingest(
    rules: &[Rule],
    groups: &mut BTreeMap<String, AlertGroup>,
    event: &Event,
    now_ms: i64,
) -> Vec<Ingested> {
    route(rules, event)
        .into_iter()
        .map(|r| {
            let group_key = r.group.id();
            let group = groups
                .entry(group_key.clone())
                .or_insert_with(|| AlertGroup::new(r.group, r.rule.timing, now_ms));
            let observed = group.observe(event.clone(), now_ms);
            Ingested {
                group_key,
                observed,
            }
        })
        .collect()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl AlertGroup {
    /// A group created by its first event at `now_ms`; call [`observe`](Self::observe) next.
    pub fn new(key: GroupKey, timing: GroupTiming, now_ms: i64) -> Self {
        Self {
            key,
            timing,
            next_flush_at_ms: now_ms.saturating_add(ms(timing.group_wait)),
            alerts: BTreeMap::new(),
            last_sent: None,
        }
    }

    fn is_live(&self, alert: &ActiveAlert, now_ms: i64) -> bool {
        now_ms
            < alert
                .last_seen_ms
                .saturating_add(ms(self.timing.resolve_timeout))
    }

    pub fn observe(&mut self, event: Event, now_ms: i64) -> Observed {
        let fingerprint = event.fingerprint();
        if let Some(alert) = self.alerts.get(&fingerprint)
            && self.is_live(alert, now_ms)
        {
            let first_seen_ms = alert.first_seen_ms;
            self.alerts.insert(
                fingerprint,
                ActiveAlert {
                    event,
                    first_seen_ms,
                    last_seen_ms: now_ms,
                },
            );
            return Observed::Duplicate;
        }
        // A group whose alerts are all over starts afresh, waiting `group_wait` again.
        if !self.alerts.values().any(|a| self.is_live(a, now_ms)) {
            *self = Self::new(self.key.clone(), self.timing, now_ms);
        }
        self.alerts.insert(
            fingerprint,
            ActiveAlert {
                event,
                first_seen_ms: now_ms,
                last_seen_ms: now_ms,
            },
        );
        Observed::New
    }

    /// When the adapter should call [`flush_due`](Self::flush_due) next.
    pub fn next_wakeup_ms(&self) -> i64 {
        self.next_flush_at_ms
    }

    /// No alert left: the adapter may delete the group.
    pub fn is_finished(&self) -> bool {
        self.alerts.is_empty()
    }

    /// Advances the group to `now_ms`; returns the notification due, if any.
    pub fn flush_due(&mut self, silences: &[Silence], now_ms: i64) -> Option<Notification> {
        if now_ms < self.next_flush_at_ms {
            return None;
        }
        // Ticks stay on the group's grid even when the cron runs late.
        let interval = ms(self.timing.group_interval).max(1);
        let behind = (now_ms - self.next_flush_at_ms) / interval;
        self.next_flush_at_ms += (behind + 1) * interval;

        let resolve = ms(self.timing.resolve_timeout);
        self.alerts
            .retain(|_, a| now_ms < a.last_seen_ms.saturating_add(resolve));
        let mut firing: Vec<(&Fingerprint, &ActiveAlert)> = self
            .alerts
            .iter()
            .filter(|(_, a)| muted_by(silences, &a.event, now_ms).is_none())
            .collect();
        if firing.is_empty() {
            return None;
        }
        let previously = self.last_sent.as_ref();
        let new_count = firing
            .iter()
            .filter(|(f, _)| previously.is_none_or(|s| !s.fingerprints.contains(*f)))
            .count();
        let kind = match previously {
            None => NotificationKind::Initial,
            Some(_) if new_count > 0 => NotificationKind::Update,
            Some(s) if now_ms >= s.at_ms.saturating_add(ms(self.timing.repeat_interval)) => {
                NotificationKind::Repeat
            }
            Some(_) => return None,
        };
        firing.sort_by_key(|(f, a)| (a.first_seen_ms, (*f).clone()));
        let fingerprints = firing.iter().map(|(f, _)| (*f).clone()).collect();
        let events = firing.iter().map(|(_, a)| a.event.clone()).collect();
        self.last_sent = Some(SentRecord {
            at_ms: now_ms,
            fingerprints,
        });
        Some(Notification {
            group_key: self.key.id(),
            rule_id: self.key.rule_id.clone(),
            group_labels: self.key.labels.clone(),
            kind,
            events,
            new_count,
            at_ms: now_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::test_event;

    const SEC: i64 = 1000;
    const MIN: i64 = 60 * SEC;
    const HOUR: i64 = 60 * MIN;

    fn group(now: i64) -> AlertGroup {
        let key = GroupKey {
            rule_id: "r".into(),
            labels: Labels::new(),
        };
        // Long resolve timeout so alerts outlive the intervals under test unless said.
        let timing = GroupTiming {
            resolve_timeout: Duration::from_secs(24 * 3600),
            ..GroupTiming::default()
        };
        AlertGroup::new(key, timing, now)
    }

    fn sym(s: &str) -> Event {
        test_event("price.move", &[("symbol", s)])
    }

    fn symbols(n: &Notification) -> Vec<&str> {
        n.events
            .iter()
            .map(|e| e.labels["symbol"].as_str())
            .collect()
    }

    #[test]
    fn group_wait_gathers_a_burst_into_one_notification() {
        let mut g = group(0);
        assert_eq!(g.observe(sym("AAPL"), 0), Observed::New);
        assert_eq!(g.observe(sym("MSFT"), 10 * SEC), Observed::New);
        assert_eq!(g.next_wakeup_ms(), 30 * SEC);
        assert_eq!(g.flush_due(&[], 29_999), None);
        let n = g.flush_due(&[], 30 * SEC).unwrap();
        assert_eq!(n.kind, NotificationKind::Initial);
        assert_eq!(symbols(&n), vec!["AAPL", "MSFT"]);
        assert_eq!(n.new_count, 2);
        assert_eq!(n.group_key, "r:{}");
        assert_eq!(g.next_wakeup_ms(), 30 * SEC + 5 * MIN);
    }

    #[test]
    fn duplicates_are_refreshed_not_renotified() {
        let mut g = group(0);
        g.observe(sym("AAPL"), 0);
        g.flush_due(&[], 30 * SEC).unwrap();
        let mut again = sym("AAPL");
        again.payload = serde_json::json!({"change": 0.07});
        assert_eq!(g.observe(again, MIN), Observed::Duplicate);
        // The next tick (30 s + 5 min) has nothing new and the repeat interval is far.
        assert_eq!(g.flush_due(&[], 30 * SEC + 5 * MIN), None);
        assert_eq!(
            g.alerts.values().next().unwrap().event.payload["change"],
            0.07
        );
        assert_eq!(g.alerts.values().next().unwrap().first_seen_ms, 0);
    }

    #[test]
    fn additions_wait_for_the_group_interval_tick() {
        let mut g = group(0);
        g.observe(sym("AAPL"), 0);
        g.flush_due(&[], 30 * SEC).unwrap();
        g.observe(sym("MSFT"), MIN);
        assert_eq!(g.flush_due(&[], 2 * MIN), None, "not before the tick");
        let n = g.flush_due(&[], 30 * SEC + 5 * MIN).unwrap();
        assert_eq!(n.kind, NotificationKind::Update);
        assert_eq!(symbols(&n), vec!["AAPL", "MSFT"]);
        assert_eq!(n.new_count, 1);
    }

    #[test]
    fn unchanged_alerts_repeat_after_the_repeat_interval() {
        let mut g = group(0);
        g.observe(sym("AAPL"), 0);
        g.flush_due(&[], 30 * SEC).unwrap();
        // Ticks at 30 s + k·5 min; the first at or after 30 s + 4 h is k = 48.
        let mut sent = Vec::new();
        let mut now = 30 * SEC;
        while now <= 30 * SEC + 4 * HOUR {
            now += 5 * MIN;
            if let Some(n) = g.flush_due(&[], now) {
                sent.push((now, n.kind));
            }
        }
        assert_eq!(sent, vec![(30 * SEC + 4 * HOUR, NotificationKind::Repeat)]);
    }

    #[test]
    fn late_polls_stay_on_the_tick_grid() {
        let mut g = group(0);
        g.observe(sym("AAPL"), 0);
        g.flush_due(&[], 30 * SEC + 17 * MIN).unwrap();
        // 30 s + 17 min is past ticks 30 s and 30 s + 5/10/15 min: the next is 30 s + 20 min.
        assert_eq!(g.next_wakeup_ms(), 30 * SEC + 20 * MIN);
    }

    #[test]
    fn resolved_alerts_leave_and_the_group_finishes_then_restarts() {
        let mut g = group(0);
        g.timing.resolve_timeout = Duration::from_secs(5 * 60);
        g.observe(sym("AAPL"), 0);
        g.flush_due(&[], 30 * SEC).unwrap();
        assert_eq!(g.flush_due(&[], 30 * SEC + 5 * MIN), None);
        assert!(g.is_finished());
        // Raised again later: a fresh group, with its own group_wait and an Initial notification.
        assert_eq!(g.observe(sym("AAPL"), HOUR), Observed::New);
        assert_eq!(g.next_wakeup_ms(), HOUR + 30 * SEC);
        let n = g.flush_due(&[], HOUR + 30 * SEC).unwrap();
        assert_eq!(n.kind, NotificationKind::Initial);
    }

    #[test]
    fn silences_hold_back_alerts_until_they_end() {
        let silence = Silence {
            id: "s".into(),
            matchers: vec!["symbol=AAPL".parse().unwrap()],
            starts_at_ms: 0,
            ends_at_ms: 10 * MIN,
            created_by: String::new(),
            comment: String::new(),
        };
        let silences = [silence];
        let mut g = group(0);
        g.observe(sym("AAPL"), 0);
        g.observe(sym("MSFT"), 0);
        let n = g.flush_due(&silences, 30 * SEC).unwrap();
        assert_eq!(symbols(&n), vec!["MSFT"]);
        assert_eq!(g.flush_due(&silences, 30 * SEC + 5 * MIN), None);
        // The silence is over at 10 min; AAPL is still firing, so it is new to the receiver.
        let n = g.flush_due(&silences, 30 * SEC + 10 * MIN).unwrap();
        assert_eq!(n.kind, NotificationKind::Update);
        assert_eq!(symbols(&n), vec!["AAPL", "MSFT"]);
        assert_eq!(n.new_count, 1);
    }

    #[test]
    fn ingest_routes_into_groups_and_deduplicates() {
        let rule: Rule = serde_json::from_value(serde_json::json!({
            "id": "moves", "event_types": ["price.move"], "channels": ["discord"],
            "group_by": ["symbol"], "timing": {"group_wait_ms": 1000}
        }))
        .unwrap();
        let rules = [rule];
        let mut groups = BTreeMap::new();
        let got = ingest(&rules, &mut groups, &sym("AAPL"), 0);
        assert_eq!(
            got,
            vec![Ingested {
                group_key: r#"moves:{symbol="AAPL"}"#.into(),
                observed: Observed::New
            }]
        );
        assert_eq!(
            ingest(&rules, &mut groups, &sym("AAPL"), 10)[0].observed,
            Observed::Duplicate
        );
        ingest(&rules, &mut groups, &sym("MSFT"), 20);
        assert!(ingest(&rules, &mut groups, &test_event("other", &[]), 30).is_empty());
        assert_eq!(groups.len(), 2);
        // The rule's own timing is used: group_wait 1 s.
        assert_eq!(groups[r#"moves:{symbol="AAPL"}"#].next_wakeup_ms(), 1000);
    }

    #[test]
    fn delivery_ids_are_stable_per_flush_and_channel() {
        let n = Notification {
            group_key: "moves:{}".into(),
            rule_id: "moves".into(),
            group_labels: Labels::new(),
            kind: NotificationKind::Initial,
            events: vec![],
            new_count: 0,
            at_ms: 1_614_265_330_000,
        };
        // printf 'moves:{}\377%s\377discord' 1614265330000 | sha256sum | cut -c1-32
        assert_eq!(
            n.delivery_id("discord"),
            "msg_176ce35c426f5c5f727e9376aa8318ab"
        );
        assert_ne!(n.delivery_id("slack"), n.delivery_id("discord"));
        let later = Notification {
            at_ms: n.at_ms + 1,
            ..n.clone()
        };
        assert_ne!(later.delivery_id("discord"), n.delivery_id("discord"));
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut g = group(0);
        g.observe(sym("AAPL"), 0);
        g.flush_due(&[], 30 * SEC).unwrap();
        let json = serde_json::to_string(&g).unwrap();
        let back: AlertGroup = serde_json::from_str(&json).unwrap();
        assert_eq!(back, g);
    }
}
