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
mod orphan;
mod unit;

use std::thread;
use std::time::{Duration, Instant};

use berth_schema::{Launcher, Machine};

use crate::error::EngineError;
use crate::host::state::LaunchRecord;
use crate::host::{Cmd, Host, HostFacts, log_tail, process};

pub use detect::{NspawnProcesses, Running, find_nspawn};
pub use nspawn::Nspawn;
pub use orphan::kill_leftover_guest;
pub use unit::{UnitLauncher, unit_name};

/// The program every launcher ends up running.
pub(crate) const NSPAWN: &str = "systemd-nspawn";

/// Starts, stops and boot-enables machines one way.
pub trait MachineLauncher: Sync {
    /// Which launcher this is.
    fn kind(&self) -> Launcher;

    /// Starts `machine`; returns once its systemd-nspawn process runs.
    fn start(&self, host: &dyn Host, machine: &Machine) -> Result<LaunchRecord, EngineError>;

    /// Asks the machine to power off cleanly (it is then waited for).
    fn request_stop(
        &self,
        host: &dyn Host,
        name: &str,
        launch: &LaunchRecord,
    ) -> Result<(), EngineError>;

    /// Kills the machine after a clean poweroff timed out.
    fn kill(&self, host: &dyn Host, name: &str, launch: &LaunchRecord) -> Result<(), EngineError>;

    /// Whether the machine starts at host boot; None: no boot integration.
    fn autostart(&self, host: &dyn Host, name: &str) -> Result<Option<bool>, EngineError>;

    /// Makes the machine start (or not) at host boot.
    fn set_autostart(&self, host: &dyn Host, name: &str, enabled: bool) -> Result<(), EngineError>;
}

/// The launcher implementation for a concrete kind (not `auto`).
pub fn launcher_for(kind: Launcher) -> &'static dyn MachineLauncher {
    match kind {
        Launcher::Machinectl => &unit::MACHINECTL,
        Launcher::NspawnUnit => &unit::NSPAWN_UNIT,
        Launcher::Nspawn | Launcher::Auto => &Nspawn,
    }
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
pub fn is_running(host: &dyn Host, launch: &LaunchRecord) -> bool {
    process::is_alive(host, launch.pid, launch.start_time, NSPAWN)
}

/// The live launch of a machine berth started: the recorded process if it
/// is alive; for the unit launchers, else the process now running
/// systemd-nspawn@NAME.service (the same unit, restarted since, e.g. by
/// autostart at host boot); None when the machine no longer runs that way.
pub fn refresh(host: &dyn Host, name: &str, launch: &LaunchRecord) -> Option<LaunchRecord> {
    if is_running(host, launch) {
        return Some(launch.clone());
    }
    if launch.launcher == Launcher::Nspawn || !host.booted_with_systemd() {
        return None;
    }
    let pid = unit::unit_main_pid(host, name)?;
    let start_time = process::start_time(host, pid)?;
    let live = LaunchRecord {
        pid,
        start_time,
        ..launch.clone()
    };
    is_running(host, &live).then_some(live)
}

/// The guest's init process (PID 1 inside the machine).
pub fn leader(host: &dyn Host, launch: &LaunchRecord) -> Option<i32> {
    process::namespace_init_child(host, launch.pid)
}

/// The guest's `systemctl is-system-running`: through `systemctl -M NAME`
/// where machined runs, through nsenter otherwise.
pub fn system_state(host: &dyn Host, name: &str, launch: &LaunchRecord) -> Option<String> {
    if host.booted_with_systemd() {
        let out = host
            .run(&Cmd::new(["systemctl", "-M", name, "is-system-running"]).quiet())
            .ok()?;
        let text = out.stdout_text();
        if !text.is_empty() {
            return Some(text);
        }
    }
    host.guest_output(leader(host, launch)?, &["systemctl", "is-system-running"])
}

/// Waits until the guest's systemd reports `running` or `degraded`.
pub fn wait_booted(
    host: &dyn Host,
    machine: &str,
    launch: &LaunchRecord,
    timeout: Duration,
) -> Result<String, EngineError> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("starting");
    loop {
        if !is_running(host, launch) {
            return Err(EngineError::Launch {
                machine: machine.to_owned(),
                message: format!(
                    "{NSPAWN} exited while booting:\n{}",
                    log_tail(&host.paths().console_log(machine), 15)
                ),
            });
        }
        if let Some(state) = system_state(host, machine, launch) {
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
pub fn stop(
    host: &dyn Host,
    name: &str,
    launch: &LaunchRecord,
    timeout: Duration,
) -> Result<(), EngineError> {
    if !is_running(host, launch) {
        return Ok(());
    }
    let launcher = launcher_for(launch.launcher);
    launcher.request_stop(host, name, launch)?;
    if wait_gone(host, launch, timeout) {
        host.remove_cgroup(name);
        return Ok(());
    }
    launcher.kill(host, name, launch)?;
    if wait_gone(host, launch, Duration::from_secs(15)) {
        host.remove_cgroup(name);
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

fn wait_gone(host: &dyn Host, launch: &LaunchRecord, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        host.reap(launch.pid);
        if !is_running(host, launch) {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A launch record for a freshly started systemd-nspawn process.
pub(crate) fn record(
    host: &dyn Host,
    kind: Launcher,
    pid: i32,
    machine: &Machine,
) -> Result<LaunchRecord, EngineError> {
    let start_time = process::start_time(host, pid).ok_or_else(|| EngineError::Launch {
        machine: machine.name.clone(),
        message: format!("{NSPAWN} (pid {pid}) exited at once"),
    })?;
    Ok(LaunchRecord {
        launcher: kind,
        pid,
        start_time,
        settings: Some(crate::drivers::settings::fingerprint(
            machine,
            crate::drivers::network::mode_on(machine, kind, host.facts()),
        )),
    })
}
