//! Snapshots and rollback (`berth snapshot`, `berth snapshots`, `berth
//! rollback`, `snapshots: {before_apply: true}`): the engine's side. The
//! storage (layout, crash-safe order) is in [`crate::drivers::snapshot`].
//!
//! - A snapshot is a copy of the machine's root, made the way the base
//!   cache clones bases: a btrfs snapshot when the root is a subvolume,
//!   else `cp -a --reflink=auto` (a reflink copy where the filesystem
//!   shares extents, a full copy elsewhere). It keeps berth's record of the
//!   machine as it was, since the record describes the root (the packages
//!   berth added, the securetty entries it wrote).
//! - A running machine is snapshotted as it runs, as Incus does for its
//!   `dir` storage: the copy is of a live tree, like a power cut's disk.
//!   Stop the machine first for a quiescent copy.
//! - Rollback stops the machine through the launcher that started it,
//!   swaps the roots (the replaced one is kept as `pre-rollback-TIME`; the
//!   snapshot restored stays too), restores the root-describing fields of
//!   berth's record from the snapshot, and starts the machine again if it
//!   ran: as the engine's spec (see [`Engine::for_spec`]) declares it, or,
//!   without one, the way it was started (the nspawn launcher: the same
//!   systemd-nspawn command line; the unit launchers: the same unit). A
//!   machine on a veth, zone or bridge link needs its spec (berth
//!   configures the host side after a start): without one it is refused
//!   before anything is done.
//! - Overlay machines (`storage: overlay`) are refused: their root is a
//!   mount of the base and their own layer, not a tree to copy or swap.
//!
//! Deviation from the planned API: berth's state lock is taken by the
//! front end (as for apply and destroy, so `--lock-timeout` and the
//! "waiting for another berth" message stay in one place), not by the
//! engine: [`Engine::snapshot`], [`Engine::rollback`] and
//! [`Engine::delete_snapshot`] expect the caller to hold it, like
//! [`Engine::destroy`]; [`Engine::snapshots`] needs none. `take_locked`,
//! `rollback_locked` and `prune_to` are the same operations for code
//! inside the engine (the executor during apply).

use serde::Serialize;

use crate::confined::mounts;
use crate::drivers::launcher;
use crate::drivers::snapshot::{self as store, Meta};
pub use crate::drivers::snapshot::{SnapshotInfo, SnapshotOrigin};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::host::state::MachineRecord;
use crate::report::{Event, Reporter};

/// What a rollback did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollbackReport {
    /// The machine.
    pub machine: String,
    /// The tag of the snapshot restored.
    pub restored: String,
    /// The tag the replaced root is kept as (`pre-rollback-TIME`).
    pub kept_as: String,
    /// Whether the machine was started again (it ran before).
    pub restarted: bool,
}

impl Engine {
    /// Takes a snapshot of machine `name` tagged `tag` (generated from the
    /// origin and the time when None). Call under the state lock.
    pub fn snapshot(
        &self,
        name: &str,
        tag: Option<&str>,
        origin: SnapshotOrigin,
    ) -> Result<SnapshotInfo, EngineError> {
        take_locked(self, name, tag, origin)
    }

    /// The snapshots of machine `name`, or of every machine berth manages,
    /// oldest first per machine. Needs no lock. An unknown machine is an error.
    pub fn snapshots(&self, name: Option<&str>) -> Result<Vec<SnapshotInfo>, EngineError> {
        let paths = self.host().paths();
        let names: Vec<String> = match name {
            Some(name) => {
                managed(self, name)?;
                vec![name.to_owned()]
            }
            None => self
                .host()
                .state()
                .all()?
                .into_iter()
                .map(|r| r.name)
                .collect(),
        };
        let mut out = Vec::new();
        for name in names {
            out.extend(store::list(paths, &name)?.into_iter().map(|m| m.info));
        }
        Ok(out)
    }

    /// Rolls machine `name` back to snapshot `tag` (default: the newest
    /// that is not `pre-rollback`). Call under the state lock.
    pub fn rollback(
        &self,
        name: &str,
        tag: Option<&str>,
        reporter: &dyn Reporter,
    ) -> Result<RollbackReport, EngineError> {
        managed(self, name)?;
        recover(self, name)?;
        let tag = match tag {
            Some(tag) => tag.to_owned(),
            None => store::list(self.host().paths(), name)?
                .into_iter()
                .rev()
                .find(|m| m.info.origin != SnapshotOrigin::PreRollback)
                .map(|m| m.info.tag)
                .ok_or_else(|| EngineError::Plan {
                    machine: name.to_owned(),
                    message: format!(
                        "it has no snapshot to roll back to; take one with `berth snapshot {name}`"
                    ),
                })?,
        };
        rollback_locked(self, name, &tag, reporter)
    }

