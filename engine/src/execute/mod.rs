//! Execution, the third stage: run the approved plan of one machine.
//!
//! apply observes the machine again and compares it with the fingerprints
//! the plan was made against; when anything changed, it stops with
//! `plan is stale: ...` and changes nothing (never a silent re-plan). Then
//! it runs the approved actions as they are, each with its own payload: the
//! bootstrap argv, each file's content, unit verbs, a typed launcher,
//! package-manager commands.
//!
//! One step is planned twice, on purpose, and checked: the configuration
//! of a root that does not exist yet. The plan shows it against an empty
//! root (hostname, units, password, securetty); once the bootstrap or clone
//! has made the root, its configuration is planned again against what the
//! base really holds (a base may ship `/etc/securetty`, or have a unit
//! enabled already), and that second plan may only hold actions the
//! approved plan showed (`plan is stale` otherwise). Planning it against a
//! recorded picture of the base instead would go wrong the first time a
//! base differed from the picture; planning it again and checking it
//! against the approval cannot.

mod actions;
mod bootstrap;
mod health;
mod resources;
mod storage;

use std::time::Duration;

use berth_schema::Machine;

use crate::drivers::launcher::NspawnProcesses;
use crate::engine::{Engine, resolve_secret};
use crate::error::EngineError;
use crate::model::action::Action;
use crate::planner::{self, MachinePlan};
use crate::report::{Event, Reporter};
use crate::secret::Secret;

/// How long a guest may take to boot before apply gives up.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a clean poweroff may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

impl Engine {
    /// Applies the approved plan of one machine. A plan that replaces the
    /// root runs only with `allow_replace`.
    pub fn apply_machine(
        &self,
        machine: &Machine,
        approved: &MachinePlan,
        allow_replace: bool,
        reporter: &dyn Reporter,
    ) -> Result<(), EngineError> {
        self.apply_approved(machine, approved, allow_replace, reporter)
            .map_err(|e| e.at(&machine.source))
    }

    /// [`Self::apply_steps`], then an overlay root the machine does not
    /// run on is unmounted, whether the steps succeeded or not.
    fn apply_approved(
        &self,
        machine: &Machine,
        approved: &MachinePlan,
        allow_replace: bool,
        reporter: &dyn Reporter,
    ) -> Result<(), EngineError> {
        crate::ops::snapshot::forget_taken(self, &machine.name);
        let applied = self.apply_steps(machine, approved, allow_replace, reporter);
        // Health checks, and a rollback when they fail (execute/health.rs).
        let applied = self.after_steps(machine, approved, applied, reporter);
        let unmounted = self.unmount_overlay_if_stopped(&machine.name);
        applied.and(unmounted)
    }

    fn apply_steps(
        &self,
        machine: &Machine,
        approved: &MachinePlan,
        allow_replace: bool,
        reporter: &dyn Reporter,
    ) -> Result<(), EngineError> {
        let inputs = crate::inputs::resolve(machine, &self.inputs)?;
        let observed =
            self.observe_machine(machine, &NspawnProcesses::scan(self.host()), Some(&inputs))?;
        if let Some(what) = observed.changed_since(&approved.observed) {
            return Err(EngineError::Stale {
                machine: machine.name.clone(),
                message: format!(
                    "the machine changed since the plan was made: {what}; run plan again"
                ),
            });
        }
        let (secret, _) = resolve_secret(machine)?;
        let mut actions = approved.actions.iter().peekable();
        // A `moved:` rename comes first: the rest works on the new name.
        if let Some(action @ Action::Rename { .. }) = actions.peek().copied() {
            actions.next();
            self.step(machine, action, reporter, || {
                self.execute(machine, action, secret.as_ref(), reporter)
            })?;
        }
        if let Some(action @ Action::Replace { .. }) = actions.peek().copied() {
            if let Some(at) = &machine.prevent_destroy {
                return Err(EngineError::PreventDestroy {
                    machine: machine.name.clone(),
                    at: at.to_string(),
                });
            }
            if !allow_replace {
                return Err(EngineError::Refused {
                    machine: machine.name.clone(),
                    message: format!(
                        "the plan replaces the root, which destroys it; pass --replace {} to allow it",
                        machine.name
                    ),
                });
            }
            actions.next();
            self.step(machine, action, reporter, || {
                self.discard_root(&machine.name)
            })?;
        }
        if let Some(action @ (Action::Bootstrap { .. } | Action::Clone { .. })) =
            actions.peek().copied()
        {
            actions.next();
            self.step(machine, action, reporter, || {
                self.create_root(machine, action, reporter)
            })?;
            // The address approved for the machine goes into its new
            // record first: the configuration is planned with it.
            for action in approved
                .actions
                .iter()
                .filter(|a| matches!(a, Action::AllocateAddress { .. }))
            {
                self.step(machine, action, reporter, || {
                    self.execute(machine, action, secret.as_ref(), reporter)
                })?;
            }
            // The root now exists: plan its configuration against what the
            // bootstrap really produced, within what was approved.
            let mut observed =
                self.observe_machine(machine, &NspawnProcesses::scan(self.host()), Some(&inputs))?;
            observed.network.carry_approved(&approved.actions);
            let accounts = crate::drivers::users::resolve_inputs(machine)?;
            let mut after = planner::plan_machine_with(
                machine,
                &observed,
                secret.as_ref(),
                &inputs,
                &accounts,
            )?;
            // A root this apply just made is not worth a snapshot.
            after
                .actions
                .retain(|a| !matches!(a, Action::Snapshot { .. }));
            check_approved(&machine.name, approved, &after.actions)?;
            return self.run_actions(machine, &after.actions, secret.as_ref(), reporter);
        }
        let rest: Vec<Action> = actions.cloned().collect();
        if !rest.is_empty() {
            // An overlay root is written through its mount.
            self.mount_overlay(&machine.name)?;
        }
        self.run_actions(machine, &rest, secret.as_ref(), reporter)
    }

