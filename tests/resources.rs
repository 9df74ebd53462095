//! `resources:` and `devices:` for real. On this host (no systemd as PID 1:
//! the nspawn launcher) a Debian machine gets its limits in its own cgroup
//! at start, a changed limit is applied live (the guest's init is the same
//! process before and after), a limit that leaves the spec is reset, and a
//! second plan is empty. In a systemd box, the machinectl launcher allows a
//! device in berth's DeviceAllow= drop-in and its limits go through
//! `systemctl set-property`, or are refused where the box's cgroups cannot
//! hold them. Needs root (fails under CI=true without it).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::systemd_box::{SystemdBox, copy_of_cached_root};
use crate::support::{Sandbox, code, describe, require_root};

/// The machine's spec: a seeded Debian root under the nspawn launcher.
fn spec(state: &str, resources: &str, devices: &str) -> String {
    format!(
        "machines:\n  res:\n    distro: debian\n    release: bookworm\n    packages: [systemd, systemd-sysv, dbus]\n    launcher: nspawn\n    state: {state}\n    resources: {{{resources}}}\n{devices}"
    )
}

/// `berth ARGS` in the sandbox; panics unless it exits 0; stdout.
fn ok(sandbox: &Sandbox, args: &[&str]) -> String {
    let out = sandbox.berth(args);
    assert_eq!(code(&out), 0, "berth {args:?}\n{}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `berth plan --detailed-exitcode`: (exit code, output).
fn plan(sandbox: &Sandbox) -> (i32, String) {
    let out = sandbox.berth(&["plan", "--detailed-exitcode"]);
    (code(&out), describe(&out))
}

/// The machine's systemd-nspawn and its guest's init, from `berth status`.
fn pids(sandbox: &Sandbox) -> (i64, i64) {
    let out = ok(sandbox, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    let st = &status[0];
    assert_eq!(st["state"], "running", "{st}");
    (
        st["pid"].as_i64().unwrap_or_else(|| panic!("no pid: {st}")),
        st["leader"]
            .as_i64()
            .unwrap_or_else(|| panic!("no leader: {st}")),
    )
}

/// `pid`'s cgroup path in the hierarchy whose controller list holds
/// `controller` (`""`: the unified hierarchy).
fn cgroup_of(pid: i64, controller: &str) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = if controller.is_empty() {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == controller)
        };
        matches.then(|| path.to_owned())
    })
}

/// The unified hierarchy's mount.
fn unified() -> PathBuf {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        PathBuf::from("/sys/fs/cgroup")
    } else {
        PathBuf::from("/sys/fs/cgroup/unified")
    }
}

/// The limit kinds the test checks, read from the machine's cgroup.
#[derive(Clone, Copy)]
enum Limit {
    /// `memory.max` / `memory.limit_in_bytes`, in bytes or `max`.
    Memory,
    /// `pids.max`.
    Tasks,
    /// `cpu.max` / `cpu.cfs_quota_us cpu.cfs_period_us`, as `QUOTA PERIOD`.
    Quota,
}

/// The machine's cgroup directory holding `file` of `controller`, from
/// its systemd-nspawn `nspawn`: in the unified hierarchy nspawn's cgroup
/// without its `supervisor` leaf, else the cgroup v1 hierarchy's.
fn cgroup_dir(nspawn: i64, controller: &str, v2_file: &str) -> (PathBuf, bool) {
    if let Some(path) = cgroup_of(nspawn, "") {
        let path = path.strip_suffix("/supervisor").unwrap_or(&path);
        let dir = unified().join(path.trim_start_matches('/'));
        if dir.join(v2_file).exists() {
            return (dir, true);
        }
    }
    let path = cgroup_of(nspawn, controller)
        .unwrap_or_else(|| panic!("{nspawn} has no {controller} cgroup"));
    let dir = Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(path.trim_start_matches('/'));
    (dir, false)
}

