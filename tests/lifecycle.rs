//! The core lifecycle, for real: debootstrap a Debian bookworm root, boot it
//! with systemd-nspawn, converge, detect drift, stop, destroy.
//! Needs root (fails under CI=true without it) and a reachable Debian mirror.

use std::fs;
use std::process::Command;

use crate::support::{Sandbox, code, describe, require_root};

const HASH: &str = "$6$berthsalt$0qRJluiQdW/xyOsvNsop/hQkAUC16BfDuTQ.ksG1rN/QrLg4mtrYciRYIknq2GOIQBi.pIdIW.KP/d6yXWbI31"; // openssl passwd -6 -salt berthsalt r00tpw

fn spec(extra_enable: &str, state: &str) -> String {
    format!(
        r#"defaults:
  launcher: nspawn
machines:
  lc:
    distro: debian
    release: bookworm
    bootstrapper: debootstrap
    packages: [systemd, systemd-sysv, dbus]
    hostname: lc-host
    units:
      enable: [systemd-networkd{extra_enable}]
      disable: [fstrim.timer]
      mask: [apt-daily.timer]
    root_password:
      hash: '{HASH}'
    securetty: [pts/0, pts/1]
    state: {state}
"#
    )
}

fn is_enabled(sandbox: &Sandbox, unit: &str) -> String {
    let out = Command::new("systemctl")
        .arg(format!("--root={}", sandbox.root("lc").display()))
        .args(["is-enabled", unit])
        .output()
        .expect("systemctl");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The state letter and start time (in clock ticks since boot) of process
/// `pid`, from /proc/PID/stat; None if there is no such process.
fn proc_state(pid: i64) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let started = fields.get(19)?.parse().ok()?;
    Some((state, started))
}

