//! Planning a machine's resource limits and devices: drift between the
//! spec and what observation read (the running cgroup, the drop-ins or
//! record the next start takes them from), as [`Action::SetResources`] and
//! [`Action::SetDeviceAllow`] placed before the plan's start, stop or
//! restart, so a start already has them. Limits apply to a running machine
//! without restarting it.

use std::collections::{BTreeMap, BTreeSet};

use berth_schema::{Launcher, Machine};

use crate::drivers::resources::systemd::{
    DEVICE_DROPIN, parse_device_dropin, render_device_dropin,
};
use crate::drivers::resources::{
    self, DeviceNode, DeviceRule, Knob, Manager, ResourceChange, ResourceObservation,
    ResourceWrites, Value,
};
use crate::model::action::Action;
use crate::model::observed::{Observed, RunState};
use crate::model::warning::Warning;

/// Plans `machine`'s limits and devices under `launcher` after the rest of
/// the plan (`actions`), inserting its actions before the first start, stop
/// or restart.
pub(super) fn plan(
    machine: &Machine,
    observed: &Observed,
    launcher: Launcher,
    actions: &mut Vec<Action>,
    warnings: &mut Vec<Warning>,
) -> Result<(), String> {
    check_devices(machine, &observed.resources, launcher)?;
    let stops = actions.iter().any(|a| matches!(a, Action::Stop { .. }));
    let live = !stops
        && matches!(&observed.run, RunState::Running { launcher: running, .. } if *running == launcher);
    let mut planned = Vec::new();
    if let Some(action) = plan_limits(machine, observed, launcher, live, actions, warnings)? {
        planned.push(action);
    }
    if let Some(action) = plan_devices(machine, &observed.resources, launcher, live) {
        planned.push(action);
    }
    let at = actions
        .iter()
        .position(|a| {
            matches!(
                a,
                Action::Start { .. } | Action::Stop { .. } | Action::Restart { .. }
            )
        })
        .unwrap_or(actions.len());
    actions.splice(at..at, planned);
    Ok(())
}

/// Every device must be a device node on this host; the nspawn launcher
/// cannot narrow a device's access.
fn check_devices(
    machine: &Machine,
    observed: &ResourceObservation,
    launcher: Launcher,
) -> Result<(), String> {
    for (path, node) in &observed.devices {
        match node {
            DeviceNode::Device => {}
            DeviceNode::Missing => {
                return Err(format!(
                    "devices: {} does not exist on this host",
                    path.display()
                ));
            }
            DeviceNode::NotDevice => {
                return Err(format!(
                    "devices: {} is not a device node on this host",
                    path.display()
                ));
            }
        }
    }
    if launcher == Launcher::Nspawn
        && let Some(device) = machine.devices.iter().find(|d| d.access != "rwm")
    {
        return Err(format!(
            "devices: {} with access {}: the nspawn launcher cannot restrict device access \
             (the bound device node is fully usable in the machine); use access: rwm, or \
             launcher: machinectl or nspawn-unit",
            device.path.display(),
            device.access
        ));
    }
    Ok(())
}

/// The unit launchers' `DeviceAllow=` drop-in.
fn plan_devices(
    machine: &Machine,
    observed: &ResourceObservation,
    launcher: Launcher,
    live: bool,
) -> Option<Action> {
    if !matches!(launcher, Launcher::Machinectl | Launcher::NspawnUnit) {
        return None;
    }
    let wanted = resources::device_rules(&machine.devices);
    let after = (!wanted.is_empty()).then(|| render_device_dropin(&machine.name, &wanted));
    if observed.device_dropin == after {
        return None;
    }
    let current = observed
        .device_dropin
        .as_deref()
        .map(parse_device_dropin)
        .unwrap_or_default();
    let missing = |from: &[DeviceRule], of: &[DeviceRule]| -> Vec<DeviceRule> {
        from.iter().filter(|r| !of.contains(r)).cloned().collect()
    };
    Some(Action::SetDeviceAllow {
        launcher,
        path: observed
            .dropin_dir
            .join(DEVICE_DROPIN)
            .display()
            .to_string(),
        add: missing(&wanted, &current),
        remove: missing(&current, &wanted),
        live,
        before: observed.device_dropin.clone(),
        after,
    })
}

