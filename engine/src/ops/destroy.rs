//! `berth destroy`: stop and remove a machine berth manages, and nothing else.

use std::fs;

use crate::confined::mounts;
use crate::confined::remove;
use crate::drivers::{launcher, resources};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::model::action::Action;
use crate::planner::{ChangeKind, MachinePlan, Plan};
use crate::report::{Event, Reporter};

impl Engine {
    /// What `destroy` would do to each of `names`, as a plan (`berth plan
    /// --destroy`, `berth destroy --json`): stop it if it runs, then remove
    /// it. A machine berth does not manage is an error; an absent one has no
    /// actions.
    pub fn plan_destroy(&self, names: &[String]) -> Result<Plan, Vec<EngineError>> {
        let mut plans = Vec::new();
        let mut errors = Vec::new();
        for name in names {
            match self.plan_destroy_one(name) {
                Ok(plan) => plans.push(plan),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(Plan::new(plans))
        } else {
            Err(errors)
        }
    }

    /// Refuses, before anything is asked or done, to destroy any of
    /// `names` that `prevent_destroy` protects (see [`Engine::destroy`]).
    pub fn check_destroyable(&self, names: &[String]) -> Result<(), Vec<EngineError>> {
        let store = self.host().state();
        let errors: Vec<EngineError> = names
            .iter()
            .filter_map(|name| {
                store
                    .load(name)
                    .and_then(|record| self.check_prevent_destroy(name, record.as_ref()))
                    .err()
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Refuses to destroy `name` while `prevent_destroy` protects it: the
    /// spec's word when the spec in use (see [`Engine::for_spec`]) declares
    /// the machine, else what berth recorded at the last apply.
    fn check_prevent_destroy(
        &self,
        name: &str,
        record: Option<&crate::host::state::MachineRecord>,
    ) -> Result<(), EngineError> {
        let declared = self
            .spec_machines()
            .and_then(|all| all.iter().find(|m| m.name == name));
        let at = match declared {
            Some(machine) => machine.prevent_destroy.as_ref().map(ToString::to_string),
            None => record.filter(|r| r.prevent_destroy).map(|_| {
                format!(
                    "recorded at the last apply in {}; apply the spec without it, or give \
                     that spec with -f",
                    self.host().paths().record_file(name).display()
                )
            }),
        };
        match at {
            Some(at) => Err(EngineError::PreventDestroy {
                machine: name.to_owned(),
                at,
            }),
            None => Ok(()),
        }
    }

    fn plan_destroy_one(&self, name: &str) -> Result<MachinePlan, EngineError> {
        let host = self.host();
        let paths = host.paths();
        let record = host.state().load(name)?;
        self.check_prevent_destroy(name, record.as_ref())?;
        let root = paths.machine_root(name);
        let exists = fs::symlink_metadata(&root).is_ok();
        let Some(record) = record else {
            if exists {
                return Err(EngineError::Refused {
                    machine: name.to_owned(),
                    message: format!(
                        "{} was not created by berth (no record in {}); berth never removes a machine it does not manage",
                        root.display(),
                        paths.records_dir().display()
                    ),
                });
            }
            return Ok(MachinePlan {
                reason: None,
                network: None,
                name: name.to_owned(),
                change: ChangeKind::Absent,
                launcher: berth_schema::Launcher::Nspawn,
                actions: Vec::new(),
                warnings: Vec::new(),
                observed: Default::default(),
            });
        };
        let running = record
            .launch
            .as_ref()
            .and_then(|launch| launcher::refresh(host, name, launch));
        let launcher = running
            .as_ref()
            .map_or(berth_schema::Launcher::Nspawn, |l| l.launcher);
        let mut actions = Vec::new();
        if let Some(launch) = &running {
            actions.push(Action::Stop {
                launcher: launch.launcher,
            });
        }
        actions.push(Action::Destroy {
            root: root.display().to_string(),
            reason: None,
        });
        Ok(MachinePlan {
            reason: None,
            network: None,
            name: name.to_owned(),
            change: ChangeKind::Destroy,
            launcher,
            actions,
            warnings: Vec::new(),
            observed: Default::default(),
        })
    }

    /// Stops and removes a machine berth manages. Refuses machines that
    /// `prevent_destroy` protects, machines berth did not create, a machine dir that is a symlink, and a root with anything
    /// mounted inside; never crosses into another filesystem.
    pub fn destroy(&self, name: &str, reporter: &dyn Reporter) -> Result<bool, EngineError> {
        let paths = &self.host.paths();
        let refuse = |message: String| EngineError::Refused {
            machine: name.to_owned(),
            message,
        };
        let store = self.host.state();
        let root = paths.machine_root(name);
        let record = store.load(name)?;
        self.check_prevent_destroy(name, record.as_ref())?;
        let meta = fs::symlink_metadata(&root);
        if record.is_none() {
            return match meta {
                Ok(_) => Err(refuse(format!(
                    "{} was not created by berth (no record in {}); berth never removes a machine it does not manage",
                    root.display(),
                    paths.records_dir().display()
                ))),
                Err(_) => Ok(false),
            };
        }
        if let Ok(meta) = &meta
            && meta.file_type().is_symlink()
        {
            return Err(refuse(format!("{} is a symlink", root.display())));
        }
        if record
            .as_ref()
            .and_then(|r| r.launch.as_ref())
            .and_then(|launch| launcher::refresh(self.host(), name, launch))
            .is_some()
        {
            reporter.report(Event::Note {
                machine: name,
                message: "stopping",
            });
            self.stop(name)?;
        }
        // A guest whose systemd-nspawn was killed outlives it (in the
        // machine's cgroup, or in machined's scope on a systemd host): it
        // must not keep running on a removed root.
        if launcher::kill_leftover_guest(self.host(), name)? && !self.host.booted_with_systemd() {
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        // Its NAT rule (its links went when it stopped).
        crate::drivers::network::apply::teardown(self.host(), name)?;
        // An overlay root: unmounted, its layers removed (only this
        // machine's own overlay; anything else mounted there is refused).
        self.discard_overlay(name)?;
        if meta.is_ok() {
            let inside = mounts::mounts_under(&root)
                .map_err(|e| EngineError::io("reading /proc/self/mountinfo", e))?;
            if !inside.is_empty() {
                let list: Vec<String> = inside.iter().map(|p| p.display().to_string()).collect();
                return Err(refuse(format!(
                    "something is mounted inside the root: {}; unmount it first",
                    list.join(", ")
                )));
            }
            reporter.report(Event::Note {
                machine: name,
                message: "removing the root",
            });
            remove::remove_tree(&root)
                .map_err(|e| EngineError::State(format!("removing {}: {e}", root.display())))?;
        }
        // Its snapshots go with it.
        let snapshots = crate::drivers::snapshot::list(paths, name)?.len();
        if snapshots > 0 {
            let message = format!(
                "removing its {snapshots} snapshot{}",
                if snapshots == 1 { "" } else { "s" }
            );
            reporter.report(Event::Note {
                machine: name,
                message: &message,
            });
        }
        crate::drivers::snapshot::delete_all(paths, name)?;
        // Boot integration and the settings file berth wrote go with the machine.
        if self.host.booted_with_systemd()
            && launcher::launcher_for(berth_schema::Launcher::NspawnUnit)
                .autostart(self.host(), name)?
                .unwrap_or(false)
        {
            launcher::launcher_for(berth_schema::Launcher::NspawnUnit).set_autostart(
                self.host(),
                name,
                false,
            )?;
        }
        let settings = paths.settings_file(name);
        if fs::read_to_string(&settings)
            .is_ok_and(|text| text.starts_with(crate::drivers::settings::HEADER))
        {
            fs::remove_file(&settings)
                .map_err(|e| EngineError::io(format!("removing {}", settings.display()), e))?;
        }
        // berth's drop-ins of the machine's unit (the limits it set, its
        // DeviceAllow= drop-in), and no other.
        if self.host.booted_with_systemd() {
            let unit = resources::systemd::unit(name);
            let knobs = record
                .as_ref()
                .map(|r| r.resources.keys().copied().collect::<Vec<_>>())
                .unwrap_or_default();
            if resources::systemd::remove_dropins(self.host(), &unit, knobs)? {
                resources::systemd::daemon_reload(self.host())?;
            }
        }
        // Its credential values on the host and berth's drop-in passing them.
        crate::drivers::credentials::teardown(self.host(), name)?;
        self.host.remove_cgroup(name);
        store.remove(name)?;
        for log in [
            paths.console_log(name),
            paths.bootstrap_log(name),
            paths.machine_log(name),
        ] {
            let _ = fs::remove_file(log);
        }
        Ok(true)
    }
}
