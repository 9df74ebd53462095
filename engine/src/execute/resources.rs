//! Executing resource limits and device access: the approved writes, then
//! berth's record of the limits it manages.

use std::collections::BTreeMap;
use std::fs;
use std::io;

use berth_schema::Machine;

use crate::drivers::launcher;
use crate::drivers::resources::cgroupfs::{self, MachineCgroup};
use crate::drivers::resources::systemd::{self, DEVICE_DROPIN};
use crate::drivers::resources::{Knob, ResourceChange, ResourceWrites, Value};
use crate::engine::Engine;
use crate::error::EngineError;

impl Engine {
    /// Sets the approved limits, live where the plan says so and for the
    /// next start; then records the limits berth manages.
    pub(super) fn set_resources(
        &self,
        machine: &Machine,
        changes: &[ResourceChange],
        writes: &ResourceWrites,
        managed: &BTreeMap<Knob, Value>,
    ) -> Result<(), EngineError> {
        let name = &machine.name;
        let host = self.host();
        let failed = |message: String| EngineError::Launch {
            machine: name.clone(),
            message,
        };
        match writes {
            ResourceWrites::Unit { unit, set, .. } => {
                if !set.is_empty() {
                    systemd::set_property(host, unit, set, false)?;
                }
                // Reset limits: berth's drop-ins go (never a path from
                // elsewhere), and systemd applies the unit's own values.
                let reset: Vec<Knob> = changes.iter().filter(|c| c.reset).map(|c| c.knob).collect();
                if !reset.is_empty() {
                    for knob in reset {
                        let file = systemd::dropin_file(host, unit, knob);
                        match fs::remove_file(&file) {
                            Ok(()) => {}
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            Err(e) => {
                                return Err(EngineError::io(
                                    format!("removing {}", file.display()),
                                    e,
                                ));
                            }
                        }
                    }
                    systemd::remove_if_empty(&systemd::dropin_dir(host, unit));
                    systemd::daemon_reload(host)?;
                }
            }
            ResourceWrites::Scope { set } => {
                if !set.is_empty() {
                    let unit = systemd::machine_unit(host, name).ok_or_else(|| {
                        failed(
                            "is not registered with machined: its scope cannot be changed".into(),
                        )
                    })?;
                    systemd::set_property(host, &unit, set, true)?;
                }
            }
            ResourceWrites::Cgroup { writes, .. } => {
                if !writes.is_empty() {
                    let record = host.state().load(name)?;
                    let launch = record
                        .and_then(|r| r.launch)
                        .and_then(|l| launcher::refresh(host, name, &l))
                        .ok_or_else(|| failed("no longer runs".into()))?;
                    let cgroup_fs = host.cgroup_fs();
                    let cgroup =
                        MachineCgroup::of_berth(&cgroup_fs, host.proc_dir(), launch.pid, name);
                    cgroup
                        .write(cgroupfs::v2_mount(&cgroup_fs).as_deref(), writes)
                        .map_err(|e| failed(format!("setting its resource limits: {e}")))?;
                }
            }
        }
        let store = host.state();
        let mut record = store.load(name)?.ok_or_else(|| {
            EngineError::State(format!("machine {name} has a root but no record"))
        })?;
        record.resources = managed.clone();
        store.save(&record)
    }

