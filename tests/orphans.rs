//! A guest outlives its systemd-nspawn when that process is killed
//! (SIGKILL, the OOM killer): its init is reparented and keeps running on
//! the root. berth must never start a second init on the same root, nor
//! remove a root under a running guest.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::support::systemd_box;
use crate::support::{Sandbox, code, describe, require_root};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The pids in a cgroup and its descendants.
fn cgroup_pids(dir: &Path) -> Vec<i32> {
    let mut pids: Vec<i32> = fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                pids.extend(cgroup_pids(&e.path()));
            }
        }
    }
    pids
}

/// Processes left in the machine's cgroup (on a host without systemd).
fn cgroup_procs(name: &str) -> usize {
    fn walk(dir: &Path) -> usize {
        let mut n = fs::read_to_string(dir.join("cgroup.procs"))
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    n += walk(&e.path());
                }
            }
        }
        n
    }
    walk(&Path::new("/sys/fs/cgroup/unified").join(format!("berth-{name}")))
}

#[test]
fn a_guest_whose_nspawn_was_killed_is_killed_before_a_restart_and_a_destroy() {
    if !require_root("a_guest_whose_nspawn_was_killed_is_killed_before_a_restart_and_a_destroy") {
        return;
    }
    if !Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists()
        || Path::new("/run/systemd/system").exists()
    {
        eprintln!(
            "this host's cgroup layout differs; the nspawn launcher's own cgroup is for hybrid hosts without systemd"
        );
        return;
    }
    let sandbox = Sandbox::new("orphans");
    systemd_box::copy_of_cached_root(&sandbox.root("orph"));
    let path = sandbox.spec(
        "machines:\n  orph:\n    distro: debian\n    release: bookworm\n    packages: [systemd, systemd-sysv, dbus]\n    launcher: nspawn\n    state: running\n",
    );
    let spec = path.to_str().unwrap();
    let out = sandbox.berth(&["adopt", "-f", spec, "orph"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let out = sandbox.berth(&["apply", "--yes", "-f", spec]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let status = sandbox.berth(&["status", "--json", "-f", spec]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let pid = status[0]["pid"].as_i64().unwrap() as i32;

    // systemd-nspawn dies; the guest does not.
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let orphans = cgroup_procs("orph");
    assert!(orphans > 0, "expected the guest to outlive its supervisor");

    // apply starts the machine again, after killing the orphaned guest: one init only.
    let out = sandbox.berth(&["apply", "--yes", "-f", spec]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let status = sandbox.berth(&["status", "--json", "-f", spec]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status[0]["state"], "running", "{status}");
    let inits = cgroup_pids(&Path::new("/sys/fs/cgroup/unified").join("berth-orph"))
        .into_iter()
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "systemd")
                && fs::read_to_string(format!("/proc/{p}/status")).is_ok_and(|s| {
                    s.lines().any(|l| {
                        l.starts_with("NSpid:") && l.split_whitespace().last() == Some("1")
                    })
                })
        })
        .count();
    assert_eq!(inits, 1, "exactly one init runs on the root");

    // Kill the supervisor again, then destroy: nothing of the guest survives.
    let pid = status[0]["pid"].as_i64().unwrap() as i32;
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let out = sandbox.berth(&["destroy", "--yes", "orph"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(cgroup_procs("orph"), 0, "the guest outlived destroy");
    assert!(!sandbox.root("orph").exists());
}