    /// Runs `work` for `action`, reporting its start and end.
    fn step(
        &self,
        machine: &Machine,
        action: &Action,
        reporter: &dyn Reporter,
        work: impl FnOnce() -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        reporter.report(Event::Started {
            machine: &machine.name,
            action,
        });
        work()?;
        reporter.report(Event::Finished {
            machine: &machine.name,
            action,
        });
        Ok(())
    }

    /// Runs `actions` in order, stopping at a safe point between two when
    /// interrupted; a running guest's systemd reloads after unit changes,
    /// and after `files:` changed its unit files, before the unit changes.
    fn run_actions(
        &self,
        machine: &Machine,
        actions: &[Action],
        secret: Option<&Secret>,
        reporter: &dyn Reporter,
    ) -> Result<(), EngineError> {
        let mut units_changed = false;
        let mut unit_files_changed = false;
        for (i, action) in actions.iter().enumerate() {
            crate::interrupt::check(&machine.name, &actions[..i], &actions[i..])?;
            let unit_change = matches!(
                action,
                Action::EnableUnit { .. }
                    | Action::DisableUnit { .. }
                    | Action::MaskUnit { .. }
                    | Action::UnmaskUnit { .. }
            );
            let start_stop = matches!(action, Action::Start { .. } | Action::Stop { .. });
            if (unit_change && unit_files_changed)
                || (start_stop && (units_changed || unit_files_changed))
            {
                units_changed = false;
                unit_files_changed = false;
                self.reload_running_guest(machine);
            }
            units_changed |= unit_change;
            unit_files_changed |= changes_unit_files(action);
            self.step(machine, action, reporter, || {
                self.execute(machine, action, secret, reporter)
            })?;
        }
        if units_changed || unit_files_changed {
            self.reload_running_guest(machine);
        }
        Ok(())
    }
}

/// Whether `action` changes a file under the guest's systemd directories
/// (its systemd reloads before the unit changes that follow).
fn changes_unit_files(action: &Action) -> bool {
    let path = match action {
        Action::WriteFile(write) => &write.path,
        Action::SetFileAttributes(change) => &change.path,
        Action::MakeDirectory(dir) => &dir.path,
        Action::MakeLink(link) => &link.path,
        Action::RemoveFile(removal) => &removal.path,
        _ => return false,
    };
    crate::drivers::files::is_systemd_path(path)
}

/// Refuses a configuration plan (made after the root was created) that does
/// something the approved plan did not show.
fn check_approved(
    machine: &str,
    approved: &MachinePlan,
    fresh: &[Action],
) -> Result<(), EngineError> {
    let unapproved: Vec<String> = fresh
        .iter()
        .filter(|a| !approved.actions.iter().any(|b| b.key() == a.key()))
        .map(Action::describe)
        .collect();
    if unapproved.is_empty() {
        Ok(())
    } else {
        Err(EngineError::Stale {
            machine: machine.to_owned(),
            message: format!(
                "the machine changed since the plan was shown; now it also needs: {} (run plan again)",
                unapproved.join("; ")
            ),
        })
    }
}

#[cfg(test)]
mod tests;