    /// Writes (or removes) berth's `DeviceAllow=` drop-in of the machine's
    /// unit and reloads systemd, which applies it to the running unit too.
    pub(super) fn set_device_allow(
        &self,
        machine: &Machine,
        after: Option<&str>,
    ) -> Result<(), EngineError> {
        let host = self.host();
        let dir = systemd::dropin_dir(host, &systemd::unit(&machine.name));
        let path = dir.join(DEVICE_DROPIN);
        match after {
            Some(text) => crate::host::state::write_file_atomic(&path, text.as_bytes())
                .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))?,
            None => {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(EngineError::io(format!("removing {}", path.display()), e));
                    }
                }
                systemd::remove_if_empty(&dir);
            }
        }
        systemd::daemon_reload(host)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use berth_schema::{Device, Launcher, Limit, Machine, Resources};

    use crate::drivers::resources::{Knob, Value};
    use crate::engine::Engine;
    use crate::host::Host;
    use crate::host::fake::FakeHost;
    use crate::model::action::Action;
    use crate::report::Silent;

    fn limits() -> Resources {
        Resources {
            memory_max: Some(Limit::Value(512 << 20)),
            tasks_max: Some(Limit::Value(500)),
            cpu_quota: Some(150),
            ..Resources::default()
        }
    }

    /// The test machine without units (the fake's `systemctl --root`
    /// changes nothing, so they would be planned again and again).
    fn machine(resources: Resources) -> Machine {
        let mut m = crate::testing::web();
        m.units = Default::default();
        m.resources = resources;
        m
    }

    fn engine(systemd: bool) -> (Engine, Arc<FakeHost>) {
        let fake = Arc::new(FakeHost::new(systemd));
        (Engine::on(fake.clone()), fake)
    }

    /// Plans and applies `m`; returns the approved actions.
    fn apply(engine: &Engine, m: &Machine) -> Vec<Action> {
        let plan = engine.plan([m]).expect("plan");
        let approved = &plan.machines[0];
        engine
            .apply_machine(m, approved, false, &Silent)
            .expect("apply");
        approved.actions.clone()
    }

    /// What a plan of `m` would do.
    fn descriptions(engine: &Engine, m: &Machine) -> Vec<String> {
        let plan = engine.plan([m]).expect("plan");
        plan.machines[0]
            .actions
            .iter()
            .map(Action::describe)
            .collect()
    }

    /// A cgroup v2 host on the fake: every controller delegated.
    fn cgroup_v2(fake: &FakeHost) -> std::path::PathBuf {
        let cg = fake.cgroup_fs();
        std::fs::create_dir_all(&cg).unwrap();
        std::fs::write(cg.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
        std::fs::write(cg.join("cgroup.subtree_control"), "").unwrap();
        cg
    }

    #[test]
    fn the_nspawn_launcher_starts_with_the_recorded_limits_and_changes_them_live() {
        let (engine, fake) = engine(false);
        let cg = cgroup_v2(&fake);
        let m = machine(limits());
        let actions = apply(&engine, &m);
        let names: Vec<&str> = actions.iter().map(Action::name).collect();
        assert_eq!(&names[names.len() - 2..], ["set-resources", "start"]);
        let spawned = fake.spawn_limits.lock().unwrap().last().cloned().unwrap();
        let files: Vec<(&str, &str)> = spawned
            .iter()
            .map(|w| (w.file.as_str(), w.value.as_str()))
            .collect();
        assert_eq!(
            files,
            [
                ("memory.max", "536870912"),
                ("cpu.max", "150000 100000"),
                ("pids.max", "500")
            ]
        );
        let record = fake.state().load("web").unwrap().unwrap();
        assert_eq!(record.resources[&Knob::TasksMax], Value::Number(500));

        // The machine's cgroup as the launcher made it: nspawn in `supervisor`.
        let pid = record.launch.unwrap().pid;
        let dir = cg.join("berth-web");
        std::fs::create_dir_all(dir.join("supervisor")).unwrap();
        for (file, value) in files {
            std::fs::write(dir.join(file), format!("{value}\n")).unwrap();
        }
        std::fs::write(
            fake.proc_dir().join(format!("{pid}/cgroup")),
            "0::/berth-web/supervisor\n",
        )
        .unwrap();
        assert_eq!(descriptions(&engine, &m), Vec::<String>::new());

        let mut smaller = m.clone();
        smaller.resources.memory_max = Some(Limit::Value(256 << 20));
        fake.clear();
        let actions = apply(&engine, &smaller);
        assert_eq!(
            actions.iter().map(Action::describe).collect::<Vec<_>>(),
            ["set resources: memory_max 536870912 -> 268435456 (live)"]
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("memory.max")).unwrap(),
            "268435456"
        );
        assert!(fake.lines().is_empty(), "no restart: {:#?}", fake.lines());
        assert_eq!(descriptions(&engine, &smaller), Vec::<String>::new());
    }

    #[test]
    fn the_nspawn_launcher_on_a_systemd_host_gives_machineds_scope_the_recorded_limits() {
        let (engine, fake) = engine(true);
        cgroup_v2(&fake);
        let mut m = machine(limits());
        m.launcher = Launcher::Nspawn;
        apply(&engine, &m);
        let lines = fake.lines();
        let start = lines
            .iter()
            .find(|l| l.starts_with("systemd-nspawn "))
            .unwrap_or_else(|| panic!("{lines:#?}"));
        assert!(
            start.ends_with(
                " --property=MemoryMax=536870912 --property=CPUQuota=150% --property=TasksMax=500"
            ),
            "{start}"
        );
        let spawned = fake.spawn_limits.lock().unwrap().last().cloned().unwrap();
        assert!(spawned.is_empty(), "{spawned:?}");
    }

    #[test]
    fn unit_launchers_keep_limits_and_devices_in_systemds_drop_ins_and_destroy_removes_berths() {
        let (engine, fake) = engine(true);
        cgroup_v2(&fake);
        let mut m = machine(limits());
        m.launcher = Launcher::NspawnUnit;
        // The fake's units never stop: this machine is never started.
        m.state = berth_schema::DesiredState::Stopped;
        m.devices = vec![Device {
            path: "/dev/null".into(),
            access: "rw".into(),
        }];
        let actions = apply(&engine, &m);
        let names: Vec<&str> = actions.iter().map(Action::name).collect();
        assert!(
            names.ends_with(&["write-settings", "set-resources", "set-device-allow"]),
            "{names:?}"
        );
        let dir = fake
            .systemd_control_dir()
            .join("systemd-nspawn@web.service.d");
        let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        assert!(read("50-MemoryMax.conf").contains("MemoryMax=536870912"));
        assert!(read("50-CPUQuota.conf").contains("CPUQuota=150%"));
        assert!(read("50-berth-DeviceAllow.conf").ends_with("DeviceAllow=/dev/null rw\n"));
        let lines = fake.lines();
        assert!(
            lines.contains(
                &"systemctl set-property -- systemd-nspawn@web.service MemoryMax=536870912 \
                  CPUQuota=150% TasksMax=500"
                    .to_owned()
            ),
            "{lines:#?}"
        );
        assert!(lines.contains(&"systemctl daemon-reload".to_owned()));
        assert_eq!(descriptions(&engine, &m), Vec::<String>::new());

        // cpu_quota leaves the spec: berth's drop-in of it goes.
        m.resources.cpu_quota = None;
        m.devices.clear();
        let actions = apply(&engine, &m);
        assert_eq!(
            actions.iter().map(Action::name).collect::<Vec<_>>(),
            ["write-settings", "set-resources", "set-device-allow"]
        );
        assert!(!dir.join("50-CPUQuota.conf").exists());
        assert!(!dir.join("50-berth-DeviceAllow.conf").exists());
        assert_eq!(descriptions(&engine, &m), Vec::<String>::new());

        // destroy removes berth's drop-ins and keeps the others.
        std::fs::write(dir.join("60-mine.conf"), "[Service]\nNice=5\n").unwrap();
        engine.destroy("web", &Silent).unwrap();
        assert!(!dir.join("50-MemoryMax.conf").exists());
        assert!(!dir.join("50-TasksMax.conf").exists());
        assert!(dir.join("60-mine.conf").exists());
    }
}
