//! The limits the nspawn launcher gives a machine it starts: those berth's
//! record keeps for it (the unit launchers' come from systemd's drop-ins).

use super::cgroupfs;
use super::{CgroupWrite, Manager, cgroup_writes, property};
use crate::error::EngineError;
use crate::host::Host;

/// The recorded limits of machine `name`: on a host with systemd as
/// `--property=` options of systemd-nspawn (machined's scope for the
/// machine gets them), else as writes into berth's cgroup for the machine.
pub fn limits(host: &dyn Host, name: &str) -> Result<(Vec<String>, Vec<CgroupWrite>), EngineError> {
    let Some(record) = host.state().load(name)? else {
        return Ok((Vec::new(), Vec::new()));
    };
    if record.resources.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    if host.booted_with_systemd() {
        let options = record
            .resources
            .iter()
            .map(|(knob, value)| format!("--property={}", property(*knob, value)))
            .collect();
        return Ok((options, Vec::new()));
    }
    let cgroup_fs = host.cgroup_fs();
    let parent = super::observe::own_v2_cgroup(host);
    let layout = cgroupfs::layout(&cgroup_fs, parent.as_deref());
    let mut writes = Vec::new();
    for (knob, value) in &record.resources {
        let failed = |why: String| EngineError::Launch {
            machine: name.to_owned(),
            message: format!("resources.{knob} cannot be set: {why}"),
        };
        let hierarchy = match layout.get(&knob.controller()) {
            Some(Ok(h)) => *h,
            Some(Err(why)) => return Err(failed(why.clone())),
            None => return Err(failed("its controller was not found".into())),
        };
        writes.extend(cgroup_writes(*knob, value, hierarchy, Manager::Berth).map_err(failed)?);
    }
    Ok((Vec::new(), writes))
}
