//! Debian bootstrappers beyond the core lifecycle, for real: mmdebstrap
//! boots a root; packages added to and removed from the spec are installed
//! and removed (in the running guest, and through systemd-nspawn on a
//! stopped root); a changed bootstrapper is a replacement apply refuses
//! without --replace; a bad package, a broken mirror and a missing tool fail
//! clearly and leave nothing behind.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::{Sandbox, code, describe, require_root};

fn spec(packages: &str, state: &str, bootstrapper: &str) -> String {
    format!(
        r#"machines:
  deb:
    distro: debian
    release: bookworm
    bootstrapper: {bootstrapper}
    packages: [systemd, systemd-sysv, dbus{packages}]
    launcher: nspawn
    state: {state}
"#
    )
}

fn dpkg_status(root: &Path, package: &str) -> String {
    let out = Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f=${Status}", package])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn plan_rc(sandbox: &Sandbox, spec: &Path) -> (i32, String) {
    let out = sandbox.berth(&["plan", "-f", spec.to_str().unwrap(), "--detailed-exitcode"]);
    (code(&out), describe(&out))
}

fn apply(sandbox: &Sandbox, spec: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["apply", "--yes", "-f", spec.to_str().unwrap()];
    args.extend_from_slice(extra);
    sandbox.berth(&args)
}

#[test]
fn mmdebstrap_boots_and_packages_follow_the_spec() {
    if !require_root("mmdebstrap_boots_and_packages_follow_the_spec") {
        return;
    }
    let sandbox = Sandbox::new("mmdebstrap");
    let root = sandbox.root("deb");
    let path = sandbox.spec(&spec("", "running", "mmdebstrap"));

    let (rc, out) = plan_rc(&sandbox, &path);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("$ mmdebstrap "), "{out}");
    let out = apply(&sandbox, &path, &[]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("$ mmdebstrap "),
        "the command is shown while applying"
    );
    let status = sandbox.berth(&["status", "--json", "-f", path.to_str().unwrap()]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let system = status[0]["system_state"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(system == "running" || system == "degraded", "{status}");
    let machine_id = fs::read_to_string(root.join("etc/machine-id")).unwrap();
    assert_eq!(
        machine_id.trim().len(),
        32,
        "a fresh machine-id: {machine_id:?}"
    );
    assert_eq!(plan_rc(&sandbox, &path).0, 0);

    // Added while running: installed inside the guest.
    let path = sandbox.spec(&spec(", curl", "running", "mmdebstrap"));
    let (rc, out) = plan_rc(&sandbox, &path);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("install curl"), "{out}");
    let out = apply(&sandbox, &path, &[]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(dpkg_status(&root, "curl"), "install ok installed");
    assert_eq!(plan_rc(&sandbox, &path).0, 0);

    // Stopped: added through systemd-nspawn --pipe, removed likewise.
    let path = sandbox.spec(&spec(", curl", "stopped", "mmdebstrap"));
    assert_eq!(code(&apply(&sandbox, &path, &[])), 0);
    let path = sandbox.spec(&spec(", less", "stopped", "mmdebstrap"));
    let (rc, out) = plan_rc(&sandbox, &path);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("install less") && out.contains("remove curl"),
        "{out}"
    );
    let out = apply(&sandbox, &path, &[]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(dpkg_status(&root, "less"), "install ok installed");
    assert_ne!(dpkg_status(&root, "curl"), "install ok installed");
    assert_eq!(plan_rc(&sandbox, &path).0, 0);

    // A base package leaving the spec is kept, with a warning.
    let base_gone = sandbox.spec(&spec(", less", "stopped", "mmdebstrap").replace(", dbus", ""));
    let (rc, out) = plan_rc(&sandbox, &base_gone);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("never removes base packages"), "{out}");

    // Another bootstrapper: a replacement, refused without --replace.
    let other = sandbox.spec(&spec(", less", "stopped", "debootstrap"));
    let (rc, out) = plan_rc(&sandbox, &other);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("-/+ replace debian bookworm (mmdebstrap)"),
        "{out}"
    );
    let before = fs::read_to_string(root.join("etc/machine-id")).unwrap();
    let out = apply(&sandbox, &other, &[]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--replace deb"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/machine-id")).unwrap(),
        before,
        "the root was touched"
    );

    // A package that does not exist: a clear error, the machine untouched.
    let bad = sandbox.spec(&spec(
        ", less, no-such-package-berth",
        "stopped",
        "mmdebstrap",
    ));
    let out = apply(&sandbox, &bad, &[]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-package-berth"),
        "{}",
        describe(&out)
    );
    assert_eq!(dpkg_status(&root, "less"), "install ok installed");

    let out = sandbox.berth(&["destroy", "--yes", "deb"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(sandbox.staging_left().is_empty());
}

#[test]
fn failed_bootstraps_leave_no_staging_directory() {
    if !require_root("failed_bootstraps_leave_no_staging_directory") {
        return;
    }
    let sandbox = Sandbox::new("badboot");
    for (tool, extra) in [
        ("mmdebstrap", "    packages: [no-such-package-berth]\n"),
        ("debootstrap", "    packages: [no-such-package-berth]\n"),
        ("mmdebstrap", "    mirror: http://127.0.0.1:9/debian\n"),
        ("debootstrap", "    mirror: http://127.0.0.1:9/debian\n"),
    ] {
        let path = sandbox.spec(&format!(
            "machines:\n  bad:\n    distro: debian\n    release: bookworm\n    bootstrapper: {tool}\n    launcher: nspawn\n{extra}"
        ));
        let out = apply(&sandbox, &path, &[]);
        assert_eq!(code(&out), 1, "{tool} {extra}: {}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(tool) && err.contains("failed"),
            "{tool}: {err}"
        );
        assert!(
            sandbox.staging_left().is_empty(),
            "{tool}: staging left: {:?}",
            sandbox.staging_left()
        );
        assert!(!sandbox.root("bad").exists());
    }
}

#[test]
fn a_missing_bootstrap_tool_is_named_with_its_package() {
    let sandbox = Sandbox::new("notool");
    let path = sandbox.spec(&spec("", "stopped", "debootstrap"));
    let out = assert_cmd::Command::cargo_bin("berth")
        .unwrap()
        .env("BERTH_MACHINES_DIR", sandbox.machines())
        .env("BERTH_STATE_DIR", sandbox.state())
        .env("BERTH_NSPAWN_DIR", sandbox.nspawn())
        .env("BERTH_CACHE_DIR", sandbox.cache())
        .env("PATH", "/nonexistent")
        .args(["plan", "-f", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("debootstrap is not installed") && err.contains("package `debootstrap`"),
        "{err}"
    );
    assert!(sandbox.written_files().is_empty());
}
