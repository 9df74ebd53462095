//! `moved:`: renaming a machine berth manages instead of destroying it and
//! creating another.
//!
//! A spec entry `{from: old-web, to: web}` is pending while berth manages
//! `old-web` (it has a record) and `web` does not exist (no record, no
//! root). Its plan is then made against `old-web` observed as `web` will be
//! after the rename ([`crate::observe::observe_moved`]), and starts with
//! `~ rename old-web -> web`; the rest of the plan sets up what carries the
//! name, so a second plan is clean. When `old-web` does not exist the entry
//! is a no-op (it can stay in the spec); when both exist, planning `web`
//! is an error.
//!
//! The rename ([`Engine::rename_machine`]) stops the machine if it runs,
//! renames its root directory, its `.nspawn` file (berth's own), berth's
//! record (and its name field) and its logs, and removes what carried the
//! old name: the unit's drop-ins berth wrote (limits, devices,
//! credentials), the credential values under `/run/berth/credentials`,
//! an overlay root's mount and boot units (its layers, `.OLD.overlay`, are
//! renamed too),
//! the NAT and port-forward rules, the boot integration. machinectl knows
//! images by their directory name, so its registration follows the root.
//! The plan's later actions write these again for the new name and start
//! the machine when the spec wants it running.

use std::fs;

use berth_schema::Machine;

use crate::drivers::launcher::{self, NspawnProcesses};
use crate::drivers::{resources, storage};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::host::state::MachineRecord;
use crate::inputs::Inputs;
use crate::model::observed::Observed;
use crate::observe;
use crate::report::{Event, Reporter};

/// A `.nspawn` file berth wrote for `from`, as it reads once renamed to
/// `to`: its header names the machine.
pub(crate) fn renamed_settings(text: &str, from: &str, to: &str) -> String {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    if !first.starts_with(crate::drivers::settings::HEADER) {
        return text.to_owned();
    }
    let first = first.replacen(
        &format!("machine {from:?};"),
        &format!("machine {to:?};"),
        1,
    );
    if text.contains('\n') {
        format!("{first}\n{rest}")
    } else {
        first
    }
}

impl Engine {
    /// The machine that a `moved:` entry of the spec in use renames to
    /// `machine`, when the rename is pending: berth manages the old name,
    /// and nothing exists under the new one. Both existing is an error.
    pub(crate) fn pending_move(&self, machine: &Machine) -> Result<Option<String>, EngineError> {
        let Some(entry) = self.moved().iter().find(|m| m.to == machine.name) else {
            return Ok(None);
        };
        let host = self.host();
        let store = host.state();
        let Some(record) = store.load(&entry.from)? else {
            // Renamed already, or never there: a no-op.
            return Ok(None);
        };
        let to_exists = store.load(&machine.name)?.is_some()
            || fs::symlink_metadata(host.paths().machine_root(&machine.name)).is_ok();
        if to_exists {
            return Err(EngineError::Plan {
                machine: machine.name.clone(),
                message: format!(
                    "moved: both {} and {} exist ({}); remove one of them (`berth destroy`), \
                     or the moved: entry",
                    entry.from, machine.name, entry.source
                ),
            });
        }
        // Machines of other specs are never touched.
        if let (Some(recorded), Some(ours)) = (record.spec.as_deref(), self.spec_path())
            && recorded != ours
        {
            return Err(EngineError::Plan {
                machine: machine.name.clone(),
                message: format!(
                    "moved: {} was applied from {}, not from this spec; berth renames only \
                     machines of the spec that names them ({})",
                    entry.from,
                    recorded.display(),
                    entry.source
                ),
            });
        }
        Ok(Some(entry.from.clone()))
    }

    /// berth's `records` with the machines of pending renames under their
    /// new names (the addresses they hold go with them).
    pub(crate) fn renamed_records(&self, mut records: Vec<MachineRecord>) -> Vec<MachineRecord> {
        for entry in self.moved() {
            if records.iter().any(|r| r.name == entry.to) {
                continue;
            }
            if let Some(record) = records.iter_mut().find(|r| r.name == entry.from) {
                record.name = entry.to.clone();
            }
        }
        records
    }

    /// Observes `machine` for planning and applying: as it will be after a
    /// pending rename ([`Engine::pending_move`]), else as it is.
    pub(crate) fn observe_machine(
        &self,
        machine: &Machine,
        procs: &NspawnProcesses,
        inputs: Option<&Inputs>,
    ) -> Result<Observed, EngineError> {
        match self.pending_move(machine)? {
            Some(from) => observe::observe_moved(self.host(), machine, &from, procs, inputs),
            None => observe::observe_full(self.host(), machine, procs, inputs),
        }
    }

