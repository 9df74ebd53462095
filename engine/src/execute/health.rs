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
//! snapshot. A failed upgrade command rolls back too; a stale plan or an
//! interruption does not (nothing was upgraded).

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
            let rollback_worthy = upgraded
                && !matches!(
                    e.inner(),
                    EngineError::Stale { .. } | EngineError::Interrupted { .. }
                );
            if !rollback_worthy {
                return Err(e);
            }
            return match upgrade_snapshots::taken(self, name) {
                Some(tag) => {
                    let message = self.roll_back_after(name, &tag, &e.to_string(), reporter);
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
            place.run(self.host(), manager, &argv)?;
        }
        Ok(())
    }
}
