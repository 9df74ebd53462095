//! Running commands inside a machine: through nsenter into a running
//! guest, or through `systemd-nspawn --pipe` on a stopped root (so /proc,
//! /dev and resolv.conf are right, unlike a plain chroot).

use std::fs::OpenOptions;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::error::EngineError;
use crate::host;
use crate::drivers::launcher::HostFacts;

/// PATH inside the guest.
const GUEST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs `argv` in machine `name` (in the running guest whose init is
/// `leader`, or in its stopped root), its output appended to `log`.
/// The environment is exactly `env` plus PATH: nothing of berth's leaks in.
pub fn run(
    host: &HostFacts,
    name: &str,
    leader: Option<i32>,
    argv: &[String],
    env: &[(&str, &str)],
) -> Result<(), EngineError> {
    let cmd = match leader {
        Some(leader) => {
            let mut cmd = Command::new("nsenter");
            cmd.arg(format!("--target={leader}"))
                .args(["--all", "--root", "--wd", "--"])
                .arg("env")
                .arg("-i")
                .arg(format!("PATH={GUEST_PATH}"));
            for (k, v) in env {
                cmd.arg(format!("{k}={v}"));
            }
            cmd.args(argv);
            cmd
        }
        None => {
            let mut cmd = Command::new("systemd-nspawn");
            cmd.arg("--quiet")
                .arg(format!(
                    "--directory={}",
                    host.paths.machine_root(name).display()
                ))
                .arg(format!("--machine={name}"))
                .arg("--pipe")
                // A stub init as PID 1, the command as PID 2: signals and
                // zombies behave as on a real system.
                .arg("--as-pid2");
            for (k, v) in env {
                cmd.arg(format!("--setenv={k}={v}"));
            }
            if !host.booted_with_systemd {
                cmd.args(["--register=no", "--keep-unit"]);
                // Like the launcher: a cgroup of its own, not the caller's
                // split into supervisor/payload.
                let cgroup = format!("{name}.run");
                let procs =
                    crate::drivers::launcher::cgroup::procs_files(&crate::drivers::launcher::cgroup::create(&cgroup));
                // SAFETY: the cgroup join is open/write/close only: async-signal-safe.
                unsafe {
                    std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                        crate::drivers::launcher::cgroup::join(&procs)
                    });
                }
                cmd.arg("--").args(argv);
                let result = logged(host, name, argv, cmd, "in machine");
                crate::drivers::launcher::cgroup::remove(&cgroup);
                return result;
            }
            cmd.arg("--").args(argv);
            cmd
        }
    };
    logged(host, name, argv, cmd, "in machine")
}

/// Runs `argv` on the host (a package manager working on the machine's
/// root from outside), with only `env` and the host's PATH.
pub fn run_on_host(
    host: &HostFacts,
    name: &str,
    argv: &[String],
    env: &[(&str, &str)],
) -> Result<(), EngineError> {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    logged(host, name, argv, cmd, "on the host, for machine")
}

/// Runs `cmd` with its output appended to the machine's log; on failure the
/// error carries the log's tail.
fn logged(
    host: &HostFacts,
    name: &str,
    argv: &[String],
    mut cmd: Command,
    place: &str,
) -> Result<(), EngineError> {
    let log_path = host.paths.machine_log(name);
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
    }
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| EngineError::io(format!("opening {}", log_path.display()), e))?;
    let _ = writeln!(log, "$ {}", argv.join(" "));
    let log2 = log
        .try_clone()
        .map_err(|e| EngineError::io("duplicating the log file", e))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .status()
        .map_err(|e| EngineError::io(format!("running {}", argv.join(" ")), e))?;
    if status.success() {
        Ok(())
    } else {
        Err(EngineError::Command {
            what: format!("{} ({place} {name})", argv.join(" ")),
            status: status.to_string(),
            output: host::log_tail(&log_path, 20),
        })
    }
}
