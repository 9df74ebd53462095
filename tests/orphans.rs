//! A guest outlives its systemd-nspawn when that process is killed
//! (SIGKILL, the OOM killer): its init is reparented and keeps running on
//! the root. berth must never start a second init on the same root, nor
//! remove a root under a running guest.
//!
//! Under the nspawn launcher the leftovers live in one place per kind of
//! host: berth's own cgroup `berth-NAME` on a host not booted with systemd
//! (this one: the first test), machined's scope `machine-NAME.scope` on a
//! systemd host (the systemd box: the second test). Both kill the
//! supervisor twice: before a restart and before a destroy.
//! Needs root (fails under CI=true without it).

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::systemd_box::SystemdBox;
use crate::support::{Sandbox, code, describe, require_root, systemd_box};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The machine of the host test: a name no other test uses (the guest's
/// processes are found by its cgroup's name, host-wide).
const HOST_MACHINE: &str = "orphanhost";

const SPEC: &str = "machines:\n  orph:\n    distro: debian\n    release: bookworm\n    packages: [systemd, systemd-sysv, dbus]\n    launcher: nspawn\n    state: running\n";

/// Host pids of the live processes of machine `name`'s guest: every process
/// whose cgroup (in any hierarchy) is the machine's own cgroup `berth-NAME`
/// or machined's scope `machine-NAME.scope`, or below them, and, when
/// `within` is given, below a cgroup of that name (a box's); when it is
/// not, outside every systemd box (whose nested machines have cgroups of
/// their own).
fn guest_pids(name: &str, within: Option<&str>) -> Vec<i32> {
    let ours = [format!("/berth-{name}"), format!("/machine-{name}.scope")];
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(cgroups) = fs::read_to_string(entry.path().join("cgroup")) else {
            continue;
        };
        // A zombie has exited (this host's PID 1 may reap orphans late).
        let state = fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        if state
            .lines()
            .any(|l| l.starts_with("State:") && (l.contains("Z (") || l.contains("X (")))
        {
            continue;
        }
        let hit = cgroups.lines().any(|line| {
            let path = line.splitn(3, ':').nth(2).unwrap_or_default();
            let inside = |dir: &str| path.ends_with(dir) || path.contains(&format!("{dir}/"));
            ours.iter().any(|dir| inside(dir))
                && match within {
                    Some(b) => path.contains(&format!("/{b}/")),
                    None => !path.contains("/berth-test-"),
                }
        });
        if hit {
            pids.push(pid);
        }
    }
    pids
}

/// How many of `pids` are a guest's init: systemd as PID 1 of its own PID
/// namespace.
fn inits(pids: &[i32]) -> usize {
    pids.iter()
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "systemd")
                && fs::read_to_string(format!("/proc/{p}/status")).is_ok_and(|s| {
                    s.lines().any(|l| {
                        l.starts_with("NSpid:")
                            && l.split_whitespace().count() > 2
                            && l.split_whitespace().last() == Some("1")
                    })
                })
        })
        .count()
}

/// `pid comm NSpid` of each of `pids`, for failure messages.
fn show(pids: &[i32]) -> String {
    pids.iter()
        .map(|p| {
            let comm = fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            let nspid = fs::read_to_string(format!("/proc/{p}/status"))
                .unwrap_or_default()
                .lines()
                .find(|l| l.starts_with("NSpid:"))
                .unwrap_or_default()
                .to_owned();
            format!("{p} {} {nspid}\n", comm.trim())
        })
        .collect()
}

