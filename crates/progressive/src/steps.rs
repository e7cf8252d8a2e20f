//! The steps of one turn and how they depend on each other.
//!
//! A turn's layout comes from its plan: analysis (0) → planning (1) → one implementation step
//! per task → validation → synthesis. Implementation steps depend on planning and on the
//! steps of the tasks they build on; validation on every implementation step; synthesis on
//! validation and every implementation step. Editing a step reruns it, and with
//! [`TurnLayout::dependents`] everything downstream of it.

use serde::{Deserialize, Serialize};
use tessera_gateway::StepKind;

use crate::plan::{Plan, PlanTask};

/// A stored step's state. `Running` steps cannot be edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    Running,
    Completed,
    /// The step could not produce an output; the turn reports why.
    Failed,
    /// Not run because an earlier step failed or the client went away.
    Skipped,
    /// Not run because the client disconnected (no further paid calls).
    Cancelled,
}

impl StepStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "skipped" => Self::Skipped,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// Whether the step will not change any more by itself.
    pub const fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }
}

/// Parses a stored step kind.
pub fn parse_kind(s: &str) -> Option<StepKind> {
    Some(match s {
        "analysis" => StepKind::Analysis,
        "planning" => StepKind::Planning,
        "implementation" => StepKind::Implementation,
        "validation" => StepKind::Validation,
        "synthesis" => StepKind::Synthesis,
        _ => return None,
    })
}

/// Whether a user may edit steps of this kind: analysis and validation are computed from
/// their inputs, so they are rerun as dependents rather than edited.
pub const fn is_editable(kind: StepKind) -> bool {
    matches!(
        kind,
        StepKind::Planning | StepKind::Implementation | StepKind::Synthesis
    )
}

/// One step of a turn's layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSpec {
    /// Position in the turn, 0-based.
    pub ordinal: usize,
    pub kind: StepKind,
    pub title: String,
    /// The planned task an implementation step carries out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<PlanTask>,
    /// Ordinals of the steps whose output this one reads.
    pub depends_on: Vec<usize>,
}

/// The steps of one turn in execution order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnLayout {
    pub steps: Vec<StepSpec>,
}

pub const ANALYSIS: usize = 0;
pub const PLANNING: usize = 1;

impl TurnLayout {
    /// The first two steps, before a plan exists.
    pub fn head() -> Vec<StepSpec> {
        vec![
            StepSpec {
                ordinal: ANALYSIS,
                kind: StepKind::Analysis,
                title: "Analyse the question".into(),
                task: None,
                depends_on: vec![],
            },
            StepSpec {
                ordinal: PLANNING,
                kind: StepKind::Planning,
                title: "Plan the answer".into(),
                task: None,
                depends_on: vec![ANALYSIS],
            },
        ]
    }

    /// The whole layout for a validated plan.
    pub fn from_plan(plan: &Plan) -> Self {
        let mut steps = Self::head();
        let first_impl = steps.len();
        for (i, task) in plan.tasks.iter().enumerate() {
            let mut depends_on = vec![PLANNING];
            for dep in &task.depends_on {
                if let Some(j) = plan.tasks.iter().position(|t| t.id == *dep) {
                    depends_on.push(first_impl + j);
                }
            }
            steps.push(StepSpec {
                ordinal: first_impl + i,
                kind: StepKind::Implementation,
                title: task.title.clone(),
                task: Some(task.clone()),
                depends_on,
            });
        }
        let impls: Vec<usize> = (first_impl..first_impl + plan.tasks.len()).collect();
        let validation = first_impl + plan.tasks.len();
        steps.push(StepSpec {
            ordinal: validation,
            kind: StepKind::Validation,
            title: "Check the drafts".into(),
            task: None,
            depends_on: impls.clone(),
        });
        let mut synthesis_deps = vec![validation];
        synthesis_deps.extend(&impls);
        steps.push(StepSpec {
            ordinal: validation + 1,
            kind: StepKind::Synthesis,
            title: "Write the answer".into(),
            task: None,
            depends_on: synthesis_deps,
        });
        Self { steps }
    }

    pub fn get(&self, ordinal: usize) -> Option<&StepSpec> {
        self.steps.get(ordinal)
    }

    pub fn implementation_steps(&self) -> impl Iterator<Item = &StepSpec> {
        self.steps
            .iter()
            .filter(|s| s.kind == StepKind::Implementation)
    }

    /// Every step that reads `ordinal`'s output, directly or through others, in execution
    /// order (the order to rerun them in).
    pub fn dependents(&self, ordinal: usize) -> Vec<usize> {
        let mut hit = vec![false; self.steps.len()];
        if ordinal < hit.len() {
            hit[ordinal] = true;
        }
        // Steps only depend on earlier ones, so one pass in order finds the closure.
        for s in &self.steps {
            if s.ordinal != ordinal && s.depends_on.iter().any(|d| hit.get(*d) == Some(&true)) {
                hit[s.ordinal] = true;
            }
        }
        (0..self.steps.len())
            .filter(|&i| i != ordinal && hit[i])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(deps: &[&[u32]]) -> Plan {
        Plan {
            goal: "g".into(),
            tasks: deps
                .iter()
                .enumerate()
                .map(|(i, d)| PlanTask {
                    id: i as u32 + 1,
                    title: format!("task {}", i + 1),
                    instructions: "do it".into(),
                    depends_on: d.to_vec(),
                })
                .collect(),
        }
    }

    #[test]
    fn layout_orders_and_links_steps() {
        let l = TurnLayout::from_plan(&plan(&[&[], &[1], &[]]));
        let kinds: Vec<&str> = l.steps.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "analysis",
                "planning",
                "implementation",
                "implementation",
                "implementation",
                "validation",
                "synthesis"
            ]
        );
        assert_eq!(l.steps[3].depends_on, vec![1, 2]);
        assert_eq!(l.steps[5].depends_on, vec![2, 3, 4]);
        assert_eq!(l.steps[6].depends_on, vec![5, 2, 3, 4]);
        assert!(l.steps.iter().enumerate().all(|(i, s)| s.ordinal == i));
        assert_eq!(l.implementation_steps().count(), 3);
    }

    #[test]
    fn dependents_are_transitive_and_ordered() {
        let l = TurnLayout::from_plan(&plan(&[&[], &[1], &[]]));
        assert_eq!(l.dependents(2), vec![3, 5, 6]);
        assert_eq!(l.dependents(4), vec![5, 6]);
        assert_eq!(l.dependents(1), vec![2, 3, 4, 5, 6]);
        assert_eq!(l.dependents(6), Vec::<usize>::new());
        assert_eq!(l.dependents(0), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(l.dependents(99), Vec::<usize>::new());
    }

    #[test]
    fn statuses_and_kinds_round_trip() {
        for s in [
            StepStatus::Pending,
            StepStatus::Running,
            StepStatus::Completed,
            StepStatus::Failed,
            StepStatus::Skipped,
            StepStatus::Cancelled,
        ] {
            assert_eq!(StepStatus::parse(s.as_str()), Some(s));
        }
        assert!(!StepStatus::Running.is_final() && StepStatus::Skipped.is_final());
        assert_eq!(parse_kind("synthesis"), Some(StepKind::Synthesis));
        assert_eq!(parse_kind("embedding"), None);
        assert!(is_editable(StepKind::Planning) && !is_editable(StepKind::Validation));
    }
}
