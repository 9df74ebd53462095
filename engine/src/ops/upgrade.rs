//! `berth plan --upgrade` and `berth apply --upgrade`: each targeted
//! machine's plan gains an `upgrade-packages` action listing what its own
//! package manager would upgrade (see [`crate::drivers::upgrade`]), run in
//! the machine: nsenter into the running guest, `systemd-nspawn --pipe` on
//! a stopped root (an overlay root mounted for it), never on the host.
//!
//! The action comes first in the machine's plan (after a `before_apply`
//! snapshot): the simulation saw the root as it is now, so the upgrade
//! runs on that root, before the spec's other changes. A machine without a root yet (created or replaced by this
//! plan) has nothing to upgrade: it is bootstrapped from current packages.
//! Running it, apply asks the package manager again and refuses a plan the
//! guest would no longer follow exactly ("plan is stale"); then it takes a
//! snapshot (origin `before-upgrade`), upgrades, and runs the health check
//! (see [`crate::execute`]), rolling back to that snapshot on failure.

use berth_schema::Machine;

use crate::drivers::launcher;
use crate::drivers::upgrade::{self, UpgradeManager};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::model::action::Action;
use crate::planner::{ChangeKind, MachinePlan, Plan};

impl Engine {
    /// Plans `machines` as [`Engine::plan`] does, each machine with a root
    /// also with the upgrade of its packages its own package manager would
    /// make now (`berth plan --upgrade`). Every error is returned.
    pub fn plan_upgrade<'a>(
        &self,
        machines: impl IntoIterator<Item = &'a Machine>,
    ) -> Result<Plan, Vec<EngineError>> {
        let machines: Vec<&Machine> = machines.into_iter().collect();
        let plan = self.plan(machines.iter().copied())?;
        let mut plans = Vec::new();
        let mut errors = Vec::new();
        for (machine, mut machine_plan) in machines.into_iter().zip(plan.machines) {
            if matches!(
                machine_plan.change,
                ChangeKind::Create | ChangeKind::Replace
            ) {
                plans.push(machine_plan);
                continue;
            }
            match self
                .upgrade_action(machine)
                .map_err(|e| e.at(&machine.source))
            {
                Ok(Some(action)) => {
                    insert_upgrade(&mut machine_plan, action);
                    plans.push(machine_plan);
                }
                Ok(None) => plans.push(machine_plan),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(Plan::new(plans))
        } else {
            Err(errors)
        }
    }

    /// The `upgrade-packages` action of `machine` (whose root exists), or
    /// None when its package manager would change nothing.
    fn upgrade_action(&self, machine: &Machine) -> Result<Option<Action>, EngineError> {
        let manager = UpgradeManager::for_distro(machine.distro);
        let packages = self.simulate_upgrade(machine, manager)?;
        Ok((!packages.is_empty()).then(|| Action::UpgradePackages {
            via: manager.via().to_owned(),
            packages,
            manager,
        }))
    }

    /// What `manager` would upgrade in `machine` now, asked in the machine.
    pub(crate) fn simulate_upgrade(
        &self,
        machine: &Machine,
        manager: UpgradeManager,
    ) -> Result<Vec<upgrade::PackageUpgrade>, EngineError> {
        let name = &machine.name;
        let host = self.host();
        let leader = self.guest_leader(name)?;
        if leader.is_none() {
            self.mount_overlay(name)?;
        }
        let root = host.open_root(&host.paths().machine_root(name))?;
        let result = if root.exists(manager.program())? {
            let place = upgrade::InMachine {
                name,
                leader,
                binds: &machine.binds,
            };
            upgrade::simulate(host, place, manager)
        } else {
            Err(EngineError::Plan {
                machine: name.clone(),
                message: format!(
                    "the root has no {} to upgrade its packages with",
                    manager.program()
                ),
            })
        };
        if leader.is_none() {
            self.unmount_overlay_if_stopped(name)?;
        }
        result
    }

    /// The init process of machine `name` while it runs (the executor's
    /// actions, health checks and upgrades enter it); `None` when it does
    /// not run, and changes go to its root through a container of their
    /// own. From berth's launch of it (its init once booted), or else from
    /// a systemd-nspawn started outside berth that boots its very root
    /// (berth does not stop or start such a machine, but changes inside it
    /// go into the running guest). A second container is never started on
    /// a root that runs: a machine run outside berth in a way berth cannot
    /// enter (another tree under its name, not booted yet) is an error.
    pub(crate) fn guest_leader(&self, name: &str) -> Result<Option<i32>, EngineError> {
        let host = self.host();
        let record = host.state().load(name)?;
        if let Some(launch) = record
            .and_then(|r| r.launch)
            .and_then(|launch| launcher::refresh(host, name, &launch))
        {
            return Ok(launcher::leader(host, &launch));
        }
        let root = host.paths().machine_root(name);
        let procs = launcher::NspawnProcesses::scan(host);
        if let Some(leader) = procs
            .booting_root(name, &root)
            .and_then(|pid| crate::host::process::namespace_init_child(host, pid))
        {
            return Ok(Some(leader));
        }
        match procs.find(host, name, &root) {
            Some(running) => Err(EngineError::Launch {
                machine: name.to_owned(),
                message: format!(
                    "it runs, started outside berth ({}), and berth cannot enter it; \
                     stop it the way it was started, then apply",
                    running.how
                ),
            }),
            None => Ok(None),
        }
    }
}

