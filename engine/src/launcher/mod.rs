//! Launchers: how a machine is started, stopped and inspected. berth
//! records which launcher started a machine and always controls it through
//! that one ("do not mix the machinectl and systemd-nspawn@ ways").

mod nspawn;

use berth_schema::Launcher;

use crate::observe::RunState;
use crate::paths::{self, Paths};
use crate::state::MachineRecord;

pub use nspawn::Nspawn;

/// Facts about the host that planning depends on.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// berth's directories.
    pub paths: Paths,
    /// Whether the host was booted with systemd as PID 1.
    pub booted_with_systemd: bool,
    /// Whether planning checks that bootstrap tools are installed (off in
    /// unit tests of the planner, which must not depend on the host).
    pub check_tools: bool,
}

impl HostFacts {
    /// The facts of this host.
    pub fn detect(paths: Paths) -> Self {
        HostFacts {
            paths,
            booted_with_systemd: paths::host_booted_with_systemd(),
            check_tools: true,
        }
    }
}

/// The concrete launcher for a spec's `launcher:` on this host.
pub fn resolve(wanted: Launcher, host: &HostFacts) -> Result<Launcher, String> {
    let concrete = match wanted {
        Launcher::Auto if host.booted_with_systemd => Launcher::Machinectl,
        Launcher::Auto => Launcher::Nspawn,
        other => other,
    };
    match concrete {
        Launcher::Nspawn => Ok(Launcher::Nspawn),
        other => Err(format!(
            "launcher: {other} is not available in this version of berth{}; use launcher: nspawn",
            if wanted == Launcher::Auto {
                " (auto picks machinectl on hosts booted with systemd)"
            } else {
                ""
            }
        )),
    }
}

/// Whether the machine berth recorded as started still runs.
pub fn run_state(record: Option<&MachineRecord>) -> RunState {
    match record.and_then(|r| r.launch.as_ref()) {
        Some(launch) if launch.launcher == Launcher::Nspawn.as_str() => {
            if Nspawn::is_running(launch) {
                RunState::Running {
                    launcher: launch.launcher.clone(),
                    pid: launch.pid,
                }
            } else {
                RunState::Stopped
            }
        }
        _ => RunState::Stopped,
    }
}