/// Waits up to 10 s for the guest's processes to be gone.
fn wait_no_guest(name: &str, within: Option<&str>) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = guest_pids(name, within);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn status_of(out: &Output) -> serde_json::Value {
    assert_eq!(code(out), 0, "{}", describe(out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list[0].clone()
}

#[test]
fn a_guest_whose_nspawn_was_killed_is_killed_before_a_restart_and_a_destroy() {
    if !require_root("a_guest_whose_nspawn_was_killed_is_killed_before_a_restart_and_a_destroy") {
        return;
    }
    let sandbox = Sandbox::new("orphans");
    systemd_box::copy_of_cached_root(&sandbox.root(HOST_MACHINE));
    let path = sandbox.spec(&SPEC.replace("orph:", &format!("{HOST_MACHINE}:")));
    let spec = path.to_str().unwrap();
    let out = sandbox.berth(&["adopt", "-f", spec, HOST_MACHINE]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let out = sandbox.berth(&["apply", "--yes", "-f", spec]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let status = status_of(&sandbox.berth(&["status", "--json", "-f", spec]));
    let pid = status["pid"].as_i64().unwrap() as i32;
    assert_eq!(inits(&guest_pids(HOST_MACHINE, None)), 1, "the guest runs");

    // systemd-nspawn dies; the guest does not.
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let orphans = guest_pids(HOST_MACHINE, None);
    assert!(
        inits(&orphans) == 1,
        "expected the guest to outlive its supervisor: {orphans:?}"
    );

    // apply starts the machine again, after killing the orphaned guest: one init only.
    let out = sandbox.berth(&["apply", "--yes", "-f", spec]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let status = status_of(&sandbox.berth(&["status", "--json", "-f", spec]));
    assert_eq!(status["state"], "running", "{status}");
    let now = guest_pids(HOST_MACHINE, None);
    assert_eq!(
        inits(&now),
        1,
        "exactly one init runs on the root:\n{}",
        show(&now)
    );
    assert!(
        orphans.iter().all(|p| !now.contains(p)),
        "the orphaned guest still runs: {orphans:?} / {now:?}"
    );

    // Kill the supervisor again, then destroy: nothing of the guest survives.
    let pid = status["pid"].as_i64().unwrap() as i32;
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(!guest_pids(HOST_MACHINE, None).is_empty());
    let out = sandbox.berth(&["destroy", "--yes", HOST_MACHINE]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let left = wait_no_guest(HOST_MACHINE, None);
    assert!(left.is_empty(), "the guest outlived destroy: {left:?}");
    assert!(!sandbox.root(HOST_MACHINE).exists());
}

/// The same on a systemd host (the box), where systemd-nspawn registers the
/// machine with machined and the guest runs in `machine-orph.scope`: a
/// killed supervisor leaves the scope running and the machine registered,
/// so without berth killing the scope a restart could not even register
/// (and apply would report a machine it did not start).
#[test]
fn on_a_systemd_host_a_guest_whose_nspawn_was_killed_is_killed_before_a_restart_and_a_destroy() {
    if !require_root(
        "on_a_systemd_host_a_guest_whose_nspawn_was_killed_is_killed_before_a_restart_and_a_destroy",
    ) {
        return;
    }
    let sbox = SystemdBox::boot("orphans");
    sbox.install_file(
        Path::new(env!("CARGO_BIN_EXE_berth")),
        "/usr/local/bin/berth",
    );
    sbox.seed_nested_root("/var/lib/machines/orph");
    fs::write(sbox.host_path("/root/machines.yaml"), SPEC).unwrap();
    let berth = |args: &str| {
        sbox.exec_timeout(
            &["sh", "-c", &format!("cd /root && berth {args}")],
            Duration::from_secs(300),
        )
    };
    let ok = |args: &str| {
        let out = berth(args);
        assert_eq!(
            code(&out),
            0,
            "berth {args}\n{}\n{}",
            describe(&out),
            sbox.console_tail()
        );
    };
    let in_box = Some(sbox.machine());
    let box_pid = |status: &serde_json::Value| status["pid"].as_i64().unwrap().to_string();
    let registered = || sbox.machines().contains(&"orph".to_owned());

    ok("adopt orph");
    ok("apply --yes");
    let status = status_of(&berth("status --json"));
    assert_eq!(status["launcher"], "nspawn", "{status}");
    assert_eq!(inits(&guest_pids("orph", in_box)), 1, "the guest runs");
    let scope = sbox.exec_ok(&["systemctl", "is-active", "machine-orph.scope"]);
    assert_eq!(scope.trim(), "active");

    // systemd-nspawn dies; the guest lives on in machined's scope.
    sbox.exec_ok(&["kill", "-KILL", &box_pid(&status)]);
    std::thread::sleep(Duration::from_millis(1000));
    let orphans = guest_pids("orph", in_box);
    assert_eq!(
        inits(&orphans),
        1,
        "expected the guest to outlive its supervisor: {orphans:?}"
    );
    assert!(registered(), "machined still holds the machine");

    // apply kills the scope, then starts the machine again: one init,
    // under a live systemd-nspawn.
    ok("apply --yes");
    let status = status_of(&berth("status --json"));
    assert_eq!(status["state"], "running", "{status}");
    assert!(
        matches!(
            status["system_state"].as_str(),
            Some("running" | "degraded")
        ),
        "{status}"
    );
    let now = guest_pids("orph", in_box);
    assert_eq!(
        inits(&now),
        1,
        "exactly one init runs on the root:\n{}",
        show(&now)
    );
    assert!(
        orphans.iter().all(|p| !now.contains(p)),
        "the orphaned guest still runs: {orphans:?} / {now:?}"
    );
    let out = berth("plan --detailed-exitcode");
    assert_eq!(code(&out), 0, "{}", describe(&out));

    // Kill the supervisor again, then destroy: nothing of the guest
    // survives, machined forgets it, the root is gone.
    sbox.exec_ok(&["kill", "-KILL", &box_pid(&status)]);
    std::thread::sleep(Duration::from_millis(1000));
    assert!(!guest_pids("orph", in_box).is_empty());
    ok("destroy --yes orph");
    let left = wait_no_guest("orph", in_box);
    assert!(left.is_empty(), "the guest outlived destroy: {left:?}");
    assert!(!registered(), "machined: {:?}", sbox.machines());
    assert!(!sbox.host_path("/var/lib/machines/orph").exists());
}