/// Puts the upgrade `action` into `plan`: first, but after a `before_apply`
/// snapshot (which must see the root before the upgrade).
fn insert_upgrade(plan: &mut MachinePlan, action: Action) {
    let at = plan
        .actions
        .iter()
        .take_while(|a| matches!(a, Action::Snapshot { .. }))
        .count();
    plan.actions.insert(at, action);
    plan.change = ChangeKind::Update;
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use berth_schema::Launcher;

    use super::*;
    use crate::drivers::snapshot::SnapshotOrigin;
    use crate::drivers::upgrade::PackageUpgrade;

    fn upgrade() -> Action {
        Action::UpgradePackages {
            via: "apt-get dist-upgrade".into(),
            packages: vec![PackageUpgrade {
                name: "hello".into(),
                from: Some("1.0".into()),
                to: Some("2.0".into()),
            }],
            manager: UpgradeManager::Apt,
        }
    }

    fn plan(change: ChangeKind, actions: Vec<Action>) -> MachinePlan {
        MachinePlan {
            name: "web".into(),
            change,
            launcher: Launcher::Nspawn,
            network: None,
            reason: None,
            actions,
            warnings: Vec::new(),
            observed: BTreeMap::new(),
        }
    }

    #[test]
    fn the_upgrade_comes_first_after_a_snapshot() {
        let mut clean = plan(ChangeKind::None, Vec::new());
        insert_upgrade(&mut clean, upgrade());
        assert_eq!(clean.change, ChangeKind::Update);
        assert_eq!(clean.actions, [upgrade()]);
        assert_eq!(
            clean.actions[0].describe(),
            "upgrade packages (apt-get dist-upgrade): hello 1.0 -> 2.0"
        );

        let snapshot = Action::Snapshot {
            machine: "web".into(),
            tag: None,
            keep: 3,
            origin: SnapshotOrigin::BeforeApply,
        };
        let start = Action::Start {
            launcher: Launcher::Nspawn,
        };
        let mut busy = plan(ChangeKind::Update, vec![snapshot.clone(), start.clone()]);
        insert_upgrade(&mut busy, upgrade());
        assert_eq!(busy.actions, [snapshot, upgrade(), start]);
    }

    #[test]
    fn the_upgrade_action_as_json() {
        let json = serde_json::to_value(upgrade()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "action": "upgrade-packages",
                "via": "apt-get dist-upgrade",
                "packages": [{"name": "hello", "from": "1.0", "to": "2.0"}]
            })
        );
        assert_eq!(upgrade().effect(), crate::model::action::Effect::Change);
        assert_eq!(upgrade().commands(), UpgradeManager::Apt.commands());
    }
}

#[cfg(test)]
mod fake_host_tests {
    use std::sync::Arc;

    use crate::engine::Engine;
    use crate::error::EngineError;
    use crate::host::Host;
    use crate::host::fake::FakeHost;
    use crate::model::action::Action;
    use crate::report::Silent;

    /// A running machine `web` on a fake host whose guest has apt-get and
    /// would upgrade as `simulation` says.
    fn running(simulation: &str) -> (Engine, Arc<FakeHost>, berth_schema::Machine) {
        let fake = Arc::new(FakeHost::new(false));
        let engine = Engine::on(fake.clone());
        let m = crate::testing::web();
        let plan = engine
            .plan([&m])
            .map_err(|mut e| e.remove(0))
            .expect("plan");
        engine
            .apply_machine(&m, &plan.machines[0], false, &Silent)
            .expect("created");
        let apt = fake.paths().machine_root("web").join("usr/bin/apt-get");
        std::fs::create_dir_all(apt.parent().expect("bin")).expect("bin");
        std::fs::write(&apt, "").expect("apt-get");
        *fake.apt_simulation.lock().expect("apt") = simulation.to_owned();
        fake.clear();
        (engine, fake, m)
    }

    const TWO: &str = "Inst hello [1.0] (2.0 localhost [all])\nConf hello (2.0 localhost [all])\n";
    const THREE: &str = "Inst hello [1.0] (3.0 localhost [all])\n";

