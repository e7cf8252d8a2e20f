//! Alerting domain logic with no I/O, so it is unit-tested natively and shared by the alert
//! and webhooks components and the cron dispatchers (thin adapters to HTTP and Postgres). It
//! reads no clock and draws no randomness: times (unix seconds or milliseconds, as named) and
//! random values are parameters. Builds for `wasm32-wasip2`.
//!
//! Events and routing (Alertmanager's model):
//! - [`event`]: [`Event`] (type, severity, labels, summary, payload), its validation, the
//!   pseudo-labels `type`/`severity` matchers see, and [`Fingerprint`] (a stable SHA-256 of type
//!   and sorted labels) that identifies "the same alert";
//! - [`matcher`]: [`Matcher`] (`=`, `!=`, `=~`, `!~`, anchored regexes, missing label = `""`),
//!   parsed from and serialised to its text form;
//! - [`routing`]: [`Rule`] (type patterns, matchers, channels, `group_by`, [`GroupTiming`] with
//!   the defaults 30 s / 5 min / 4 h), [`route`] and [`GroupKey`];
//! - [`grouping`]: [`AlertGroup`], the per-group state machine: `observe` (deduplicates by
//!   fingerprint), `flush_due(silences, now)` → the [`Notification`] due, if any; [`ingest`]
//!   routes an event into its groups; [`Notification::delivery_id`] is a stable `webhook-id`;
//! - [`silence`]: [`Silence`] (matchers, start, end), validation and [`muted_by`].
//!
//! Outbound delivery:
//! - [`templates`]: request bodies per channel: [`templates::discord::body`],
//!   [`templates::slack::body`], [`templates::email::body`] (Postmark), and
//!   [`templates::webhook::body`] (Standard Webhooks envelope), with UTF-8-safe
//!   [`templates::truncate_chars`];
//! - [`retry`]: [`RetryPolicy`] (0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; jitter; scale),
//!   [`classify`] an [`AttemptOutcome`], [`RetryPolicy::next_step`] (with `Retry-After` as a
//!   capped floor, see [`parse_retry_after`]), and [`EndpointHealth`] (disable after N
//!   consecutive failed deliveries);
//! - [`standard_webhooks`]: `whsec_` [`Secret`]s, [`outgoing_headers`] (one signature per
//!   secret during a rotation) and `verify`.
//!
//! Inbound webhooks:
//! - [`inbound`]: [`SourceConfig`] with a [`Scheme`] (Standard Webhooks, GitHub, Stripe), whose
//!   `verify(headers, body, now)` gives the sender's event id for idempotency, or an opaque
//!   [`Rejection`] whose [`RejectReason`] is for logs only. Headers come through the
//!   [`Headers`] trait (implemented for `http::HeaderMap`, spin-sdk's, and for slices and
//!   vectors of name/value pairs).
//! - [`handoff`]: a stored event's hand-off to the capability that owns it
//!   ([`handoff::plan`]: market data to the picker, fills to trades, documents to the kb) and
//!   the [`handoff::Outcome`] of the capability's answer.
//!
//! The event monitor:
//! - [`monitor`]: [`monitor::scan`] finds stocks that moved ≥ 5 % within the 15 minutes ending
//!   now in 1-minute [`Bar`]s, with a 15-minute cooldown per symbol kept in [`MonitorState`];
//!   [`PriceMove::to_event`] makes the `price.move` event.
//!
//! ```
//! use tessera_alerting::standard_webhooks::{outgoing_headers, verify, Secret};
//!
//! let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
//! let body = br#"{"test": 2432232314}"#;
//! let headers = outgoing_headers(&[secret.clone()], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
//! assert_eq!(headers[2].1, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
//! assert!(verify(&[secret], &headers[..], body, 1614265330, 300).is_ok());
//! ```

pub mod daily;
pub mod event;
pub mod grouping;
pub mod handoff;
mod headers;
pub mod inbound;
mod mac;
pub mod matcher;
pub mod monitor;
pub mod retry;
pub mod routing;
pub mod silence;
pub mod standard_webhooks;
pub mod templates;

pub use event::{Event, Fingerprint, Labels, Severity};
pub use grouping::{AlertGroup, Notification, NotificationKind, Observed, ingest};
pub use headers::Headers;
pub use inbound::{RejectReason, Rejection, Scheme, SourceConfig, Verified};
pub use matcher::{MatchOp, Matcher};
pub use monitor::{AssetClass, Bar, MonitorConfig, MonitorState, PriceMove};
pub use retry::{
    AttemptOutcome, Disposition, EndpointHealth, NextStep, RetryPolicy, TransportError, classify,
    parse_retry_after,
};
pub use routing::{GroupKey, GroupTiming, Rule, route};
pub use silence::{Silence, muted_by};
pub use standard_webhooks::{Secret, outgoing_headers};