fn read(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// A limit as the machine's cgroup holds it now.
fn limit(nspawn: i64, which: Limit) -> String {
    match which {
        Limit::Memory => {
            let (dir, v2) = cgroup_dir(nspawn, "memory", "memory.max");
            if v2 {
                read(&dir.join("memory.max"))
            } else {
                let bytes = read(&dir.join("memory.limit_in_bytes"));
                if bytes.parse::<u64>().is_ok_and(|n| n >= 1 << 62) {
                    "max".to_owned()
                } else {
                    bytes
                }
            }
        }
        Limit::Tasks => {
            let (dir, _) = cgroup_dir(nspawn, "pids", "pids.max");
            read(&dir.join("pids.max"))
        }
        Limit::Quota => {
            let (dir, v2) = cgroup_dir(nspawn, "cpu", "cpu.max");
            if v2 {
                read(&dir.join("cpu.max"))
            } else {
                let quota = read(&dir.join("cpu.cfs_quota_us"));
                let quota = if quota == "-1" {
                    "max".to_owned()
                } else {
                    quota
                };
                format!("{quota} {}", read(&dir.join("cpu.cfs_period_us")))
            }
        }
    }
}

/// Whether the guest's init `leader` is in the machine's memory cgroup (or
/// below it), so the limits hold for the guest, not just its supervisor.
fn guest_is_inside(nspawn: i64, leader: i64) -> bool {
    let (dir, v2) = cgroup_dir(nspawn, "memory", "memory.max");
    let (hierarchy, mount) = if v2 {
        ("", unified())
    } else {
        ("memory", PathBuf::from("/sys/fs/cgroup/memory"))
    };
    cgroup_of(leader, hierarchy)
        .is_some_and(|p| mount.join(p.trim_start_matches('/')).starts_with(&dir))
}

#[test]
fn limits_apply_at_start_change_live_without_a_restart_and_reset() {
    if !require_root("limits_apply_at_start_change_live_without_a_restart_and_reset") {
        return;
    }
    let sandbox = Sandbox::new("resources");
    copy_of_cached_root(&sandbox.root("res"));
    let fuse = "    devices: [{path: /dev/fuse, access: rwm}]\n";
    let devices = if Path::new("/dev/fuse").exists() {
        fuse
    } else {
        ""
    };
    let limits = "memory_max: 512M, tasks_max: 500, cpu_quota: 150%";
    sandbox.spec(&spec("running", limits, devices));
    ok(&sandbox, &["adopt", "res"]);

    // The limits are recorded, then written into the machine's cgroup as it starts.
    let (rc, out) = plan(&sandbox);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains(
            "+ set resources: memory_max 536870912, cpu_quota 150%, tasks_max 500 (at the next start)"
        ),
        "{out}"
    );
    ok(&sandbox, &["apply", "--yes"]);
    let (nspawn, leader) = pids(&sandbox);
    assert_eq!(limit(nspawn, Limit::Memory), "536870912");
    assert_eq!(limit(nspawn, Limit::Tasks), "500");
    assert_eq!(limit(nspawn, Limit::Quota), "150000 100000");
    assert!(
        guest_is_inside(nspawn, leader),
        "the guest's init {leader} is not in the machine's cgroup"
    );
    let (rc, out) = plan(&sandbox);
    assert_eq!(rc, 0, "the limits must read back equal: {out}");

    // A smaller limit: planned from the cgroup, applied live.
    sandbox.spec(&spec(
        "running",
        "memory_max: 256M, tasks_max: 500, cpu_quota: 150%",
        devices,
    ));
    let (rc, out) = plan(&sandbox);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("~ set resources: memory_max 536870912 -> 268435456 (live)"),
        "{out}"
    );
    assert!(!out.contains("restart"), "{out}");
    let json = ok(&sandbox, &["plan", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let action = &json["machines"][0]["actions"][0];
    assert_eq!(action["action"], "set-resources", "{json}");
    assert_eq!(action["live"], true, "{json}");
    assert_eq!(action["changes"][0]["knob"], "memory_max", "{json}");
    assert_eq!(action["changes"][0]["to"], 268_435_456, "{json}");
    assert_eq!(action["writes"]["via"], "cgroup", "{json}");
    assert_eq!(
        action["writes"]["writes"][0]["value"], "268435456",
        "{json}"
    );
    ok(&sandbox, &["apply", "--yes"]);
    assert_eq!(limit(nspawn, Limit::Memory), "268435456");
    assert_eq!(
        pids(&sandbox),
        (nspawn, leader),
        "applying limits must not restart the machine"
    );
    let (rc, out) = plan(&sandbox);
    assert_eq!(rc, 0, "{out}");

    // A limit that leaves the spec goes back to the default, live.
    sandbox.spec(&spec(
        "running",
        "memory_max: 256M, cpu_quota: 150%",
        devices,
    ));
    let (rc, out) = plan(&sandbox);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("- set resources: tasks_max 500 -> max (reset: no longer in the spec) (live)"),
        "{out}"
    );
    ok(&sandbox, &["apply", "--yes"]);
    assert_eq!(limit(nspawn, Limit::Tasks), "max");
    assert_eq!(pids(&sandbox), (nspawn, leader));
    assert_eq!(plan(&sandbox).0, 0, "{}", plan(&sandbox).1);

    // Drift made behind berth's back is read from the cgroup and repaired.
    let (dir, v2) = cgroup_dir(nspawn, "memory", "memory.max");
    let file = if v2 {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    fs::write(dir.join(file), "300000000").unwrap();
    let (rc, out) = plan(&sandbox);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("memory_max 299999232 -> 268435456 (live)"),
        "the cgroup rounds to the page size: {out}"
    );
    ok(&sandbox, &["apply", "--yes"]);
    assert_eq!(limit(nspawn, Limit::Memory), "268435456");

    // Stopped: a change is kept for the next start, which applies it.
    sandbox.spec(&spec(
        "stopped",
        "memory_max: 256M, cpu_quota: 150%",
        devices,
    ));
    ok(&sandbox, &["apply", "--yes"]);
    sandbox.spec(&spec(
        "stopped",
        "memory_max: 300M, cpu_quota: 150%",
        devices,
    ));
    let (rc, out) = plan(&sandbox);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("~ set resources: memory_max 268435456 -> 314572800 (at the next start)"),
        "{out}"
    );
    ok(&sandbox, &["apply", "--yes"]);
    assert_eq!(plan(&sandbox).0, 0, "{}", plan(&sandbox).1);
    sandbox.spec(&spec(
        "running",
        "memory_max: 300M, cpu_quota: 150%",
        devices,
    ));
    ok(&sandbox, &["apply", "--yes"]);
    let (nspawn, _) = pids(&sandbox);
    assert_eq!(limit(nspawn, Limit::Memory), "314572800");
    assert_eq!(limit(nspawn, Limit::Quota), "150000 100000");
    assert_eq!(plan(&sandbox).0, 0, "{}", plan(&sandbox).1);

    // destroy removes the machine's cgroups.
    let (memory_dir, _) = cgroup_dir(nspawn, "memory", "memory.max");
    ok(&sandbox, &["destroy", "--yes", "res"]);
    assert!(!memory_dir.exists(), "{} left behind", memory_dir.display());
}

