//! The engine's front door: the [`Engine`] and planning. Its other jobs
//! live beside it: apply (`apply.rs`), status (`status.rs`), destroy
//! (`destroy.rs`), adopt (`adopt.rs`), shell/login (`console.rs`), and the
//! base cache (`cache.rs`).

use berth_schema::{Machine, Spec};

use crate::error::EngineError;
use crate::drivers::launcher::{self, HostFacts};
use crate::observe;
use crate::host::paths::Paths;
use crate::planner::{self, MachinePlan, Plan};
use crate::secret::{self, Secret};

/// Observes, plans and applies machines on this host.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) host: HostFacts,
}

impl Engine {
    /// An engine working in `paths` on this host.
    pub fn new(paths: Paths) -> Self {
        Engine {
            host: HostFacts::detect(paths),
        }
    }

    /// An engine with explicit host facts (tests).
    pub fn with_host(host: HostFacts) -> Self {
        Engine { host }
    }

    /// The host facts in use.
    pub fn host(&self) -> &HostFacts {
        &self.host
    }

    /// Plans every machine of `spec` that `select` accepts. All machines are
    /// planned; every error is returned, not just the first.
    pub fn plan<'a>(
        &self,
        machines: impl IntoIterator<Item = &'a Machine>,
    ) -> Result<Plan, Vec<EngineError>> {
        let mut plans = Vec::new();
        let mut errors = Vec::new();
        let procs = launcher::NspawnProcesses::scan();
        for machine in machines {
            match self.plan_full(machine, &procs) {
                Ok((plan, _, _)) => plans.push(plan),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(Plan::new(plans))
        } else {
            Err(errors)
        }
    }

    /// Plans one machine, returning the resolved secret for apply.
    pub(crate) fn plan_with_secret(
        &self,
        machine: &Machine,
    ) -> Result<(MachinePlan, Option<Secret>), EngineError> {
        self.plan_full(machine, &launcher::NspawnProcesses::scan())
            .map(|(plan, secret, _)| (plan, secret))
    }

    /// Plans one machine, returning the resolved secret and what was
    /// observed (saved plans fingerprint it).
    pub(crate) fn plan_observed(
        &self,
        machine: &Machine,
    ) -> Result<(MachinePlan, Option<Secret>, observe::Observed), EngineError> {
        self.plan_full(machine, &launcher::NspawnProcesses::scan())
    }

    /// Plans one machine against a snapshot of the host's nspawn processes
    /// (taken once when planning many machines).
    fn plan_full(
        &self,
        machine: &Machine,
        procs: &launcher::NspawnProcesses,
    ) -> Result<(MachinePlan, Option<Secret>, observe::Observed), EngineError> {
        let mut warnings = Vec::new();
        let secret = match &machine.root_password {
            Some(source) => {
                let resolved = secret::resolve(source).map_err(|message| EngineError::Secret {
                    machine: machine.name.clone(),
                    message,
                })?;
                warnings.extend(resolved.warnings);
                Some(resolved.secret)
            }
            None => None,
        };
        let observed = observe::observe_with(&self.host, machine, procs)?;
        let mut plan = planner::plan_machine(machine, &observed, secret.as_ref(), &self.host)?;
        plan.warnings.extend(warnings);
        Ok((plan, secret, observed))
    }
}

/// Machines of `spec` selected by `names` (all when empty), or the names that match none.
pub fn select<'a>(spec: &'a Spec, names: &[String]) -> Result<Vec<&'a Machine>, Vec<String>> {
    if names.is_empty() {
        return Ok(spec.machines.values().collect());
    }
    let unknown: Vec<String> = names
        .iter()
        .filter(|n| !spec.machines.contains_key(n.as_str()))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    Ok(spec
        .machines
        .values()
        .filter(|m| names.contains(&m.name))
        .collect())
}