    /// Renames the machine berth manages as `from` to `machine` (see the
    /// module docs): stops it first when it runs; never overwrites anything
    /// under the new name.
    pub(crate) fn rename_machine(
        &self,
        machine: &Machine,
        from: &str,
        reporter: &dyn Reporter,
    ) -> Result<(), EngineError> {
        let host = self.host();
        let paths = host.paths();
        let store = host.state();
        let to = &machine.name;
        let refuse = |message: String| EngineError::Refused {
            machine: to.clone(),
            message,
        };
        let Some(record) = store.load(from)? else {
            return Err(EngineError::Stale {
                machine: to.clone(),
                message: format!("berth no longer manages {from}; run plan again"),
            });
        };
        let (old_root, new_root) = (paths.machine_root(from), paths.machine_root(to));
        if store.load(to)?.is_some() || fs::symlink_metadata(&new_root).is_ok() {
            return Err(refuse(format!(
                "{} or berth's record of {to} exists already; berth does not rename over it",
                new_root.display()
            )));
        }
        if fs::symlink_metadata(&old_root).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(refuse(format!("{} is a symlink", old_root.display())));
        }
        if record
            .launch
            .as_ref()
            .and_then(|launch| launcher::refresh(host, from, launch))
            .is_some()
        {
            reporter.report(Event::Note {
                machine: to,
                message: "stopping it under its old name",
            });
            self.stop(from)?;
        }
        if launcher::kill_leftover_guest(host, from)? && !host.booted_with_systemd() {
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        // What carries the old name goes; the plan sets it up again.
        crate::drivers::network::apply::teardown(host, from)?;
        crate::drivers::credentials::teardown(host, from)?;
        if host.booted_with_systemd() {
            let unit_launcher = launcher::launcher_for(berth_schema::Launcher::NspawnUnit);
            if unit_launcher.autostart(host, from)?.unwrap_or(false) {
                unit_launcher.set_autostart(host, from, false)?;
            }
            let unit = resources::systemd::unit(from);
            if resources::systemd::remove_dropins(
                host,
                &unit,
                record.resources.keys().copied().collect::<Vec<_>>(),
            )? {
                resources::systemd::daemon_reload(host)?;
            }
        }
        host.remove_cgroup(from);
        // An overlay root: unmounted, its boot units gone (written again
        // for the new name below).
        let layers = storage::Layers::of_record(paths, &record)?;
        if let Some(layers) = &layers {
            storage::unmount(host, layers)?;
            storage::remove_boot_units(host, from)?;
        }
        // The root, then the settings file, then the record: a rename
        // interrupted between two leaves a root berth still knows by its
        // record (the record moves last).
        if fs::symlink_metadata(&old_root).is_ok() {
            let inside = crate::confined::mounts::mounts_under(&old_root)
                .map_err(|e| EngineError::io("reading /proc/self/mountinfo", e))?;
            if !inside.is_empty() {
                let list: Vec<String> = inside.iter().map(|p| p.display().to_string()).collect();
                return Err(refuse(format!(
                    "something is mounted inside {}: {}; unmount it first",
                    old_root.display(),
                    list.join(", ")
                )));
            }
            reporter.report(Event::Note {
                machine: to,
                message: "renaming the root",
            });
            fs::rename(&old_root, &new_root).map_err(|e| {
                EngineError::io(
                    format!("renaming {} to {}", old_root.display(), new_root.display()),
                    e,
                )
            })?;
        }
        if layers.is_some() {
            let (old_dir, new_dir) = (
                storage::overlay_dir(paths, from),
                storage::overlay_dir(paths, to),
            );
            fs::rename(&old_dir, &new_dir).map_err(|e| {
                EngineError::io(
                    format!("renaming {} to {}", old_dir.display(), new_dir.display()),
                    e,
                )
            })?;
            if let Some(base) = &record.base {
                storage::write_boot_units(host, to, &storage::Layers::of(paths, to, base))?;
            }
        }
        // Its snapshots (`.OLD.snapshots`) go with it.
        let (old_snapshots, new_snapshots) = (
            crate::drivers::snapshot::snapshots_dir(paths, from),
            crate::drivers::snapshot::snapshots_dir(paths, to),
        );
        if old_snapshots.is_dir() && fs::symlink_metadata(&new_snapshots).is_err() {
            fs::rename(&old_snapshots, &new_snapshots)
                .map_err(|e| EngineError::io(format!("renaming {}", old_snapshots.display()), e))?;
        }
        let (old_settings, new_settings) = (paths.settings_file(from), paths.settings_file(to));
        if let Ok(text) = fs::read_to_string(&old_settings)
            && text.starts_with(crate::drivers::settings::HEADER)
        {
            crate::host::state::write_file_atomic(
                &new_settings,
                renamed_settings(&text, from, to).as_bytes(),
            )
            .map_err(|e| EngineError::io(format!("writing {}", new_settings.display()), e))?;
            fs::remove_file(&old_settings)
                .map_err(|e| EngineError::io(format!("removing {}", old_settings.display()), e))?;
        }
        for (old, new) in [
            (paths.console_log(from), paths.console_log(to)),
            (paths.bootstrap_log(from), paths.bootstrap_log(to)),
            (paths.machine_log(from), paths.machine_log(to)),
        ] {
            if old.exists() {
                let _ = fs::rename(old, new);
            }
        }
        let mut renamed = store.load(from)?.unwrap_or(record);
        renamed.name = to.clone();
        renamed.launch = None;
        renamed.resources.clear();
        store.save(&renamed)?;
        store.remove(from)
    }
}
