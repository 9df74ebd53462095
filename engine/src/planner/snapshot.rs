//! `snapshots: {before_apply: true, keep: N}`: a snapshot of the root as
//! the first action of an update that changes the root (packages, files,
//! units, users, the guest's network files, ...). Not for a create or a
//! replacement (there is no root worth keeping, or the replacement is the
//! point), nor for a plan that only starts, stops or restarts the machine
//! or changes host-side things (its `.nspawn` file, NAT, limits,
//! credentials, boot integration).

use berth_schema::Machine;

use crate::drivers::snapshot::SnapshotOrigin;
use crate::model::action::Action;
use crate::planner::ChangeKind;

/// Puts a snapshot first in `actions` when the spec asks for one and the
/// update changes the root.
pub(crate) fn plan_before_apply(machine: &Machine, change: ChangeKind, actions: &mut Vec<Action>) {
    if !machine.snapshots.before_apply
        || change != ChangeKind::Update
        || !actions.iter().any(changes_root)
    {
        return;
    }
    actions.insert(
        0,
        Action::Snapshot {
            machine: machine.name.clone(),
            tag: None,
            keep: machine.snapshots.keep,
            origin: SnapshotOrigin::BeforeApply,
        },
    );
}

/// Whether `action` writes inside the machine's root.
pub(crate) fn changes_root(action: &Action) -> bool {
    match action {
        Action::InstallPackages { .. }
        | Action::RemovePackages { .. }
        | Action::UpgradePackages { .. }
        | Action::SetHostname { .. }
        | Action::EnableUnit { .. }
        | Action::DisableUnit { .. }
        | Action::MaskUnit { .. }
        | Action::UnmaskUnit { .. }
        | Action::SetRootPassword { .. }
        | Action::AddSecuretty { .. }
        | Action::RemoveSecuretty { .. }
        | Action::WriteFile(_)
        | Action::SetFileAttributes(_)
        | Action::MakeDirectory(_)
        | Action::MakeLink(_)
        | Action::RemoveFile(_)
        | Action::WriteNetworkConfig { .. }
        | Action::RemoveNetworkConfig { .. }
        | Action::WriteHosts { .. }
        | Action::CreateUser { .. }
        | Action::ChangeUser { .. }
        | Action::RemoveUser { .. }
        | Action::SetUserPassword { .. }
        | Action::WriteAuthorizedKeys { .. } => true,
        Action::Bootstrap { .. }
        | Action::Clone { .. }
        | Action::Replace { .. }
        | Action::WriteSettings { .. }
        | Action::AllocateAddress { .. }
        | Action::ConfigureHostLink { .. }
        | Action::AddNat { .. }
        | Action::RemoveNat { .. }
        | Action::ForwardPorts { .. }
        | Action::SetAutostart { .. }
        | Action::Restart { .. }
        | Action::Start { .. }
        | Action::Stop { .. }
        | Action::Destroy { .. }
        | Action::Rename { .. }
        | Action::SetResources { .. }
        | Action::SetDeviceAllow { .. }
        | Action::WriteCredentials { .. }
        | Action::WriteCredentialDropIn { .. }
        | Action::Snapshot { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use berth_schema::{Launcher, Snapshots};

    use super::*;

    fn machine(before_apply: bool) -> Machine {
        Machine::builder("web")
            .snapshots(Snapshots {
                before_apply,
                keep: 2,
            })
            .build()
    }

    fn hostname() -> Action {
        Action::SetHostname {
            from: Some("a".into()),
            to: "b".into(),
        }
    }

    #[test]
    fn a_root_changing_update_starts_with_a_snapshot() {
        let mut actions = vec![hostname()];
        plan_before_apply(&machine(true), ChangeKind::Update, &mut actions);
        assert_eq!(actions.len(), 2);
        assert_eq!(
            actions[0],
            Action::Snapshot {
                machine: "web".into(),
                tag: None,
                keep: 2,
                origin: SnapshotOrigin::BeforeApply
            }
        );
        assert_eq!(
            actions[0].describe(),
            "snapshot web (before apply; keeping 2)"
        );
        assert_eq!(actions[0].effect(), crate::model::action::Effect::Create);
    }

    #[test]
    fn no_snapshot_unless_asked_for_an_update_that_changes_the_root() {
        for (before_apply, change, actions) in [
            (false, ChangeKind::Update, vec![hostname()]),
            (true, ChangeKind::Create, vec![hostname()]),
            (true, ChangeKind::Replace, vec![hostname()]),
            (
                true,
                ChangeKind::Update,
                vec![
                    Action::Stop {
                        launcher: Launcher::Nspawn,
                    },
                    Action::Start {
                        launcher: Launcher::Nspawn,
                    },
                ],
            ),
            (true, ChangeKind::Update, vec![]),
        ] {
            let mut planned = actions.clone();
            plan_before_apply(&machine(before_apply), change, &mut planned);
            assert_eq!(planned, actions, "{before_apply} {change:?}");
        }
    }
}
