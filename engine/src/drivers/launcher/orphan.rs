//! A guest that outlived its systemd-nspawn. When the supervisor is killed
//! (SIGKILL, the OOM killer), the guest's init is reparented and keeps
//! running on the root. berth must never start a second init on that root,
//! nor remove the root under it; so before the nspawn launcher starts a
//! machine, after it kills one, and before destroy removes a root, whatever
//! is left of the guest is killed.
//!
//! Where the leftovers live depends on the host:
//!
//! - without systemd: in the machine's own cgroup `berth-NAME`, which the
//!   nspawn launcher's systemd-nspawn joins before it execs (cgroup.rs);
//! - with systemd: systemd-nspawn registers the machine with machined, which
//!   puts the payload (the guest's init and everything below it) in a scope
//!   `machine-NAME.scope` under `machine.slice`; the supervisor itself stays
//!   in its caller's cgroup. Killing the supervisor leaves the scope running
//!   and the machine registered, so a new `systemd-nspawn --machine=NAME`
//!   could not even register. The scope is killed with `systemctl kill`
//!   once machined confirms it is this machine's (its root directory is
//!   this machine's root) and no systemd-nspawn for the machine is alive.

use std::path::Path;
use std::time::{Duration, Instant};

use super::NSPAWN;
use super::detect::runs_machine;
use crate::error::EngineError;
use crate::host::{Cmd, Host, process};

/// How long machined may take to drop a killed machine.
const GONE_TIMEOUT: Duration = Duration::from_secs(15);

/// Kills what is left of machine `name`'s guest when no systemd-nspawn
/// supervises it any more; returns whether anything was found. On a host
/// with systemd this waits until machined has forgotten the machine, so its
/// name can be registered again at once.
pub fn kill_leftover_guest(host: &dyn Host, name: &str) -> Result<bool, EngineError> {
    if !host.booted_with_systemd() {
        return Ok(host.kill_cgroup(name) > 0);
    }
    if supervised(host, name) {
        return Ok(false);
    }
    let Some(scope) = leftover_scope(host, name) else {
        return Ok(false);
    };
    let kill = Cmd::new([
        "systemctl",
        "kill",
        "--signal=SIGKILL",
        "--",
        scope.as_str(),
    ]);
    let out = host.run(&kill)?;
    if !out.success() {
        return Err(EngineError::Launch {
            machine: name.to_owned(),
            message: format!(
                "its guest outlived its {NSPAWN} in {scope}, and `{}` failed: {}",
                kill.display(),
                out.stderr_text()
            ),
        });
    }
    let deadline = Instant::now() + GONE_TIMEOUT;
    while leftover_scope(host, name).is_some() {
        if Instant::now() >= deadline {
            return Err(EngineError::Launch {
                machine: name.to_owned(),
                message: format!(
                    "its guest outlived its {NSPAWN} in {scope}, which is still registered {}s after `{}`",
                    GONE_TIMEOUT.as_secs(),
                    kill.display()
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(true)
}

/// Whether any systemd-nspawn process names this machine or its root (then
/// the guest is not left over: its supervisor stops it).
fn supervised(host: &dyn Host, name: &str) -> bool {
    let root = host.paths().machine_root(name);
    let root = root.to_string_lossy();
    process::with_program(host, NSPAWN)
        .iter()
        .any(|(_, args)| runs_machine(args, name, &root))
}

/// The scope machined holds machine `name` in, when machined knows a
/// machine of that name in a scope (what a plain systemd-nspawn registers;
/// never a `systemd-nspawn@.service`) on this machine's root.
fn leftover_scope(host: &dyn Host, name: &str) -> Option<String> {
    let out = host
        .run(
            &Cmd::new([
                "machinectl",
                "show",
                "--property=Unit",
                "--property=RootDirectory",
                "--",
                name,
            ])
            .quiet(),
        )
        .ok()?;
    if !out.success() {
        return None;
    }
    let text = out.stdout_text();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_owned)
    };
    let unit = field("Unit")?;
    let root = field("RootDirectory")?;
    let ours = host.paths().machine_root(name);
    let same_root = Path::new(&root) == ours
        || std::fs::canonicalize(&ours).is_ok_and(|c| c == Path::new(&root));
    (unit.starts_with("machine-") && unit.ends_with(".scope") && same_root).then_some(unit)
}
