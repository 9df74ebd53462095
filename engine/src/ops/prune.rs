//! Prune: machines berth applied from a spec that are gone from it.
//!
//! apply records in each machine's record the canonical path of the spec it
//! was applied from ([`Engine::record_spec`]; `-f DIR` counts as the
//! directory, whichever file of it declares the machine). A plan of that
//! spec then lists, after the spec's machines, every machine recorded from
//! it that it no longer declares (and that no `moved:` entry renames) as a
//! destroy with the reason `not-in-spec`; `apply --prune` destroys them
//! through [`Engine::destroy`], plain `apply` keeps them. A record without a
//! spec path (written before berth recorded it) is never pruned, and
//! machines recorded from another spec are never touched. A recorded
//! `prevent_destroy` makes the prune an error.

use std::collections::BTreeMap;

use berth_schema::Machine;

use crate::drivers::launcher;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::host::state::MachineRecord;
use crate::model::action::Action;
use crate::model::observed::sha256;
use crate::model::plan::DestroyReason;
use crate::model::warning::Warning;
use crate::planner::{ChangeKind, MachinePlan};
use crate::report::Reporter;

impl Engine {
    /// The names of the machines berth manages that were applied from the
    /// spec in use ([`Engine::with_spec_path`]) and that it no longer
    /// declares, in name order. Machines a `moved:` entry renames are not
    /// among them. Without a spec path: none.
    pub fn prunable(&self) -> Result<Vec<String>, EngineError> {
        Ok(self
            .prunable_records()?
            .into_iter()
            .map(|r| r.name)
            .collect())
    }

    fn prunable_records(&self) -> Result<Vec<MachineRecord>, EngineError> {
        let Some(path) = self.spec_path() else {
            return Ok(Vec::new());
        };
        let declared = |name: &str| {
            self.spec_machines()
                .is_some_and(|all| all.iter().any(|m| m.name == name))
        };
        let moved = |name: &str| self.moved().iter().any(|m| m.from == name);
        Ok(self
            .host()
            .state()
            .all()?
            .into_iter()
            .filter(|r| r.spec.as_deref() == Some(path))
            .filter(|r| !declared(&r.name) && !moved(&r.name))
            .collect())
    }

    /// The plans pruning `names` (prunable machines, see
    /// [`Engine::prunable`]): stop it if it runs, then destroy it, both
    /// with the reason `not-in-spec`. A name that is not prunable is an
    /// error.
    pub fn plan_prune(&self, names: &[String]) -> Result<Vec<MachinePlan>, Vec<EngineError>> {
        let records = self.prunable_records().map_err(|e| vec![e])?;
        let mut plans = Vec::new();
        let mut errors = Vec::new();
        for name in names {
            match records.iter().find(|r| &r.name == name) {
                Some(record) => plans.push(self.plan_prune_one(record)),
                None => errors.push(not_prunable(name)),
            }
        }
        if errors.is_empty() {
            Ok(plans)
        } else {
            Err(errors)
        }
    }

    fn plan_prune_one(&self, record: &MachineRecord) -> MachinePlan {
        let name = &record.name;
        let host = self.host();
        let running = record
            .launch
            .as_ref()
            .and_then(|launch| launcher::refresh(host, name, launch));
        let launcher = running
            .as_ref()
            .map_or(berth_schema::Launcher::Nspawn, |l| l.launcher);
        let mut actions = Vec::new();
        if let Some(launch) = &running {
            actions.push(Action::Stop {
                launcher: launch.launcher,
            });
        }
        actions.push(Action::Destroy {
            root: host.paths().machine_root(name).display().to_string(),
            reason: Some(DestroyReason::NotInSpec),
        });
        let mut warnings = Vec::new();
        if record.prevent_destroy {
            warnings.push(Warning::PruneRefused {
                record: host.paths().record_file(name).display().to_string(),
            });
        }
        MachinePlan {
            name: name.clone(),
            change: ChangeKind::Destroy,
            reason: Some(DestroyReason::NotInSpec),
            launcher,
            network: None,
            actions,
            warnings,
            observed: prune_fingerprint(record),
        }
    }

