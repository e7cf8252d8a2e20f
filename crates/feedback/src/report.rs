//! The feedback report: rated questions clustered by embedding, each cluster with its size,
//! representative question, share of down-votes, the steps and models that answered, and
//! cost; the worst clusters first. Then the step and tool patterns that precede down-votes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::cluster::{self, Cluster};

/// A step that answered a rated message (its current version).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepUse {
    pub kind: String,
    pub provider: String,
    pub model: String,
    pub status: String,
    /// `miss`, `exact` or `semantic`.
    pub cache: String,
}

/// An assistant message with its current feedback, the question it answered and how.
#[derive(Debug, Clone, PartialEq)]
pub struct RatedMessage {
    pub message_id: String,
    pub question: String,
    /// The question's embedding; `None` stands alone in its own cluster.
    pub embedding: Option<Vec<f32>>,
    pub up: usize,
    pub down: usize,
    pub cost_micros: i64,
    pub steps: Vec<StepUse>,
    /// Knowledge-base sources the answer was built on (the kb_search tool's results).
    pub sources: usize,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterReport {
    /// Rated messages in the cluster.
    pub size: usize,
    pub representative: String,
    pub representative_message_id: String,
    /// Up to [`SAMPLE_QUESTIONS`] other questions of the cluster.
    pub sample_questions: Vec<String>,
    pub message_ids: Vec<String>,
    pub up: usize,
    pub down: usize,
    pub down_share: f64,
    /// Step kind → number of steps of that kind.
    pub steps: BTreeMap<String, usize>,
    /// `provider/model` → number of steps it answered.
    pub models: BTreeMap<String, usize>,
    pub tags: BTreeMap<String, usize>,
    pub cost_micros: i64,
    pub cost_usd: f64,
}

/// A feature of how messages were answered, with the votes on those messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pattern {
    pub pattern: String,
    pub messages: usize,
    pub up: usize,
    pub down: usize,
    pub down_share: f64,
    /// `down_share` over the report's overall down share: above 1, the pattern goes with
    /// down-votes more often than answers in general.
    pub lift: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub messages: usize,
    pub up: usize,
    pub down: usize,
    pub down_share: f64,
    pub threshold: f32,
    /// More rated messages than [`cluster::MAX_POINTS`]: the most recent were clustered.
    pub truncated: bool,
    pub clusters: Vec<ClusterReport>,
    pub patterns: Vec<Pattern>,
}

pub const SAMPLE_QUESTIONS: usize = 5;
/// Patterns listed (those with down-votes, worst first).
pub const MAX_PATTERNS: usize = 20;

fn share(down: usize, up: usize) -> f64 {
    if up + down == 0 {
        0.0
    } else {
        down as f64 / (up + down) as f64
    }
}

/// Builds the report. `messages` should come most recent first: past
/// [`cluster::MAX_POINTS`] the oldest are left out (and `truncated` says so).
pub fn build(mut messages: Vec<RatedMessage>, threshold: f32) -> Report {
    let truncated = messages.len() > cluster::MAX_POINTS;
    messages.truncate(cluster::MAX_POINTS);
    let dims = messages
        .iter()
        .filter_map(|m| m.embedding.as_ref())
        .map(Vec::len)
        .max()
        .unwrap_or(0);
    // A missing (or odd-sized) embedding becomes the zero vector: distance 1 to everything,
    // so it stays alone below any sensible threshold.
    let points: Vec<Vec<f32>> = messages
        .iter()
        .map(|m| {
            m.embedding
                .clone()
                .filter(|e| e.len() == dims)
                .unwrap_or_else(|| vec![0.0; dims])
        })
        .collect();
    let mut clusters: Vec<ClusterReport> = cluster::cluster(&points, threshold)
        .iter()
        .map(|c| summarise(c, &messages))
        .collect();
    clusters.sort_by(|a, b| {
        b.down_share
            .total_cmp(&a.down_share)
            .then(b.down.cmp(&a.down))
            .then(b.size.cmp(&a.size))
            .then(a.representative.cmp(&b.representative))
    });
    let up = messages.iter().map(|m| m.up).sum();
    let down = messages.iter().map(|m| m.down).sum();
    Report {
        messages: messages.len(),
        up,
        down,
        down_share: share(down, up),
        threshold,
        truncated,
        patterns: patterns(&messages, share(down, up)),
        clusters,
    }
}