    /// Deletes snapshot `tag` of machine `name`. Call under the state lock.
    pub fn delete_snapshot(&self, name: &str, tag: &str) -> Result<(), EngineError> {
        managed(self, name)?;
        recover(self, name)?;
        let paths = self.host().paths();
        store::check_tag(tag).map_err(|message| EngineError::Plan {
            machine: name.to_owned(),
            message,
        })?;
        if store::read(paths, name, tag)?.is_none() {
            return Err(no_such(name, tag));
        }
        store::delete(paths, name, tag)
    }
}

/// The error for a snapshot that does not exist.
fn no_such(name: &str, tag: &str) -> EngineError {
    EngineError::Plan {
        machine: name.to_owned(),
        message: format!("it has no snapshot tagged {tag:?}; `berth snapshots {name}` lists them"),
    }
}

/// berth's record of `name`: snapshots are of machines berth manages.
/// Overlay machines are refused.
fn managed(engine: &Engine, name: &str) -> Result<MachineRecord, EngineError> {
    let host = engine.host();
    let Some(record) = host.state().load(name)? else {
        let root = host.paths().machine_root(name);
        let message = if std::fs::symlink_metadata(&root).is_ok() {
            format!(
                "{} was not created by berth (no record in {}); berth snapshots only machines it manages (`berth adopt` makes it managed)",
                root.display(),
                host.paths().records_dir().display()
            )
        } else {
            format!(
                "no such machine: berth manages no machine {name:?} (no record in {})",
                host.paths().records_dir().display()
            )
        };
        return Err(EngineError::Refused {
            machine: name.to_owned(),
            message,
        });
    };
    if record.storage == berth_schema::Storage::Overlay {
        return Err(EngineError::Refused {
            machine: name.to_owned(),
            message: "snapshots of overlay machines (storage: overlay) are not supported; \
                      use storage: copy for machines you snapshot"
                .into(),
        });
    }
    Ok(record)
}

/// Finishes what a crashed rollback of `name` left (see
/// [`store::restore`]), restoring berth's record as the rollback would have.
fn recover(engine: &Engine, name: &str) -> Result<(), EngineError> {
    store::recover(engine.host().paths(), name, |meta| {
        restore_record(engine, name, meta)
    })
    .map(|_| ())
}

/// The snapshots the apply under way took, by machine: the tag of the
/// newest one. Shared by the clones of one [`Engine`].
pub(crate) type Taken =
    std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>>;

/// Forgets what an earlier apply of `name` by this engine took (apply
/// calls it before it runs a machine's plan).
pub(crate) fn forget_taken(engine: &Engine, name: &str) {
    if let Ok(mut taken) = engine.taken.lock() {
        taken.remove(name);
    }
}

impl Engine {
    /// The tag of the snapshot this engine's apply took of `name` before
    /// changing its root (its `Action::Snapshot`, or one taken with
    /// `take_locked` during the apply), if it took one: a failed health
    /// check rolls back to it with `rollback_locked`. [`Engine::apply_machine`]
    /// forgets the machine's when it starts, so a snapshot taken before
    /// calling it is not reported here (keep the tag `take_locked` returns).
    pub fn snapshot_taken(&self, name: &str) -> Option<String> {
        self.taken
            .lock()
            .ok()
            .and_then(|taken| taken.get(name).cloned())
    }

    /// The executor's [`Action::Snapshot`](crate::model::action::Action::Snapshot):
    /// a snapshot of `name`, remembered as this apply's (see
    /// [`Engine::snapshot_taken`]), then the oldest of `origin` beyond `keep` deleted.
    pub(crate) fn snapshot_before(
        &self,
        name: &str,
        tag: Option<&str>,
        keep: u32,
        origin: SnapshotOrigin,
    ) -> Result<(), EngineError> {
        take_locked(self, name, tag, origin)?;
        prune_to(self, name, keep as usize, origin)?;
        Ok(())
    }
}

/// Takes a snapshot of `name` (the caller holds the state lock): `tag`, or
/// one generated from `origin` and the time.
pub(crate) fn take_locked(
    engine: &Engine,
    name: &str,
    tag: Option<&str>,
    origin: SnapshotOrigin,
) -> Result<SnapshotInfo, EngineError> {
    let record = managed(engine, name)?;
    recover(engine, name)?;
    let paths = engine.host().paths();
    let tag = match tag {
        Some(tag) => tag.to_owned(),
        None => store::generated_tag(paths, name, origin, store::now()),
    };
    let info = store::take(engine.host(), name, &tag, origin, Some(&record))?;
    if let Ok(mut taken) = engine.taken.lock() {
        taken.insert(name.to_owned(), info.tag.clone());
    }
    Ok(info)
}

