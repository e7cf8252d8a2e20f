//! Verification of inbound webhooks, one scheme per source: Standard Webhooks, GitHub's
//! `X-Hub-Signature-256` and Stripe's `Stripe-Signature`. A failure is one opaque
//! [`Rejection`] (the client gets a bare 401); its [`RejectReason`] is for the logs only.

use serde::{Deserialize, Serialize};

use crate::headers::Headers;
use crate::mac::{ct_eq, hmac_sha256};
use crate::standard_webhooks::{self, DEFAULT_TOLERANCE_SECS, Secret, check_tolerance};

pub const GITHUB_SIGNATURE_HEADER: &str = "x-hub-signature-256";
pub const GITHUB_DELIVERY_HEADER: &str = "x-github-delivery";
pub const STRIPE_SIGNATURE_HEADER: &str = "stripe-signature";

/// How a source signs what it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// `webhook-id`/`webhook-timestamp`/`webhook-signature: v1,<base64>`; `whsec_` secrets.
    StandardWebhooks,
    /// `X-Hub-Signature-256: sha256=<hex HMAC of the body>`; no timestamp, so replays are
    /// only caught by deduplicating on `X-GitHub-Delivery`.
    #[serde(rename = "github")]
    GitHub,
    /// `Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]` over `{t}.{body}`; the secret string
    /// (including its `whsec_` prefix) is the HMAC key, unlike Standard Webhooks.
    Stripe,
}

/// One inbound source's verification settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceConfig {
    pub scheme: Scheme,
    /// Every currently valid secret (two during a rotation). Never logged.
    #[serde(skip_serializing)]
    pub secrets: Vec<String>,
    #[serde(default = "default_tolerance")]
    pub tolerance_secs: i64,
}

fn default_tolerance() -> i64 {
    DEFAULT_TOLERANCE_SECS
}

/// A request that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The sender's id for this event, for idempotency: `webhook-id`, `X-GitHub-Delivery`, or
    /// Stripe's event `id` from the body. `None` when the sender gave none.
    pub event_id: Option<String>,
    /// The signed timestamp (unix seconds), where the scheme has one.
    pub timestamp: Option<i64>,
}

/// Why verification failed, for the logs only: never send it to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    MissingHeader(&'static str),
    MalformedHeader(&'static str),
    TimestampTooOld {
        timestamp: i64,
        now: i64,
    },
    TimestampTooNew {
        timestamp: i64,
        now: i64,
    },
    /// The source has no usable secret configured (an operator error, still a 401 outside).
    NoSecret,
    SignatureMismatch,
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingHeader(h) => write!(f, "header {h} is missing"),
            Self::MalformedHeader(h) => write!(f, "header {h} is malformed"),
            Self::TimestampTooOld { timestamp, now } => {
                write!(f, "timestamp {timestamp} is too old (now {now})")
            }
            Self::TimestampTooNew { timestamp, now } => {
                write!(
                    f,
                    "timestamp {timestamp} is too far in the future (now {now})"
                )
            }
            Self::NoSecret => f.write_str("no usable secret is configured for this source"),
            Self::SignatureMismatch => f.write_str("no signature matches any secret"),
        }
    }
}

/// The one error kind a caller shows outside. Its `Display` says nothing about which check
/// failed, so a prober learns nothing; [`Rejection::reason`] is for the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    reason: RejectReason,
}

impl Rejection {
    pub fn reason(&self) -> &RejectReason {
        &self.reason
    }
}

impl From<RejectReason> for Rejection {
    fn from(reason: RejectReason) -> Self {
        Self { reason }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid webhook signature")
    }
}

impl std::error::Error for Rejection {}

impl SourceConfig {
    pub fn new(scheme: Scheme, secrets: Vec<String>) -> Self {
        Self {
            scheme,
            secrets,
            tolerance_secs: DEFAULT_TOLERANCE_SECS,
        }
    }

