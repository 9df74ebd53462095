//! Running commands inside a machine: through nsenter into a running
//! guest, or through `systemd-nspawn --pipe` on a stopped root (so /proc,
//! /dev and resolv.conf are right, unlike a plain chroot).

use std::fs::OpenOptions;
use std::io::Write;

use crate::error::EngineError;
use crate::host::{Cmd, Host, log_tail, nsenter_all};

/// PATH inside the guest.
const GUEST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The command that runs `argv` in machine `name`: in the running guest
/// whose init is `leader`, or in its stopped root. The environment inside
/// is exactly `env` plus PATH: nothing of berth's leaks in.
pub fn command(
    host: &dyn Host,
    name: &str,
    leader: Option<i32>,
    argv: &[String],
    env: &[(String, String)],
) -> Cmd {
    match leader {
        Some(leader) => {
            let mut full = nsenter_all(leader);
            full.extend(["env".into(), "-i".into(), format!("PATH={GUEST_PATH}")]);
            full.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
            full.extend(argv.iter().cloned());
            Cmd::new(full)
        }
        None => {
            let mut full = vec![
                "systemd-nspawn".to_owned(),
                "--quiet".into(),
                format!("--directory={}", host.paths().machine_root(name).display()),
                format!("--machine={name}"),
                "--pipe".into(),
                // A stub init as PID 1, the command as PID 2: signals and
                // zombies behave as on a real system.
                "--as-pid2".into(),
            ];
            full.extend(env.iter().map(|(k, v)| format!("--setenv={k}={v}")));
            let mut cmd = if host.booted_with_systemd() {
                full.push("--".into());
                full.extend(argv.iter().cloned());
                Cmd::new(full)
            } else {
                full.extend(["--register=no".into(), "--keep-unit".into(), "--".into()]);
                full.extend(argv.iter().cloned());
                // Like the launcher: a cgroup of its own, not the caller's
                // split into supervisor/payload.
                Cmd::new(full).in_cgroup(format!("{name}.run"))
            };
            cmd.env.clear();
            cmd
        }
    }
}

/// Runs `argv` in machine `name` (see [`command`]), its output appended to
/// the machine's log.
pub fn run(
    host: &dyn Host,
    name: &str,
    leader: Option<i32>,
    argv: &[String],
    env: &[(String, String)],
) -> Result<(), EngineError> {
    run_command(host, name, argv, command(host, name, leader, argv, env))
}

/// Runs `cmd`, made by [`command`] for `argv` (and adjusted by the
/// caller), as [`run`] does: its output appended to the machine's log.
pub fn run_command(
    host: &dyn Host,
    name: &str,
    argv: &[String],
    cmd: Cmd,
) -> Result<(), EngineError> {
    let cgroup = cmd.cgroup.clone();
    let result = logged(host, name, argv, cmd, "in machine");
    if let Some(cgroup) = cgroup {
        host.remove_cgroup(&cgroup);
    }
    result
}

/// Runs `argv` on the host (a package manager working on the machine's
/// root from outside), with only `env` and the host's PATH.
pub fn run_on_host(
    host: &dyn Host,
    name: &str,
    argv: &[String],
    env: &[(String, String)],
) -> Result<(), EngineError> {
    let cmd = Cmd::new(argv.to_vec()).envs(env.iter().cloned());
    logged(host, name, argv, cmd, "on the host, for machine")
}

/// Runs `cmd` with its output appended to the machine's log; on failure the
/// error carries the log's tail.
fn logged(
    host: &dyn Host,
    name: &str,
    argv: &[String],
    cmd: Cmd,
    place: &str,
) -> Result<(), EngineError> {
    let log_path = host.paths().machine_log(name);
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
    drop(log);
    let out = host.run(&cmd.append_to(log_path.clone()))?;
    if out.success() {
        Ok(())
    } else {
        Err(EngineError::Command {
            what: format!("{} ({place} {name})", argv.join(" ")),
            status: out.status,
            output: log_tail(&log_path, 20),
        })
    }
}