/// Rolls `name` back to snapshot `tag` (the caller holds the state lock).
pub(crate) fn rollback_locked(
    engine: &Engine,
    name: &str,
    tag: &str,
    reporter: &dyn Reporter,
) -> Result<RollbackReport, EngineError> {
    let host = engine.host();
    managed(engine, name)?;
    recover(engine, name)?;
    store::check_tag(tag).map_err(|message| EngineError::Plan {
        machine: name.to_owned(),
        message,
    })?;
    if store::read(host.paths(), name, tag)?.is_none() {
        return Err(no_such(name, tag));
    }
    let record = managed(engine, name)?;
    let running = record
        .launch
        .as_ref()
        .and_then(|launch| launcher::refresh(host, name, launch));
    // How it will be started again, worked out before anything changes.
    let restart = match &running {
        Some(launch) => Some(restart_plan(engine, name, launch)?),
        None => None,
    };
    if running.is_some() {
        reporter.report(Event::Note {
            machine: name,
            message: "stopping",
        });
        engine.stop(name)?;
    }
    // A guest whose systemd-nspawn was killed must not keep running on the
    // root that is swapped away.
    if launcher::kill_leftover_guest(host, name)? && !host.booted_with_systemd() {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let root = host.paths().machine_root(name);
    let inside = mounts::mounts_under(&root)
        .map_err(|e| EngineError::io("reading /proc/self/mountinfo", e))?;
    if !inside.is_empty() {
        let list: Vec<String> = inside.iter().map(|p| p.display().to_string()).collect();
        return Err(EngineError::Refused {
            machine: name.to_owned(),
            message: format!(
                "something is mounted inside the root: {}; unmount it first",
                list.join(", ")
            ),
        });
    }
    reporter.report(Event::Note {
        machine: name,
        message: "restoring the snapshot",
    });
    // The record as it is now (stopped) goes with the replaced root.
    let current = host.state().load(name)?;
    let done = store::restore(host, name, tag, current.as_ref(), |meta| {
        restore_record(engine, name, meta)
    })?;
    let mut restarted = false;
    if let (Some(launch), Some(restart)) = (running, restart) {
        start_again(engine, name, &launch, restart, reporter)?;
        restarted = true;
    }
    Ok(RollbackReport {
        machine: name.to_owned(),
        restored: done.restored.info.tag,
        kept_as: done.kept_as,
        restarted,
    })
}

/// How a machine that ran before its rollback is started again.
enum Restart {
    /// As its spec says, the way apply starts it.
    Spec(Box<berth_schema::Machine>),
    /// Without a spec, under the nspawn launcher: the command line its
    /// systemd-nspawn ran with (the spec's settings as options).
    Argv(Vec<String>),
    /// Without a spec, under a unit launcher: its unit, which reads the
    /// settings file berth wrote.
    Unit,
}

/// How `name`, running as `launch` says, can be started again after the
/// rollback: with its spec when the engine has one declaring it, else the
/// way it was started. A machine on a link berth configures from the host
/// side after a start (veth, zone, bridge) needs its spec; without it,
/// refused before anything changes.
fn restart_plan(
    engine: &Engine,
    name: &str,
    launch: &crate::host::state::LaunchRecord,
) -> Result<Restart, EngineError> {
    if let Some(machine) = engine
        .spec_machines()
        .and_then(|all| all.iter().find(|m| m.name == name))
    {
        return Ok(Restart::Spec(Box::new(machine.clone())));
    }
    let host = engine.host();
    let refuse = |why: &str| EngineError::Refused {
        machine: name.to_owned(),
        message: format!(
            "it runs, and {why}, so berth needs its spec to start it again after the \
             rollback: run this where its machines.yaml is, or pass -f SPEC (or stop it first)"
        ),
    };
    let linked = |text: &str| {
        ["--network-veth", "--network-zone", "--network-bridge", "-n"]
            .iter()
            .any(|flag| text == *flag || text.starts_with(&format!("{flag}=")))
    };
    if launch.launcher == berth_schema::Launcher::Nspawn {
        let argv: Vec<String> =
            std::fs::read(host.proc_dir().join(format!("{}/cmdline", launch.pid)))
                .map(|bytes| {
                    bytes
                        .split(|b| *b == 0)
                        .filter(|a| !a.is_empty())
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect()
                })
                .unwrap_or_default();
        if argv.first().is_none_or(|p| !p.ends_with(launcher::NSPAWN)) {
            return Err(refuse("its command line cannot be read"));
        }
        if argv.iter().any(|a| linked(a)) {
            return Err(refuse(
                "it has a network link berth configures after a start",
            ));
        }
        return Ok(Restart::Argv(argv));
    }
    let settings = std::fs::read_to_string(host.paths().settings_file(name)).unwrap_or_default();
    if settings.lines().any(|l| {
        let l = l.trim();
        (l.starts_with("VirtualEthernet=") && !l.ends_with("=no"))
            || l.starts_with("Zone=")
            || l.starts_with("Bridge=")
    }) {
        return Err(refuse(
            "it has a network link berth configures after a start",
        ));
    }
    Ok(Restart::Unit)
}

/// Starts `name` again as `restart` says, records the launch and waits
/// for the guest to boot.
fn start_again(
    engine: &Engine,
    name: &str,
    before: &crate::host::state::LaunchRecord,
    restart: Restart,
    reporter: &dyn Reporter,
) -> Result<(), EngineError> {
    let host = engine.host();
    let launch = match restart {
        Restart::Spec(machine) => return engine.start(&machine, before.launcher, reporter),
        Restart::Argv(argv) => {
            let (_, limits) = crate::drivers::resources::start::limits(host, name)?;
            let pid = host
                .spawn_detached(&crate::host::Detached {
                    cmd: crate::host::Cmd::new(argv),
                    log: host.paths().console_log(name),
                    cgroup: (!host.booted_with_systemd()).then(|| name.to_owned()),
                    limits,
                })
                .map_err(|e| EngineError::Launch {
                    machine: name.to_owned(),
                    message: format!("starting {}: {e}", launcher::NSPAWN),
                })?;
            crate::host::state::LaunchRecord {
                pid,
                start_time: crate::host::process::start_time(host, pid).ok_or_else(|| {
                    EngineError::Launch {
                        machine: name.to_owned(),
                        message: format!("{} (pid {pid}) exited at once", launcher::NSPAWN),
                    }
                })?,
                ..before.clone()
            }
        }
        Restart::Unit => {
            // The unit launchers use only the name (their settings are in
            // the file berth wrote); the settings fingerprint stays.
            let stub = berth_schema::Machine::builder(name).build();
            crate::host::state::LaunchRecord {
                settings: before.settings.clone(),
                ..launcher::launcher_for(before.launcher).start(host, &stub)?
            }
        }
    };
    let store = host.state();
    if let Some(mut record) = store.load(name)? {
        record.launch = Some(launch.clone());
        store.save(&record)?;
    }
    reporter.report(Event::Note {
        machine: name,
        message: "waiting for the guest to finish booting",
    });
    launcher::wait_booted(host, name, &launch, std::time::Duration::from_secs(120))?;
    Ok(())
}

/// berth's record after restoring `meta`'s root: what describes the root
/// (distro, bootstrap, base, the packages and securetty entries berth
/// added) comes from the snapshot; what describes the host side (launch,
/// address, limits, storage, prevent_destroy) stays.
fn restore_record(engine: &Engine, name: &str, meta: &Meta) -> Result<(), EngineError> {
    let store = engine.host().state();
    let (Some(mut record), Some(old)) = (store.load(name)?, meta.record.as_ref()) else {
        return Ok(());
    };
    record.distro = old.distro.clone();
    record.release = old.release.clone();
    record.bootstrapper = old.bootstrapper;
    record.bootstrap_packages = old.bootstrap_packages.clone();
    record.base = old.base.clone();
    record.added_packages = old.added_packages.clone();
    record.securetty_added = old.securetty_added.clone();
    store.save(&record)
}

/// Deletes the oldest snapshots of `name` with `origin` beyond the newest
/// `keep` (the caller holds the state lock); returns the tags deleted.
pub(crate) fn prune_to(
    engine: &Engine,
    name: &str,
    keep: usize,
    origin: SnapshotOrigin,
) -> Result<Vec<String>, EngineError> {
    let paths = engine.host().paths();
    let of_origin: Vec<Meta> = store::list(paths, name)?
        .into_iter()
        .filter(|m| m.info.origin == origin)
        .collect();
    let excess = of_origin.len().saturating_sub(keep);
    let mut deleted = Vec::new();
    for meta in of_origin.into_iter().take(excess) {
        store::delete(paths, name, &meta.info.tag)?;
        deleted.push(meta.info.tag);
    }
    Ok(deleted)
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
