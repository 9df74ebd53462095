//! Executing one action with its payload.

use std::time::{SystemTime, UNIX_EPOCH};

use berth_schema::{Launcher, Machine};

use super::{BOOT_TIMEOUT, STOP_TIMEOUT};
use crate::confined::{FileKind, Root, mounts, remove};
use crate::drivers::{credentials, files, guest, launcher, network, shadow, units, users};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::host::Cmd;
use crate::host::state::MachineRecord;
use crate::model::action::Action;
use crate::report::{Event, Reporter};
use crate::secret::Secret;

impl Engine {
    /// Runs one approved action as it is.
    pub(super) fn execute(
        &self,
        machine: &Machine,
        action: &Action,
        secret: Option<&Secret>,
        reporter: &dyn Reporter,
    ) -> Result<(), EngineError> {
        let name = &machine.name;
        let host = self.host();
        let root_path = host.paths().machine_root(name);
        match action {
            Action::Bootstrap { .. } | Action::Clone { .. } => {
                self.create_root(machine, action, reporter)
            }
            Action::Replace { .. } => self.discard_root(name),
            Action::InstallPackages {
                packages,
                commands,
                env,
                in_guest,
                ..
            } => self.change_packages(machine, packages, commands, env, *in_guest, true),
            Action::RemovePackages {
                packages,
                commands,
                env,
                in_guest,
                ..
            } => self.change_packages(machine, packages, commands, env, *in_guest, false),
            Action::UpgradePackages {
                packages, manager, ..
            } => self.upgrade_packages(machine, packages, *manager, reporter),
            Action::SetHostname { to, .. } => {
                host.open_root(&root_path)?.write_atomic(
                    "/etc/hostname",
                    format!("{to}\n").as_bytes(),
                    0o644,
                )?;
                if let Some(leader) = self.running_leader(name)? {
                    // The running guest picks the new name up too (its UTS namespace).
                    let _ = host.run(&Cmd::new([
                        "nsenter".to_owned(),
                        format!("--target={leader}"),
                        "--uts".into(),
                        "--".into(),
                        "hostname".into(),
                        to.clone(),
                    ]));
                }
                Ok(())
            }
            Action::EnableUnit { unit, .. } => {
                units::change(host, &root_path, "enable", unit)?;
                keep_shifted_ownership(&host.open_root(&root_path)?)
            }
            Action::DisableUnit { unit, .. } => units::change(host, &root_path, "disable", unit),
            Action::MaskUnit { unit, .. } => {
                units::change(host, &root_path, "mask", unit)?;
                keep_shifted_ownership(&host.open_root(&root_path)?)
            }
            Action::UnmaskUnit { unit } => units::change(host, &root_path, "unmask", unit),
            Action::SetRootPassword { .. } => {
                let secret = secret.ok_or_else(|| EngineError::Secret {
                    machine: name.clone(),
                    error: crate::secret::SecretError::Unresolved,
                })?;
                let hash = secret.to_hash().map_err(|error| EngineError::Secret {
                    machine: name.clone(),
                    error,
                })?;
                let root = host.open_root(&root_path)?;
                let current = root.read_string("/etc/shadow")?.unwrap_or_default();
                let days = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs() / 86_400)
                    .unwrap_or(0);
                let updated = shadow::with_root_hash(&current, &hash, days);
                root.write_atomic("/etc/shadow", updated.as_bytes(), 0o640)?;
                Ok(())
            }
            Action::AddSecuretty { after, entries, .. } => {
                // The file is as observed (the fingerprint held): write the approved content.
                host.open_root(&root_path)?.write_atomic(
                    "/etc/securetty",
                    after.as_bytes(),
                    0o644,
                )?;
                // What berth added, so it can remove them when they leave the spec.
                self.update_record(name, |record| {
                    for entry in entries {
                        if !record.securetty_added.contains(entry) {
                            record.securetty_added.push(entry.clone());
                        }
                    }
                })
            }
            Action::RemoveSecuretty { after, entries, .. } => {
                host.open_root(&root_path)?.write_atomic(
                    "/etc/securetty",
                    after.as_bytes(),
                    0o644,
                )?;
                self.update_record(name, |record| {
                    record.securetty_added.retain(|e| !entries.contains(e));
                })
            }
            Action::WriteFile(write) => {
                files::apply::write(name, &host.open_root(&root_path)?, write, || {
                    crate::inputs::secret_value(machine, &write.path, &self.inputs)
                })
            }
            Action::SetFileAttributes(change) => {
                files::apply::set_attributes(name, &host.open_root(&root_path)?, change)
            }
            Action::MakeDirectory(dir) => {
                files::apply::make_directory(name, &host.open_root(&root_path)?, dir)
            }
            Action::MakeLink(link) => {
                files::apply::make_link(name, &host.open_root(&root_path)?, link)
            }
            Action::RemoveFile(removal) => {
                files::apply::remove(&host.open_root(&root_path)?, removal)
            }
            Action::WriteSettings { after, .. } => {
                let path = host.paths().settings_file(name);
                crate::host::state::write_file_atomic(&path, after.as_bytes())
                    .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))
            }
            Action::SetAutostart { enabled, launcher } => {
                launcher::launcher_for(*launcher).set_autostart(host, name, *enabled)
            }
            Action::AllocateAddress { .. }
            | Action::WriteNetworkConfig { .. }
            | Action::RemoveNetworkConfig { .. }
            | Action::WriteHosts { .. }
            | Action::ConfigureHostLink { .. }
            | Action::AddNat { .. }
            | Action::RemoveNat { .. }
            | Action::ForwardPorts { .. } => {
                network::apply::execute(host, machine, action, self.running_leader(name)?)
            }
            Action::Start { launcher } => self.start(machine, *launcher, reporter),
            Action::Stop { .. } => self.stop(name),
            Action::Destroy { .. } => self.destroy(name, reporter).map(|_| ()),
            Action::Rename { from, .. } => self.rename_machine(machine, from, reporter),
            Action::Restart { launcher, .. } => {
                self.stop(name)?;
                self.start(machine, *launcher, reporter)
            }
            Action::SetResources {
                changes,
                writes,
                managed,
                ..
            } => self.set_resources(machine, changes, writes, managed),
            Action::SetDeviceAllow { after, .. } => {
                self.set_device_allow(machine, after.as_deref())
            }
            Action::CreateUser { .. }
            | Action::ChangeUser { .. }
            | Action::RemoveUser { .. }
            | Action::SetUserPassword { .. }
            | Action::WriteAuthorizedKeys { .. } => {
                users::apply::execute(host, machine, action, self.running_leader(name)?)
            }
            Action::WriteCredentials { write, remove, .. } => {
                credentials::write_values(host, machine, write, remove)
            }
            Action::WriteCredentialDropIn { after, .. } => {
                credentials::write_dropin(host, name, after.as_deref())
            }
            Action::Snapshot {
                tag, keep, origin, ..
            } => self.snapshot_before(name, tag.as_deref(), *keep, *origin),
        }
    }

    /// Loads machine `name`'s record, changes it and saves it.
    fn update_record(
        &self,
        name: &str,
        change: impl FnOnce(&mut MachineRecord),
    ) -> Result<(), EngineError> {
        let store = self.host().state();
        let mut record = store.load(name)?.ok_or_else(|| {
            EngineError::State(format!("machine {name} has a root but no record"))
        })?;
        change(&mut record);
        store.save(&record)
    }

    /// Starts `machine` with launcher `kind`, records the launch, and waits
    /// for the guest to finish booting.
    pub(crate) fn start(
        &self,
        machine: &Machine,
        kind: Launcher,
        reporter: &dyn Reporter,
    ) -> Result<(), EngineError> {
        let name = &machine.name;
        let host = self.host();
        let store = host.state();
        let mut record = store.load(name)?.ok_or_else(|| {
            EngineError::State(format!("machine {name} has a root but no record"))
        })?;
        // An overlay root is mounted before every start, under every launcher.
        self.mount_overlay(name)?;
        let launch = launcher::launcher_for(kind).start(host, machine)?;
        record.launch = Some(launch.clone());
        store.save(&record)?;
        reporter.report(Event::Note {
            machine: name,
            message: "waiting for the guest to finish booting",
        });
        launcher::wait_booted(host, name, &launch, BOOT_TIMEOUT)?;
        // The machine's link is new: its host side, where berth configures it.
        network::apply::after_start(host, machine, kind)
    }

    /// Stops machine `name` through the launcher that started it and forgets the launch.
    pub(crate) fn stop(&self, name: &str) -> Result<(), EngineError> {
        let host = self.host();
        let store = host.state();
        let Some(mut record) = store.load(name)? else {
            return Ok(());
        };
        if let Some(launch) = record
            .launch
            .as_ref()
            .and_then(|launch| launcher::refresh(host, name, launch))
        {
            launcher::stop(host, name, &launch, STOP_TIMEOUT)?;
        }
        record.launch = None;
        store.save(&record)
    }

    /// The running guest's init pid, if berth's machine runs.
    fn running_leader(&self, name: &str) -> Result<Option<i32>, EngineError> {
        let host = self.host();
        let record = host.state().load(name)?;
        Ok(record
            .and_then(|r| r.launch)
            .and_then(|launch| launcher::refresh(host, name, &launch))
            .and_then(|launch| launcher::leader(host, &launch)))
    }

    /// Lets a running guest's systemd see unit changes made on disk.
    pub(super) fn reload_running_guest(&self, machine: &Machine) {
        if let Ok(Some(leader)) = self.running_leader(&machine.name) {
            let _ = self
                .host()
                .guest_output(leader, &["systemctl", "daemon-reload"]);
        }
    }

    /// Stops the machine and removes its root (for a replacement); the
    /// record goes too, and the bootstrap that follows writes a new one.
    pub(super) fn discard_root(&self, name: &str) -> Result<(), EngineError> {
        self.stop(name)?;
        self.discard_overlay(name)?;
        let root = self.host().paths().machine_root(name);
        let inside = mounts::mounts_under(&root)
            .map_err(|e| EngineError::io("reading /proc/self/mountinfo", e))?;
        if !inside.is_empty() {
            return Err(EngineError::Refused {
                machine: name.to_owned(),
                message: format!(
                    "something is mounted inside the root: {}; unmount it first",
                    inside
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        remove::remove_tree(&root)
            .map_err(|e| EngineError::State(format!("removing {}: {e}", root.display())))?;
        self.host().state().remove(name)
    }

    /// Installs or removes packages with the approved commands: inside the
    /// running guest (nsenter) or its stopped root (`systemd-nspawn --pipe`),
    /// or, for a root without its own package manager, with the host's
    /// working on the root. Records what berth added.
    fn change_packages(
        &self,
        machine: &Machine,
        packages: &[String],
        commands: &[Vec<String>],
        env: &[(String, String)],
        in_guest: bool,
        install: bool,
    ) -> Result<(), EngineError> {
        let name = &machine.name;
        let host = self.host();
        if in_guest {
            let leader = self.running_leader(name)?;
            for argv in commands {
                guest::run(host, name, leader, argv, env)?;
            }
        } else {
            // The host's commands depend on the host (dnf's flavour, the
            // root's path), so they are made now, for the approved packages.
            let root_path = host.paths().machine_root(name);
            let manager = crate::drivers::bootstrap::for_machine(host, machine)
                .map_err(|message| EngineError::Plan {
                    machine: name.clone(),
                    message,
                })?
                .package_manager();
            let commands = if install {
                manager.host_install(host, &root_path, machine, packages)
            } else {
                manager.host_remove(host, &root_path, machine, packages)
            };
            let commands = commands.ok_or_else(|| EngineError::Plan {
                machine: name.clone(),
                message: format!(
                    "the root has no {} to change its packages with",
                    manager.guest_program()
                ),
            })?;
            for argv in commands {
                guest::run_on_host(host, name, &argv, env)?;
            }
        }
        let store = host.state();
        let mut record = store.load(name)?.ok_or_else(|| {
            EngineError::State(format!("machine {name} has a root but no record"))
        })?;
        if install {
            for p in packages {
                if !record.added_packages.contains(p) && !record.bootstrap_packages.contains(p) {
                    record.added_packages.push(p.clone());
                }
            }
        } else {
            record.added_packages.retain(|p| !packages.contains(p));
        }
        store.save(&MachineRecord { ..record })
    }
}

/// The size of the UID/GID range systemd-nspawn gives a container.
const USERNS_RANGE: u32 = 0x10000;

/// In a root whose ownership systemd-nspawn shifted for private users (its
/// `/` is owned by the range's base, not 0), gives the links and
/// directories `systemctl --root` just created under /etc/systemd/system
/// the shifted owner, so the guest sees them owned by its own root.
fn keep_shifted_ownership(root: &Root) -> Result<(), EngineError> {
    let Some((base_uid, base_gid)) = root.owner("/")? else {
        return Ok(());
    };
    if base_uid == 0 {
        return Ok(());
    }
    let mut dirs = vec![("/etc/systemd/system".to_owned(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        for name in root.list_dir(&dir)?.unwrap_or_default() {
            let path = format!("{dir}/{name}");
            let Some((uid, gid)) = root.owner(&path)? else {
                continue;
            };
            if uid < USERNS_RANGE
                && gid < USERNS_RANGE
                && let (Some(new_uid), Some(new_gid)) =
                    (base_uid.checked_add(uid), base_gid.checked_add(gid))
            {
                root.lchown(&path, new_uid, new_gid)?;
            }
            if depth < 4 && root.kind(&path)? == Some(FileKind::Dir) {
                dirs.push((path, depth + 1));
            }
        }
    }
    Ok(())
}
