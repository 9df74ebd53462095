//! The systemd box harness, for real: a booted Debian systemd host in a
//! `systemd-nspawn --boot` container, and nested machines inside it started
//! with `machinectl start`, `systemctl start systemd-nspawn@NAME.service`,
//! and at boot once `machinectl enable`d.
//! Needs root (fails under CI=true without it), systemd-container,
//! debootstrap and, for the first run on a machine, a reachable Debian mirror.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::systemd_box::SystemdBox;
use crate::support::{describe, require_root};

/// How long a nested machine may take to boot.
const NESTED_BOOT: Duration = Duration::from_secs(60);

/// Waits (up to 30 s) until `machinectl list` in the box no longer shows `machine`.
fn wait_gone(sbox: &SystemdBox, machine: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while sbox.machines().iter().any(|m| m == machine) {
        assert!(
            Instant::now() < deadline,
            "{machine} still listed 30 s after stopping\n{}",
            sbox.console_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Drops the box and checks it left nothing behind: no nspawn, no root copy.
fn drop_and_check(sbox: SystemdBox) {
    let dir = sbox.root().parent().unwrap().to_owned();
    let pid = sbox.nspawn_pid().unwrap();
    drop(sbox);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "nspawn {pid} left behind"
    );
}

#[test]
fn machinectl_and_nspawn_unit_inside_a_box() {
    if !require_root("machinectl_and_nspawn_unit_inside_a_box") {
        return;
    }
    let started = Instant::now();
    let sbox = SystemdBox::boot("launchers");
    eprintln!("box booted in {:?}", started.elapsed());

    let out = sbox.exec(&["systemctl", "is-system-running"]);
    let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        state == "running" || state == "degraded",
        "{}",
        describe(&out)
    );

    // A command that outlives its timeout is killed, with everything it started.
    let t = Instant::now();
    let out = sbox.exec_timeout(
        &["sh", "-c", "sleep 300 & sleep 300"],
        Duration::from_secs(2),
    );
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("timed out"),
        "{}",
        describe(&out)
    );
    let out = sbox.exec(&["pgrep", "-x", "sleep"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "sleep survived\n{}",
        describe(&out)
    );

    // The real berth binary runs inside.
    sbox.install_file(
        Path::new(env!("CARGO_BIN_EXE_berth")),
        "/usr/local/bin/berth",
    );
    let version = sbox.exec_ok(&["berth", "--version"]);
    assert!(version.starts_with("berth "), "{version}");

    let seeded = Instant::now();
    sbox.seed_nested_root("/var/lib/machines/web");
    eprintln!("nested root seeded in {:?}", seeded.elapsed());

    // 0. A plain nspawn run by exec works too (exec joins the box's cgroup tree).
    sbox.exec_ok(&[
        "systemd-nspawn",
        "-q",
        "-D",
        "/var/lib/machines/web",
        "/bin/true",
    ]);

    // 1. machinectl start / list / stop.
    let t = Instant::now();
    sbox.exec_ok(&["machinectl", "start", "web"]);
    assert!(
        sbox.machines().iter().any(|m| m == "web"),
        "{:?}",
        sbox.machines()
    );
    let state = sbox.wait_machine_running("web", NESTED_BOOT);
    eprintln!("machinectl start web: {state} after {:?}", t.elapsed());
    let list = sbox.exec_ok(&["machinectl", "list", "--no-pager"]);
    assert!(list.contains("web"), "{list}");

    // The unit runs nspawn with -U: report idmapped mount vs chown.
    let leader = sbox.exec_ok(&["machinectl", "show", "web", "-p", "Leader", "--value"]);
    let mountinfo = sbox.exec_ok(&["cat", &format!("/proc/{}/mountinfo", leader.trim())]);
    let root_line = mountinfo.lines().next().unwrap_or_default();
    let owner = std::fs::metadata(sbox.host_path("/var/lib/machines/web/etc/passwd"))
        .unwrap()
        .uid();
    eprintln!(
        "-U: nested root mount idmapped: {}, on-disk owner of etc/passwd: {owner}",
        root_line.contains("idmapped")
    );

    sbox.exec_ok(&["machinectl", "stop", "web"]);
    wait_gone(&sbox, "web");

    // 2. systemd-nspawn@web.service directly.
    let t = Instant::now();
    sbox.exec_ok(&["systemctl", "start", "systemd-nspawn@web.service"]);
    let state = sbox.wait_machine_running("web", NESTED_BOOT);
    eprintln!(
        "systemd-nspawn@web.service: {state} after {:?}",
        t.elapsed()
    );
    assert!(
        sbox.machines().iter().any(|m| m == "web"),
        "{:?}",
        sbox.machines()
    );
    sbox.exec_ok(&["systemctl", "stop", "systemd-nspawn@web.service"]);
    wait_gone(&sbox, "web");

    // Leave a machine running: the drop must terminate it and clean up.
    sbox.exec_ok(&["machinectl", "start", "web"]);
    sbox.wait_machine_running("web", NESTED_BOOT);
    drop_and_check(sbox);
}

#[test]
fn enabled_machine_starts_when_the_box_reboots() {
    if !require_root("enabled_machine_starts_when_the_box_reboots") {
        return;
    }
    let mut sbox = SystemdBox::boot("reboot");
    sbox.seed_nested_root("/var/lib/machines/web");
    sbox.exec_ok(&["machinectl", "enable", "web"]);
    assert!(sbox.machines().is_empty(), "{:?}", sbox.machines());

    let t = Instant::now();
    sbox.reboot();
    eprintln!("box rebooted in {:?}", t.elapsed());
    let state = sbox.wait_machine_running("web", NESTED_BOOT);
    eprintln!("web came up by itself: {state}");
    assert!(
        sbox.machines().iter().any(|m| m == "web"),
        "{:?}",
        sbox.machines()
    );
    drop_and_check(sbox);
}