#[test]
fn devices_that_are_missing_or_narrowed_under_nspawn_are_plan_errors() {
    if !require_root("devices_that_are_missing_or_narrowed_under_nspawn_are_plan_errors") {
        return;
    }
    let sandbox = Sandbox::new("devices");
    copy_of_cached_root(&sandbox.root("res"));
    sandbox.spec(&spec("running", "", ""));
    ok(&sandbox, &["adopt", "res"]);

    sandbox.spec(&spec(
        "running",
        "",
        "    devices: [{path: /dev/berth-no-such-device, access: rwm}]\n",
    ));
    let (rc, out) = plan(&sandbox);
    assert_eq!(rc, 1, "{out}");
    assert!(
        out.contains("devices: /dev/berth-no-such-device does not exist on this host"),
        "{out}"
    );

    sandbox.spec(&spec(
        "running",
        "",
        "    devices: [{path: /dev/null, access: rw}]\n",
    ));
    let (rc, out) = plan(&sandbox);
    assert_eq!(rc, 1, "{out}");
    assert!(
        out.contains("/dev/null with access rw: the nspawn launcher cannot restrict device access")
            && out.contains("launcher: machinectl or nspawn-unit"),
        "{out}"
    );

    // memory_high needs cgroup v2's memory controller.
    let memory_v2 = fs::read_to_string(unified().join("cgroup.controllers"))
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory"));
    if !memory_v2 {
        sandbox.spec(&spec("running", "memory_high: 300M", ""));
        let (rc, out) = plan(&sandbox);
        assert_eq!(rc, 1, "{out}");
        assert!(
            out.contains("resources.memory_high: memory_high needs cgroup v2"),
            "{out}"
        );
    }
    // Nothing was started or written for the machine's limits.
    let record = fs::read_to_string(sandbox.state().join("machines/res.json")).unwrap();
    assert!(!record.contains("resources"), "{record}");
}

