//! The engine's front door: the [`Engine`] and planning. Its other jobs
//! live in their own modules: executing plans (`execute`), status, destroy,
//! adopt, shell/login, saved plans and the base cache (`ops`).

use std::sync::Arc;

use berth_schema::{Machine, Spec};

use crate::drivers::launcher::NspawnProcesses;
use crate::drivers::network::address::RunAddresses;
use crate::error::EngineError;
use crate::host::paths::Paths;
use crate::host::{Host, HostFacts, LocalHost};
use crate::inputs::InputPolicy;
use crate::model::observed::Observed;
use crate::planner::{self, MachinePlan, Plan};
use crate::secret::{self, Secret};

/// Observes, plans and applies machines on one host.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) host: Arc<dyn Host>,
    /// Every machine of the spec being worked on (see [`Engine::for_spec`]).
    spec: Option<Arc<Vec<Machine>>>,
    /// Where specs may read files from beyond their own work tree.
    pub(crate) inputs: Arc<InputPolicy>,
    /// The canonical path of the spec in use (see [`Engine::with_spec_path`]).
    spec_path: Option<Arc<std::path::PathBuf>>,
    /// The spec's `moved:` entries (see [`Engine::for_spec`]).
    moved: Arc<Vec<berth_schema::Moved>>,
    /// The snapshots taken by the apply under way, by machine (see
    /// [`Engine::snapshot_taken`]).
    pub(crate) taken: crate::ops::snapshot::Taken,
}

impl Engine {
    /// An engine working in `paths` on this host.
    pub fn new(paths: Paths) -> Self {
        Engine {
            host: Arc::new(LocalHost::new(paths)),
            spec: None,
            inputs: Arc::default(),
            spec_path: None,
            moved: Arc::default(),
            taken: Default::default(),
        }
    }

    /// An engine on this host with explicit facts (tests).
    pub fn with_facts(facts: HostFacts) -> Self {
        Engine {
            host: Arc::new(LocalHost::with_facts(facts)),
            spec: None,
            inputs: Arc::default(),
            spec_path: None,
            moved: Arc::default(),
            taken: Default::default(),
        }
    }

    /// An engine on any host (the unit tests' fake one).
    pub fn on(host: Arc<dyn Host>) -> Self {
        Engine {
            host,
            spec: None,
            inputs: Arc::default(),
            spec_path: None,
            moved: Arc::default(),
            taken: Default::default(),
        }
    }

    /// This engine, letting specs read `source:`, `template:` and secret
    /// files from `policy`'s directories too (`--allow-files-from`).
    pub fn with_inputs(&self, policy: InputPolicy) -> Engine {
        Engine {
            inputs: Arc::new(policy),
            ..self.clone()
        }
    }

    /// This engine, planning machines as part of `spec`: a machine's
    /// `/etc/hosts` lists the spec's other machines, and addresses are given
    /// out knowing all of them, whichever are planned. Without it, the
    /// machines planned are taken as the whole spec.
    pub fn for_spec(&self, spec: &Spec) -> Engine {
        Engine {
            host: self.host.clone(),
            spec: Some(Arc::new(spec.machines.values().cloned().collect())),
            inputs: self.inputs.clone(),
            spec_path: self.spec_path.clone(),
            moved: Arc::new(spec.moved.clone()),
            taken: self.taken.clone(),
        }
    }

    /// This engine, working on the spec at `path` (`-f FILE` or `-f DIR`):
    /// apply records its canonical path in each machine's record, and plan
    /// offers to prune the machines recorded from it that are gone from it.
    pub fn with_spec_path(&self, path: &std::path::Path) -> Result<Engine, EngineError> {
        let canonical = std::fs::canonicalize(path).map_err(|e| {
            EngineError::io(format!("resolving the spec path {}", path.display()), e)
        })?;
        Ok(Engine {
            spec_path: Some(Arc::new(canonical)),
            ..self.clone()
        })
    }

    /// The canonical path of the spec in use, when [`Engine::with_spec_path`] gave one.
    pub fn spec_path(&self) -> Option<&std::path::Path> {
        self.spec_path.as_deref().map(std::path::PathBuf::as_path)
    }

    /// The spec's `moved:` entries, when [`Engine::for_spec`] gave a spec.
    pub(crate) fn moved(&self) -> &[berth_schema::Moved] {
        &self.moved
    }

