//! Observation, the first stage: read the real state of a machine through
//! the [`Host`]: its root on disk, berth's record, whether and how it runs,
//! and everything the planner needs to know about the host (the resolved
//! launcher and bootstrapper, the base cache, missing tools). Observation
//! never writes and never follows a link out of the root.

use std::fs;
use std::io;

use berth_schema::Machine;
use indexmap::IndexMap;

use crate::drivers::bootstrap::{self, Bootstrapper};
use crate::drivers::cache::{BaseKey, Cache};
use crate::drivers::files::{self, observe::FilesObservation};
use crate::drivers::launcher::{self, NspawnProcesses};
use crate::drivers::network::{self, observe::GuestNetwork};
use crate::drivers::packages::PackageManager;
use crate::drivers::shadow;
use crate::drivers::storage;
use crate::drivers::units::{self, UnitState};
use crate::drivers::{credentials, users};
use crate::error::EngineError;
use crate::host::Host;
use crate::host::state::MachineRecord;
use crate::inputs::Inputs;
pub use crate::model::observed::{BaseObservation, Observed, RootFacts, RootPresence, RunState};

/// Whether machine `name` runs: the recorded systemd-nspawn process if it
/// is alive, else any systemd-nspawn process for this machine (foreign).
pub fn run_state(host: &dyn Host, name: &str, record: Option<&MachineRecord>) -> RunState {
    run_state_with(host, name, record, &NspawnProcesses::scan(host))
}

/// [`run_state`] with a snapshot of the host's systemd-nspawn processes.
pub fn run_state_with(
    host: &dyn Host,
    name: &str,
    record: Option<&MachineRecord>,
    procs: &NspawnProcesses,
) -> RunState {
    if let Some(launch) = record
        .and_then(|r| r.launch.as_ref())
        .and_then(|launch| launcher::refresh(host, name, launch))
    {
        return RunState::Running {
            launcher: launch.launcher,
            pid: launch.pid,
            settings: launch.settings.clone(),
        };
    }
    match procs.find(host, name, &host.paths().machine_root(name)) {
        Some(found) => RunState::Foreign {
            pid: found.pid,
            how: found.how,
        },
        None => RunState::Stopped,
    }
}

/// Observes `machine` on `host` (its `files:` left out: see [`observe_inputs`]).
pub fn observe(host: &dyn Host, machine: &Machine) -> Result<Observed, EngineError> {
    observe_with(host, machine, &NspawnProcesses::scan(host))
}

/// Observes `machine` on `host`, with a snapshot of the host's
/// systemd-nspawn processes taken once for many machines (its `files:`
/// left out).
pub fn observe_with(
    host: &dyn Host,
    machine: &Machine,
    procs: &NspawnProcesses,
) -> Result<Observed, EngineError> {
    observe_full(host, machine, procs, None)
}

/// Observes `machine` on `host`, its `files:` too, comparing `secret:`
/// entries with the resolved `inputs` (what plan and apply need).
pub fn observe_inputs(
    host: &dyn Host,
    machine: &Machine,
    inputs: &Inputs,
) -> Result<Observed, EngineError> {
    observe_full(host, machine, &NspawnProcesses::scan(host), Some(inputs))
}

/// Observes `machine` on `host` with a snapshot of the host's
/// systemd-nspawn processes; with `inputs`, its `files:` too.
pub fn observe_full(
    host: &dyn Host,
    machine: &Machine,
    procs: &NspawnProcesses,
    inputs: Option<&Inputs>,
) -> Result<Observed, EngineError> {
    observe_at(host, machine, None, procs, inputs)
}

/// Observes `machine` as it will be once the machine berth manages as
/// `from` is renamed to it (a `moved:` entry): `from`'s root, record and
/// `.nspawn` file, stopped (the rename stops it), with everything else
/// that carries the machine's name (its unit's drop-ins, credentials,
/// NAT rules, boot integration) as found under the new name.
pub fn observe_moved(
    host: &dyn Host,
    machine: &Machine,
    from: &str,
    procs: &NspawnProcesses,
    inputs: Option<&Inputs>,
) -> Result<Observed, EngineError> {
    observe_at(host, machine, Some(from), procs, inputs)
}