    #[test]
    fn plan_lists_the_upgrade_asked_in_the_running_guest() {
        let (engine, fake, m) = running(TWO);
        // (The fake guest's units never look enabled: those plan again.)
        let plain = engine
            .plan([&m])
            .map_err(|mut e| e.remove(0))
            .expect("plan");
        fake.clear();
        let plan = engine
            .plan_upgrade([&m])
            .map_err(|mut e| e.remove(0))
            .expect("plan");
        let actions = &plan.machines[0].actions;
        assert_eq!(
            actions[0].describe(),
            "upgrade packages (apt-get dist-upgrade): hello 1.0 -> 2.0"
        );
        assert_eq!(&actions[1..], &plain.machines[0].actions[..]);
        assert_eq!(plan.changes, plain.changes + 1);
        let lines = fake.lines();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("nsenter --target=") && l.ends_with(" apt-get update")),
            "{lines:#?}"
        );
        assert!(
            lines.iter().any(|l| l.contains(
                " env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C DEBIAN_FRONTEND=noninteractive apt-get -s dist-upgrade"
            )),
            "{lines:#?}"
        );
        // Nothing to upgrade: no action, and a plain plan asks nothing.
        *fake.apt_simulation.lock().expect("apt") = String::new();
        let plan = engine
            .plan_upgrade([&m])
            .map_err(|mut e| e.remove(0))
            .expect("plan");
        assert_eq!(plan, plain);
        fake.clear();
        engine
            .plan([&m])
            .map_err(|mut e| e.remove(0))
            .expect("plan");
        assert!(!fake.lines().iter().any(|l| l.contains("apt-get")));
    }

    #[test]
    fn apply_refuses_an_upgrade_the_guest_would_no_longer_make() {
        let (engine, fake, m) = running(TWO);
        let plan = engine
            .plan_upgrade([&m])
            .map_err(|mut e| e.remove(0))
            .expect("plan");
        *fake.apt_simulation.lock().expect("apt") = THREE.to_owned();
        fake.clear();
        let err = engine
            .apply_machine(&m, &plan.machines[0], false, &Silent)
            .expect_err("stale");
        assert!(matches!(err.inner(), EngineError::Stale { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("it would now also do: hello 1.0 -> 3.0"),
            "{text}"
        );
        assert!(
            text.contains("it would no longer do: hello 1.0 -> 2.0"),
            "{text}"
        );
        let lines = fake.lines();
        assert!(
            !lines
                .iter()
                .any(|l| l.contains("dist-upgrade") && l.contains(" -y ")),
            "{lines:#?}"
        );
        assert!(engine.snapshots(Some("web")).expect("list").is_empty());
    }

    #[test]
    fn apply_snapshots_then_upgrades_then_checks_health() {
        let (engine, fake, m) = running(TWO);
        let plan = engine
            .plan_upgrade([&m])
            .map_err(|mut e| e.remove(0))
            .expect("plan");
        assert!(matches!(
            plan.machines[0].actions[0],
            Action::UpgradePackages { .. }
        ));
        fake.clear();
        engine
            .apply_machine(&m, &plan.machines[0], false, &Silent)
            .expect("upgraded");
        let snapshots = engine.snapshots(Some("web")).expect("list");
        assert_eq!(snapshots.len(), 1, "{snapshots:?}");
        assert!(
            snapshots[0].tag.starts_with("before-upgrade-"),
            "{snapshots:?}"
        );
        let lines = fake.lines();
        let at = |needle: &str| {
            lines
                .iter()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{needle}: {lines:#?}"))
        };
        let upgrade = at(
            "apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold dist-upgrade",
        );
        assert!(at("apt-get -s dist-upgrade") < upgrade);
        // The health check without `health:`: the system's state, after.
        let checked = lines
            .iter()
            .rposition(|l| l.contains("LANG=C.UTF-8 systemctl is-system-running"))
            .unwrap_or_else(|| panic!("{lines:#?}"));
        assert!(upgrade < checked, "{lines:#?}");
    }

    #[test]
    fn a_failed_upgrade_is_rolled_back_to_its_snapshot() {
        let (engine, fake, m) = running(TWO);
        let plan = engine
            .plan_upgrade([&m])
            .map_err(|mut e| e.remove(0))
            .expect("plan");
        *fake.apt_upgrade_fails.lock().expect("apt") = true;
        let err = engine
            .apply_machine(&m, &plan.machines[0], false, &Silent)
            .expect_err("the upgrade fails");
        let text = err.to_string();
        assert!(
            text.starts_with("machine web: the upgrade failed: apt-get -y "),
            "{text}"
        );
        assert!(
            text.contains("; rolled back to snapshot before-upgrade-"),
            "{text}"
        );
        let tags: Vec<String> = engine
            .snapshots(Some("web"))
            .expect("list")
            .into_iter()
            .map(|s| s.tag)
            .collect();
        assert!(
            tags.iter().any(|t| t.starts_with("pre-rollback-")),
            "{tags:?}"
        );
    }

    #[test]
    fn a_failed_check_before_upgrading_rolls_nothing_back() {
        let (engine, fake, m) = running(TWO);
        let plan = engine
            .plan_upgrade([&m])
            .map_err(|mut e| e.remove(0))
            .expect("plan");
        // The root loses its apt-get: the check cannot run.
        std::fs::remove_file(fake.paths().machine_root("web").join("usr/bin/apt-get")).expect("rm");
        let err = engine
            .apply_machine(&m, &plan.machines[0], false, &Silent)
            .expect_err("no apt-get");
        let text = err.to_string();
        assert!(text.contains("the root has no /usr/bin/apt-get"), "{text}");
        assert!(!text.contains("rolled back"), "{text}");
        assert!(engine.snapshots(Some("web")).expect("list").is_empty());
    }
}
