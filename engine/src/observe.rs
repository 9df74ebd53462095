//! Reading the real state of a machine: its root on disk, berth's record,
//! and whether it runs. Observation never writes and never follows a link
//! out of the root.

use std::collections::BTreeSet;
use std::fs;
use std::io;

use berth_schema::Machine;
use indexmap::IndexMap;

use crate::drivers::bootstrap;
use crate::confined::Root;
use crate::error::EngineError;
use crate::drivers::launcher::{self, HostFacts};
use crate::host::paths::Paths;
use crate::drivers::shadow;
use crate::host::state::{MachineRecord, StateStore};
use crate::drivers::units::{self, UnitState};

/// What berth found for one machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The machine name.
    pub name: String,
    /// Whether and how its root exists.
    pub root: RootPresence,
    /// berth's record, if berth manages it.
    pub record: Option<MachineRecord>,
    /// The configuration found inside the root (when the root is a directory).
    pub facts: Option<RootFacts>,
    /// Whether it runs, and under which launcher.
    pub run: RunState,
    /// The current `.nspawn` settings file, if any.
    pub settings: Option<String>,
    /// Whether it starts at host boot, under the launcher the spec names
    /// (None: that launcher has no boot integration, or the spec does not ask).
    pub autostart: Option<bool>,
}

/// The machine directory as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootPresence {
    /// Nothing there.
    Absent,
    /// A directory.
    Directory,
    /// Something else (a symlink, a file): berth will not touch it.
    Invalid(String),
}

/// Configuration read from inside a root.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RootFacts {
    /// The hostname in `/etc/hostname` (first line, trimmed), if the file exists.
    pub hostname: Option<String>,
    /// The state of each unit the spec names.
    pub units: IndexMap<String, UnitState>,
    /// root's password field in `/etc/shadow` (never rendered), if there is one.
    pub root_hash: Option<String>,
    /// The contents of `/etc/securetty`, if it exists.
    pub securetty: Option<String>,
    /// The installed packages, read from the root's package database
    /// (None when berth has no package manager for this root).
    pub packages: Option<BTreeSet<String>>,
}

/// Whether a machine runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// Running, started by berth with this launcher.
    Running {
        /// The launcher.
        launcher: String,
        /// The supervising process.
        pid: i32,
        /// The settings fingerprint it was started with.
        settings: Option<String>,
    },
    /// Running, but not started by berth (e.g. `machinectl start` by hand).
    Foreign {
        /// The supervising process.
        pid: i32,
        /// How it was started, as far as can be told.
        how: String,
    },
    /// Not running.
    Stopped,
}

impl RunState {
    /// Whether the machine runs, whoever started it.
    pub fn is_running(&self) -> bool {
        !matches!(self, RunState::Stopped)
    }
}

/// Whether machine `name` runs: the recorded systemd-nspawn process if it
/// is alive, else any systemd-nspawn process for this machine (foreign).
pub fn run_state(paths: &Paths, name: &str, record: Option<&MachineRecord>) -> RunState {
    run_state_with(paths, name, record, &launcher::NspawnProcesses::scan())
}

/// [`run_state`] with a snapshot of the host's systemd-nspawn processes.
pub fn run_state_with(
    paths: &Paths,
    name: &str,
    record: Option<&MachineRecord>,
    procs: &launcher::NspawnProcesses,
) -> RunState {
    if let Some(launch) = record
        .and_then(|r| r.launch.as_ref())
        .and_then(|launch| launcher::refresh(name, launch))
    {
        return RunState::Running {
            launcher: launch.launcher.clone(),
            pid: launch.pid,
            settings: launch.settings.clone(),
        };
    }
    match procs.find(
        name,
        &paths.machine_root(name),
        crate::host::paths::host_booted_with_systemd(),
    ) {
        Some(found) => RunState::Foreign {
            pid: found.pid,
            how: found.how,
        },
        None => RunState::Stopped,
    }
}

/// Observes `machine` on `host`.
pub fn observe(host: &HostFacts, machine: &Machine) -> Result<Observed, EngineError> {
    observe_with(host, machine, &launcher::NspawnProcesses::scan())
}

/// Observes `machine` on `host`, with a snapshot of the host's
/// systemd-nspawn processes taken once for many machines.
pub fn observe_with(
    host: &HostFacts,
    machine: &Machine,
    procs: &launcher::NspawnProcesses,
) -> Result<Observed, EngineError> {
    let paths = &host.paths;
    let name = &machine.name;
    let record = StateStore::new(paths).load(name)?;
    let root_path = paths.machine_root(name);
    let root = match fs::symlink_metadata(&root_path) {
        Ok(meta) if meta.is_dir() => RootPresence::Directory,
        Ok(meta) if meta.file_type().is_symlink() => RootPresence::Invalid(format!(
            "{} is a symlink; berth only manages real directories",
            root_path.display()
        )),
        Ok(_) => RootPresence::Invalid(format!("{} is not a directory", root_path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => RootPresence::Absent,
        Err(e) => {
            return Err(EngineError::io(
                format!("inspecting {}", root_path.display()),
                e,
            ));
        }
    };
    let facts = match root {
        RootPresence::Directory => Some(read_facts(paths, machine)?),
        _ => None,
    };
    let run = run_state_with(paths, name, record.as_ref(), procs);
    let settings_path = paths.settings_file(name);
    let settings = match fs::read_to_string(&settings_path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(EngineError::io(
                format!("reading {}", settings_path.display()),
                e,
            ));
        }
    };
    let autostart = match (machine.autostart, launcher::resolve(machine.launcher, host)) {
        (Some(_), Ok(kind)) => launcher::launcher_for(kind).autostart(name)?,
        _ => None,
    };
    Ok(Observed {
        name: name.clone(),
        root,
        record,
        facts,
        run,
        settings,
        autostart,
    })
}

fn read_facts(paths: &Paths, machine: &Machine) -> Result<RootFacts, EngineError> {
    let root_path = paths.machine_root(&machine.name);
    let root = Root::open(&root_path)?;
    let hostname = root
        .read_string("/etc/hostname")?
        .map(|text| text.lines().next().unwrap_or("").trim().to_owned());
    let root_hash = root
        .read_string("/etc/shadow")?
        .and_then(|text| shadow::root_hash(&text).map(str::to_owned));
    let securetty = root.read_string("/etc/securetty")?;
    let packages = match bootstrap::for_machine(machine) {
        Ok(bootstrapper) => Some(bootstrapper.package_manager().installed(&root)?),
        Err(_) => None,
    };

    let wanted: Vec<&str> = machine
        .units
        .enable
        .iter()
        .chain(&machine.units.disable)
        .chain(&machine.units.mask)
        .map(String::as_str)
        .collect();
    let mut existing = Vec::new();
    let mut units = IndexMap::new();
    for unit in &wanted {
        // A masked unit is a symlink to /dev/null: it "exists" for systemctl either way.
        if units::unit_file_exists(&root, unit)? {
            existing.push(*unit);
        } else {
            units.insert((*unit).to_owned(), UnitState::NotFound);
        }
    }
    for (unit, state) in existing.iter().zip(units::states(&root_path, &existing)?) {
        units.insert((*unit).to_owned(), state);
    }
    // Keep the spec's order.
    let units = wanted
        .iter()
        .filter_map(|u| units.get(*u).map(|s| ((*u).to_owned(), s.clone())))
        .collect();
    Ok(RootFacts {
        hostname,
        units,
        root_hash,
        securetty,
        packages,
    })
}
