//! The `machinectl` and `nspawn-unit` launchers. Both run the machine as
//! `systemd-nspawn@NAME.service` (which reads `/etc/systemd/nspawn/NAME.nspawn`);
//! they differ in the tool berth drives, `machinectl start|stop|enable` or
//! `systemctl start|stop|enable systemd-nspawn@NAME.service`, exactly as the
//! article does by hand.

use std::process::{Command, Stdio};

use berth_schema::{Launcher, Machine};

use super::{HostFacts, MachineLauncher};
use crate::error::EngineError;
use crate::host::state::LaunchRecord;

/// A launcher over systemd-nspawn@.service.
#[derive(Debug, Clone, Copy)]
pub struct UnitLauncher {
    kind: Launcher,
}

/// `machinectl start|poweroff|terminate|enable|disable NAME`.
pub(crate) const MACHINECTL: UnitLauncher = UnitLauncher {
    kind: Launcher::Machinectl,
};

/// `systemctl start|stop|kill|enable|disable systemd-nspawn@NAME.service`.
pub(crate) const NSPAWN_UNIT: UnitLauncher = UnitLauncher {
    kind: Launcher::NspawnUnit,
};

/// The unit that runs machine `name`.
pub fn unit_name(name: &str) -> String {
    format!("systemd-nspawn@{name}.service")
}

impl UnitLauncher {
    /// The command for `verb` on machine `name` with this launcher's tool.
    fn command(&self, verb: &str, name: &str) -> Vec<String> {
        match self.kind {
            Launcher::Machinectl => {
                let verb = match verb {
                    "stop" => "poweroff",
                    "kill" => "terminate",
                    other => other,
                };
                vec!["machinectl".into(), verb.into(), name.into()]
            }
            _ => {
                let mut cmd = vec!["systemctl".to_owned(), verb.to_owned()];
                if verb == "kill" {
                    cmd.push("--signal=SIGKILL".to_owned());
                }
                cmd.push(unit_name(name));
                cmd
            }
        }
    }

    fn run(&self, verb: &str, name: &str) -> Result<(), EngineError> {
        let argv = self.command(verb, name);
        let output = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| EngineError::io(format!("running {}", argv.join(" ")), e))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(EngineError::Command {
                what: argv.join(" "),
                status: output.status.to_string(),
                output: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }
}

/// The main pid of the machine's unit (its systemd-nspawn), if it runs.
pub fn unit_main_pid(name: &str) -> Option<i32> {
    let out = Command::new("systemctl")
        .args(["show", "--property=MainPID", "--value", &unit_name(name)])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let pid: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    (pid > 0).then_some(pid)
}

impl MachineLauncher for UnitLauncher {
    fn kind(&self) -> Launcher {
        self.kind
    }

    fn start(&self, machine: &Machine, _host: &HostFacts) -> Result<LaunchRecord, EngineError> {
        self.run("start", &machine.name)?;
        let pid = unit_main_pid(&machine.name).ok_or_else(|| EngineError::Launch {
            machine: machine.name.clone(),
            message: format!(
                "{} is not running after start; see `journalctl -u {}`",
                unit_name(&machine.name),
                unit_name(&machine.name)
            ),
        })?;
        super::record(self.kind, pid, machine)
    }

    fn request_stop(&self, name: &str, _launch: &LaunchRecord) -> Result<(), EngineError> {
        self.run("stop", name)
    }

    fn kill(&self, name: &str, _launch: &LaunchRecord) -> Result<(), EngineError> {
        self.run("kill", name)
    }

    fn autostart(&self, name: &str) -> Result<Option<bool>, EngineError> {
        let out = Command::new("systemctl")
            .args(["is-enabled", &unit_name(name)])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|e| EngineError::io("running systemctl is-enabled", e))?;
        Ok(Some(
            String::from_utf8_lossy(&out.stdout).trim() == "enabled",
        ))
    }

    fn set_autostart(&self, name: &str, enabled: bool) -> Result<(), EngineError> {
        self.run(if enabled { "enable" } else { "disable" }, name)
    }
}
