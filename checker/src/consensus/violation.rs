//! Violations of the consensus requirements, explained for people.

use crate::history::CmdId;
use serde::Serialize;
use std::fmt;

/// The four requirements of Section 4.3 ("The Consensus Requirements
/// Restated").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Property {
    /// `learned[l] ∈ Str(propCmd)`: only proposed commands, none twice.
    Nontriviality,
    /// `learned[l] = v` implies `v ⊑ learned[l]` at all later times.
    Stability,
    /// `learned[l1]` and `learned[l2]` are always compatible.
    Consistency,
    /// Every proposed command is eventually learned by every learner; judged
    /// from the final heal on.
    Liveness,
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Property::Nontriviality => "Nontriviality",
            Property::Stability => "Stability",
            Property::Consistency => "Consistency",
            Property::Liveness => "Liveness",
        })
    }
}

/// Two per-key projections side by side, around where they part, for the
/// report. `left[marked]` and `right[marked]` are the offending pair (one of
/// them may be past the end of its side).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SideBySide {
    /// The key whose projections part; `None` for the order of checkpoints.
    pub key: Option<String>,
    pub left_label: String,
    pub right_label: String,
    /// Projection index of `left[0]` and `right[0]`.
    pub start: usize,
    pub left: Vec<CmdId>,
    pub right: Vec<CmdId>,
    /// What each command of `left` and `right` does, for people.
    pub left_ops: Vec<String>,
    pub right_ops: Vec<String>,
    pub marked: usize,
}

/// One violation, with everything a person needs to find it in the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub property: Property,
    pub message: String,
    /// The learners involved.
    pub learners: Vec<String>,
    /// The commands involved, the offending ones first.
    pub commands: Vec<CmdId>,
    /// The times (ns since the run started) of the observations involved.
    pub times: Vec<u64>,
    /// The history lines of the observations involved.
    pub lines: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side_by_side: Option<SideBySide>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.property, self.message)
    }
}