    /// Refuses, before anything is asked or done, to prune any of `names`
    /// that a recorded `prevent_destroy` protects.
    pub fn check_prunable(&self, names: &[String]) -> Result<(), Vec<EngineError>> {
        self.check_destroyable(names)
    }

    /// Destroys the pruned machine of `approved` (a plan from
    /// [`Engine::plan_prune`]) when it is still prunable and its record has
    /// not changed since the plan (`plan is stale` otherwise).
    pub fn prune(
        &self,
        approved: &MachinePlan,
        reporter: &dyn Reporter,
    ) -> Result<bool, EngineError> {
        let name = &approved.name;
        let record = self
            .prunable_records()?
            .into_iter()
            .find(|r| &r.name == name)
            .ok_or_else(|| not_prunable(name))?;
        if prune_fingerprint(&record) != approved.observed {
            return Err(EngineError::Stale {
                machine: name.clone(),
                message: "berth's record of it changed since the plan was made; run plan again"
                    .to_owned(),
            });
        }
        self.destroy(name, reporter)
    }

    /// Records the spec in use ([`Engine::with_spec_path`]) in the record
    /// of each of `machines` that berth manages (apply calls it for every
    /// machine it applied or found unchanged).
    pub fn record_spec(&self, machines: &[&Machine]) -> Result<(), EngineError> {
        let Some(path) = self.spec_path() else {
            return Ok(());
        };
        let store = self.host().state();
        for machine in machines {
            if let Some(mut record) = store.load(&machine.name)?
                && record.spec.as_deref() != Some(path)
            {
                record.spec = Some(path.to_owned());
                store.save(&record)?;
            }
        }
        Ok(())
    }
}

/// What a prune was planned against: the machine's record.
fn prune_fingerprint(record: &MachineRecord) -> BTreeMap<String, String> {
    BTreeMap::from([("record".to_owned(), sha256(&format!("{record:?}")))])
}

fn not_prunable(name: &str) -> EngineError {
    EngineError::Stale {
        machine: name.to_owned(),
        message:
            "it is no longer a machine applied from this spec and gone from it; run plan again"
                .to_owned(),
    }
}

impl Engine {
    /// Adds the prune plans `prune` to the saved plan `saved` (made by
    /// [`Engine::plan_for_saving`]) and to its reviewable `plan`, whose
    /// JSON it stores again.
    pub fn save_prune(
        &self,
        saved: &mut crate::saved_plan::SavedPlan,
        plan: &crate::planner::Plan,
        prune: &[MachinePlan],
    ) -> Result<(), EngineError> {
        saved.prune = prune
            .iter()
            .map(|p| crate::saved_plan::PruneFingerprint {
                name: p.name.clone(),
                observed: p.observed.clone(),
            })
            .collect();
        saved.plan = serde_json::to_value(plan)
            .map_err(|e| EngineError::State(format!("serialising the plan: {e}")))?;
        Ok(())
    }

    /// The prune plans of a saved plan, planned again: each machine must
    /// still be prunable with the same record, else `plan is stale`.
    pub fn check_saved_prune(
        &self,
        saved: &crate::saved_plan::SavedPlan,
    ) -> Result<Vec<MachinePlan>, crate::saved_plan::SavedPlanError> {
        let stale = crate::saved_plan::SavedPlanError::Stale;
        let records = self.prunable_records()?;
        let mut plans = Vec::new();
        for print in &saved.prune {
            let Some(record) = records.iter().find(|r| r.name == print.name) else {
                return Err(stale(format!(
                    "machine {} is no longer a machine applied from {} and gone from it; plan again",
                    print.name,
                    saved.spec.display()
                )));
            };
            let plan = self.plan_prune_one(record);
            if plan.observed != print.observed {
                return Err(stale(format!(
                    "machine {} changed since the plan was made: berth's record of it changed; plan again",
                    print.name
                )));
            }
            plans.push(plan);
        }
        Ok(plans)
    }
}
