//! Per-user success statistics (tessera_feedback::preferences), recomputed from the user's
//! current feedback inside the rating's transaction and stored in the user profile, where
//! the chat step reads them to choose a persona and a model.

use spin_sdk::pg::Connection;
use tessera_feedback::Rating;
use tessera_feedback::preferences::{RatedAnswer, tally};
use tessera_spin_kit::ApiError;

use crate::db::{self, P};

pub async fn refresh(db: &Connection, tenant: &str, user: &str) -> Result<(), ApiError> {
    let rows = db::rows(
        db,
        "read user feedback",
        "SELECT m.persona, f.rating,
             coalesce((SELECT json_agg(DISTINCT s.provider || '/' || s.model) FROM steps s
                       WHERE s.message_id = f.message_id AND s.current AND s.model IS NOT NULL AND s.provider IS NOT NULL), '[]')::text
         FROM feedback f JOIN messages m ON m.id = f.message_id
         WHERE f.tenant_id = $1 AND f.user_id = $2 AND f.current",
        vec![P::Str(tenant.into()), P::Str(user.into())],
    )
    .await?;
    let answers: Vec<RatedAnswer> = rows
        .iter()
        .map(|r| RatedAnswer {
            persona: db::opt_text(r, 0),
            models: serde_json::from_value(db::json(r, 2)).unwrap_or_default(),
            rating: Rating::parse(&db::text(r, 1)).unwrap_or(Rating::Down),
        })
        .collect();
    let stats = serde_json::to_value(tally(&answers)).unwrap_or_default();
    db::execute(
        db,
        "store feedback stats",
        "INSERT INTO user_profiles (tenant_id, user_id, feedback_stats) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET feedback_stats = $3, updated_at = now()",
        vec![
            P::Str(tenant.into()),
            P::Str(user.into()),
            db::jsonb(&stats),
        ],
    )
    .await
    .map(|_| ())
}
