//! The host seam: everything berth does to a host goes through [`Host`].
//!
//! [`LocalHost`] runs commands with an explicit, minimal environment (never
//! berth's own: a secret read from `env:` must not reach a child), reads
//! `/proc`, and works in berth's directories. The unit tests use a fake host
//! (`host::fake`, test builds only) that records the commands it is asked to
//! run and serves `/proc` and every directory from a temp dir, so apply,
//! the cache and destroy are tested without root.
//!
//! The machine roots themselves are opened with [`Host::open_root`], which
//! returns a [`Root`]: file operations confined to that directory.

mod command;
#[cfg(test)]
pub(crate) mod fake;
mod local;
pub mod lock;
pub mod paths;
pub mod process;
pub mod state;

use std::fmt::Debug;
use std::path::{Path, PathBuf};

pub use command::{Cmd, Finished, INHERITED_ENV, Output};
pub use local::LocalHost;

use crate::confined::Root;
use crate::error::EngineError;
use paths::Paths;
use state::StateStore;

/// Facts about the host that planning depends on.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// berth's directories.
    pub paths: Paths,
    /// Whether the host was booted with systemd as PID 1.
    pub booted_with_systemd: bool,
    /// Whether the host's systemd-networkd runs, serving DHCP to containers'
    /// veth links (its `80-container-ve.network`).
    pub host_dhcp: bool,
    /// Whether observation checks that bootstrap tools are installed (off in
    /// unit tests, which must not depend on the host's tools).
    pub check_tools: bool,
}

impl HostFacts {
    /// The facts of this host.
    pub fn detect(paths: Paths) -> Self {
        HostFacts {
            paths,
            booted_with_systemd: paths::host_booted_with_systemd(),
            host_dhcp: paths::host_networkd_runs(),
            check_tools: true,
        }
    }
}

/// A request to start a long-running process that outlives berth (a
/// machine's systemd-nspawn).
#[derive(Debug, Clone)]
pub struct Detached {
    /// The command; its output is appended to `log`.
    pub cmd: Cmd,
    /// The file the process's stdout and stderr are appended to.
    pub log: PathBuf,
    /// A cgroup of its own, `berth-NAME` (hosts without systemd), joined
    /// between fork and exec.
    pub cgroup: Option<String>,
    /// Resource limits written into that cgroup once it is made, before
    /// the process joins it.
    pub limits: Vec<crate::drivers::resources::CgroupWrite>,
}

/// Everything berth does to a host. [`LocalHost`] is the real one.
pub trait Host: Send + Sync + Debug {
    /// The facts planning depends on: directories, systemd, tool checks.
    fn facts(&self) -> &HostFacts;

    /// Runs a command to completion: its argv, exactly its environment
    /// (plus PATH), its stdin bytes, its timeout; output captured or appended
    /// to a log as the command says.
    fn run(&self, cmd: &Cmd) -> Result<Finished, EngineError>;

    /// Replaces berth with `cmd` (a console: `berth shell`, `berth login`),
    /// with exactly the environment [`Host::run`] would give it; returns only
    /// the error if it cannot be run.
    fn exec(&self, cmd: &Cmd) -> EngineError;

    /// Starts a process that outlives berth, in a session of its own; returns its pid.
    fn spawn_detached(&self, request: &Detached) -> Result<i32, EngineError>;

    /// The full path of `program` on the host's PATH.
    fn which(&self, program: &str) -> Option<PathBuf>;

    /// The host's `/proc` (a temp dir in the fake host).
    fn proc_dir(&self) -> &Path;

    /// Kills every process in the machine's own cgroup (hosts without
    /// systemd); returns how many were found.
    fn kill_cgroup(&self, name: &str) -> usize;

    /// Removes the machine's (empty) cgroups.
    fn remove_cgroup(&self, name: &str);

    /// Reaps `pid` if it is berth's own exited child.
    fn reap(&self, pid: i32);

    /// Sends `signal` to `pid` (a process berth started and recorded).
    fn signal(&self, pid: i32, signal: nix::sys::signal::Signal);

