//! Per-user success patterns: which personas (skill levels) and which models earned the
//! user's up-votes, and what the chat step should prefer because of them.
//!
//! The statistics are recomputed from the user's current feedback (see [`tally`]), so a
//! replaced rating never counts twice. Choices use Laplace-smoothed up-rates,
//! `(up + 1) / (votes + 2)`, and need [`MIN_VOTES`] votes, so one thumb does not flip a
//! user's persona.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Rating;

/// Votes below which a persona or model is not judged.
pub const MIN_VOTES: u32 = 3;
/// How much better (in smoothed up-rate) another persona must do to replace the configured one.
pub const MIN_ADVANTAGE: f64 = 0.2;
/// The smoothed up-rate a model needs to be tried first.
pub const MIN_MODEL_RATE: f64 = 0.6;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Votes {
    pub up: u32,
    pub down: u32,
}

impl Votes {
    pub fn total(self) -> u32 {
        self.up + self.down
    }

    /// The Laplace-smoothed up-rate.
    pub fn rate(self) -> f64 {
        (f64::from(self.up) + 1.0) / (f64::from(self.total()) + 2.0)
    }

    fn add(&mut self, r: Rating) {
        match r {
            Rating::Up => self.up += 1,
            Rating::Down => self.down += 1,
        }
    }
}

/// Stored in `user_profiles.feedback_stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SuccessStats {
    #[serde(default)]
    pub personas: BTreeMap<String, Votes>,
    /// `provider/model` → votes on answers it took part in.
    #[serde(default)]
    pub models: BTreeMap<String, Votes>,
}

/// One rated answer: the persona it was written for, the models that answered its steps.
pub struct RatedAnswer {
    pub persona: Option<String>,
    pub models: Vec<String>,
    pub rating: Rating,
}

pub fn tally(answers: &[RatedAnswer]) -> SuccessStats {
    let mut s = SuccessStats::default();
    for a in answers {
        if let Some(p) = &a.persona {
            s.personas.entry(p.clone()).or_default().add(a.rating);
        }
        let mut models = a.models.clone();
        models.sort();
        models.dedup();
        for m in models {
            s.models.entry(m).or_default().add(a.rating);
        }
    }
    s
}

/// The persona to answer with, and why when it is not the configured one.
pub fn persona(stats: &SuccessStats, configured: &str) -> (String, Option<String>) {
    let current = stats.personas.get(configured).copied().unwrap_or_default();
    let best = stats
        .personas
        .iter()
        .filter(|(p, v)| p.as_str() != configured && v.total() >= MIN_VOTES)
        .max_by(|a, b| a.1.rate().total_cmp(&b.1.rate()).then(b.0.cmp(a.0)));
    match best {
        Some((p, v))
            if current.total() >= MIN_VOTES && v.rate() - current.rate() >= MIN_ADVANTAGE =>
        {
            (
                p.clone(),
                Some(format!(
                    "answers for the {p} persona got {}/{} up-votes, {configured} got {}/{}",
                    v.up,
                    v.total(),
                    current.up,
                    current.total()
                )),
            )
        }
        _ => (configured.to_string(), None),
    }
}

/// The paid model (`provider/model`) to try first, if the user's votes single one out.
pub fn preferred_model(stats: &SuccessStats) -> Option<String> {
    stats
        .models
        .iter()
        .filter(|(m, v)| {
            !m.starts_with("local/")
                && !m.starts_with("-/")
                && v.total() >= MIN_VOTES
                && v.rate() >= MIN_MODEL_RATE
        })
        .max_by(|a, b| a.1.rate().total_cmp(&b.1.rate()).then(b.0.cmp(a.0)))
        .map(|(m, _)| m.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(persona: &str, models: &[&str], rating: Rating) -> RatedAnswer {
        RatedAnswer {
            persona: Some(persona.into()),
            models: models.iter().map(|m| m.to_string()).collect(),
            rating,
        }
    }

    #[test]
    fn tally_counts_each_model_once_per_answer() {
        let s = tally(&[
            answer(
                "beginner",
                &["openai/gpt-4o", "openai/gpt-4o", "local/x"],
                Rating::Up,
            ),
            answer("expert", &["openai/gpt-4o"], Rating::Down),
        ]);
        assert_eq!(s.models["openai/gpt-4o"], Votes { up: 1, down: 1 });
        assert_eq!(s.personas["beginner"], Votes { up: 1, down: 0 });
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(serde_json::from_value::<SuccessStats>(json).unwrap(), s);
        assert_eq!(
            serde_json::from_str::<SuccessStats>("{}").unwrap(),
            SuccessStats::default()
        );
    }

    #[test]
    fn persona_switches_only_on_enough_clear_evidence() {
        let mut answers: Vec<RatedAnswer> = (0..3)
            .map(|_| answer("beginner", &[], Rating::Up))
            .collect();
        // Nothing known about the configured persona: keep it.
        assert_eq!(persona(&tally(&answers), "expert").0, "expert");
        answers.extend((0..2).map(|_| answer("expert", &[], Rating::Down)));
        assert_eq!(
            persona(&tally(&answers), "expert").0,
            "expert",
            "two votes are not enough"
        );
        answers.push(answer("expert", &[], Rating::Down));
        let (p, why) = persona(&tally(&answers), "expert");
        assert_eq!(p, "beginner");
        assert!(why.unwrap().contains("3/3 up-votes"));
        // The configured persona doing about as well keeps it.
        let even: Vec<RatedAnswer> = (0..3)
            .flat_map(|_| {
                [
                    answer("beginner", &[], Rating::Up),
                    answer("expert", &[], Rating::Up),
                ]
            })
            .collect();
        assert_eq!(
            persona(&tally(&even), "expert"),
            ("expert".to_string(), None)
        );
    }

    #[test]
    fn preferred_model_needs_votes_a_good_rate_and_a_paid_provider() {
        let ups = |m: &str, n: usize| {
            (0..n)
                .map(|_| answer("expert", &[m], Rating::Up))
                .collect::<Vec<_>>()
        };
        assert_eq!(preferred_model(&tally(&ups("openai/gpt-4o", 2))), None);
        assert_eq!(preferred_model(&tally(&ups("local/extractive", 5))), None);
        let mut a = ups("openai/gpt-4o", 3);
        a.extend(ups("anthropic/claude", 5));
        assert_eq!(
            preferred_model(&tally(&a)).as_deref(),
            Some("anthropic/claude")
        );
        let downs: Vec<RatedAnswer> = (0..4)
            .map(|_| answer("expert", &["openai/gpt-4o"], Rating::Down))
            .collect();
        assert_eq!(preferred_model(&tally(&downs)), None);
    }
}