    /// Verifies a request's raw `body` (exactly as received) at `now` (unix seconds).
    pub fn verify(
        &self,
        headers: &(impl Headers + ?Sized),
        body: &[u8],
        now: i64,
    ) -> Result<Verified, Rejection> {
        let secrets: Vec<&str> = self
            .secrets
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        Ok(match self.scheme {
            Scheme::StandardWebhooks => {
                // A secret that does not parse is skipped rather than failing the others.
                let parsed: Vec<Secret> = secrets
                    .iter()
                    .filter_map(|s| Secret::parse(s).ok())
                    .collect();
                if parsed.is_empty() {
                    return Err(RejectReason::NoSecret.into());
                }
                let msg =
                    standard_webhooks::verify(&parsed, headers, body, now, self.tolerance_secs)?;
                Verified {
                    event_id: Some(msg.msg_id),
                    timestamp: Some(msg.timestamp),
                }
            }
            Scheme::GitHub => {
                verify_github(&secrets, headers, body)?;
                Verified {
                    event_id: headers.header(GITHUB_DELIVERY_HEADER).map(str::to_string),
                    timestamp: None,
                }
            }
            Scheme::Stripe => {
                let t = verify_stripe(&secrets, headers, body, now, self.tolerance_secs)?;
                Verified {
                    event_id: stripe_event_id(body),
                    timestamp: Some(t),
                }
            }
        })
    }
}

fn verify_github(
    secrets: &[&str],
    headers: &(impl Headers + ?Sized),
    body: &[u8],
) -> Result<(), RejectReason> {
    let value = headers
        .header(GITHUB_SIGNATURE_HEADER)
        .ok_or(RejectReason::MissingHeader(GITHUB_SIGNATURE_HEADER))?;
    let given = value
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(RejectReason::MalformedHeader(GITHUB_SIGNATURE_HEADER))?;
    if secrets.is_empty() {
        return Err(RejectReason::NoSecret);
    }
    if secrets
        .iter()
        .any(|s| ct_eq(&hmac_sha256(s.as_bytes(), &[body]), &given))
    {
        Ok(())
    } else {
        Err(RejectReason::SignatureMismatch)
    }
}

