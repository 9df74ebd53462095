//! The plan: what berth would do, machine by machine, as typed actions.

use std::collections::BTreeMap;

use berth_schema::Launcher;
use serde::Serialize;

use crate::model::action::Action;
use crate::model::warning::Warning;

/// Everything berth would do, machine by machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The total number of actions.
    pub changes: usize,
    /// One entry per targeted machine, in spec order.
    pub machines: Vec<MachinePlan>,
}

impl Plan {
    /// A plan from per-machine plans.
    pub fn new(machines: Vec<MachinePlan>) -> Self {
        Plan {
            changes: machines.iter().map(|m| m.actions.len()).sum(),
            machines,
        }
    }

    /// Whether the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.changes == 0
    }
}

/// What berth would do to one machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachinePlan {
    /// The machine name.
    pub name: String,
    /// `create` (no root yet), `update` or `none`.
    pub change: ChangeKind,
    /// The concrete launcher (after resolving `auto`).
    pub launcher: Launcher,
    /// The network the machine gets (`host`, `veth`, `zone lab`, ...): the
    /// spec's mode or the launcher's default; None for a destroy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Why the machine is destroyed when no one named it: `not-in-spec`
    /// (berth applied it from this spec, and it is gone from it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<DestroyReason>,
    /// The actions, in the order apply runs them.
    pub actions: Vec<Action>,
    /// Things the user should know that are not errors.
    pub warnings: Vec<Warning>,
    /// Fingerprints of what the plan was made against, part by part
    /// ([`Observed::fingerprint`](crate::model::observed::Observed::fingerprint)): apply runs the actions only while
    /// they still hold.
    #[serde(skip)]
    pub observed: BTreeMap<String, String>,
}

/// Why a machine no one named is destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DestroyReason {
    /// berth applied it from this spec, and it is gone from it (prune).
    NotInSpec,
}

impl std::fmt::Display for DestroyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DestroyReason::NotInSpec => "no longer in the spec",
        })
    }
}

/// The overall change to a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// The machine will be created.
    Create,
    /// The machine will be changed in place.
    Update,
    /// The root will be destroyed and bootstrapped again.
    Replace,
    /// The machine will be destroyed (`berth plan --destroy`).
    Destroy,
    /// There is no such machine to destroy (`berth plan --destroy`).
    Absent,
    /// Nothing to do.
    None,
}
