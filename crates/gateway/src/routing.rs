//! Picks the models for one step: an ordered fallback chain with a reason for each choice,
//! or a clear "budget exhausted" decision that makes no paid call.
//!
//! The rules, in order:
//! 1. Complexity picks the tier: below 0.3 the cheapest model (or the local answerer first, if
//!    the policy says so), below 0.7 the default tier, else the heavy tier. The user tier caps
//!    it (free users get at most the default tier).
//! 2. Candidates are every catalog model usable now: a key is configured (the platform's, or
//!    the user's own for premium/enterprise, which comes first), the provider's breaker
//!    allows calls, the prompt fits the context window, and the estimated cost fits the
//!    remaining monthly quota and budget. Calls on the user's own key are billed to the user
//!    by the provider and so are exempt from platform quotas and budgets.
//! 3. Order: the target tier, then lower tiers (cheaper), then higher tiers up to the cap;
//!    within a tier, user keys first, then by estimated cost. Then one model per provider
//!    comes before a second model of any provider, because a provider that just failed is
//!    the likeliest to fail again.
//! 4. The local extractive answerer ends the chain when allowed, so a step always answers.
//!    With no paid candidate left because of money, the decision is [`RouteDecision::BudgetExhausted`].

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, ModelTier};
use crate::local;
use crate::providers::ProviderKind;
use crate::usage::Usage;

/// The user's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserTier {
    Free,
    Premium,
    Enterprise,
}

/// What a plan allows per calendar month, for platform-paid calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierPolicy {
    pub max_model_tier: ModelTier,
    /// `None` is unlimited.
    pub monthly_token_quota: Option<u64>,
    pub monthly_cost_quota_micros: Option<u64>,
    /// Whether the user's own provider keys may be used.
    pub bring_your_own_key: bool,
}

/// Routing thresholds and per-plan limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingPolicy {
    /// Below this complexity: the cheapest model (or local, see `local_first_when_simple`).
    pub low_complexity: f32,
    /// At or above this complexity: the heavy tier.
    pub high_complexity: f32,
    /// Put the local extractive answerer before paid models for simple steps.
    pub local_first_when_simple: bool,
    /// End every chain with the local answerer, so a step answers even with no provider.
    pub allow_local_fallback: bool,
    /// Longest paid part of a chain (each failure costs time).
    pub max_paid_candidates: usize,
    pub free: TierPolicy,
    pub premium: TierPolicy,
    pub enterprise: TierPolicy,
}

impl Default for RoutingPolicy {
    /// Thresholds 0.3 / 0.7 from the brief. The quotas are defaults to override per deployment:
    /// free 200k tokens and $1 a month up to the default tier; premium 5M tokens and $50 with
    /// every tier and own keys; enterprise unlimited.
    fn default() -> Self {
        Self {
            low_complexity: 0.3,
            high_complexity: 0.7,
            local_first_when_simple: false,
            allow_local_fallback: true,
            max_paid_candidates: 3,
            free: TierPolicy {
                max_model_tier: ModelTier::Default,
                monthly_token_quota: Some(200_000),
                monthly_cost_quota_micros: Some(1_000_000),
                bring_your_own_key: false,
            },
            premium: TierPolicy {
                max_model_tier: ModelTier::Heavy,
                monthly_token_quota: Some(5_000_000),
                monthly_cost_quota_micros: Some(50_000_000),
                bring_your_own_key: true,
            },
            enterprise: TierPolicy {
                max_model_tier: ModelTier::Heavy,
                monthly_token_quota: None,
                monthly_cost_quota_micros: None,
                bring_your_own_key: true,
            },
        }
    }
}

impl RoutingPolicy {
    pub fn tier_policy(&self, tier: UserTier) -> &TierPolicy {
        match tier {
            UserTier::Free => &self.free,
            UserTier::Premium => &self.premium,
            UserTier::Enterprise => &self.enterprise,
        }
    }

    /// The tier complexity asks for. NaN (an analysis that failed) is treated as the middle.
    pub fn tier_for(&self, complexity: f32) -> ModelTier {
        if complexity.is_nan() {
            ModelTier::Default
        } else if complexity < self.low_complexity {
            ModelTier::Cheap
        } else if complexity < self.high_complexity {
            ModelTier::Default
        } else {
            ModelTier::Heavy
        }
    }
}

