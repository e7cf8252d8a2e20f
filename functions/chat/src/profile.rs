//! User profiles: skill level (the persona), plan tier, a monthly budget, and provider keys
//! of their own (encrypted; see `crypto`). `GET|PUT /v1/chat/profile`.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use spin_sdk::pg::Connection;
use tessera_feedback::preferences::{self, SuccessStats};
use tessera_gateway::UserTier;
use tessera_progressive::SkillLevel;
use tessera_spin_kit::{ApiError, StatusCode};

use crate::config::Settings;
use crate::db::{self, P};
use crate::identity::Caller;

pub struct Profile {
    pub skill: SkillLevel,
    pub tier: UserTier,
    pub monthly_budget_micros: Option<u64>,
    /// provider id → stored ciphertext.
    pub provider_keys: Map<String, Value>,
    /// Up/down votes by persona and model, kept by the feedback component.
    pub feedback_stats: SuccessStats,
}

impl Profile {
    /// The persona to answer with: the configured skill level, unless the user's votes
    /// clearly favour another (tessera_feedback::preferences::persona).
    pub fn persona(&self) -> SkillLevel {
        let (chosen, _why) = preferences::persona(&self.feedback_stats, self.skill.as_str());
        SkillLevel::parse(&chosen).unwrap_or(self.skill)
    }

    /// The paid model the user's up-votes single out, to try first when the request pins none.
    pub fn preferred_model(&self) -> Option<String> {
        preferences::preferred_model(&self.feedback_stats)
    }
}

fn parse_tier(s: &str) -> Option<UserTier> {
    Some(match s {
        "free" => UserTier::Free,
        "premium" => UserTier::Premium,
        "enterprise" => UserTier::Enterprise,
        _ => return None,
    })
}

fn tier_str(t: UserTier) -> &'static str {
    match t {
        UserTier::Free => "free",
        UserTier::Premium => "premium",
        UserTier::Enterprise => "enterprise",
    }
}

pub async fn load(db: &Connection, caller: &Caller) -> Result<Profile, ApiError> {
    let row = db::one(
        db,
        "read profile",
        "SELECT skill_level, tier, monthly_budget_micros, provider_keys::text, feedback_stats::text FROM user_profiles WHERE tenant_id = $1 AND user_id = $2",
        vec![P::Str(caller.tenant.clone()), P::Str(caller.user.clone())],
    )
    .await?;
    Ok(match row {
        Some(r) => Profile {
            skill: SkillLevel::parse(&db::text(&r, 0)).unwrap_or_default(),
            tier: parse_tier(&db::text(&r, 1)).unwrap_or(UserTier::Free),
            monthly_budget_micros: db::opt_int(&r, 2).map(|v| v.max(0) as u64),
            provider_keys: db::json(&r, 3).as_object().cloned().unwrap_or_default(),
            feedback_stats: serde_json::from_value(db::json(&r, 4)).unwrap_or_default(),
        },
        None => Profile {
            skill: SkillLevel::default(),
            tier: UserTier::Free,
            monthly_budget_micros: None,
            provider_keys: Map::new(),
            feedback_stats: SuccessStats::default(),
        },
    })
}

/// The user's own keys, decrypted; keys that no longer decrypt are left out.
pub fn user_keys(settings: &Settings, caller: &Caller, p: &Profile) -> Vec<(String, String)> {
    let Some(kek) = &settings.key_encryption_key else {
        return Vec::new();
    };
    p.provider_keys
        .iter()
        .filter_map(|(provider, stored)| {
            crate::crypto::decrypt(kek, &caller.tenant, &caller.user, provider, stored)
                .map(|k| (provider.clone(), k))
        })
        .collect()
}

fn view(p: &Profile) -> Value {
    let keys: Vec<&String> = p.provider_keys.keys().collect();
    json!({
        "skill_level": p.skill.as_str(),
        "tier": tier_str(p.tier),
        "monthly_budget_usd": p.monthly_budget_micros.map(|m| m as f64 / 1e6),
        // Which providers have a key of the user's own; the keys themselves are never returned.
        "own_keys": keys,
        // Votes on the user's answers by persona and model, and what they make the chat use.
        "feedback_stats": serde_json::to_value(&p.feedback_stats).unwrap_or_default(),
        "persona": p.persona().as_str(),
        "preferred_model": p.preferred_model(),
    })
}

