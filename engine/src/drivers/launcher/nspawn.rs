//! The `nspawn` launcher: a plain `systemd-nspawn --boot` process that berth
//! starts detached in its own session and stops with SIGTERM (which
//! systemd-nspawn turns into a clean poweroff of the guest). It works on
//! hosts without systemd as PID 1 and has no boot integration.

use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use berth_schema::{Launcher, Machine};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{HostFacts, MachineLauncher, NSPAWN};
use crate::error::EngineError;
use crate::host::which;
use crate::drivers::settings;
use crate::host::state::LaunchRecord;

/// The plain systemd-nspawn launcher.
#[derive(Debug, Clone, Copy)]
pub struct Nspawn;

impl Nspawn {
    /// The command line that boots `machine`: its settings as options, the
    /// settings file ignored (`--settings=no`) so exactly the spec applies.
    pub fn command(machine: &Machine, host: &HostFacts) -> Vec<String> {
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
        cmd.extend(settings::command_line(machine));
        if !host.booted_with_systemd {
            // No machined and no service manager to register with.
            cmd.push("--register=no".to_owned());
            cmd.push("--keep-unit".to_owned());
        }
        cmd
    }
}

impl MachineLauncher for Nspawn {
    fn kind(&self) -> Launcher {
        Launcher::Nspawn
    }

    fn start(&self, machine: &Machine, host: &HostFacts) -> Result<LaunchRecord, EngineError> {
        let name = &machine.name;
        if which(NSPAWN).is_none() {
            return Err(EngineError::MissingTool {
                tool: NSPAWN.to_owned(),
                package: "systemd-container".to_owned(),
            });
        }
        let log_path = host.paths.console_log(name);
        if let Some(dir) = log_path.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| EngineError::io(format!("opening {}", log_path.display()), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| EngineError::io("duplicating the log file", e))?;
        let argv = Self::command(machine, host);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        // Without a service manager, give the machine its own cgroup (see
        // cgroup.rs). Processes still in it belong to a guest whose
        // systemd-nspawn was killed: two inits must never share a root.
        let procs = if host.booted_with_systemd {
            Vec::new()
        } else {
            if super::cgroup::kill_all(name) > 0 {
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            super::cgroup::procs_files(&super::cgroup::create(name))
        };
        // SAFETY: setsid and the cgroup join (open/write/close) are
        // async-signal-safe. setsid detaches the machine from berth's
        // session so a terminal hangup or Ctrl-C does not kill it.
        unsafe {
            cmd.pre_exec(move || {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                super::cgroup::join(&procs)
            });
        }
        let child = cmd.spawn().map_err(|e| EngineError::Launch {
            machine: name.clone(),
            message: format!("starting {NSPAWN}: {e}"),
        })?;
        let pid = i32::try_from(child.id()).map_err(|_| EngineError::Launch {
            machine: name.clone(),
            message: "pid out of range".into(),
        })?;
        // The Child handle is dropped without waiting: the machine outlives berth.
        drop(child);
        super::record(Launcher::Nspawn, pid, machine)
    }

    fn request_stop(&self, _name: &str, launch: &LaunchRecord) -> Result<(), EngineError> {
        let _ = kill(Pid::from_raw(launch.pid), Signal::SIGTERM);
        Ok(())
    }

    fn kill(&self, name: &str, launch: &LaunchRecord) -> Result<(), EngineError> {
        let _ = kill(Pid::from_raw(launch.pid), Signal::SIGKILL);
        // The guest would outlive its killed supervisor: kill its cgroup too.
        super::cgroup::kill_all(name);
        Ok(())
    }

    fn autostart(&self, _name: &str) -> Result<Option<bool>, EngineError> {
        Ok(None)
    }

    fn set_autostart(&self, name: &str, _enabled: bool) -> Result<(), EngineError> {
        Err(EngineError::Plan {
            machine: name.to_owned(),
            message: "autostart: the nspawn launcher has no boot integration; \
                      use launcher: machinectl or nspawn-unit"
                .into(),
        })
    }
}
