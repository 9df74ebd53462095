//! The `machinectl` and `nspawn-unit` launchers. Both run the machine as
//! `systemd-nspawn@NAME.service` (which reads `/etc/systemd/nspawn/NAME.nspawn`);
//! they differ in the tool berth drives, `machinectl start|stop|enable` or
//! `systemctl start|stop|enable systemd-nspawn@NAME.service`, exactly as the
//! article does by hand.

use berth_schema::{Launcher, Machine};

use super::MachineLauncher;
use crate::error::EngineError;
use crate::host::state::LaunchRecord;
use crate::host::{Cmd, Host};

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

    fn run(&self, host: &dyn Host, verb: &str, name: &str) -> Result<(), EngineError> {
        let cmd = Cmd::new(self.command(verb, name));
        let out = host.run(&cmd)?;
        if out.success() {
            Ok(())
        } else {
            Err(EngineError::Command {
                what: cmd.display(),
                output: out.stderr_text(),
                status: out.status,
            })
        }
    }
}

/// The main pid of the machine's unit (its systemd-nspawn), if it runs.
pub fn unit_main_pid(host: &dyn Host, name: &str) -> Option<i32> {
    let out = host
        .run(
            &Cmd::new([
                "systemctl".to_owned(),
                "show".into(),
                "--property=MainPID".into(),
                "--value".into(),
                unit_name(name),
            ])
            .quiet(),
        )
        .ok()?;
    let pid: i32 = out.stdout_text().parse().ok()?;
    (pid > 0).then_some(pid)
}

impl MachineLauncher for UnitLauncher {
    fn kind(&self) -> Launcher {
        self.kind
    }

    fn start(&self, host: &dyn Host, machine: &Machine) -> Result<LaunchRecord, EngineError> {
        self.run(host, "start", &machine.name)?;
        let pid = unit_main_pid(host, &machine.name).ok_or_else(|| EngineError::Launch {
            machine: machine.name.clone(),
            message: format!(
                "{} is not running after start; see `journalctl -u {}`",
                unit_name(&machine.name),
                unit_name(&machine.name)
            ),
        })?;
        super::record(host, self.kind, pid, machine)
    }

    fn request_stop(
        &self,
        host: &dyn Host,
        name: &str,
        _launch: &LaunchRecord,
    ) -> Result<(), EngineError> {
        self.run(host, "stop", name)
    }

    fn kill(&self, host: &dyn Host, name: &str, _launch: &LaunchRecord) -> Result<(), EngineError> {
        self.run(host, "kill", name)
    }

    fn autostart(&self, host: &dyn Host, name: &str) -> Result<Option<bool>, EngineError> {
        let out = host.run(
            &Cmd::new(["systemctl".to_owned(), "is-enabled".into(), unit_name(name)]).quiet(),
        )?;
        Ok(Some(out.stdout_text() == "enabled"))
    }

    fn set_autostart(&self, host: &dyn Host, name: &str, enabled: bool) -> Result<(), EngineError> {
        self.run(host, if enabled { "enable" } else { "disable" }, name)
    }
}