/// Returns the signed timestamp.
fn verify_stripe(
    secrets: &[&str],
    headers: &(impl Headers + ?Sized),
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<i64, RejectReason> {
    const H: &str = STRIPE_SIGNATURE_HEADER;
    let value = headers.header(H).ok_or(RejectReason::MissingHeader(H))?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for item in value.split(',') {
        let Some((key, val)) = item.trim().split_once('=') else {
            return Err(RejectReason::MalformedHeader(H));
        };
        match key {
            // Two timestamps would leave it ambiguous which one was signed.
            "t" if timestamp.is_none() => {
                timestamp = Some(
                    val.parse::<i64>()
                        .map_err(|_| RejectReason::MalformedHeader(H))?,
                )
            }
            "t" => return Err(RejectReason::MalformedHeader(H)),
            // Undecodable v1 entries are skipped; `v0` and others are not ours to check.
            "v1" => candidates.extend(hex::decode(val).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(RejectReason::MalformedHeader(H))?;
    if candidates.is_empty() {
        return Err(RejectReason::MalformedHeader(H));
    }
    check_tolerance(timestamp, now, tolerance_secs)?;
    if secrets.is_empty() {
        return Err(RejectReason::NoSecret);
    }
    let t = timestamp.to_string();
    let matched = secrets.iter().any(|s| {
        let expected = hmac_sha256(s.as_bytes(), &[t.as_bytes(), b".", body]);
        candidates.iter().any(|c| ct_eq(&expected, c))
    });
    if matched {
        Ok(timestamp)
    } else {
        Err(RejectReason::SignatureMismatch)
    }
}

fn stripe_event_id(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Envelope {
        id: String,
    }
    serde_json::from_slice::<Envelope>(body).ok().map(|e| e.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    // GitHub's documented test values ("Validating webhook deliveries"), recomputed with
    // `openssl dgst -sha256 -hmac` before being written here.
    const GH_SECRET: &str = "It's a Secret to Everybody";
    const GH_BODY: &[u8] = b"Hello, World!";
    const GH_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    // Computed with: printf '%s' '1492774577.{"id":"evt_1","object":"event"}' |
    //   openssl dgst -sha256 -hmac 'whsec_test_secret'   (and 'whsec_old_secret')
    const STRIPE_T: i64 = 1492774577;
    const STRIPE_BODY: &[u8] = br#"{"id":"evt_1","object":"event"}"#;
    const STRIPE_V1: &str = "654b43d3508ecadb3f8cefc4bc7d3d2bdc5ba9e03bf2c89b2d0657a8e24e4543";
    const STRIPE_V1_OLD: &str = "6ff3bb574686a5e06ed372dd22beab15e045c7d15c6c1b70f8ccbf8d3f230fe8";

    fn github() -> SourceConfig {
        SourceConfig::new(Scheme::GitHub, vec![GH_SECRET.into()])
    }

    fn stripe(secrets: &[&str]) -> SourceConfig {
        SourceConfig::new(
            Scheme::Stripe,
            secrets.iter().map(|s| s.to_string()).collect(),
        )
    }

    #[test]
    fn github_documented_vector() {
        let h = [
            ("X-Hub-Signature-256", GH_SIG),
            ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ];
        let v = github().verify(&h[..], GH_BODY, 0).unwrap();
        assert_eq!(
            v.event_id.as_deref(),
            Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
        let err = github().verify(&h[..], b"Hello, World?", 0).unwrap_err();
        assert_eq!(err.reason(), &RejectReason::SignatureMismatch);
        let sha1 = [("X-Hub-Signature-256", "sha1=757107ea")];
        assert_eq!(
            github().verify(&sha1[..], GH_BODY, 0).unwrap_err().reason(),
            &RejectReason::MalformedHeader(GITHUB_SIGNATURE_HEADER)
        );
    }

    #[test]
    fn stripe_signature_with_rotation_and_tolerance() {
        let header = format!("t={STRIPE_T},v1={STRIPE_V1_OLD},v1={STRIPE_V1},v0=deadbeef");
        let h = [("Stripe-Signature", header.as_str())];
        let v = stripe(&["whsec_test_secret"])
            .verify(&h[..], STRIPE_BODY, STRIPE_T + 10)
            .unwrap();
        assert_eq!(v.event_id.as_deref(), Some("evt_1"));
        assert_eq!(v.timestamp, Some(STRIPE_T));
        // Only the old secret's signature present: accepted while both secrets are valid.
        let old_only = format!("t={STRIPE_T},v1={STRIPE_V1_OLD}");
        let h_old = [("Stripe-Signature", old_only.as_str())];
        assert!(
            stripe(&["whsec_test_secret", "whsec_old_secret"])
                .verify(&h_old[..], STRIPE_BODY, STRIPE_T)
                .is_ok()
        );
        assert_eq!(
            stripe(&["whsec_test_secret"])
                .verify(&h_old[..], STRIPE_BODY, STRIPE_T)
                .unwrap_err()
                .reason(),
            &RejectReason::SignatureMismatch
        );
        assert!(matches!(
            stripe(&["whsec_test_secret"])
                .verify(&h[..], STRIPE_BODY, STRIPE_T + 301)
                .unwrap_err()
                .reason(),
            RejectReason::TimestampTooOld { .. }
        ));
    }

    #[test]
    fn stripe_header_shapes_that_are_refused() {
        let cfg = stripe(&["whsec_test_secret"]);
        for bad in [
            format!("v1={STRIPE_V1}"),
            format!("t={STRIPE_T}"),
            format!("t={STRIPE_T},t={STRIPE_T},v1={STRIPE_V1}"),
            format!("t=abc,v1={STRIPE_V1}"),
            "garbage".to_string(),
        ] {
            let h = [("Stripe-Signature", bad.as_str())];
            assert_eq!(
                cfg.verify(&h[..], STRIPE_BODY, STRIPE_T)
                    .unwrap_err()
                    .reason(),
                &RejectReason::MalformedHeader(STRIPE_SIGNATURE_HEADER),
                "{bad}"
            );
        }
    }

    #[test]
    fn standard_webhooks_through_the_source_config() {
        let cfg = SourceConfig::new(
            Scheme::StandardWebhooks,
            vec![
                "not a secret".into(),
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            ],
        );
        let h = [
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            (
                "webhook-signature",
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
        ];
        let v = cfg
            .verify(&h[..], br#"{"test": 2432232314}"#, 1614265330)
            .unwrap();
        assert_eq!(v.event_id.as_deref(), Some("msg_p5jXN8AQM9LWM0D4loKWxJek"));
        let none = SourceConfig::new(Scheme::StandardWebhooks, vec!["  ".into()]);
        assert_eq!(
            none.verify(&h[..], b"", 1614265330).unwrap_err().reason(),
            &RejectReason::NoSecret
        );
    }

    #[test]
    fn the_outside_message_is_the_same_for_every_reason() {
        let a = Rejection::from(RejectReason::SignatureMismatch);
        let b = Rejection::from(RejectReason::TimestampTooOld {
            timestamp: 1,
            now: 1000,
        });
        assert_eq!(a.to_string(), b.to_string());
        assert!(!a.to_string().contains("mismatch"));
    }

    #[test]
    fn config_json_never_carries_secrets() {
        let cfg: SourceConfig =
            serde_json::from_str(r#"{"scheme":"github","secrets":["s3cret"]}"#).unwrap();
        assert_eq!(cfg.tolerance_secs, 300);
        assert_eq!(cfg.scheme, Scheme::GitHub);
        assert!(!serde_json::to_string(&cfg).unwrap().contains("s3cret"));
    }
}
