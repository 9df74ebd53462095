//! Launchers: how a machine is started, stopped and inspected. berth
//! records which launcher started a machine and always controls it through
//! that one ("do not mix the machinectl and systemd-nspawn@ ways").
//!
//! Every launcher ends up with a systemd-nspawn process supervising the
//! machine; berth records that process (pid and start time), so whether a
//! machine runs is one read of `/proc`, the same for every launcher.

pub(crate) mod cgroup;
pub(crate) mod detect;
mod nspawn;
mod unit;

use std::thread;
use std::time::{Duration, Instant};

use berth_schema::{Launcher, Machine};

use crate::error::EngineError;
use crate::host;
use crate::host::paths::{self, Paths};
use crate::host::process;
use crate::host::state::LaunchRecord;

pub use detect::{NspawnProcesses, Running, find_nspawn};
pub use nspawn::Nspawn;
pub use unit::UnitLauncher;

/// The program every launcher ends up running.
pub(crate) const NSPAWN: &str = "systemd-nspawn";

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

/// Starts, stops and boot-enables machines one way.
pub trait MachineLauncher: Sync {
    /// Which launcher this is.
    fn kind(&self) -> Launcher;

    /// Starts `machine`; returns once its systemd-nspawn process runs.
    fn start(&self, machine: &Machine, host: &HostFacts) -> Result<LaunchRecord, EngineError>;

    /// Asks the machine to power off cleanly (it is then waited for).
    fn request_stop(&self, name: &str, launch: &LaunchRecord) -> Result<(), EngineError>;

    /// Kills the machine after a clean poweroff timed out.
    fn kill(&self, name: &str, launch: &LaunchRecord) -> Result<(), EngineError>;

    /// Whether the machine starts at host boot; None: no boot integration.
    fn autostart(&self, name: &str) -> Result<Option<bool>, EngineError>;

    /// Makes the machine start (or not) at host boot.
    fn set_autostart(&self, name: &str, enabled: bool) -> Result<(), EngineError>;
}

/// The launcher implementation for a concrete kind (not `auto`).
pub fn launcher_for(kind: Launcher) -> &'static dyn MachineLauncher {
    match kind {
        Launcher::Machinectl => &unit::MACHINECTL,
        Launcher::NspawnUnit => &unit::NSPAWN_UNIT,
        Launcher::Nspawn | Launcher::Auto => &Nspawn,
    }
}

/// The launcher kind named in a record (`nspawn`, `machinectl`, `nspawn-unit`).
pub fn parse_kind(name: &str) -> Option<Launcher> {
    [Launcher::Nspawn, Launcher::Machinectl, Launcher::NspawnUnit]
        .into_iter()
        .find(|k| k.as_str() == name)
}

/// The concrete launcher for a spec's `launcher:` on this host: `auto` is
/// machinectl on hosts booted with systemd and nspawn elsewhere.
pub fn resolve(wanted: Launcher, host: &HostFacts) -> Result<Launcher, String> {
    match wanted {
        Launcher::Auto if host.booted_with_systemd => Ok(Launcher::Machinectl),
        Launcher::Auto | Launcher::Nspawn => Ok(Launcher::Nspawn),
        other if host.booted_with_systemd => Ok(other),
        other => Err(format!(
            "launcher: {other} needs a host booted with systemd (this one is not: no /run/systemd/system); \
             use launcher: nspawn or auto"
        )),
    }
}

/// Whether the recorded systemd-nspawn process is alive.
pub fn is_running(launch: &LaunchRecord) -> bool {
    process::is_alive(launch.pid, launch.start_time, NSPAWN)
}

/// The live launch of a machine berth started: the recorded process if it
/// is alive; for the unit launchers, else the process now running
/// systemd-nspawn@NAME.service (the same unit, restarted since, e.g. by
/// autostart at host boot); None when the machine no longer runs that way.
pub fn refresh(name: &str, launch: &LaunchRecord) -> Option<LaunchRecord> {
    if is_running(launch) {
        return Some(launch.clone());
    }
    let kind = parse_kind(&launch.launcher)?;
    if kind == Launcher::Nspawn || !paths::host_booted_with_systemd() {
        return None;
    }
    let pid = unit::unit_main_pid(name)?;
    let start_time = process::start_time(pid)?;
    let live = LaunchRecord {
        pid,
        start_time,
        ..launch.clone()
    };
    is_running(&live).then_some(live)
}

/// The guest's init process (PID 1 inside the machine).
pub fn leader(launch: &LaunchRecord) -> Option<i32> {
    process::namespace_init_child(launch.pid)
}

/// The guest's `systemctl is-system-running`: through `systemctl -M NAME`
/// where machined runs, through nsenter otherwise.
pub fn system_state(name: &str, launch: &LaunchRecord, host: &HostFacts) -> Option<String> {
    if host.booted_with_systemd {
        let out = std::process::Command::new("systemctl")
            .args(["-M", name, "is-system-running"])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !text.is_empty() {
            return Some(text);
        }
    }
    host::guest_command(leader(launch)?, &["systemctl", "is-system-running"])
}

/// Waits until the guest's systemd reports `running` or `degraded`.
pub fn wait_booted(
    machine: &str,
    launch: &LaunchRecord,
    host: &HostFacts,
    timeout: Duration,
) -> Result<String, EngineError> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("starting");
    loop {
        if !is_running(launch) {
            return Err(EngineError::Launch {
                machine: machine.to_owned(),
                message: format!(
                    "{NSPAWN} exited while booting:\n{}",
                    host::log_tail(&host.paths.console_log(machine), 15)
                ),
            });
        }
        if let Some(state) = system_state(machine, launch, host) {
            if state == "running" || state == "degraded" {
                return Ok(state);
            }
            last = state;
        }
        if Instant::now() >= deadline {
            return Err(EngineError::Launch {
                machine: machine.to_owned(),
                message: format!(
                    "did not finish booting within {}s (system state: {last})",
                    timeout.as_secs()
                ),
            });
        }
        thread::sleep(Duration::from_millis(250));
    }
}

/// Stops a machine through the launcher that started it: a clean poweroff,
/// then a kill after `timeout`.
pub fn stop(name: &str, launch: &LaunchRecord, timeout: Duration) -> Result<(), EngineError> {
    if !is_running(launch) {
        return Ok(());
    }
    let launcher = launcher_for(parse_kind(&launch.launcher).unwrap_or(Launcher::Nspawn));
    launcher.request_stop(name, launch)?;
    if wait_gone(launch, timeout) {
        cgroup::remove(name);
        return Ok(());
    }
    launcher.kill(name, launch)?;
    if wait_gone(launch, Duration::from_secs(15)) {
        cgroup::remove(name);
        Ok(())
    } else {
        Err(EngineError::Launch {
            machine: name.to_owned(),
            message: format!(
                "{NSPAWN} (pid {}) did not exit after being killed",
                launch.pid
            ),
        })
    }
}

fn wait_gone(launch: &LaunchRecord, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        process::reap(launch.pid);
        if !is_running(launch) {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A launch record for a freshly started systemd-nspawn process.
pub(crate) fn record(
    kind: Launcher,
    pid: i32,
    machine: &Machine,
) -> Result<LaunchRecord, EngineError> {
    let start_time = process::start_time(pid).ok_or_else(|| EngineError::Launch {
        machine: machine.name.clone(),
        message: format!("{NSPAWN} (pid {pid}) exited at once"),
    })?;
    Ok(LaunchRecord {
        launcher: kind.as_str().to_owned(),
        pid,
        start_time,
        settings: Some(crate::drivers::settings::fingerprint(machine)),
    })
}