/// What the caller knows about a provider right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderStatus {
    pub provider: String,
    /// The platform key variable is set.
    pub platform_key: bool,
    /// The user stored their own key for this provider.
    pub user_key: bool,
    /// [`crate::breaker::BreakerConfig::allows`] for this provider.
    pub breaker_allows: bool,
}

/// Everything routing needs about one step.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteInput<'a> {
    pub complexity: f32,
    pub user_tier: UserTier,
    /// Platform-paid usage so far this month.
    pub month_tokens: u64,
    pub month_cost_micros: u64,
    /// A further cap on platform spend for this request (the user's remaining budget), if any.
    pub budget_micros: Option<u64>,
    pub estimated_usage: Usage,
    pub providers: &'a [ProviderStatus],
    /// What the client asked for (`provider` or `provider/model`): tried first when it is
    /// usable. Applied before the chain is cut to `max_paid_candidates`, so a pin is never lost
    /// to the cut.
    pub pinned: Option<&'a str>,
}

/// Whose key a call uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    Platform,
    User,
    /// Keyless: a local server or the local answerer.
    None,
}

/// One entry of the fallback chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub provider: String,
    pub model: String,
    pub kind: ProviderKind,
    pub tier: ModelTier,
    pub key: KeySource,
    pub estimated_cost_micros: u64,
    /// Why this candidate is here, for the stream and the logs.
    pub reason: String,
}

/// Why a catalog model is not in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum SkipReason {
    NoKey,
    CircuitOpen,
    TierNotAllowed {
        max: ModelTier,
    },
    ContextTooSmall {
        needed: u64,
        window: u64,
    },
    OverBudget {
        estimated_micros: u64,
        remaining_micros: u64,
    },
    OverTokenQuota {
        estimated_tokens: u64,
        remaining_tokens: u64,
    },
}