fn summarise(c: &Cluster, messages: &[RatedMessage]) -> ClusterReport {
    let members: Vec<&RatedMessage> = c.members.iter().map(|&i| &messages[i]).collect();
    let rep = &messages[c.medoid];
    let mut steps = BTreeMap::new();
    let mut models = BTreeMap::new();
    let mut tags = BTreeMap::new();
    for m in &members {
        for s in &m.steps {
            *steps.entry(s.kind.clone()).or_insert(0) += 1;
            *models
                .entry(format!("{}/{}", s.provider, s.model))
                .or_insert(0) += 1;
        }
        for t in &m.tags {
            *tags.entry(t.clone()).or_insert(0) += 1;
        }
    }
    let (up, down) = members
        .iter()
        .fold((0, 0), |(u, d), m| (u + m.up, d + m.down));
    let cost_micros = members.iter().map(|m| m.cost_micros).sum();
    ClusterReport {
        size: members.len(),
        representative: rep.question.clone(),
        representative_message_id: rep.message_id.clone(),
        sample_questions: members
            .iter()
            .filter(|m| m.message_id != rep.message_id)
            .map(|m| m.question.clone())
            .take(SAMPLE_QUESTIONS)
            .collect(),
        message_ids: members.iter().map(|m| m.message_id.clone()).collect(),
        up,
        down,
        down_share: share(down, up),
        steps,
        models,
        tags,
        cost_micros,
        cost_usd: cost_micros as f64 / 1e6,
    }
}

/// The features of how one message was answered.
pub fn features(m: &RatedMessage) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut sequence: Vec<(String, usize)> = Vec::new();
    for s in &m.steps {
        match sequence.last_mut() {
            Some((kind, n)) if *kind == s.kind => *n += 1,
            _ => sequence.push((s.kind.clone(), 1)),
        }
        out.insert(format!("{} by {}/{}", s.kind, s.provider, s.model));
        if s.status != "completed" {
            out.insert(format!("{} {}", s.kind, s.status));
        }
        if s.cache != "miss" && !s.cache.is_empty() {
            out.insert(format!("{} from the {} cache", s.kind, s.cache));
        }
    }
    if !sequence.is_empty() {
        let steps: Vec<String> = sequence
            .iter()
            .map(|(k, n)| {
                if *n > 1 {
                    format!("{k} ×{n}")
                } else {
                    k.clone()
                }
            })
            .collect();
        out.insert(format!("steps: {}", steps.join(" → ")));
    }
    out.insert(
        match m.sources {
            0 => "kb_search found nothing",
            1 | 2 => "kb_search found 1-2 sources",
            _ => "kb_search found 3+ sources",
        }
        .to_string(),
    );
    out
}