fn status(sandbox: &Sandbox, spec: &str) -> serde_json::Value {
    let out = sandbox.berth(&["status", "-f", spec, "--json"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json");
    list[0].clone()
}

fn plan_code(sandbox: &Sandbox, spec: &str) -> (i32, String) {
    let out = sandbox.berth(&["plan", "-f", spec, "--detailed-exitcode"]);
    (code(&out), describe(&out))
}

#[test]
fn debian_machine_lifecycle() {
    if !require_root("debian_machine_lifecycle") {
        return;
    }
    let sandbox = Sandbox::new("lifecycle");
    let path = sandbox.spec(&spec("", "running"));
    let spec_arg = path.to_str().expect("utf-8 path");
    let root = sandbox.root("lc");

    // 1. A plan with changes exits 2 and writes nothing.
    let (rc, out) = plan_code(&sandbox, spec_arg);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("bootstrap debian bookworm with debootstrap"),
        "{out}"
    );
    assert!(out.contains("(sensitive)") && !out.contains(HASH), "{out}");
    assert!(!root.exists());

    // 2. apply boots it.
    let out = sandbox.berth(&["apply", "-f", spec_arg, "--yes"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let st = status(&sandbox, spec_arg);
    assert_eq!(st["state"], "running", "{st}");
    assert_eq!(st["launcher"], "nspawn", "{st}");
    let system = st["system_state"].as_str().unwrap_or_default().to_owned();
    assert!(system == "running" || system == "degraded", "{st}");
    assert_eq!(
        fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "lc-host\n"
    );
    assert_eq!(is_enabled(&sandbox, "systemd-networkd.service"), "enabled");
    assert_eq!(is_enabled(&sandbox, "fstrim.timer"), "disabled");
    assert_eq!(is_enabled(&sandbox, "apt-daily.timer"), "masked");
    let shadow = fs::read_to_string(root.join("etc/shadow")).unwrap();
    assert!(
        shadow
            .lines()
            .any(|l| l.starts_with(&format!("root:{HASH}:"))),
        "{shadow}"
    );
    let securetty = fs::read_to_string(root.join("etc/securetty")).unwrap();
    assert!(securetty.lines().any(|l| l == "pts/0") && securetty.lines().any(|l| l == "pts/1"));

    // 3. A second apply changes nothing.
    let (rc, out) = plan_code(&sandbox, spec_arg);
    assert_eq!(rc, 0, "{out}");
    let out = sandbox.berth(&["apply", "-f", spec_arg, "--yes"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("No changes"),
        "{}",
        describe(&out)
    );

    // 4. Drift by hand: a securetty line, the hostname, a unit, the hash.
    fs::write(root.join("etc/securetty"), "pts/1\n").unwrap();
    fs::write(root.join("etc/hostname"), "edited\n").unwrap();
    let out = Command::new("systemctl")
        .arg(format!("--root={}", root.display()))
        .args(["enable", "fstrim.timer"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let shadow = fs::read_to_string(root.join("etc/shadow")).unwrap();
    fs::write(
        root.join("etc/shadow"),
        shadow.replace(HASH, "$6$other$xyz"),
    )
    .unwrap();
    let (rc, out) = plan_code(&sandbox, spec_arg);
    assert_eq!(rc, 2, "{out}");
    for expected in [
        "pts/0",
        "lc-host",
        "disable unit fstrim.timer",
        "root password",
    ] {
        assert!(
            out.contains(expected),
            "plan does not show {expected}:\n{out}"
        );
    }
    let json = sandbox.berth(&["plan", "-f", spec_arg, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("plan --json");
    assert_eq!(json["changes"], 4, "{json}");
    assert!(!json.to_string().contains(HASH));
    let out = sandbox.berth(&["apply", "-f", spec_arg, "--yes"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let (rc, out) = plan_code(&sandbox, spec_arg);
    assert_eq!(rc, 0, "drift was not repaired:\n{out}");
    assert_eq!(status(&sandbox, spec_arg)["state"], "running");

    // 5. Enabling a unit that is not in the root fails at plan, naming it.
    let missing = sandbox.spec(&spec(", systemd-resolved", "running"));
    let out = sandbox.berth(&["plan", "-f", missing.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("systemd-resolved.service") && err.contains("systemd-resolved`"),
        "{err}"
    );

    // 6. Enabling one that is there applies to the running machine.
    let more = sandbox.spec(&spec(", systemd-boot-check-no-failures", "running"));
    let more_arg = more.to_str().unwrap();
    let out = sandbox.berth(&["apply", "-f", more_arg, "--yes"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(
        is_enabled(&sandbox, "systemd-boot-check-no-failures.service"),
        "enabled"
    );
    let st = status(&sandbox, more_arg);
    assert_eq!(
        st["state"], "running",
        "the machine was restarted or stopped: {st}"
    );

    // berth shell hands over to the running machine (nsenter, no machined here).
    let shell = assert_cmd::Command::cargo_bin("berth")
        .unwrap()
        .env("BERTH_MACHINES_DIR", sandbox.machines())
        .env("BERTH_STATE_DIR", sandbox.state())
        .env("BERTH_NSPAWN_DIR", sandbox.nspawn())
        .env("BERTH_CACHE_DIR", sandbox.cache())
        .args(["shell", "-f", more_arg, "lc"])
        .write_stdin("cat /etc/hostname; echo pid1=$(cat /proc/1/comm)\n")
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&shell.stdout);
    assert!(
        said.contains("lc-host") && said.contains("pid1=systemd"),
        "{}",
        describe(&shell)
    );

    // 7. state: stopped stops it.
    let stopped = sandbox.spec(&spec(", systemd-boot-check-no-failures", "stopped"));
    let stopped_arg = stopped.to_str().unwrap();
    let pid = st["pid"].as_i64().expect("pid while running");
    // The pid status reports is the running systemd-nspawn; its start time
    // tells it from a later process that reuses the pid.
    let exe = fs::read_link(format!("/proc/{pid}/exe"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/exe of the running machine: {e}"));
    assert!(exe.ends_with("systemd-nspawn"), "pid {pid} is {exe:?}");
    let (_, nspawn_started) =
        proc_state(pid).unwrap_or_else(|| panic!("no /proc/{pid}/stat while running"));
    let out = sandbox.berth(&["apply", "-f", stopped_arg, "--yes"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(status(&sandbox, stopped_arg)["state"], "stopped");
    // The old nspawn is gone: no such process, a zombie (it exited), or
    // another process with the same pid (another start time).
    match proc_state(pid) {
        None => {}
        Some((state, started)) => assert!(
            state == 'Z' || started != nspawn_started,
            "systemd-nspawn (pid {pid}) still runs after state: stopped (state {state})"
        ),
    }
    let (rc, out) = plan_code(&sandbox, stopped_arg);
    assert_eq!(rc, 0, "{out}");

    // 8. destroy removes it.
    let out = sandbox.berth(&["destroy", "--yes", "lc"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(!root.exists());
    assert_eq!(status(&sandbox, stopped_arg)["state"], "absent");
}