impl SkipReason {
    const fn is_money(&self) -> bool {
        matches!(self, Self::OverBudget { .. } | Self::OverTokenQuota { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub provider: String,
    pub model: String,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum RouteDecision {
    /// Try the candidates in order.
    Route {
        target: ModelTier,
        chain: Vec<Candidate>,
        skipped: Vec<Skipped>,
    },
    /// No paid call fits the quota or budget. `local` is the keyless answer, when allowed.
    BudgetExhausted {
        reason: String,
        local: Option<Candidate>,
        skipped: Vec<Skipped>,
    },
    /// Nothing can answer: no provider usable and the local answerer not allowed.
    NoRoute { skipped: Vec<Skipped> },
}

impl RouteDecision {
    /// The candidates to try, in order (the local one alone when the budget is exhausted).
    pub fn chain(&self) -> Vec<&Candidate> {
        match self {
            Self::Route { chain, .. } => chain.iter().collect(),
            Self::BudgetExhausted { local, .. } => local.iter().collect(),
            Self::NoRoute { .. } => Vec::new(),
        }
    }
}

/// The local candidate: the catalog's `local` provider if it has one, else the built-in one.
fn local_candidate(catalog: &Catalog, reason: String) -> Candidate {
    let (provider, model) = catalog
        .models()
        .find(|(p, _)| p.kind == ProviderKind::Local)
        .map(|(p, m)| (p.id.clone(), m.id.clone()))
        .unwrap_or_else(|| (local::PROVIDER_ID.into(), local::MODEL_ID.into()));
    Candidate {
        provider,
        model,
        kind: ProviderKind::Local,
        tier: ModelTier::Cheap,
        key: KeySource::None,
        estimated_cost_micros: 0,
        reason,
    }
}

/// Routes one step. Pure: the same input always gives the same decision.
pub fn route(catalog: &Catalog, policy: &RoutingPolicy, input: &RouteInput<'_>) -> RouteDecision {
    let plan = policy.tier_policy(input.user_tier);
    let wanted = policy.tier_for(input.complexity);
    let target = wanted.min(plan.max_model_tier);
    let mut why_tier = format!("complexity {:.2} → {wanted} tier", input.complexity);
    if target != wanted {
        why_tier.push_str(&format!(
            ", capped to {target} by the {:?} plan",
            input.user_tier
        ));
    }

    let remaining_cost = [
        plan.monthly_cost_quota_micros
            .map(|q| q.saturating_sub(input.month_cost_micros)),
        input.budget_micros,
    ]
    .into_iter()
    .flatten()
    .min();
    let remaining_tokens = plan
        .monthly_token_quota
        .map(|q| q.saturating_sub(input.month_tokens));
    let est_tokens = input.estimated_usage.total();

    let mut skipped = Vec::new();
    let mut usable: Vec<(usize, Candidate)> = Vec::new();
    for (order, (p, m)) in catalog.models().enumerate() {
        if p.kind == ProviderKind::Local {
            continue;
        }
        let skip = |reason| Skipped {
            provider: p.id.clone(),
            model: m.id.clone(),
            reason,
        };
        let status = input.providers.iter().find(|s| s.provider == p.id);
        let key = match status {
            Some(s) if s.user_key && plan.bring_your_own_key => KeySource::User,
            Some(s) if s.platform_key => KeySource::Platform,
            _ if !p.kind.requires_key() && status.is_some() => KeySource::None,
            _ => {
                skipped.push(skip(SkipReason::NoKey));
                continue;
            }
        };
        if !status.is_some_and(|s| s.breaker_allows) {
            skipped.push(skip(SkipReason::CircuitOpen));
            continue;
        }
        if m.tier > plan.max_model_tier {
            skipped.push(skip(SkipReason::TierNotAllowed {
                max: plan.max_model_tier,
            }));
            continue;
        }
        if est_tokens > m.context_window {
            skipped.push(skip(SkipReason::ContextTooSmall {
                needed: est_tokens,
                window: m.context_window,
            }));
            continue;
        }
        let cost = m.cost(input.estimated_usage);
        if key != KeySource::User {
            if let Some(rem) = remaining_cost.filter(|&r| cost > r) {
                skipped.push(skip(SkipReason::OverBudget {
                    estimated_micros: cost,
                    remaining_micros: rem,
                }));
                continue;
            }
            if let Some(rem) = remaining_tokens.filter(|&r| est_tokens > r) {
                skipped.push(skip(SkipReason::OverTokenQuota {
                    estimated_tokens: est_tokens,
                    remaining_tokens: rem,
                }));
                continue;
            }
        }
        let key_note = match key {
            KeySource::User => "the user's own key",
            KeySource::Platform => "the platform key",
            KeySource::None => "no key needed",
        };
        let reason = if m.tier == target {
            format!(
                "{why_tier}; {}/{} at ~{cost} µ$ with {key_note}",
                p.id, m.id
            )
        } else {
            format!(
                "fallback: {} tier {}/{} at ~{cost} µ$ with {key_note}",
                m.tier, p.id, m.id
            )
        };
        usable.push((
            order,
            Candidate {
                provider: p.id.clone(),
                model: m.id.clone(),
                kind: p.kind,
                tier: m.tier,
                key,
                estimated_cost_micros: cost,
                reason,
            },
        ));
    }

    // Tier rank: the target, then lower tiers descending, then higher tiers ascending.
    let tier_rank = |t: ModelTier| -> u8 {
        if t <= target {
            target as u8 - t as u8
        } else {
            2 + t as u8
        }
    };
    usable.sort_by_key(|(order, c)| {
        (
            tier_rank(c.tier),
            c.key != KeySource::User,
            c.estimated_cost_micros,
            *order,
        )
    });
    if let Some(pin) = input.pinned
        && let Some(i) = usable
            .iter()
            .position(|(_, c)| pin == c.provider || pin == format!("{}/{}", c.provider, c.model))
    {
        let (order, mut c) = usable.remove(i);
        c.reason = format!("requested by the client; {}", c.reason);
        usable.insert(0, (order, c));
    }
    let mut seen = HashSet::new();
    let (first, repeats): (Vec<_>, Vec<_>) = usable
        .into_iter()
        .map(|(_, c)| c)
        .partition(|c| seen.insert(c.provider.clone()));
    let mut chain: Vec<Candidate> = first
        .into_iter()
        .chain(repeats)
        .take(policy.max_paid_candidates)
        .collect();

    let money_skips = skipped.iter().filter(|s| s.reason.is_money()).count();
    if chain.is_empty() && money_skips > 0 {
        let reason = match remaining_cost {
            Some(rem)
                if skipped
                    .iter()
                    .any(|s| matches!(s.reason, SkipReason::OverBudget { .. })) =>
            {
                format!(
                    "budget exhausted: {rem} µ$ left this month, every model's estimate is above it"
                )
            }
            _ => format!(
                "token quota exhausted: {} tokens left this month",
                remaining_tokens.unwrap_or(0)
            ),
        };
        let local = policy.allow_local_fallback.then(|| {
            local_candidate(
                catalog,
                format!("{reason}; answering locally without a language model"),
            )
        });
        return RouteDecision::BudgetExhausted {
            reason,
            local,
            skipped,
        };
    }

    if policy.allow_local_fallback {
        if chain.is_empty() {
            chain.push(local_candidate(
                catalog,
                "no provider available; answering locally without a language model".into(),
            ));
        } else if policy.local_first_when_simple && target == ModelTier::Cheap {
            chain.insert(
                0,
                local_candidate(
                    catalog,
                    format!("{why_tier}; simple step answered locally first"),
                ),
            );
        } else {
            chain.push(local_candidate(
                catalog,
                "last resort if every provider fails: local extractive answer".into(),
            ));
        }
    }
    if chain.is_empty() {
        return RouteDecision::NoRoute { skipped };
    }
    RouteDecision::Route {
        target,
        chain,
        skipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_keys() -> Vec<ProviderStatus> {
        ["openai", "anthropic", "gemini"]
            .into_iter()
            .map(|p| ProviderStatus {
                provider: p.into(),
                platform_key: true,
                user_key: false,
                breaker_allows: true,
            })
            .collect()
    }

    fn input(complexity: f32, tier: UserTier, providers: &[ProviderStatus]) -> RouteInput<'_> {
        RouteInput {
            complexity,
            user_tier: tier,
            month_tokens: 0,
            month_cost_micros: 0,
            budget_micros: None,
            estimated_usage: Usage::new(2_000, 500),
            providers,
            pinned: None,
        }
    }

    #[test]
    fn a_pinned_provider_leads_even_past_the_chain_cut() {
        let (cat, keys) = (Catalog::builtin(), all_keys());
        let pol = RoutingPolicy {
            max_paid_candidates: 1,
            ..RoutingPolicy::default()
        };
        let unpinned = route(&cat, &pol, &input(0.1, UserTier::Enterprise, &keys));
        assert_eq!(pairs(&unpinned)[0], "gemini/gemini-2.0-flash");
        let d = route(
            &cat,
            &pol,
            &RouteInput {
                pinned: Some("anthropic"),
                ..input(0.1, UserTier::Enterprise, &keys)
            },
        );
        assert_eq!(pairs(&d)[0], "anthropic/claude-3-5-haiku-latest");
        assert!(
            d.chain()[0].reason.starts_with("requested by the client"),
            "{}",
            d.chain()[0].reason
        );
        let d = route(
            &cat,
            &pol,
            &RouteInput {
                pinned: Some("openai/gpt-4o"),
                ..input(0.1, UserTier::Enterprise, &keys)
            },
        );
        assert_eq!(pairs(&d)[0], "openai/gpt-4o");
        // A pin that is not usable (unknown, or no key) changes nothing.
        let d = route(
            &cat,
            &pol,
            &RouteInput {
                pinned: Some("nobody"),
                ..input(0.1, UserTier::Enterprise, &keys)
            },
        );
        assert_eq!(pairs(&d), pairs(&unpinned));
    }

    fn pairs(d: &RouteDecision) -> Vec<String> {
        d.chain()
            .iter()
            .map(|c| format!("{}/{}", c.provider, c.model))
            .collect()
    }

    #[test]
    fn complexity_picks_the_tier() {
        let (cat, pol, keys) = (Catalog::builtin(), RoutingPolicy::default(), all_keys());
        // Simple: cheapest cheap model first, one per provider, local last.
        let d = route(&cat, &pol, &input(0.1, UserTier::Enterprise, &keys));
        assert_eq!(
            pairs(&d),
            [
                "gemini/gemini-2.0-flash",
                "openai/gpt-4o-mini",
                "anthropic/claude-3-5-haiku-latest",
                "local/extractive"
            ]
        );
        let RouteDecision::Route { target, chain, .. } = &d else {
            panic!()
        };
        assert_eq!(*target, ModelTier::Cheap);
        assert!(
            chain[0].reason.contains("complexity 0.10 → cheap tier"),
            "{}",
            chain[0].reason
        );
        assert!(
            chain[1].reason.contains("complexity"),
            "same tier is not a fallback"
        );
        // Medium: the default tier (gpt-4o), then cheaper ones from other providers.
        let d = route(&cat, &pol, &input(0.5, UserTier::Enterprise, &keys));
        assert_eq!(
            pairs(&d)[..3],
            [
                "openai/gpt-4o",
                "gemini/gemini-2.0-flash",
                "anthropic/claude-3-5-haiku-latest"
            ]
        );
        assert!(d.chain()[1].reason.starts_with("fallback: cheap tier"));
        // Complex: heavy, cheapest heavy first.
        let d = route(&cat, &pol, &input(0.9, UserTier::Enterprise, &keys));
        assert_eq!(
            pairs(&d)[..3],
            [
                "gemini/gemini-2.5-pro",
                "anthropic/claude-sonnet-4-0",
                "openai/gpt-4o"
            ]
        );
        // Boundaries: 0.3 is default, 0.7 is heavy.
        assert_eq!(pol.tier_for(0.3), ModelTier::Default);
        assert_eq!(pol.tier_for(0.7), ModelTier::Heavy);
        assert_eq!(pol.tier_for(0.2999), ModelTier::Cheap);
        assert_eq!(pol.tier_for(f32::NAN), ModelTier::Default);
    }

    #[test]
    fn free_plan_is_capped_and_cannot_use_own_keys() {
        let (cat, pol) = (Catalog::builtin(), RoutingPolicy::default());
        let mut keys = all_keys();
        keys[1].user_key = true;
        let d = route(&cat, &pol, &input(0.95, UserTier::Free, &keys));
        let RouteDecision::Route {
            target,
            chain,
            skipped,
        } = &d
        else {
            panic!()
        };
        assert_eq!(*target, ModelTier::Default);
        assert_eq!(chain[0].model, "gpt-4o");
        assert!(
            chain[0]
                .reason
                .contains("capped to default by the Free plan")
        );
        assert!(chain.iter().all(|c| c.key != KeySource::User));
        assert!(skipped.iter().any(|s| s.model == "claude-sonnet-4-0"
            && s.reason
                == SkipReason::TierNotAllowed {
                    max: ModelTier::Default
                }));
    }

    #[test]
    fn own_key_comes_first_and_skips_platform_budget() {
        let (cat, pol) = (Catalog::builtin(), RoutingPolicy::default());
        let mut keys = all_keys();
        keys[1].user_key = true; // anthropic
        let mut inp = input(0.9, UserTier::Premium, &keys);
        let d = route(&cat, &pol, &inp);
        assert_eq!(pairs(&d)[0], "anthropic/claude-sonnet-4-0");
        assert_eq!(d.chain()[0].key, KeySource::User);
        assert!(d.chain()[0].reason.contains("the user's own key"));
        // Platform budget spent: only the own-key models remain.
        inp.month_cost_micros = 50_000_000;
        let d = route(&cat, &pol, &inp);
        assert_eq!(
            pairs(&d),
            [
                "anthropic/claude-sonnet-4-0",
                "anthropic/claude-3-5-haiku-latest",
                "local/extractive"
            ]
        );
    }

    #[test]
    fn budget_exhausted_makes_no_paid_call() {
        let (cat, pol, keys) = (Catalog::builtin(), RoutingPolicy::default(), all_keys());
        let mut inp = input(0.5, UserTier::Free, &keys);
        inp.month_cost_micros = 999_999; // 1 µ$ left of $1
        let d = route(&cat, &pol, &inp);
        let RouteDecision::BudgetExhausted {
            reason,
            local,
            skipped,
        } = &d
        else {
            panic!("{d:?}")
        };
        assert!(reason.contains("1 µ$ left"), "{reason}");
        assert_eq!(local.as_ref().unwrap().kind, ProviderKind::Local);
        assert_eq!(local.as_ref().unwrap().estimated_cost_micros, 0);
        assert!(skipped.iter().any(|s| matches!(
            s.reason,
            SkipReason::OverBudget {
                remaining_micros: 1,
                ..
            }
        )));
        assert_eq!(pairs(&d), ["local/extractive"]);

        // A per-request budget cap works the same way; without local fallback nothing is chained.
        let mut inp = input(0.5, UserTier::Enterprise, &keys);
        inp.budget_micros = Some(0);
        let pol2 = RoutingPolicy {
            allow_local_fallback: false,
            ..RoutingPolicy::default()
        };
        let d = route(&cat, &pol2, &inp);
        assert!(matches!(
            &d,
            RouteDecision::BudgetExhausted { local: None, .. }
        ));
        assert!(d.chain().is_empty());

        // Token quota.
        let mut inp = input(0.1, UserTier::Free, &keys);
        inp.month_tokens = 199_000;
        let d = route(&cat, &pol, &inp);
        let RouteDecision::BudgetExhausted { reason, .. } = &d else {
            panic!("{d:?}")
        };
        assert!(reason.contains("token quota"), "{reason}");

        // A budget that fits only the cheapest model keeps that one.
        let mut inp = input(0.9, UserTier::Enterprise, &keys);
        inp.budget_micros = Some(600); // gemini-2.0-flash costs ~400 µ$, gpt-4o-mini exactly 600
        let d = route(&cat, &pol, &inp);
        assert_eq!(
            pairs(&d),
            [
                "gemini/gemini-2.0-flash",
                "openai/gpt-4o-mini",
                "local/extractive"
            ]
        );
    }

    #[test]
    fn open_breakers_missing_keys_and_small_contexts_are_skipped() {
        let cat = Catalog::builtin();
        let pol = RoutingPolicy::default();
        let mut keys = all_keys();
        keys[0].breaker_allows = false; // openai
        keys.retain(|k| k.provider != "gemini");
        let mut inp = input(0.1, UserTier::Enterprise, &keys);
        let d = route(&cat, &pol, &inp);
        assert_eq!(
            pairs(&d),
            [
                "anthropic/claude-3-5-haiku-latest",
                "anthropic/claude-sonnet-4-0",
                "local/extractive"
            ]
        );
        let RouteDecision::Route { skipped, .. } = &d else {
            panic!()
        };
        assert!(
            skipped
                .iter()
                .any(|s| s.provider == "openai" && s.reason == SkipReason::CircuitOpen)
        );
        assert!(
            skipped
                .iter()
                .any(|s| s.provider == "gemini" && s.reason == SkipReason::NoKey)
        );

        inp.estimated_usage = Usage::new(300_000, 1_000);
        let d = route(&cat, &pol, &inp);
        assert_eq!(pairs(&d), ["local/extractive"]);
        assert!(d.chain()[0].reason.starts_with("no provider available"));
    }

    #[test]
    fn no_provider_configured_answers_locally_or_not_at_all() {
        let cat = Catalog::builtin();
        let d = route(
            &cat,
            &RoutingPolicy::default(),
            &input(0.5, UserTier::Free, &[]),
        );
        assert_eq!(pairs(&d), ["local/extractive"]);
        let pol = RoutingPolicy {
            allow_local_fallback: false,
            ..RoutingPolicy::default()
        };
        assert!(matches!(
            route(&cat, &pol, &input(0.5, UserTier::Free, &[])),
            RouteDecision::NoRoute { .. }
        ));
    }

    #[test]
    fn local_first_for_simple_steps_and_keyless_servers() {
        let cat = Catalog::from_json(
            r#"{"providers":[{"id":"ollama","kind":"openai-compatible","base_url":"http://127.0.0.1:11434",
            "models":[{"id":"llama3.2","tier":"cheap","input_usd_per_mtok":0,"output_usd_per_mtok":0,"context_window":8192}]}]}"#,
        )
        .unwrap();
        let st = [ProviderStatus {
            provider: "ollama".into(),
            platform_key: false,
            user_key: false,
            breaker_allows: true,
        }];
        let pol = RoutingPolicy {
            local_first_when_simple: true,
            ..RoutingPolicy::default()
        };
        let d = route(&cat, &pol, &input(0.1, UserTier::Free, &st));
        assert_eq!(pairs(&d), ["local/extractive", "ollama/llama3.2"]);
        assert_eq!(d.chain()[1].key, KeySource::None);
        let d = route(&cat, &pol, &input(0.5, UserTier::Free, &st));
        assert_eq!(pairs(&d), ["ollama/llama3.2", "local/extractive"]);
    }
}
