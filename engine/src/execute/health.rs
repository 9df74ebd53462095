//! After a machine's actions: its health checks, and rolling back to the
//! snapshot taken for this apply when they fail; and running an approved
//! package upgrade (`--upgrade`).
//!
//! The checks ([`crate::drivers::health`]) run when the machine runs once
//! the actions are done and the spec has `health:`, or the plan upgraded
//! its packages (then, without `health:`, only the system's state is
//! checked, for 60 s). A failure fails the machine's apply. When a snapshot
//! was taken for this apply ([`Engine::snapshot_taken`]: `before-upgrade`
//! by the upgrade, or `before-apply` from `snapshots: {before_apply:
//! true}`), berth rolls back to it and says so; the broken root is kept as a `pre-rollback`
//! snapshot. A failed upgrade command rolls back too; nothing else does (a
//! stale plan or an interruption upgraded nothing; another action's failure
//! is left as in any apply).

use berth_schema::Machine;

use crate::drivers::health;
use crate::drivers::upgrade::{self, PackageUpgrade, UpgradeManager};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::model::action::Action;
use crate::ops::upgrade_snapshots;
use crate::planner::MachinePlan;
use crate::report::{Event, Reporter};

impl Engine {
    /// Runs the health checks after `approved` was applied to `machine`
    /// and rolls back on failure; see the module doc.
    pub(super) fn after_steps(
        &self,
        machine: &Machine,
        approved: &MachinePlan,
        applied: Result<(), EngineError>,
        reporter: &dyn Reporter,
    ) -> Result<(), EngineError> {
        let name = &machine.name;
        let upgraded = approved
            .actions
            .iter()
            .any(|a| matches!(a, Action::UpgradePackages { .. }));
        if let Err(e) = applied {
            // Only the upgrade's own commands fail this way (after its
            // snapshot); any other failure is left as it is, as in any apply.
            let EngineError::Health { message, .. } = e.inner() else {
                return Err(e);
            };
            return match upgrade_snapshots::taken(self, name) {
                Some(tag) => {
                    let message = self.roll_back_after(name, &tag, message, reporter);
                    Err(EngineError::Health {
                        machine: name.clone(),
                        message,
                    })
                }
                None => Err(e),
            };
        }
        let Some(checks) = machine
            .health
            .clone()
            .or_else(|| upgraded.then(health::default_health))
        else {
            return Ok(());
        };
        let Some(leader) = self.guest_leader(name)? else {
            return Ok(());
        };
        reporter.report(Event::Note {
            machine: name,
            message: "running health checks",
        });
        let Err(why) = health::wait_healthy(self.host(), name, leader, &checks) else {
            reporter.report(Event::Note {
                machine: name,
                message: "healthy",
            });
            return Ok(());
        };
        let message = match upgrade_snapshots::taken(self, name) {
            Some(tag) => self.roll_back_after(name, &tag, &why, reporter),
            None => why,
        };
        Err(EngineError::Health {
            machine: name.clone(),
            message,
        })
    }

    /// Rolls machine `name` back to snapshot `tag` after `why`; returns
    /// the message: what failed, and whether the rollback worked.
    fn roll_back_after(&self, name: &str, tag: &str, why: &str, reporter: &dyn Reporter) -> String {
        let note = format!("{why}; rolling back to snapshot {tag}");
        reporter.report(Event::Note {
            machine: name,
            message: &note,
        });
        match upgrade_snapshots::roll_back(self, name, tag, reporter) {
            Ok(kept) => format!(
                "{why}; rolled back to snapshot {tag} (the failed root is kept as snapshot {kept})"
            ),
            Err(e) => format!("{why}; rolling back to snapshot {tag} failed too: {e}"),
        }
    }

