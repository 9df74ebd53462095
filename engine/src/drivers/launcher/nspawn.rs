//! The `nspawn` launcher: a plain `systemd-nspawn --boot` process that berth
//! starts detached in its own session and stops with SIGTERM (which
//! systemd-nspawn turns into a clean poweroff of the guest). It works on
//! hosts without systemd as PID 1 and has no boot integration.

use berth_schema::{Launcher, Machine};
use nix::sys::signal::Signal;

use super::{MachineLauncher, NSPAWN};
use crate::drivers::{network, settings};
use crate::error::EngineError;
use crate::host::state::LaunchRecord;
use crate::host::{Cmd, Detached, Host, HostFacts};

/// The plain systemd-nspawn launcher.
#[derive(Debug, Clone, Copy)]
pub struct Nspawn;

impl Nspawn {
    /// The command line that boots `machine`: its settings as options, the
    /// settings file ignored (`--settings=no`) so exactly the spec applies.
    pub fn command(machine: &Machine, host: &HostFacts) -> Result<Vec<String>, String> {
        let name = &machine.name;
        let mut cmd = vec![
            NSPAWN.to_owned(),
            "--quiet".to_owned(),
            "--boot".to_owned(),
            format!("--directory={}", host.paths.machine_root(name).display()),
            format!("--machine={name}"),
            "--console=read-only".to_owned(),
            "--settings=no".to_owned(),
        ];
        let mode = network::mode_on(machine, Launcher::Nspawn, host);
        cmd.extend(settings::command_line(machine, mode)?);
        if !host.booted_with_systemd {
            // No machined and no service manager to register with.
            cmd.push("--register=no".to_owned());
            cmd.push("--keep-unit".to_owned());
        }
        Ok(cmd)
    }
}

impl MachineLauncher for Nspawn {
    fn kind(&self) -> Launcher {
        Launcher::Nspawn
    }

    fn start(&self, host: &dyn Host, machine: &Machine) -> Result<LaunchRecord, EngineError> {
        let name = &machine.name;
        if host.which(NSPAWN).is_none() {
            return Err(EngineError::MissingTool {
                tool: NSPAWN.to_owned(),
                package: "systemd-container".to_owned(),
            });
        }
        // A guest whose systemd-nspawn was killed may still run on the
        // root (in berth's cgroup for the machine, or in machined's scope
        // on a systemd host; see orphan.rs): two inits must never share a
        // root, so it goes first.
        if super::kill_leftover_guest(host, name)? && !host.booted_with_systemd() {
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        // Without a service manager, give the machine its own cgroup (see
        // cgroup.rs).
        let cgroup = (!host.booted_with_systemd()).then(|| name.clone());
        let mut cmd =
            Self::command(machine, host.facts()).map_err(|message| EngineError::Launch {
                machine: name.clone(),
                message,
            })?;
        // The limits berth's record keeps: properties of machined's scope,
        // or writes into the machine's own cgroup before it joins it.
        let (properties, limits) = crate::drivers::resources::start::limits(host, name)?;
        cmd.extend(properties);
        // Credentials: read by systemd-nspawn from berth's directory for
        // the machine (paths only on the command line, never a value).
        cmd.extend(crate::drivers::credentials::nspawn_options(host, machine));
        let pid = host
            .spawn_detached(&Detached {
                cmd: Cmd::new(cmd),
                log: host.paths().console_log(name),
                cgroup,
                limits,
            })
            .map_err(|e| EngineError::Launch {
                machine: name.clone(),
                message: format!("starting {NSPAWN}: {e}"),
            })?;
        super::record(host, Launcher::Nspawn, pid, machine)
    }

    fn request_stop(
        &self,
        host: &dyn Host,
        _name: &str,
        launch: &LaunchRecord,
    ) -> Result<(), EngineError> {
        host.signal(launch.pid, Signal::SIGTERM);
        Ok(())
    }

    fn kill(&self, host: &dyn Host, name: &str, launch: &LaunchRecord) -> Result<(), EngineError> {
        host.signal(launch.pid, Signal::SIGKILL);
        // The guest would outlive its killed supervisor: once that is gone,
        // kill what is left of the guest too.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while super::is_running(host, launch) && std::time::Instant::now() < deadline {
            host.reap(launch.pid);
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        super::kill_leftover_guest(host, name)?;
        Ok(())
    }

    fn autostart(&self, _host: &dyn Host, _name: &str) -> Result<Option<bool>, EngineError> {
        Ok(None)
    }

    fn set_autostart(
        &self,
        _host: &dyn Host,
        name: &str,
        _enabled: bool,
    ) -> Result<(), EngineError> {
        Err(EngineError::Plan {
            machine: name.to_owned(),
            message: "autostart: the nspawn launcher has no boot integration; \
                      use launcher: machinectl or nspawn-unit"
                .into(),
        })
    }
}