fn observe_at(
    host: &dyn Host,
    machine: &Machine,
    from: Option<&str>,
    procs: &NspawnProcesses,
    inputs: Option<&Inputs>,
) -> Result<Observed, EngineError> {
    let paths = host.paths();
    let name = &machine.name;
    // Where the machine is on disk now: under its old name while moved.
    let disk = from.unwrap_or(name);
    let mut record = host.state().load(disk)?;
    let root_path = paths.machine_root(disk);
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
    // The spec's bootstrapper, or the distro's default on this host.
    let bootstrapper = bootstrap::for_machine(host, machine);
    let manager = bootstrapper.as_ref().ok().map(|b| b.package_manager());
    // An overlay machine's root: mounted, or read through its layers.
    let layers = match &record {
        Some(r) => storage::Layers::of_record(paths, r)?,
        None => None,
    };
    let root = match (root, &layers) {
        (RootPresence::Directory, Some(layers))
            if storage::mounted(host, layers)? == storage::Mounted::No =>
        {
            match layers.missing() {
                Some(why) => RootPresence::Invalid(format!(
                    "{} is an overlay root that cannot be mounted: {why}; \
                     `berth destroy {name}` removes what is left",
                    root_path.display()
                )),
                None => RootPresence::Directory,
            }
        }
        (root, _) => root,
    };
    type Read = (
        RootFacts,
        bool,
        GuestNetwork,
        FilesObservation,
        Option<users::Accounts>,
    );
    let read = || -> Result<Read, EngineError> {
        let facts = read_facts(host, machine, &root_path, manager)?;
        let opened = host.open_root(&root_path)?;
        let has_manager = match manager {
            Some(m) => opened.exists(m.guest_program())?,
            None => false,
        };
        let files = match inputs {
            Some(inputs) => files::observe::observe(&opened, machine, inputs)?,
            None => FilesObservation::default(),
        };
        let accounts = users::observe::read_root(&opened, machine)?;
        Ok((
            facts,
            has_manager,
            network::observe::read_guest(&opened)?,
            files,
            accounts,
        ))
    };
    let (facts, guest_package_manager, guest_network, files, accounts) = match (&root, &layers) {
        (RootPresence::Directory, Some(layers)) => {
            let (facts, has_manager, guest, files, accounts) =
                storage::with_view(host, layers, read)?;
            (Some(facts), has_manager, Some(guest), files, accounts)
        }
        (RootPresence::Directory, None) => {
            let (facts, has_manager, guest, files, accounts) = read()?;
            (Some(facts), has_manager, Some(guest), files, accounts)
        }
        _ => (None, false, None, FilesObservation::default(), None),
    };
    let mut run = run_state_with(host, disk, record.as_ref(), procs);
    let mut moved_from = None;
    if let Some(from) = from {
        // The rename stops the machine and gives it its new name; the
        // limits and devices berth set went with the old name's unit.
        let running = match &run {
            RunState::Running { launcher, .. } => Some(*launcher),
            RunState::Foreign { how, .. } => {
                return Err(EngineError::Plan {
                    machine: name.clone(),
                    message: format!(
                        "moved: {from} runs, started outside berth ({how}); stop it the way it \
                         was started, then plan again"
                    ),
                });
            }
            RunState::Stopped => None,
        };
        run = RunState::Stopped;
        if let Some(record) = &mut record {
            record.name = name.clone();
            record.launch = None;
            record.resources.clear();
        }
        moved_from = Some(crate::model::observed::MovedFrom {
            name: from.to_owned(),
            running,
        });
    }
    let network = network::observe::observe(host, machine, record.as_ref(), &run, guest_network)?;
    let settings_path = paths.settings_file(name);
    let settings = match fs::read_to_string(paths.settings_file(disk)) {
        Ok(text) if disk != name => Some(crate::ops::moved::renamed_settings(&text, disk, name)),
        Ok(text) => Some(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(EngineError::io(
                format!("reading {}", settings_path.display()),
                e,
            ));
        }
    };
    let launcher = launcher::resolve(machine.launcher, host.facts());
    let autostart = match (machine.autostart, &launcher) {
        (Some(_), Ok(kind)) => launcher::launcher_for(*kind).autostart(host, name)?,
        _ => None,
    };
    let base = match &bootstrapper {
        Ok(b) => Ok(observe_base(host, machine, &**b)?),
        Err(e) => Err(e.clone()),
    };
    let resources = crate::drivers::resources::observe::observe(
        host,
        machine,
        record.as_ref(),
        &run,
        launcher.as_ref().ok().copied(),
    )?;
    let credentials = credentials::observe(host, machine, &run, launcher.as_ref().ok().copied())?;
    Ok(Observed {
        name: name.clone(),
        root,
        record,
        facts,
        run,
        settings,
        autostart,
        launcher,
        base,
        guest_package_manager,
        host_dhcp: host.facts().host_dhcp,
        settings_path,
        machines_dir: paths.machines_dir.clone(),
        network,
        resources,
        files,
        users: users::UsersObservation {
            accounts,
            credentials,
        },
        moved_from,
    })
}

/// The base a new root would come from: cached or to bootstrap, the exact
/// command, and whether the tool is installed.
fn observe_base(
    host: &dyn Host,
    machine: &Machine,
    bootstrapper: &dyn Bootstrapper,
) -> Result<BaseObservation, EngineError> {
    let cache = Cache::new(&host.paths().cache_dir);
    let key = BaseKey::of(machine, bootstrapper)?;
    let cached = cache.get(&key).map(|entry| entry.id);
    let missing_tool = if host.facts().check_tools {
        bootstrap::missing_requirement(host, bootstrapper)
            .map(|r| (r.program.to_owned(), r.package.to_owned()))
    } else {
        None
    };
    Ok(BaseObservation {
        bootstrapper: bootstrapper.kind(),
        key: key.id(),
        cached,
        command: bootstrapper.command(host, machine, &cache.staging_root(&key)),
        missing_tool,
    })
}

fn read_facts(
    host: &dyn Host,
    machine: &Machine,
    root_path: &std::path::Path,
    manager: Option<&dyn PackageManager>,
) -> Result<RootFacts, EngineError> {
    let root = host.open_root(root_path)?;
    let hostname = root
        .read_string("/etc/hostname")?
        .map(|text| text.lines().next().unwrap_or("").trim().to_owned());
    let root_hash = root
        .read_string("/etc/shadow")?
        .and_then(|text| shadow::root_hash(&text).map(str::to_owned));
    let securetty = root.read_string("/etc/securetty")?;
    let packages = match manager {
        Some(manager) => Some(manager.installed(host, &root)?),
        None => None,
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
    for (unit, state) in existing.iter().zip(units::states(root_path, &existing)?) {
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
