//! The machinectl and nspawn-unit launchers, for real, on a booted systemd
//! host in a box (tests/support/systemd_box.rs): berth runs inside the box
//! against nested machines, exactly as a user on a systemd host would.
//! Needs root (fails under CI=true without it).

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::support::systemd_box::SystemdBox;
use crate::support::{describe, require_root};

const SPEC: &str = "/root/machines.yaml";
const BOOT: Duration = Duration::from_secs(90);

/// A box with berth installed and a bootable Debian root seeded (not yet
/// managed) at /var/lib/machines/web.
fn box_with_berth(label: &str) -> SystemdBox {
    let sbox = SystemdBox::boot(label);
    sbox.install_file(
        Path::new(env!("CARGO_BIN_EXE_berth")),
        "/usr/local/bin/berth",
    );
    sbox.seed_nested_root("/var/lib/machines/web");
    sbox
}

fn write_spec(sbox: &SystemdBox, yaml: &str) {
    fs::write(sbox.host_path(SPEC), yaml).unwrap();
}

fn berth(sbox: &SystemdBox, args: &[&str]) -> Output {
    let mut argv = vec!["berth"];
    argv.extend_from_slice(args);
    // destroy works from berth's records and takes no spec.
    if args.first() != Some(&"destroy") {
        argv.extend_from_slice(&["-f", SPEC]);
    }
    sbox.exec_timeout(&argv, Duration::from_secs(300))
}

