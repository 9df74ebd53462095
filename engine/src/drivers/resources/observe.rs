//! Observation of a machine's limits and devices: the live values in its
//! running cgroup, the persisted ones in systemd's drop-ins (berth's record
//! holds the nspawn launcher's), the host's cgroup layout, and whether the
//! spec's device nodes exist.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use berth_schema::{Launcher, Machine};

use super::cgroupfs::{self, MachineCgroup};
use super::{DeviceNode, Knob, Manager, ResourceObservation, systemd, wanted};
use crate::error::EngineError;
use crate::host::Host;
use crate::host::state::MachineRecord;
use crate::model::observed::RunState;

/// The host's page size.
fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|n| u64::try_from(n).ok())
        .filter(|n| *n > 0)
        .unwrap_or(4096)
}

/// This process's cgroup in the unified hierarchy (where the nspawn
/// launcher makes machines' cgroups on hosts without systemd).
pub(crate) fn own_v2_cgroup(host: &dyn Host) -> Option<std::path::PathBuf> {
    let mount = cgroupfs::v2_mount(&host.cgroup_fs())?;
    let text = std::fs::read_to_string(host.proc_dir().join("self/cgroup")).ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(mount.join(path.trim_start_matches('/')))
}

/// Observes `machine`'s limits and devices. `launcher` is the launcher the
/// spec means on this host; `run` how the machine runs now. Nothing is read
/// (and no command runs) for a machine whose spec and record set no limit
/// and no device, except berth's `DeviceAllow=` drop-in file.
pub fn observe(
    host: &dyn Host,
    machine: &Machine,
    record: Option<&MachineRecord>,
    run: &RunState,
    launcher: Option<Launcher>,
) -> Result<ResourceObservation, EngineError> {
    let systemd = host.booted_with_systemd();
    let mut out = ResourceObservation {
        systemd,
        page_size: page_size(),
        ..ResourceObservation::default()
    };
    let name = &machine.name;
    let unit_launcher = matches!(launcher, Some(Launcher::Machinectl | Launcher::NspawnUnit));
    out.dropin_dir = systemd::dropin_dir(host, &systemd::unit(name));
    if systemd && unit_launcher {
        out.device_dropin = systemd::read_device_dropin(host, &systemd::unit(name))?;
    }
    for device in &machine.devices {
        let node = match cgroupfs::is_device(&device.path) {
            Ok(true) => DeviceNode::Device,
            Ok(false) => DeviceNode::NotDevice,
            Err(e) if e.kind() == io::ErrorKind::NotFound => DeviceNode::Missing,
            Err(e) => {
                return Err(EngineError::io(
                    format!("inspecting device {}", device.path.display()),
                    e,
                ));
            }
        };
        out.devices.push((device.path.clone(), node));
    }

    let knobs: BTreeSet<Knob> = wanted(&machine.resources, out.page_size)
        .into_keys()
        .chain(record.iter().flat_map(|r| r.resources.keys().copied()))
        .collect();
    if knobs.is_empty() {
        return Ok(out);
    }
    let cgroup_fs = host.cgroup_fs();
    let parent = (!systemd).then(|| own_v2_cgroup(host)).flatten();
    out.controllers = cgroupfs::layout(&cgroup_fs, parent.as_deref());
    if systemd && unit_launcher {
        let unit = systemd::unit(name);
        let mut dropins = BTreeMap::new();
        for knob in &knobs {
            if let Some(value) = systemd::read_dropin(host, &unit, *knob)? {
                dropins.insert(*knob, value);
            }
        }
        out.dropins = dropins;
    }
    let RunState::Running {
        launcher: running,
        pid,
        ..
    } = run
    else {
        return Ok(out);
    };
    let found = match (running, systemd) {
        (Launcher::Nspawn, false) => Some((
            MachineCgroup::of_berth(&cgroup_fs, host.proc_dir(), *pid, name),
            Manager::Berth,
        )),
        (Launcher::Nspawn, true) => systemd::machine_unit(host, name)
            .and_then(|unit| systemd::control_group(host, &unit))
            .map(|path| (MachineCgroup::of_unit(&cgroup_fs, &path), Manager::Systemd)),
        (_, _) => systemd::control_group(host, &systemd::unit(name))
            .map(|path| (MachineCgroup::of_unit(&cgroup_fs, &path), Manager::Systemd)),
    };
    if let Some((cgroup, manager)) = found {
        out.live = Some(cgroup.read(knobs, &out.controllers, manager));
    }
    Ok(out)
}
