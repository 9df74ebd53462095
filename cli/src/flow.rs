//! The engine-facing steps of `plan` and `apply`, shared by the local
//! commands (`commands::plan`, `commands::apply`) and the fleet agent
//! (`fleet::agent`), so a host reached over ssh selects, plans, upgrades,
//! prunes and records exactly as the local host does.

use std::path::Path;

use anyhow::Result;
use berth_engine::saved_plan::{SavedPlan, SavedPlanError};
use berth_engine::{Engine, MachinePlan, Plan, Reporter};
use berth_schema::Machine;

use crate::commands::plan_errors;

/// What a plan is for.
pub enum Mode<'p> {
    /// What apply would change.
    Plan,
    /// The same with package upgrades (`--upgrade`).
    Upgrade,
    /// A plan to save (`plan --out`), naming the spec at this path.
    Save(&'p Path),
}

/// The plan of the spec's machines and of the machines to prune.
pub struct Planned {
    /// The spec's machines, in their order.
    pub plan: Plan,
    /// The machines applied from the spec and gone from it.
    pub prune: Vec<MachinePlan>,
    /// The saved form ([`Mode::Save`]), prune fingerprints included.
    pub saved: Option<SavedPlan>,
}

impl Planned {
    /// The plan as shown: the spec's machines, then those to prune.
    pub fn shown(&self) -> Plan {
        crate::prune::with_prune(&self.plan, &self.prune)
    }
}

/// `berth plan`: plans the machines to prune (`prune`, from
/// [`crate::prune::select`]), then `machines`.
pub fn plan(
    engine: &Engine,
    machines: &[&Machine],
    prune: &[String],
    mode: Mode<'_>,
) -> Result<Planned> {
    let prune = engine.plan_prune(prune).map_err(plan_errors)?;
    let machines = machines.iter().copied();
    Ok(match mode {
        Mode::Save(spec) => {
            let (plan, mut saved) = engine
                .plan_for_saving(spec, machines)
                .map_err(plan_errors)?;
            let shown = crate::prune::with_prune(&plan, &prune);
            engine.save_prune(&mut saved, &shown, &prune)?;
            Planned {
                plan,
                prune,
                saved: Some(saved),
            }
        }
        Mode::Upgrade => Planned {
            plan: engine.plan_upgrade(machines).map_err(plan_errors)?,
            prune,
            saved: None,
        },
        Mode::Plan => Planned {
            plan: engine.plan(machines).map_err(plan_errors)?,
            prune,
            saved: None,
        },
    })
}

/// `berth apply` (under the state lock): plans `machines` (with upgrades
/// when `upgrade`), then the machines to prune.
pub fn apply_plan(
    engine: &Engine,
    machines: &[&Machine],
    prune: &[String],
    upgrade: bool,
) -> Result<Planned> {
    let plan = if upgrade {
        engine.plan_upgrade(machines.iter().copied())
    } else {
        engine.plan(machines.iter().copied())
    }
    .map_err(plan_errors)?;
    let prune = engine.plan_prune(prune).map_err(plan_errors)?;
    Ok(Planned {
        plan,
        prune,
        saved: None,
    })
}

/// `berth apply FILE` (under the state lock): the saved plan of
/// `machines` and its machines to prune, when nothing changed since.
pub fn check_saved(
    engine: &Engine,
    machines: &[&Machine],
    saved: &SavedPlan,
) -> Result<Planned, SavedPlanError> {
    let plan = engine.check_saved_plan(saved, machines)?;
    let prune = engine.check_saved_prune(saved)?;
    Ok(Planned {
        plan,
        prune,
        saved: None,
    })
}

/// With `--prune`: refuses when a machine to prune may not be destroyed.
pub fn check_prune(engine: &Engine, prune: &[MachinePlan]) -> Result<()> {
    let names: Vec<String> = prune.iter().map(|p| p.name.clone()).collect();
    engine.check_prunable(&names).map_err(plan_errors)
}

/// After apply: records every machine's `prevent_destroy` and, for the
/// machines `done` (applied or unchanged), the spec they came from.
pub fn record(engine: &Engine, machines: &[&Machine], done: &[&Machine]) -> Result<()> {
    engine.record_prevent_destroy(machines)?;
    engine.record_spec(done)?;
    Ok(())
}

/// Destroys one machine gone from the spec: its result (`destroyed`,
/// `absent`, `failed`) and error.
pub fn prune_one(
    engine: &Engine,
    approved: &MachinePlan,
    reporter: &dyn Reporter,
) -> (&'static str, Option<String>) {
    match engine.prune(approved, reporter) {
        Ok(true) => ("destroyed", None),
        Ok(false) => ("absent", None),
        Err(e) => ("failed", Some(e.to_string())),
    }
}