/// `berth ARGS -f /root/machines.yaml` inside the box.
fn in_box(sbox: &SystemdBox, args: &[&str]) -> std::process::Output {
    let mut argv = vec!["berth"];
    argv.extend_from_slice(args);
    if args.first() != Some(&"destroy") {
        argv.extend_from_slice(&["-f", "/root/machines.yaml"]);
    }
    sbox.exec_timeout(&argv, Duration::from_secs(300))
}

fn box_ok(sbox: &SystemdBox, args: &[&str]) -> String {
    let out = in_box(sbox, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "berth {args:?}\n{}\n{}",
        describe(&out),
        sbox.console_tail()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn box_plan(sbox: &SystemdBox) -> (i32, String) {
    let out = in_box(sbox, &["plan", "--detailed-exitcode"]);
    (out.status.code().unwrap_or(-1), describe(&out))
}

fn box_spec(sbox: &SystemdBox, extra: &str) {
    fs::write(
        sbox.host_path("/root/machines.yaml"),
        format!(
            "machines:\n  web:\n    distro: debian\n    release: bookworm\n    packages: [systemd, systemd-sysv, dbus]\n    launcher: machinectl\n    state: running\n{extra}"
        ),
    )
    .unwrap();
}

/// `systemctl show -P PROPERTY systemd-nspawn@web.service` in the box.
fn unit_property(sbox: &SystemdBox, property: &str) -> String {
    sbox.exec_ok(&[
        "systemctl",
        "show",
        "-P",
        property,
        "systemd-nspawn@web.service",
    ])
}

#[test]
fn machinectl_devices_in_berths_drop_in_and_limits_through_set_property() {
    if !require_root("machinectl_devices_in_berths_drop_in_and_limits_through_set_property") {
        return;
    }
    let sbox = SystemdBox::boot("resources");
    sbox.install_file(
        Path::new(env!("CARGO_BIN_EXE_berth")),
        "/usr/local/bin/berth",
    );
    sbox.seed_nested_root("/var/lib/machines/web");
    // A device node of the box's own to hand to the machine (/dev/null's numbers).
    sbox.exec_ok(&["mknod", "/dev/berth-test", "c", "1", "3"]);
    let dropins = "/etc/systemd/system.control/systemd-nspawn@web.service.d";
    let device_dropin = format!("{dropins}/50-berth-DeviceAllow.conf");

    box_spec(
        &sbox,
        "    devices: [{path: /dev/berth-test, access: rw}]\n",
    );
    box_ok(&sbox, &["adopt", "web"]);
    let (rc, out) = box_plan(&sbox);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("+ allow device /dev/berth-test rw (DeviceAllow=, at the next start)")
            && out.contains("+DeviceAllow=/dev/berth-test rw"),
        "{out}"
    );
    box_ok(&sbox, &["apply", "--yes"]);
    let text = fs::read_to_string(sbox.host_path(&device_dropin)).unwrap();
    assert!(
        text.ends_with("[Service]\nDeviceAllow=/dev/berth-test rw\n"),
        "{text}"
    );
    let allowed = unit_property(&sbox, "DeviceAllow");
    assert!(
        allowed.lines().any(|l| l == "/dev/berth-test rw"),
        "{allowed}"
    );
    assert!(
        allowed.lines().any(|l| l == "/dev/net/tun rwm"),
        "the unit's own entries stay: {allowed}"
    );
    let listed = sbox.exec_ok(&[
        "systemd-run",
        "-M",
        "web",
        "--wait",
        "--pipe",
        "--quiet",
        "ls",
        "/dev/berth-test",
    ]);
    assert_eq!(listed.trim(), "/dev/berth-test");
    assert_eq!(box_plan(&sbox).0, 0, "{}", box_plan(&sbox).1);

    // Wider access: the drop-in changes live (no new Bind=, no restart).
    let leader = sbox.exec_ok(&["machinectl", "show", "web", "-p", "Leader", "--value"]);
    box_spec(
        &sbox,
        "    devices: [{path: /dev/berth-test, access: rwm}]\n",
    );
    let (rc, out) = box_plan(&sbox);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("~ change device /dev/berth-test rw -> rwm (DeviceAllow=, live)")
            && !out.contains("restart"),
        "{out}"
    );
    box_ok(&sbox, &["apply", "--yes"]);
    let allowed = unit_property(&sbox, "DeviceAllow");
    assert!(
        allowed.lines().any(|l| l == "/dev/berth-test rwm"),
        "{allowed}"
    );
    assert!(
        !allowed.lines().any(|l| l == "/dev/berth-test rw"),
        "{allowed}"
    );
    assert_eq!(
        sbox.exec_ok(&["machinectl", "show", "web", "-p", "Leader", "--value"]),
        leader
    );

    // Limits: through set-property where the box's cgroups can hold them,
    // else refused at plan time, saying why.
    let limits = "    devices: [{path: /dev/berth-test, access: rwm}]\n    resources: {memory_max: 512M, tasks_max: 500}\n";
    box_spec(&sbox, limits);
    let (rc, out) = box_plan(&sbox);
    let enforceable = sbox
        .exec(&[
            "sh",
            "-c",
            "grep -qw memory /sys/fs/cgroup/cgroup.controllers || test -w /sys/fs/cgroup/memory",
        ])
        .status
        .success();
    if enforceable {
        assert_eq!(rc, 2, "{out}");
        assert!(
            out.contains("set resources: memory_max") && out.contains("(live)"),
            "{out}"
        );
        box_ok(&sbox, &["apply", "--yes"]);
        assert_eq!(unit_property(&sbox, "MemoryMax").trim(), "536870912");
        let memory =
            fs::read_to_string(sbox.host_path(&format!("{dropins}/50-MemoryMax.conf"))).unwrap();
        assert!(memory.contains("MemoryMax=536870912"), "{memory}");
        assert_eq!(box_plan(&sbox).0, 0, "{}", box_plan(&sbox).1);
        // tasks_max leaves the spec: berth's drop-in goes, the unit's own value returns.
        box_spec(
            &sbox,
            "    devices: [{path: /dev/berth-test, access: rwm}]\n    resources: {memory_max: 512M}\n",
        );
        box_ok(&sbox, &["apply", "--yes"]);
        assert!(
            !sbox
                .host_path(&format!("{dropins}/50-TasksMax.conf"))
                .exists()
        );
        assert_eq!(box_plan(&sbox).0, 0, "{}", box_plan(&sbox).1);
    } else {
        assert_eq!(rc, 1, "{out}");
        assert!(
            out.contains("resources.memory_max cannot be enforced on this host")
                && out.contains("/sys/fs/cgroup/memory"),
            "{out}"
        );
        box_spec(
            &sbox,
            "    devices: [{path: /dev/berth-test, access: rwm}]\n",
        );
    }

    // The device leaves the spec: berth's drop-in goes.
    box_spec(&sbox, "");
    box_ok(&sbox, &["apply", "--yes"]);
    assert!(!sbox.host_path(&device_dropin).exists());
    let allowed = unit_property(&sbox, "DeviceAllow");
    assert!(!allowed.contains("/dev/berth-test"), "{allowed}");
    assert_eq!(box_plan(&sbox).0, 0, "{}", box_plan(&sbox).1);

    // destroy removes berth's drop-ins and no other.
    box_spec(
        &sbox,
        "    devices: [{path: /dev/berth-test, access: rwm}]\n",
    );
    box_ok(&sbox, &["apply", "--yes"]);
    fs::write(
        sbox.host_path(&format!("{dropins}/60-admin.conf")),
        "[Service]\nNice=1\n",
    )
    .unwrap();
    box_ok(&sbox, &["destroy", "--yes", "web"]);
    assert!(!sbox.host_path(&device_dropin).exists());
    assert!(sbox.host_path(&format!("{dropins}/60-admin.conf")).exists());
}