    /// Runs an approved upgrade: asks the package manager again (anything
    /// but `approved` is a stale plan), takes a `before-upgrade` snapshot,
    /// then upgrades in the machine.
    pub(super) fn upgrade_packages(
        &self,
        machine: &Machine,
        approved: &[PackageUpgrade],
        manager: UpgradeManager,
        reporter: &dyn Reporter,
    ) -> Result<(), EngineError> {
        let name = &machine.name;
        let now = self.simulate_upgrade(machine, manager)?;
        if let Some(diff) = upgrade::difference(approved, &now) {
            return Err(EngineError::Stale {
                machine: name.clone(),
                message: format!(
                    "the guest's package manager would no longer upgrade what the plan shows: {diff}; run plan --upgrade again"
                ),
            });
        }
        let (tag, new) = upgrade_snapshots::before_upgrade(self, machine)?;
        let note = if new {
            format!("took snapshot {tag} before upgrading")
        } else {
            format!("upgrading after snapshot {tag}")
        };
        reporter.report(Event::Note {
            machine: name,
            message: &note,
        });
        let leader = self.guest_leader(name)?;
        if leader.is_none() {
            self.mount_overlay(name)?;
        }
        let place = upgrade::InMachine {
            name,
            leader,
            binds: &machine.binds,
        };
        for argv in manager.upgrade() {
            // A failure here (after the snapshot) is rolled back: see after_steps.
            place
                .run(self.host(), manager, &argv)
                .map_err(|e| EngineError::Health {
                    machine: name.clone(),
                    message: format!("the upgrade failed: {e}"),
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use berth_schema::Health;

    use crate::engine::Engine;
    use crate::error::EngineError;
    use crate::host::fake::FakeHost;
    use crate::report::Silent;

    fn health(units: &[&str], command: Option<&[&str]>) -> Health {
        Health {
            units: units.iter().map(|u| (*u).to_owned()).collect(),
            command: command.map(|c| c.iter().map(|a| (*a).to_owned()).collect()),
            timeout: Duration::from_secs(1),
            source: Default::default(),
        }
    }

    /// Applies `m` as a new machine on a fake host; the commands run.
    fn apply(m: &berth_schema::Machine) -> (Result<(), EngineError>, Vec<String>) {
        let fake = Arc::new(FakeHost::new(false));
        let engine = Engine::on(fake.clone());
        let plan = engine.plan([m]).map_err(|mut e| e.remove(0)).expect("plan");
        let result = engine.apply_machine(m, &plan.machines[0], false, &Silent);
        (result, fake.lines())
    }

    #[test]
    fn a_started_machine_is_checked_in_the_guest_with_a_clean_environment() {
        let mut m = crate::testing::web();
        m.health = Some(health(&[], Some(&["curl", "-fsS", "http://127.0.0.1/"])));
        let (result, lines) = apply(&m);
        result.expect("healthy");
        let checks: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains(" env -i PATH=") && l.contains("HOME=/root LANG=C.UTF-8"))
            .collect();
        assert_eq!(checks.len(), 2, "{lines:#?}");
        assert!(checks[0].starts_with("nsenter --target="), "{checks:?}");
        assert!(
            checks[0].ends_with(" systemctl is-system-running"),
            "{checks:?}"
        );
        assert!(
            checks[1].ends_with(" curl -fsS http://127.0.0.1/"),
            "{checks:?}"
        );
    }

    #[test]
    fn without_health_nothing_is_checked() {
        let (result, lines) = apply(&crate::testing::web());
        result.expect("applied");
        assert!(
            !lines.iter().any(|l| l.contains("HOME=/root LANG=C.UTF-8")),
            "{lines:#?}"
        );
    }

    #[test]
    fn a_failed_check_fails_the_apply_naming_it_without_a_snapshot_to_roll_back_to() {
        let mut m = crate::testing::web();
        // The fake guest answers `systemctl is-active` with nothing.
        m.health = Some(health(&["nginx.service"], None));
        let (result, _) = apply(&m);
        let err = result.expect_err("unhealthy");
        assert!(matches!(err.inner(), EngineError::Health { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.starts_with(
                "machine web: health check failed: unit nginx.service is in an unknown state"
            ),
            "{text}"
        );
        assert!(!text.contains("rolled back"), "{text}");
    }

    #[test]
    fn a_stopped_machine_is_not_checked() {
        let mut m = crate::testing::web();
        m.state = berth_schema::DesiredState::Stopped;
        m.health = Some(health(&["nginx.service"], None));
        let (result, lines) = apply(&m);
        result.expect("nothing to check");
        assert!(!lines.iter().any(|l| l.contains("is-active")), "{lines:#?}");
    }
}
