//! A cgroup of its own for each machine under the plain nspawn launcher on
//! hosts without systemd. With `--keep-unit` and no service manager,
//! systemd-nspawn splits the *caller's* cgroup into `supervisor` and
//! `payload`; two machines started from the same cgroup would share them
//! (and the guests' systemd would fight over one tree). So the nspawn
//! process is moved, before it execs, into `berth-NAME` below the caller's
//! cgroup, in every hierarchy nspawn uses (the unified one and, on hybrid
//! hosts, name=systemd), and in the cgroup v1 hierarchy of each controller
//! resource limits need that the unified hierarchy does not hold (memory,
//! cpu, pids, blkio on legacy and hybrid hosts), so the machine's limits
//! are set in a cgroup of its own there too.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::drivers::resources::cgroupfs::{self, MachineCgroup};
use crate::drivers::resources::{CgroupWrite, Controller, Hierarchy};

/// The cgroup filesystem.
const CGROUP_FS: &str = "/sys/fs/cgroup";

/// The machine's cgroup directories (created if missing), one per hierarchy.
pub fn create(name: &str) -> Vec<PathBuf> {
    parents()
        .into_iter()
        .chain(controller_parents().into_iter().map(|(_, dir)| dir))
        .map(|parent| parent.join(format!("berth-{name}")))
        .filter(|dir| fs::create_dir_all(dir).is_ok() && dir.join("cgroup.procs").exists())
        .collect()
}

/// Writes resource limits into the machine's cgroups (made by [`create`]).
pub fn apply_limits(name: &str, writes: &[CgroupWrite]) -> Result<(), String> {
    let own = format!("berth-{name}");
    let fs_root = Path::new(CGROUP_FS);
    let v2_mount = cgroupfs::v2_mount(fs_root);
    let v2 = v2_mount
        .as_ref()
        .and_then(|mount| own_path("").map(|path| mount.join(path).join(&own)));
    let machine = MachineCgroup {
        v2,
        v1: controller_parents()
            .into_iter()
            .map(|(controller, dir)| (controller, dir.join(&own)))
            .collect(),
    };
    machine.write(v2_mount.as_deref(), writes)
}

/// This process's cgroup in the cgroup v1 hierarchy of each controller
/// berth limits with that the unified hierarchy does not hold, where that
/// hierarchy is writable.
fn controller_parents() -> Vec<(Controller, PathBuf)> {
    let fs_root = Path::new(CGROUP_FS);
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let v2_parent =
        cgroupfs::v2_mount(fs_root).and_then(|mount| own_path("").map(|path| mount.join(path)));
    cgroupfs::layout(fs_root, v2_parent.as_deref())
        .into_iter()
        .filter(|(_, found)| *found == Ok(Hierarchy::V1))
        .filter_map(|(controller, _)| {
            let mount = cgroupfs::v1_mount(fs_root, controller)?;
            let path = own.lines().find_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                controllers
                    .split(',')
                    .any(|c| c == controller.v1_name())
                    .then(|| path.trim_start_matches('/').to_owned())
            })?;
            Some((controller, mount.join(path)))
        })
        .collect()
}

/// This process's cgroup path (without the leading `/`) in the hierarchy
/// whose controller list in `/proc/self/cgroup` is `hierarchy` (`""`: the
/// unified one).
fn own_path(hierarchy: &str) -> Option<String> {
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    own.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        (controllers == hierarchy).then(|| path.trim_start_matches('/').to_owned())
    })
}

/// The `cgroup.procs` files of `dirs`, ready for [`join`] after fork.
pub fn procs_files(dirs: &[PathBuf]) -> Vec<CString> {
    dirs.iter()
        .filter_map(|d| CString::new(d.join("cgroup.procs").as_os_str().as_bytes()).ok())
        .collect()
}

/// Moves the calling process into each cgroup (writes "0" to cgroup.procs).
/// Only async-signal-safe calls: for use between fork and exec.
pub fn join(procs: &[CString]) -> std::io::Result<()> {
    for file in procs {
        // SAFETY: open/write/close on a valid NUL-terminated path and a
        // static buffer; async-signal-safe, as required after fork.
        unsafe {
            let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
            if written != 1 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Kills every process left in the machine's cgroups (the guest of a
/// systemd-nspawn that was itself killed outlives it, reparented to PID 1).
/// Returns how many processes were found.
pub fn kill_all(name: &str) -> usize {
    let mut found = 0;
    for parent in parents() {
        let dir = parent.join(format!("berth-{name}"));
        let pids = pids_below(&dir, 0);
        found += pids.len();
        if pids.is_empty() {
            continue;
        }
        // cgroup v2 kills a whole tree atomically; else SIGKILL each pid.
        if fs::write(dir.join("cgroup.kill"), "1").is_err() {
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
    found
}

/// The pids in `dir` and its descendants.
fn pids_below(dir: &Path, depth: usize) -> Vec<i32> {
    let mut pids: Vec<i32> = fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if depth < 16
        && let Ok(entries) = fs::read_dir(dir)
    {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pids.extend(pids_below(&entry.path(), depth + 1));
            }
        }
    }
    pids
}

/// Removes the machine's cgroups once nothing runs in them (best effort:
/// nspawn's own `payload`/`supervisor` children first).
pub fn remove(name: &str) {
    let v1 = controller_parents().into_iter().map(|(_, dir)| dir);
    for parent in parents().into_iter().chain(v1) {
        let dir = parent.join(format!("berth-{name}"));
        remove_empty_tree(&dir, 0);
    }
}

fn remove_empty_tree(dir: &Path, depth: usize) {
    if depth > 16 {
        return;
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_tree(&entry.path(), depth + 1);
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

/// This process's cgroup in each hierarchy nspawn uses.
fn parents() -> Vec<PathBuf> {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let own_path = |hierarchy: &str| {
        own.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            (controllers == hierarchy).then(|| path.trim_start_matches('/').to_owned())
        })
    };
    let base = Path::new("/sys/fs/cgroup");
    let mut mounts = Vec::new();
    if base.join("cgroup.controllers").exists() {
        mounts.push((base.to_path_buf(), ""));
    } else {
        if base.join("unified/cgroup.procs").exists() {
            mounts.push((base.join("unified"), ""));
        }
        if base.join("systemd/cgroup.procs").exists() {
            mounts.push((base.join("systemd"), "name=systemd"));
        }
    }
    mounts
        .into_iter()
        .filter_map(|(mount, hierarchy)| own_path(hierarchy).map(|p| mount.join(p)))
        .collect()
}