fn patterns(messages: &[RatedMessage], overall: f64) -> Vec<Pattern> {
    let mut by: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    for m in messages {
        for f in features(m) {
            let e = by.entry(f).or_insert((0, 0, 0));
            e.0 += 1;
            e.1 += m.up;
            e.2 += m.down;
        }
    }
    let mut out: Vec<Pattern> = by
        .into_iter()
        .filter(|(_, (_, _, down))| *down > 0)
        .map(|(pattern, (messages, up, down))| {
            let down_share = share(down, up);
            Pattern {
                pattern,
                messages,
                up,
                down,
                down_share,
                lift: if overall > 0.0 {
                    down_share / overall
                } else {
                    0.0
                },
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.down_share
            .total_cmp(&a.down_share)
            .then(b.down.cmp(&a.down))
            .then(a.pattern.cmp(&b.pattern))
    });
    out.truncate(MAX_PATTERNS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(kind: &str, provider: &str, model: &str) -> StepUse {
        StepUse {
            kind: kind.into(),
            provider: provider.into(),
            model: model.into(),
            status: "completed".into(),
            cache: "miss".into(),
        }
    }

    fn msg(
        id: &str,
        q: &str,
        angle: f32,
        up: usize,
        down: usize,
        steps: Vec<StepUse>,
    ) -> RatedMessage {
        let r = angle.to_radians();
        RatedMessage {
            message_id: id.into(),
            question: q.into(),
            embedding: Some(vec![r.cos(), r.sin()]),
            up,
            down,
            cost_micros: 1_500,
            steps,
            sources: 3,
            tags: vec![],
        }
    }

    fn sample() -> Vec<RatedMessage> {
        let local = || {
            vec![
                step("analysis", "local", "prototype-classifier"),
                step("implementation", "local", "extractive"),
                step("implementation", "local", "extractive"),
            ]
        };
        let paid = || {
            vec![
                step("analysis", "local", "prototype-classifier"),
                step("implementation", "openai", "gpt-4o-mini"),
            ]
        };
        vec![
            msg("m1", "what is wacc", 0.0, 1, 0, paid()),
            msg("m2", "how do I compute wacc", 4.0, 1, 0, paid()),
            msg("m3", "define wacc please", 2.0, 0, 1, local()),
            msg("m4", "sharpe ratio meaning", 90.0, 0, 1, local()),
            msg("m5", "explain the sharpe ratio", 93.0, 0, 1, local()),
        ]
    }

    #[test]
    fn clusters_come_worst_first_with_votes_steps_models_and_cost() {
        let r = build(sample(), 0.1);
        assert_eq!((r.messages, r.up, r.down), (5, 2, 3));
        assert_eq!(r.clusters.len(), 2);
        let worst = &r.clusters[0];
        assert_eq!((worst.size, worst.down, worst.down_share), (2, 2, 1.0));
        assert!(worst.representative.contains("sharpe"), "{worst:?}");
        assert_eq!(worst.models["local/extractive"], 4);
        assert_eq!(worst.steps["implementation"], 4);
        assert_eq!(worst.cost_micros, 3_000);
        let wacc = &r.clusters[1];
        assert_eq!(wacc.size, 3);
        // The medoid is the question in the middle (2°).
        assert_eq!(wacc.representative, "define wacc please");
        assert_eq!(wacc.sample_questions.len(), 2);
        assert!((wacc.down_share - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn patterns_that_precede_down_votes_rank_first() {
        let r = build(sample(), 0.1);
        let top = &r.patterns[0];
        assert_eq!(top.down_share, 1.0, "{:?}", r.patterns);
        assert!(
            r.patterns
                .iter()
                .any(|p| p.pattern == "implementation by local/extractive"
                    && p.down == 3
                    && p.up == 0)
        );
        assert!(
            r.patterns
                .iter()
                .any(|p| p.pattern == "steps: analysis → implementation ×2")
        );
        // Paid implementation only ever got up-votes: not a down-vote pattern.
        assert!(!r.patterns.iter().any(|p| p.pattern.contains("gpt-4o-mini")));
        let lift = r
            .patterns
            .iter()
            .find(|p| p.pattern == "implementation by local/extractive")
            .unwrap()
            .lift;
        assert!((lift - 1.0 / 0.6).abs() < 1e-9, "{lift}");
    }

    #[test]
    fn missing_embeddings_stand_alone_and_empty_input_is_an_empty_report() {
        let mut m = sample();
        m[0].embedding = None;
        let r = build(m, 0.1);
        assert_eq!(r.clusters.len(), 3);
        let empty = build(Vec::new(), 0.35);
        assert_eq!(
            (
                empty.messages,
                empty.clusters.len(),
                empty.patterns.len(),
                empty.down_share
            ),
            (0, 0, 0, 0.0)
        );
    }

    #[test]
    fn features_name_failures_caches_and_empty_retrieval() {
        let mut m = sample().remove(0);
        m.sources = 0;
        m.steps[1].status = "failed".into();
        m.steps[1].cache = "semantic".into();
        let f = features(&m);
        assert!(f.contains("implementation failed"), "{f:?}");
        assert!(
            f.contains("implementation from the semantic cache"),
            "{f:?}"
        );
        assert!(f.contains("kb_search found nothing"), "{f:?}");
    }
}
