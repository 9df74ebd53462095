//! The `nspawn` launcher: a plain `systemd-nspawn --boot` process that berth
//! starts detached in its own session and stops with SIGTERM (which
//! systemd-nspawn turns into a clean poweroff of the guest).

use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::EngineError;
use crate::host::{guest_command, log_tail, which};
use crate::launcher::HostFacts;
use crate::process;
use crate::state::LaunchRecord;

const PROGRAM: &str = "systemd-nspawn";

/// The plain systemd-nspawn launcher.
#[derive(Debug, Clone, Copy)]
pub struct Nspawn;

impl Nspawn {
    /// The command line that boots machine `name`.
    pub fn command(name: &str, host: &HostFacts) -> Vec<String> {
        let mut cmd = vec![
            PROGRAM.to_owned(),
            "--quiet".to_owned(),
            "--boot".to_owned(),
            format!("--directory={}", host.paths.machine_root(name).display()),
            format!("--machine={name}"),
            "--console=read-only".to_owned(),
        ];
        if !host.booted_with_systemd {
            // No machined and no service manager to register with.
            cmd.push("--register=no".to_owned());
            cmd.push("--keep-unit".to_owned());
        }
        cmd
    }

    /// Starts machine `name`, detached in its own session, its console
    /// written to the state dir's log. Returns once the process runs.
    pub fn start(name: &str, host: &HostFacts) -> Result<LaunchRecord, EngineError> {
        let fail = |message: String| EngineError::Launch {
            machine: name.to_owned(),
            message,
        };
        if which(PROGRAM).is_none() {
            return Err(EngineError::MissingTool {
                tool: PROGRAM.to_owned(),
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
        let argv = Self::command(name, host);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        // SAFETY: setsid is async-signal-safe; it detaches the machine from
        // berth's session so a terminal hangup or Ctrl-C does not kill it.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| fail(format!("starting {PROGRAM}: {e}")))?;
        let pid = i32::try_from(child.id()).map_err(|_| fail("pid out of range".into()))?;
        // The Child handle is dropped without waiting: the machine outlives berth.
        drop(child);
        let start_time = process::start_time(pid).ok_or_else(|| {
            fail(format!(
                "{PROGRAM} exited at once; see {}",
                log_path.display()
            ))
        })?;
        Ok(LaunchRecord {
            launcher: "nspawn".to_owned(),
            pid,
            start_time,
        })
    }

    /// Whether the recorded process is alive and is systemd-nspawn.
    pub fn is_running(launch: &LaunchRecord) -> bool {
        process::is_alive(launch.pid, launch.start_time, PROGRAM)
    }

    /// Waits until the guest's systemd reports `running` or `degraded`.
    pub fn wait_booted(
        name: &str,
        launch: &LaunchRecord,
        host: &HostFacts,
        timeout: Duration,
    ) -> Result<String, EngineError> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("starting");
        loop {
            if !Self::is_running(launch) {
                return Err(EngineError::Launch {
                    machine: name.to_owned(),
                    message: format!(
                        "{PROGRAM} exited while booting:\n{}",
                        log_tail(&host.paths.console_log(name), 15)
                    ),
                });
            }
            if let Some(state) = Self::system_state(launch) {
                if state == "running" || state == "degraded" {
                    return Ok(state);
                }
                last = state;
            }
            if Instant::now() >= deadline {
                return Err(EngineError::Launch {
                    machine: name.to_owned(),
                    message: format!(
                        "did not finish booting within {}s (system state: {last})",
                        timeout.as_secs()
                    ),
                });
            }
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// The guest's `systemctl is-system-running`, asked through nsenter.
    pub fn system_state(launch: &LaunchRecord) -> Option<String> {
        let leader = process::namespace_init_child(launch.pid)?;
        guest_command(leader, &["systemctl", "is-system-running"])
    }

    /// The container's init process.
    pub fn leader(launch: &LaunchRecord) -> Option<i32> {
        process::namespace_init_child(launch.pid)
    }

    /// Stops the machine: SIGTERM (clean poweroff), then SIGKILL after `timeout`.
    pub fn stop(name: &str, launch: &LaunchRecord, timeout: Duration) -> Result<(), EngineError> {
        if !Self::is_running(launch) {
            return Ok(());
        }
        let pid = Pid::from_raw(launch.pid);
        let _ = kill(pid, Signal::SIGTERM);
        if wait_gone(launch, timeout) {
            return Ok(());
        }
        let _ = kill(pid, Signal::SIGKILL);
        if wait_gone(launch, Duration::from_secs(10)) {
            Ok(())
        } else {
            Err(EngineError::Launch {
                machine: name.to_owned(),
                message: format!("{PROGRAM} (pid {}) did not exit after SIGKILL", launch.pid),
            })
        }
    }
}

fn wait_gone(launch: &LaunchRecord, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        process::reap(launch.pid);
        if !Nspawn::is_running(launch) {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    false
}