    /// Runs `work` on a thread of its own in a private mount namespace:
    /// mounts made there (by `work`'s commands too) are seen by that thread
    /// and its children only, and vanish with it.
    fn in_private_mount_namespace(
        &self,
        work: &mut (dyn FnMut() + Send),
    ) -> Result<(), EngineError>;

    /// Mounts an overlayfs with `options` (`lowerdir=...` and the rest) at
    /// `target`, read-only when `read_only`.
    fn mount_overlay(
        &self,
        options: &str,
        read_only: bool,
        target: &Path,
    ) -> Result<(), EngineError>;

    /// Unmounts the filesystem mounted at `target`.
    fn unmount(&self, target: &Path) -> Result<(), EngineError>;

    /// Makes sure `dir` is on a tmpfs (or ramfs), mounting one if not
    /// (where credential values live: never on a disk).
    fn ensure_tmpfs(&self, dir: &Path) -> Result<(), EngineError>;

    /// berth's directories.
    fn paths(&self) -> &Paths {
        &self.facts().paths
    }

    /// Whether the host was booted with systemd as PID 1.
    fn booted_with_systemd(&self) -> bool {
        self.facts().booted_with_systemd
    }

    /// The cgroup filesystem (`/sys/fs/cgroup`).
    fn cgroup_fs(&self) -> PathBuf {
        PathBuf::from("/sys/fs/cgroup")
    }

    /// Where `systemctl set-property` persists unit properties
    /// (`/etc/systemd/system.control`).
    fn systemd_control_dir(&self) -> PathBuf {
        PathBuf::from("/etc/systemd/system.control")
    }

    /// Where machines' credential values live while berth manages them
    /// (`/run/berth/credentials`; see `drivers::credentials`).
    fn credentials_dir(&self) -> PathBuf {
        PathBuf::from("/run/berth/credentials")
    }

    /// systemd's runtime unit directory (`/run/systemd/system`), where
    /// berth's credential drop-ins go.
    fn runtime_unit_dir(&self) -> PathBuf {
        PathBuf::from("/run/systemd/system")
    }

    /// Opens the root at `path` for confined file operations.
    fn open_root(&self, path: &Path) -> Result<Root, EngineError> {
        Ok(Root::open(path)?)
    }

    /// berth's per-machine records.
    fn state(&self) -> StateStore {
        StateStore::new(self.paths())
    }

    /// Runs `argv` inside the running guest whose init is `leader` (all
    /// namespaces, the guest's root) and returns its trimmed stdout, whatever
    /// its exit code; None when it cannot run or prints nothing.
    fn guest_output(&self, leader: i32, argv: &[&str]) -> Option<String> {
        let mut full = nsenter_all(leader);
        full.extend(argv.iter().map(|a| (*a).to_owned()));
        let out = self.run(&Cmd::new(full).quiet()).ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (!text.is_empty()).then_some(text)
    }
}

use std::fs;

/// `nsenter --target=LEADER --all --root --wd --`: a command line prefix
/// that runs in every namespace of the guest whose init is `leader` (the
/// user namespace of private users included), in its root.
pub fn nsenter_all(leader: i32) -> Vec<String> {
    vec![
        "nsenter".to_owned(),
        format!("--target={leader}"),
        "--all".into(),
        "--root".into(),
        "--wd".into(),
        "--".into(),
    ]
}

/// The last `lines` lines of a log file, for error messages.
pub fn log_tail(path: &std::path::Path, lines: usize) -> String {
    let text = fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let mut out = all[start..].join("\n");
    out.push_str(&format!("\n(full log: {})", path.display()));
    out
}

/// This host with placeholder directories, for unit tests of drivers that
/// probe the host's tools (as the real run would).
#[cfg(test)]
pub(crate) fn local_for_tests() -> LocalHost {
    LocalHost::new(Paths {
        machines_dir: PathBuf::from("/nonexistent/machines"),
        state_dir: PathBuf::from("/nonexistent/state"),
        nspawn_dir: PathBuf::from("/nonexistent/nspawn"),
        cache_dir: PathBuf::from("/nonexistent/cache"),
    })
}