fn ok(sbox: &SystemdBox, args: &[&str]) -> String {
    let out = berth(sbox, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "berth {args:?}\n{}\n{}",
        describe(&out),
        sbox.console_tail()
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn plan(sbox: &SystemdBox) -> (i32, String) {
    let out = berth(sbox, &["plan", "--detailed-exitcode"]);
    (out.status.code().unwrap_or(-1), describe(&out))
}

fn status(sbox: &SystemdBox) -> serde_json::Value {
    let out = berth(sbox, &["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()[0].clone()
}

fn spec(launcher: &str, state: &str, extra: &str) -> String {
    format!(
        "machines:\n  web:\n    distro: debian\n    release: bookworm\n    packages: [systemd, systemd-sysv, dbus]\n    launcher: {launcher}\n    state: {state}\n{extra}"
    )
}

fn unit_enabled(sbox: &SystemdBox) -> String {
    let out = sbox.exec(&["systemctl", "is-enabled", "systemd-nspawn@web.service"]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn machinectl_lifecycle_autostart_and_never_mixing() {
    if !require_root("machinectl_lifecycle_autostart_and_never_mixing") {
        return;
    }
    let mut sbox = box_with_berth("machinectl");
    write_spec(&sbox, &spec("machinectl", "running", ""));
    ok(&sbox, &["adopt", "web"]);

    // plan -> apply boots it through machinectl.
    let (rc, out) = plan(&sbox);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("start machine (machinectl)"), "{out}");
    ok(&sbox, &["apply", "--yes"]);
    assert!(
        sbox.machines().contains(&"web".to_owned()),
        "machinectl list: {:?}",
        sbox.machines()
    );
    let state = sbox.exec_ok(&["systemctl", "-M", "web", "is-system-running"]);
    assert!(matches!(state.trim(), "running" | "degraded"), "{state}");
    let st = status(&sbox);
    assert_eq!(st["launcher"], "machinectl", "{st}");
    assert_eq!(st["state"], "running", "{st}");
    assert!(
        matches!(st["system_state"].as_str(), Some("running" | "degraded")),
        "{st}"
    );
    assert!(sbox.host_path("/etc/systemd/nspawn/web.nspawn").exists());
    assert_eq!(plan(&sbox).0, 0, "{}", plan(&sbox).1);

    // berth logs reads the guest's journal through `journalctl -M` (machined
    // knows the machine here); berth exec passes the exit code through.
    let out = sbox.exec(&["berth", "logs", "--file", SPEC, "web", "-n", "5"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let entries = text.lines().filter(|l| !l.starts_with("-- ")).count();
    assert!((1..=5).contains(&entries), "{text}");
    let out = sbox.exec(&[
        "berth", "exec", "-f", SPEC, "web", "--", "sh", "-c", "exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));

    // autostart: true survives a reboot of the host without berth.
    write_spec(
        &sbox,
        &spec("machinectl", "running", "    autostart: true\n"),
    );
    let (rc, out) = plan(&sbox);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("start at host boot"), "{out}");
    ok(&sbox, &["apply", "--yes"]);
    assert_eq!(unit_enabled(&sbox), "enabled");
    sbox.reboot();
    sbox.wait_machine_running("web", BOOT);
    let (rc, out) = plan(&sbox);
    assert_eq!(
        rc, 0,
        "after a reboot the autostarted machine is berth's: {out}"
    );
    assert!(!out.contains("outside berth"), "{out}");
    assert_eq!(status(&sbox)["launcher"], "machinectl");

    // autostart: false undoes it; state: stopped stops it through machinectl.
    write_spec(
        &sbox,
        &spec("machinectl", "stopped", "    autostart: false\n"),
    );
    let (rc, out) = plan(&sbox);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("do not start at host boot") && out.contains("stop machine (machinectl)"),
        "{out}"
    );
    ok(&sbox, &["apply", "--yes"]);
    assert_ne!(unit_enabled(&sbox), "enabled");
    assert!(!sbox.machines().contains(&"web".to_owned()));
    assert_eq!(status(&sbox)["state"], "stopped");

    // Never mix: started by hand the other way, plan reports it and does not fight it.
    sbox.exec_ok(&["systemctl", "start", "systemd-nspawn@web.service"]);
    sbox.wait_machine_running("web", BOOT);
    let (rc, out) = plan(&sbox);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.contains("started outside berth") && out.contains("systemd-nspawn@web.service"),
        "{out}"
    );
    assert!(
        !out.contains("stop machine"),
        "berth must not fight it: {out}"
    );
    let st = status(&sbox);
    assert_eq!(st["state"], "running");
    assert!(
        st["started_by"]
            .as_str()
            .unwrap_or_default()
            .contains("systemd-nspawn@web.service"),
        "{st}"
    );
    // A change inside it goes into the running guest (berth enters the
    // machine it did not start); it is neither restarted nor joined by a
    // second container on its root.
    let main_pid = || {
        sbox.exec_ok(&[
            "systemctl",
            "show",
            "--value",
            "--property=MainPID",
            "systemd-nspawn@web.service",
        ])
        .trim()
        .to_owned()
    };
    let before = main_pid();
    write_spec(
        &sbox,
        &spec("machinectl", "running", "    users:\n      berthuser: {}\n"),
    );
    let (rc, out) = plan(&sbox);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("create user berthuser") && out.contains("started outside berth"),
        "{out}"
    );
    ok(&sbox, &["apply", "--yes"]);
    let passwd = fs::read_to_string(sbox.host_path("/var/lib/machines/web/etc/passwd"))
        .expect("the guest's /etc/passwd");
    assert!(
        passwd.lines().any(|l| l.starts_with("berthuser:")),
        "{passwd}"
    );
    assert_eq!(main_pid(), before, "the machine was restarted");
    let (rc, out) = plan(&sbox);
    assert_eq!(rc, 0, "{out}");
    sbox.exec_ok(&["machinectl", "poweroff", "web"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while sbox.machines().contains(&"web".to_owned()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }

    // destroy removes the root and the settings file.
    ok(&sbox, &["destroy", "--yes", "web"]);
    assert!(!sbox.host_path("/var/lib/machines/web").exists());
    assert!(!sbox.host_path("/etc/systemd/nspawn/web.nspawn").exists());
}

#[test]
fn nspawn_unit_settings_restart_and_private_users() {
    if !require_root("nspawn_unit_settings_restart_and_private_users") {
        return;
    }
    let sbox = box_with_berth("nspawn-unit");
    sbox.exec_ok(&["mkdir", "-p", "/srv/shared"]);
    sbox.exec_ok(&["sh", "-c", "echo canary > /srv/shared/canary"]);
    let users = "    private_users: pick\n";
    write_spec(&sbox, &spec("nspawn-unit", "running", users));
    ok(&sbox, &["adopt", "web"]);
    ok(&sbox, &["apply", "--yes"]);
    let state = sbox.exec_ok(&["systemctl", "-M", "web", "is-system-running"]);
    assert!(matches!(state.trim(), "running" | "degraded"), "{state}");
    assert!(
        sbox.exec_ok(&["systemctl", "is-active", "systemd-nspawn@web.service"])
            .contains("active")
    );
    let st = status(&sbox);
    assert_eq!(st["launcher"], "nspawn-unit", "{st}");
    // A second apply after the first boot (ownership possibly shifted by -U) changes nothing.
    let (rc, out) = plan(&sbox);
    assert_eq!(
        rc, 0,
        "private users' shift must not look like drift: {out}"
    );

    // A unit enabled later is enabled, and owned right, inside the guest.
    let units = format!("{users}    units:\n      enable: [systemd-networkd]\n");
    write_spec(&sbox, &spec("nspawn-unit", "running", &units));
    ok(&sbox, &["apply", "--yes"]);
    let enabled = sbox.exec(&[
        "systemctl",
        "-M",
        "web",
        "is-enabled",
        "systemd-networkd.service",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&enabled.stdout).trim(),
        "enabled",
        "{}",
        describe(&enabled)
    );
    let owner = sbox.exec_ok(&[
        "systemd-run",
        "-M",
        "web",
        "--wait",
        "--pipe",
        "--quiet",
        "stat",
        "-c",
        "%U",
        "/etc/systemd/system/multi-user.target.wants/systemd-networkd.service",
    ]);
    assert_eq!(owner.trim(), "root", "owner inside the guest");
    assert_eq!(plan(&sbox).0, 0, "{}", plan(&sbox).1);

    // A .nspawn change (a bind and a port) restarts the running machine.
    let pid_before = status(&sbox)["pid"].clone();
    let settings = format!(
        "{units}    network:\n      mode: veth\n      ports: [\"tcp:8080:80\"]\n    binds:\n      - {{host: /srv/shared, machine: /mnt/shared, read_only: true}}\n"
    );
    write_spec(&sbox, &spec("nspawn-unit", "running", &settings));
    let (rc, out) = plan(&sbox);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("BindReadOnly=/srv/shared:/mnt/shared") && out.contains("Port=tcp:8080:80"),
        "{out}"
    );
    assert!(out.contains("restart machine"), "{out}");
    ok(&sbox, &["apply", "--yes"]);
    let st = status(&sbox);
    assert_ne!(st["pid"], pid_before, "the machine was not restarted: {st}");
    let canary = sbox.exec_ok(&[
        "systemd-run",
        "-M",
        "web",
        "--wait",
        "--pipe",
        "--quiet",
        "cat",
        "/mnt/shared/canary",
    ]);
    assert_eq!(canary.trim(), "canary");
    let nspawn = fs::read_to_string(sbox.host_path("/etc/systemd/nspawn/web.nspawn")).unwrap();
    assert!(
        nspawn.contains("VirtualEthernet=yes") && nspawn.contains("PrivateUsers=pick"),
        "{nspawn}"
    );
    assert_eq!(plan(&sbox).0, 0, "{}", plan(&sbox).1);

    // Changing the launcher of a running machine: stop the old way, start the new.
    write_spec(&sbox, &spec("machinectl", "running", &settings));
    let (rc, out) = plan(&sbox);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("stop machine (nspawn-unit)") && out.contains("start machine (machinectl)"),
        "{out}"
    );
    ok(&sbox, &["apply", "--yes"]);
    assert_eq!(status(&sbox)["launcher"], "machinectl");

    write_spec(
        &sbox,
        &spec(
            "machinectl",
            "running",
            &format!("{settings}    autostart: true\n"),
        ),
    );
    ok(&sbox, &["apply", "--yes"]);
    assert_eq!(unit_enabled(&sbox), "enabled");
    ok(&sbox, &["destroy", "--yes", "web"]);
    assert!(!sbox.host_path("/var/lib/machines/web").exists());
    assert_ne!(
        unit_enabled(&sbox),
        "enabled",
        "destroy leaves no boot integration behind"
    );
    assert!(sbox.machines().is_empty(), "{:?}", sbox.machines());
}