pub async fn get(caller: &Caller) -> crate::Handled {
    let db = tessera_spin_kit::connect(&caller.tenant).await?;
    Ok((StatusCode::OK, view(&load(&db, caller).await?)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ChatProfileUpdate")]
pub struct Update {
    /// The persona answers are written for.
    #[schemars(extend("enum" = ["beginner", "intermediate", "expert", null]))]
    skill_level: Option<String>,
    /// The plan tier; setting it needs an operator.
    #[schemars(extend("enum" = ["free", "premium", "enterprise", null]))]
    tier: Option<String>,
    /// USD per month, 0 to 1000000; `null` removes the cap. Setting it needs an operator.
    #[serde(default, deserialize_with = "some")]
    #[schemars(with = "Option<f64>", range(min = 0, max = 1_000_000))]
    monthly_budget_usd: Option<Option<f64>>,
    /// provider id → the user's own key for it (at most 512 characters), or `null` to delete
    /// it. Needs the `key_encryption_key` variable.
    #[schemars(with = "Option<std::collections::BTreeMap<String, Option<String>>>")]
    provider_keys: Option<Map<String, Value>>,
}

fn some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Option::<f64>::deserialize(d).map(Some)
}

pub async fn put(body: &[u8], caller: &Caller, settings: &Settings) -> crate::Handled {
    let u: Update = tessera_api::parse_json(body)?;
    let db = tessera_spin_kit::connect(&caller.tenant).await?;
    let mut p = load(&db, caller).await?;
    if let Some(s) = &u.skill_level {
        p.skill = SkillLevel::parse(s).ok_or_else(|| {
            ApiError::invalid("skill_level", "expected beginner, intermediate or expert")
        })?;
    }
    // What a user may spend is the operator's decision, not the user's.
    if u.tier.is_some() || u.monthly_budget_usd.is_some() {
        tessera_spin_kit::auth::require_role(
            &caller.auth(),
            tessera_spin_kit::auth::Role::Operator,
        )?;
    }
    if let Some(t) = &u.tier {
        p.tier = parse_tier(t)
            .ok_or_else(|| ApiError::invalid("tier", "expected free, premium or enterprise"))?;
    }
    if let Some(b) = u.monthly_budget_usd {
        p.monthly_budget_micros = match b {
            None => None,
            Some(usd) if usd.is_finite() && (0.0..=1e6).contains(&usd) => {
                Some((usd * 1e6).round() as u64)
            }
            Some(_) => {
                return Err(ApiError::invalid(
                    "monthly_budget_usd",
                    "expected a USD amount from 0 to 1000000",
                ));
            }
        };
    }
    if let Some(keys) = u.provider_keys {
        let kek = settings.key_encryption_key.as_ref().ok_or_else(|| {
            ApiError::bad_request(
                "byok_disabled",
                "storing provider keys needs the key_encryption_key variable (64 hex digits) to be set",
                Some("provider_keys"),
            )
        })?;
        for (provider, key) in keys {
            let field = format!("provider_keys.{provider}");
            if settings.catalog.provider(&provider).is_none() {
                return Err(ApiError::invalid(
                    &field,
                    format!("unknown provider {provider:?}"),
                ));
            }
            match key {
                Value::Null => {
                    p.provider_keys.remove(&provider);
                }
                Value::String(k)
                    if !k.trim().is_empty() && k.len() <= 512 && !k.contains(['\r', '\n']) =>
                {
                    let sealed = crate::crypto::encrypt(
                        kek,
                        &caller.tenant,
                        &caller.user,
                        &provider,
                        k.trim(),
                    );
                    p.provider_keys.insert(provider, sealed);
                }
                _ => {
                    return Err(ApiError::invalid(
                        &field,
                        "expected a key (a non-empty string) or null",
                    ));
                }
            }
        }
    }
    db::execute(
        &db,
        "write profile",
        "INSERT INTO user_profiles (tenant_id, user_id, skill_level, tier, monthly_budget_micros, provider_keys)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET skill_level = $3, tier = $4, monthly_budget_micros = $5,
             provider_keys = $6, updated_at = now()",
        vec![
            P::Str(caller.tenant.clone()),
            P::Str(caller.user.clone()),
            P::Str(p.skill.as_str().into()),
            P::Str(tier_str(p.tier).into()),
            p.monthly_budget_micros.map_or(P::DbNull, |m| P::Int64(m as i64)),
            db::jsonb(&Value::Object(p.provider_keys.clone())),
        ],
    )
    .await?;
    Ok((StatusCode::OK, view(&p)))
}

/// Platform-paid tokens and cost of this user so far this calendar month (UTC).
pub async fn month_usage(db: &Connection, caller: &Caller) -> Result<(u64, u64), ApiError> {
    let row = db::one(
        db,
        "read month usage",
        "SELECT coalesce(sum(input_tokens + output_tokens), 0)::int8, coalesce(sum(cost_micros), 0)::int8 FROM llm_calls
         WHERE tenant_id = $1 AND user_id = $2 AND NOT user_key AND created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        vec![P::Str(caller.tenant.clone()), P::Str(caller.user.clone())],
    )
    .await?;
    Ok(row
        .map(|r| (db::int(&r, 0).max(0) as u64, db::int(&r, 1).max(0) as u64))
        .unwrap_or((0, 0)))
}
