//! Feedback domain logic, free of any runtime so it is unit-tested natively and shared by the
//! feedback component (HTTP), the feedback-report component (cron) and the chat component:
//!
//! - [`token`]: presigned, expiring feedback tokens for one assistant message;
//! - [`cluster`]: average-linkage agglomerative clustering of question embeddings on cosine
//!   distance, cut at a threshold, with a medoid per cluster;
//! - [`report`]: the feedback report (clusters worst-first, step patterns before down-votes);
//! - [`preferences`]: per-user success statistics and the persona/model they favour;
//! - [`queries`]: the SQL both report writers run;
//! - [`curated`]: operator-approved answers ranked ahead of other knowledge-base sources.

pub mod cluster;
pub mod curated;
pub mod preferences;
pub mod queries;
pub mod report;
pub mod token;

/// A thumbs rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    Up,
    Down,
}

impl Rating {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "up" => Some(Self::Up),
            "down" => Some(Self::Down),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}