/// Where a launcher keeps limits for the next start.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keeper {
    /// systemd's drop-ins of `systemd-nspawn@NAME.service`.
    Unit,
    /// berth's record, given to machined's scope at start.
    Scope,
    /// berth's record, written into berth's cgroup at start.
    Cgroup,
}

/// The limits: drift per knob, then one action with its exact writes.
fn plan_limits(
    machine: &Machine,
    observed: &Observed,
    launcher: Launcher,
    live: bool,
    actions: &[Action],
    warnings: &mut Vec<Warning>,
) -> Result<Option<Action>, String> {
    let obs = &observed.resources;
    let wanted = resources::wanted(&machine.resources, obs.page_size);
    // A root made anew gets a new record: what the old one managed is lost.
    let recreating = actions.iter().any(|a| {
        matches!(
            a,
            Action::Replace { .. } | Action::Bootstrap { .. } | Action::Clone { .. }
        )
    });
    let managed: BTreeMap<Knob, Value> = observed
        .record
        .as_ref()
        .map(|r| r.resources.clone())
        .unwrap_or_default();
    for (knob, value) in &wanted {
        let hierarchy = match obs.controllers.get(&knob.controller()) {
            Some(Ok(h)) => *h,
            Some(Err(why)) => {
                return Err(format!(
                    "resources.{knob} cannot be enforced on this host: {why}"
                ));
            }
            None => {
                return Err(format!(
                    "resources.{knob}: this host's cgroup controllers were not observed"
                ));
            }
        };
        resources::cgroup_writes(*knob, value, hierarchy, Manager::Berth)
            .map_err(|why| format!("resources.{knob}: {why}"))?;
    }
    let keeper = match launcher {
        Launcher::Machinectl | Launcher::NspawnUnit => Keeper::Unit,
        _ if obs.systemd => Keeper::Scope,
        _ => Keeper::Cgroup,
    };
    let resets: BTreeSet<Knob> = managed
        .keys()
        .filter(|k| !wanted.contains_key(k))
        .copied()
        .collect();
    let live_limits = obs.live.as_ref().filter(|_| live);
    let mut changes = Vec::new();
    let mut unreadable = Vec::new();
    let mut why_unreadable = String::new();
    for knob in wanted.keys().chain(resets.iter()) {
        let reset = resets.contains(knob);
        let to = wanted
            .get(knob)
            .cloned()
            .unwrap_or_else(|| knob.default_value());
        let persisted = match keeper {
            Keeper::Unit => obs
                .dropins
                .get(knob)
                .map(|t| resources::parse_property(*knob, t)),
            Keeper::Scope | Keeper::Cgroup => managed.get(knob).cloned(),
        };
        let persisted_ok = !reset
            && !recreating
            && managed.get(knob) == Some(&to)
            && match keeper {
                Keeper::Unit => {
                    obs.dropins.get(knob).map(String::as_str)
                        == Some(resources::property_value(*knob, &to).as_str())
                }
                Keeper::Scope | Keeper::Cgroup => true,
            };
        let mut from = persisted;
        let mut live_ok = true;
        if let Some(limits) = live_limits
            && !(reset && keeper == Keeper::Unit)
        {
            match limits.values.get(knob) {
                Some(Ok(value)) => {
                    let writes =
                        resources::cgroup_writes(*knob, &to, value.hierarchy, limits.manager)
                            .unwrap_or_default();
                    live_ok = value.holds(&writes);
                    from = Some(resources::decode(
                        *knob,
                        value.hierarchy,
                        limits.manager,
                        &value.files,
                    ));
                }
                Some(Err(why)) if keeper == Keeper::Cgroup => {
                    unreadable.push(knob.name().to_owned());
                    why_unreadable.clone_from(why);
                }
                _ => {}
            }
        }
        if !(persisted_ok && live_ok) {
            changes.push(ResourceChange {
                knob: *knob,
                from,
                to,
                reset,
            });
        }
    }
    if !unreadable.is_empty() {
        warnings.push(Warning::ResourcesAtNextStart {
            knobs: unreadable,
            why: why_unreadable,
        });
    }
    if changes.is_empty() {
        return Ok(None);
    }
    let unit = resources::systemd::unit(&machine.name);
    let (writes, live) = match keeper {
        Keeper::Unit => (
            ResourceWrites::Unit {
                set: changes
                    .iter()
                    .filter(|c| !c.reset)
                    .map(|c| resources::property(c.knob, &c.to))
                    .collect(),
                remove: changes
                    .iter()
                    .filter(|c| c.reset)
                    .map(|c| {
                        obs.dropin_dir
                            .join(format!("50-{}.conf", c.knob.property()))
                            .display()
                            .to_string()
                    })
                    .collect(),
                unit,
            },
            live,
        ),
        Keeper::Scope => {
            let set: Vec<String> = if live {
                changes
                    .iter()
                    .map(|c| resources::property(c.knob, &c.to))
                    .collect()
            } else {
                Vec::new()
            };
            let live = !set.is_empty();
            (ResourceWrites::Scope { set }, live)
        }
        Keeper::Cgroup => {
            let mut writes = Vec::new();
            let mut paths = Vec::new();
            if let Some(limits) = live_limits {
                for change in &changes {
                    if let Some(Ok(value)) = limits.values.get(&change.knob) {
                        let these = resources::cgroup_writes(
                            change.knob,
                            &change.to,
                            value.hierarchy,
                            Manager::Berth,
                        )
                        .map_err(|why| format!("resources.{}: {why}", change.knob))?;
                        paths.extend(these.iter().map(|w| format!("{}/{}", value.dir, w.file)));
                        writes.extend(these);
                    }
                }
            }
            let live = !writes.is_empty();
            (ResourceWrites::Cgroup { writes, paths }, live)
        }
    };
    Ok(Some(Action::SetResources {
        launcher,
        live,
        changes,
        writes,
        managed: wanted,
    }))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use berth_schema::{Device, Limit, Resources};

    use super::*;
    use crate::drivers::resources::{Controller, Hierarchy, LiveLimits, LiveValue};
    use crate::planner::plan_machine;
    use crate::planner::tests::{converged, secret};

    fn limits() -> Resources {
        Resources {
            memory_max: Some(Limit::Value(512 << 20)),
            tasks_max: Some(Limit::Value(500)),
            cpu_quota: Some(150),
            ..Resources::default()
        }
    }

    fn machine(resources: Resources) -> Machine {
        let mut m = crate::testing::web();
        m.resources = resources;
        m
    }

    fn v1_layout() -> BTreeMap<Controller, Result<Hierarchy, String>> {
        Controller::ALL
            .into_iter()
            .map(|c| (c, Ok(Hierarchy::V1)))
            .collect()
    }

    /// A v1 cgroup reading of `memory` bytes, `tasks` and `quota` percent.
    fn live_v1(memory: &str, tasks: &str, quota: &str) -> LiveLimits {
        let value = |files: &[(&str, &str)]| {
            Ok(LiveValue {
                hierarchy: Hierarchy::V1,
                dir: "/sys/fs/cgroup/v1/berth-web".into(),
                files: files
                    .iter()
                    .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
                    .collect(),
            })
        };
        LiveLimits {
            cgroup: "/sys/fs/cgroup/memory/berth-web".into(),
            manager: Manager::Berth,
            values: [
                (Knob::MemoryMax, value(&[("memory.limit_in_bytes", memory)])),
                (Knob::TasksMax, value(&[("pids.max", tasks)])),
                (
                    Knob::CpuQuota,
                    value(&[("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", quota)]),
                ),
            ]
            .into_iter()
            .collect(),
        }
    }

    /// The test machine running under the nspawn launcher without systemd,
    /// its record and cgroup holding `limits()`.
    fn applied() -> Observed {
        let mut observed = converged();
        if let Some(record) = &mut observed.record {
            record.resources = resources::wanted(&limits(), 4096);
        }
        observed.resources = ResourceObservation {
            controllers: v1_layout(),
            live: Some(live_v1("536870912", "500", "150000")),
            ..ResourceObservation::default()
        };
        observed
    }

    fn set_resources(actions: &[Action]) -> Option<&Action> {
        actions.iter().find(|a| a.name() == "set-resources")
    }

    #[test]
    fn applied_limits_plan_nothing() {
        let plan = plan_machine(&machine(limits()), &applied(), Some(&secret())).unwrap();
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    }

    #[test]
    fn a_changed_limit_is_set_live_in_berths_cgroup_without_a_restart() {
        let mut r = limits();
        r.memory_max = Some(Limit::Value(256 << 20));
        let plan = plan_machine(&machine(r), &applied(), Some(&secret())).unwrap();
        assert_eq!(plan.actions.len(), 1, "{:?}", plan.actions);
        let action = &plan.actions[0];
        assert_eq!(
            action.describe(),
            "set resources: memory_max 536870912 -> 268435456 (live)"
        );
        let Action::SetResources {
            writes: ResourceWrites::Cgroup { writes, .. },
            managed,
            live: true,
            ..
        } = action
        else {
            panic!("{action:?}")
        };
        assert_eq!(writes.len(), 1);
        assert_eq!(
            (writes[0].file.as_str(), writes[0].value.as_str()),
            ("memory.limit_in_bytes", "268435456")
        );
        assert_eq!(managed[&Knob::MemoryMax], Value::Number(256 << 20));
        let json = serde_json::to_value(action).unwrap();
        assert_eq!(json["action"], "set-resources");
        assert_eq!(json["changes"][0]["knob"], "memory_max");
        assert_eq!(json["changes"][0]["from"], 536_870_912);
        assert_eq!(json["writes"]["via"], "cgroup");
        assert_eq!(json["writes"]["writes"][0]["value"], "268435456");
        assert_eq!(
            action.commands(),
            ["echo \"268435456\" > /sys/fs/cgroup/v1/berth-web/memory.limit_in_bytes"]
        );
    }

    #[test]
    fn drift_in_the_cgroup_is_planned_back_and_memory_compares_page_rounded() {
        let mut observed = applied();
        observed.resources.live = Some(live_v1("536870912", "max", "-1"));
        let mut r = limits();
        // Not a multiple of the page size: the kernel keeps it rounded down.
        r.memory_max = Some(Limit::Value((512 << 20) + 100));
        let plan = plan_machine(&machine(r), &observed, Some(&secret())).unwrap();
        let action = set_resources(&plan.actions).unwrap();
        assert_eq!(
            action.describe(),
            "set resources: cpu_quota max -> 150%, tasks_max max -> 500 (live)"
        );
    }

    #[test]
    fn a_limit_that_left_the_spec_is_reset_to_the_default() {
        let mut r = limits();
        r.tasks_max = None;
        let plan = plan_machine(&machine(r), &applied(), Some(&secret())).unwrap();
        let Some(Action::SetResources {
            changes,
            writes: ResourceWrites::Cgroup { writes, .. },
            managed,
            ..
        }) = set_resources(&plan.actions)
        else {
            panic!("{:?}", plan.actions)
        };
        assert_eq!(
            changes,
            &[ResourceChange {
                knob: Knob::TasksMax,
                from: Some(Value::Number(500)),
                to: Value::Max,
                reset: true,
            }]
        );
        assert_eq!(writes[0].value, "max");
        assert!(!managed.contains_key(&Knob::TasksMax));
        // A limit berth never set is not touched, whatever the cgroup holds.
        let mut observed = applied();
        if let Some(record) = &mut observed.record {
            record.resources.remove(&Knob::TasksMax);
        }
        let mut r = limits();
        r.tasks_max = None;
        let plan = plan_machine(&machine(r), &observed, Some(&secret())).unwrap();
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    }

    #[test]
    fn a_stopped_machine_gets_its_limits_recorded_before_it_starts() {
        let mut observed = converged();
        observed.run = RunState::Stopped;
        observed.resources.controllers = v1_layout();
        let plan = plan_machine(&machine(limits()), &observed, Some(&secret())).unwrap();
        let names: Vec<&str> = plan.actions.iter().map(Action::name).collect();
        assert_eq!(names, ["set-resources", "start"]);
        assert_eq!(
            plan.actions[0].describe(),
            "set resources: memory_max 536870912, cpu_quota 150%, tasks_max 500 (at the next start)"
        );
        assert_eq!(
            plan.actions[0].effect(),
            crate::model::action::Effect::Create
        );
    }

    #[test]
    fn unit_launchers_set_properties_and_remove_berths_drop_in_of_a_reset() {
        let mut m = machine(limits());
        m.launcher = Launcher::Machinectl;
        let mut observed = applied();
        observed.launcher = Ok(Launcher::Machinectl);
        observed.run = RunState::Running {
            launcher: Launcher::Machinectl,
            pid: 1,
            settings: Some(crate::drivers::settings::fingerprint(
                &m,
                berth_schema::NetworkMode::Veth,
            )),
        };
        observed.settings = Some(crate::drivers::settings::render(
            &m,
            berth_schema::NetworkMode::Veth,
        ));
        observed.resources.systemd = true;
        observed.resources.dropin_dir =
            PathBuf::from("/etc/systemd/system.control/systemd-nspawn@web.service.d");
        observed.resources.dropins = [
            (Knob::MemoryMax, "536870912".to_owned()),
            (Knob::TasksMax, "500".to_owned()),
            (Knob::CpuQuota, "150%".to_owned()),
        ]
        .into_iter()
        .collect();
        if let Some(live) = &mut observed.resources.live {
            live.manager = Manager::Systemd;
        }
        let plan = plan_machine(&m, &observed, Some(&secret())).unwrap();
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);

        m.resources.cpu_quota = None;
        m.resources.memory_max = Some(Limit::Value(256 << 20));
        let plan = plan_machine(&m, &observed, Some(&secret())).unwrap();
        let Some(Action::SetResources {
            writes: ResourceWrites::Unit { unit, set, remove },
            live: true,
            ..
        }) = set_resources(&plan.actions)
        else {
            panic!("{:?}", plan.actions)
        };
        assert_eq!(unit, "systemd-nspawn@web.service");
        assert_eq!(set, &["MemoryMax=268435456"]);
        assert_eq!(
            remove,
            &["/etc/systemd/system.control/systemd-nspawn@web.service.d/50-CPUQuota.conf"]
        );

        // A stopped machine: the drop-ins are what its next start gets.
        observed.run = RunState::Stopped;
        observed.resources.live = None;
        observed.resources.dropins.remove(&Knob::TasksMax);
        m.state = berth_schema::DesiredState::Stopped;
        m.resources = limits();
        let plan = plan_machine(&m, &observed, Some(&secret())).unwrap();
        assert_eq!(
            set_resources(&plan.actions)
                .map(Action::describe)
                .as_deref(),
            Some("set resources: tasks_max 500 (at the next start)")
        );
    }

    #[test]
    fn limits_the_host_cannot_enforce_are_plan_errors() {
        let mut observed = applied();
        observed.resources.controllers.insert(
            Controller::Memory,
            Err("the memory controller is a cgroup v1 hierarchy ... read-only".into()),
        );
        let err = plan_machine(&machine(limits()), &observed, Some(&secret())).unwrap_err();
        assert!(
            err.to_string()
                .contains("resources.memory_max cannot be enforced on this host"),
            "{err}"
        );
        let mut r = limits();
        r.memory_high = Some(Limit::Value(1 << 30));
        let err = plan_machine(&machine(r), &applied(), Some(&secret())).unwrap_err();
        assert!(
            err.to_string()
                .contains("resources.memory_high: memory_high needs cgroup v2"),
            "{err}"
        );
    }

    #[test]
    fn a_machine_without_its_own_cgroup_gets_its_limits_at_the_next_start() {
        let mut observed = applied();
        if let Some(live) = &mut observed.resources.live {
            live.values.insert(
                Knob::MemoryMax,
                Err("the running machine has no cgroup of its own".into()),
            );
        }
        let mut r = limits();
        r.memory_max = Some(Limit::Value(256 << 20));
        let plan = plan_machine(&machine(r), &observed, Some(&secret())).unwrap();
        let action = set_resources(&plan.actions).unwrap();
        assert!(
            action.describe().ends_with("(at the next start)"),
            "{action:?}"
        );
        assert!(
            plan.warnings
                .iter()
                .any(|w| matches!(w, Warning::ResourcesAtNextStart { .. })),
            "{:?}",
            plan.warnings
        );
    }

    fn fuse(access: &str) -> Vec<Device> {
        vec![Device {
            path: "/dev/fuse".into(),
            access: access.into(),
        }]
    }

    #[test]
    fn devices_must_exist_and_the_nspawn_launcher_cannot_narrow_their_access() {
        let mut m = machine(Resources::default());
        m.devices = fuse("rw");
        let mut observed = converged();
        observed.resources.devices = vec![("/dev/fuse".into(), DeviceNode::Device)];
        let err = plan_machine(&m, &observed, Some(&secret())).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("/dev/fuse with access rw")
                && text.contains("cannot restrict device access")
                && text.contains("launcher: machinectl or nspawn-unit"),
            "{text}"
        );
        m.devices = fuse("rwm");
        assert!(plan_machine(&m, &observed, Some(&secret())).is_ok());
        observed.resources.devices = vec![("/dev/fuse".into(), DeviceNode::Missing)];
        let err = plan_machine(&m, &observed, Some(&secret())).unwrap_err();
        assert!(
            err.to_string()
                .contains("devices: /dev/fuse does not exist on this host"),
            "{err}"
        );
    }

    #[test]
    fn unit_launchers_allow_devices_in_berths_drop_in_and_remove_them_from_it() {
        let mut m = machine(Resources::default());
        m.launcher = Launcher::NspawnUnit;
        m.devices = fuse("rw");
        let mut observed = converged();
        observed.launcher = Ok(Launcher::NspawnUnit);
        observed.run = RunState::Stopped;
        m.state = berth_schema::DesiredState::Stopped;
        observed.resources.devices = vec![("/dev/fuse".into(), DeviceNode::Device)];
        observed.resources.dropin_dir = PathBuf::from("/s/systemd-nspawn@web.service.d");
        let plan = plan_machine(&m, &observed, Some(&secret())).unwrap();
        let action = plan
            .actions
            .iter()
            .find(|a| a.name() == "set-device-allow")
            .unwrap();
        assert_eq!(
            action.describe(),
            "allow device /dev/fuse rw (DeviceAllow=, at the next start)"
        );
        let (path, before, after) = action.file_change().unwrap();
        assert_eq!(
            path,
            "/s/systemd-nspawn@web.service.d/50-berth-DeviceAllow.conf"
        );
        assert_eq!(before, "");
        assert!(
            after.ends_with("[Service]\nDeviceAllow=/dev/fuse rw\n"),
            "{after}"
        );

        // Applied: nothing to do; the device leaves the spec: berth's entry goes.
        observed.resources.device_dropin = Some(after);
        let plan = plan_machine(&m, &observed, Some(&secret())).unwrap();
        assert!(
            !plan.actions.iter().any(|a| a.name() == "set-device-allow"),
            "{:?}",
            plan.actions
        );
        m.devices = fuse("rwm");
        let plan = plan_machine(&m, &observed, Some(&secret())).unwrap();
        assert_eq!(
            plan.actions
                .iter()
                .find(|a| a.name() == "set-device-allow")
                .map(Action::describe)
                .as_deref(),
            Some("change device /dev/fuse rw -> rwm (DeviceAllow=, at the next start)")
        );
        m.devices.clear();
        observed.resources.devices.clear();
        let plan = plan_machine(&m, &observed, Some(&secret())).unwrap();
        let Some(Action::SetDeviceAllow { remove, after, .. }) =
            plan.actions.iter().find(|a| a.name() == "set-device-allow")
        else {
            panic!("{:?}", plan.actions)
        };
        assert_eq!(remove.len(), 1);
        assert_eq!(after, &None);
    }
}