    /// Every machine of the spec in use, when [`Engine::for_spec`] gave one.
    pub(crate) fn spec_machines(&self) -> Option<&[Machine]> {
        self.spec.as_deref().map(Vec::as_slice)
    }

    /// Records each of `machines`' `prevent_destroy` in its record (those
    /// berth manages), so `berth destroy` without a spec knows it. apply
    /// calls it for every machine it plans, changed or not.
    pub fn record_prevent_destroy(&self, machines: &[&Machine]) -> Result<(), EngineError> {
        let store = self.host().state();
        for machine in machines {
            let wanted = machine.prevent_destroy.is_some();
            if let Some(mut record) = store.load(&machine.name)?
                && record.prevent_destroy != wanted
            {
                record.prevent_destroy = wanted;
                store.save(&record)?;
            }
        }
        Ok(())
    }

    /// The host facts in use.
    pub fn facts(&self) -> &HostFacts {
        self.host.facts()
    }

    /// The host the engine works on.
    pub fn host(&self) -> &dyn Host {
        &*self.host
    }

    /// Plans every machine of `spec` that `select` accepts. All machines are
    /// planned; every error is returned, not just the first.
    pub fn plan<'a>(
        &self,
        machines: impl IntoIterator<Item = &'a Machine>,
    ) -> Result<Plan, Vec<EngineError>> {
        let machines: Vec<&Machine> = machines.into_iter().collect();
        let run = self.network_run(&machines).map_err(|e| vec![e])?;
        let mut plans = Vec::new();
        let mut errors = Vec::new();
        let procs = NspawnProcesses::scan(self.host());
        for machine in machines {
            match self
                .plan_full(machine, &procs, &run)
                .map_err(|e| e.at(&machine.source))
            {
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

    /// The addresses of a planning run of `selected` (see [`RunAddresses`]):
    /// two machines planned together never get the same one.
    pub(crate) fn network_run(&self, selected: &[&Machine]) -> Result<RunAddresses, EngineError> {
        let records = self.renamed_records(self.host().state().all()?);
        let spec: Vec<&Machine> = match &self.spec {
            Some(all) => all.iter().collect(),
            None => selected.to_vec(),
        };
        Ok(RunAddresses::new(&spec, selected, &records))
    }

    /// Plans one machine of the planning run `run`, returning the resolved
    /// secret and what was observed (saved plans fingerprint it).
    pub(crate) fn plan_observed(
        &self,
        machine: &Machine,
        run: &RunAddresses,
    ) -> Result<(MachinePlan, Option<Secret>, Observed), EngineError> {
        self.plan_full(machine, &NspawnProcesses::scan(self.host()), run)
            .map_err(|e| e.at(&machine.source))
    }

    /// Observes and plans one machine against a snapshot of the host's
    /// nspawn processes (taken once when planning many machines), as part of
    /// the planning run `run`.
    fn plan_full(
        &self,
        machine: &Machine,
        procs: &NspawnProcesses,
        run: &RunAddresses,
    ) -> Result<(MachinePlan, Option<Secret>, Observed), EngineError> {
        let inputs = crate::inputs::resolve(machine, &self.inputs)?;
        let (secret, warnings) = resolve_secret(machine)?;
        let accounts = crate::drivers::users::resolve_inputs(machine)?;
        let mut observed = self.observe_machine(machine, procs, Some(&inputs))?;
        observed.network.with_run(&machine.name, run);
        let mut plan =
            planner::plan_machine_with(machine, &observed, secret.as_ref(), &inputs, &accounts)?;
        plan.warnings.extend(warnings);
        plan.warnings.extend(inputs.warnings);
        Ok((plan, secret, observed))
    }
}

/// The machine's root password, read from its source now (never stored).
pub(crate) fn resolve_secret(
    machine: &Machine,
) -> Result<(Option<Secret>, Vec<crate::model::warning::Warning>), EngineError> {
    match &machine.root_password {
        Some(source) => {
            let resolved = secret::resolve(source).map_err(|error| EngineError::Secret {
                machine: machine.name.clone(),
                error,
            })?;
            Ok((Some(resolved.secret), resolved.warnings))
        }
        None => Ok((None, Vec::new())),
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
