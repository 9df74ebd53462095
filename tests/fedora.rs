//! Fedora machines, for real but offline: `dnf --installroot` from a local
//! rpm repository built from `tests/fixtures/fedora` (see
//! `support/rpm_repo.rs`), package drift through the host's dnf (the test
//! root has no dnf of its own), and a failed bootstrap that leaves nothing.
//! The machine is never booted (the test base has no init): `state: stopped`.
//! Needs root (fails under CI=true without it) and the Debian packages dnf,
//! rpm, createrepo-c (`scripts/install-deps` installs them).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::rpm_repo;
use crate::support::{Sandbox, code, describe, require_root};

/// Whether the tools these tests drive are installed (see [`crate::support::require_tools`]).
fn require_tools(test: &str) -> bool {
    crate::support::require_tools(test, &rpm_repo::TOOLS)
}

/// A spec with one Fedora machine per `(name, packages)`.
fn spec(url: &str, machines: &[(&str, &[&str])]) -> String {
    let mut out = format!(
        "defaults:\n  launcher: nspawn\n  state: stopped\n  distro: fedora\n  release: \"40\"\n  \
         repos: [{{id: {}, url: \"{url}\", gpgcheck: false}}]\nmachines:\n",
        rpm_repo::REPO_ID
    );
    for (name, packages) in machines {
        out.push_str(&format!(
            "  {name}:\n    packages: [{}]\n    hostname: {name}-host\n    units:\n      enable: [berth-demo]\n",
            packages.join(", ")
        ));
    }
    out
}

/// The package names in the root's rpm database, read with the host's rpm
/// the way Fedora's own rpm would find them (`/usr/lib/sysimage/rpm`).
fn installed(root: &Path) -> BTreeSet<String> {
    let out = Command::new("rpm")
        .arg(format!("--root={}", root.display()))
        .args([
            "--dbpath=/usr/lib/sysimage/rpm",
            "-qa",
            "--qf",
            "%{NAME}\\n",
        ])
        .output()
        .expect("running rpm");
    assert!(out.status.success(), "rpm -qa: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn plan(sandbox: &Sandbox, spec: &str) -> (i32, String) {
    let out = sandbox.berth(&["plan", "-f", spec, "--detailed-exitcode"]);
    (code(&out), describe(&out))
}

fn apply(sandbox: &Sandbox, spec: &str, names: &[&str]) -> (i32, String) {
    let mut args = vec!["apply", "-f", spec, "--yes"];
    args.extend(names);
    let out = sandbox.berth(&args);
    (code(&out), describe(&out))
}

fn is_enabled(root: &Path, unit: &str) -> String {
    let out = Command::new("systemctl")
        .arg(format!("--root={}", root.display()))
        .args(["is-enabled", unit])
        .output()
        .expect("systemctl");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn fedora_machine_lifecycle() {
    if !require_root("fedora_machine_lifecycle") || !require_tools("fedora_machine_lifecycle") {
        return;
    }
    let url = rpm_repo::url();
    let sandbox = Sandbox::new("fedora");
    let root = sandbox.root("fed");
    // sandbox.spec writes the one machines.yaml: each step writes its own.
    let base_yaml = spec(&url, &[("fed", &["berth-base"])]);
    let base_path = sandbox.spec(&base_yaml);
    let base = base_path.to_str().unwrap();

    // 1. The plan shows the exact dnf command and writes nothing.
    let (rc, out) = plan(&sandbox, base);
    assert_eq!(rc, 2, "{out}");
    for expected in [
        "bootstrap fedora 40 with dnf",
        "dnf --installroot=",
        ".staging/root --releasever=40 --assumeyes --setopt=install_weak_deps=False \
         --setopt=reposdir= --repofrompath=berthtest,file:///",
        "--setopt=berthtest.gpgcheck=0 --repo=berthtest install -- berth-base",
        "%_dbpath /usr/lib/sysimage/rpm",
    ] {
        assert!(
            out.contains(expected),
            "plan does not show {expected:?}:\n{out}"
        );
    }
    assert!(
        sandbox.written_files().is_empty(),
        "{:?}",
        sandbox.written_files()
    );

    // 2. apply bootstraps it, with the rpm database where Fedora's rpm looks.
    let (rc, out) = apply(&sandbox, base, &[]);
    assert_eq!(rc, 0, "{out}");
    assert!(
        installed(&root).contains("berth-base"),
        "{:?}",
        installed(&root)
    );
    assert!(root.join("usr/lib/sysimage/rpm/rpmdb.sqlite").is_file());
    assert!(
        !root.join("root/.rpmdb").exists(),
        "Debian's ~/.rpmdb leaked into the root"
    );
    assert!(
        fs::read_to_string(root.join("etc/os-release"))
            .unwrap()
            .contains("ID=fedora")
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "fed-host\n"
    );
    assert_eq!(is_enabled(&root, "berth-demo.service"), "enabled");
    assert!(sandbox.staging_left().is_empty());
    let (rc, out) = plan(&sandbox, base);
    assert_eq!(rc, 0, "a fresh machine is not converged:\n{out}");

    // 3. A package added to the spec is installed through the host's dnf.
    let more = sandbox.spec(&spec(&url, &[("fed", &["berth-base", "berth-hello"])]));
    let more = more.to_str().unwrap();
    assert_eq!(more, base);
    let (rc, out) = plan(&sandbox, more);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("berth-hello"), "{out}");
    let (rc, out) = apply(&sandbox, more, &[]);
    assert_eq!(rc, 0, "{out}");
    assert!(
        installed(&root).contains("berth-hello"),
        "{:?}",
        installed(&root)
    );
    assert!(root.join("usr/share/berth-hello/hello.txt").is_file());
    let (rc, out) = plan(&sandbox, more);
    assert_eq!(rc, 0, "{out}");

    // 4. Gone from the spec: removed (berth added it), base packages stay.
    sandbox.spec(&base_yaml);
    let (rc, out) = plan(&sandbox, base);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("berth-hello"), "{out}");
    let (rc, out) = apply(&sandbox, base, &[]);
    assert_eq!(rc, 0, "{out}");
    let now = installed(&root);
    assert!(
        !now.contains("berth-hello") && now.contains("berth-base"),
        "{now:?}"
    );
    assert!(!root.join("usr/share/berth-hello/hello.txt").exists());
    let (rc, out) = plan(&sandbox, base);
    assert_eq!(rc, 0, "{out}");

    // 5. destroy removes it.
    let out = sandbox.berth(&["destroy", "--yes", "fed"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(!root.exists());
}

#[test]
fn fedora_failures_leave_nothing_behind() {
    if !require_root("fedora_failures_leave_nothing_behind")
        || !require_tools("fedora_failures_leave_nothing_behind")
    {
        return;
    }
    let url = rpm_repo::url();
    let sandbox = Sandbox::new("fedora-fail");
    let keep = sandbox.root("keep");
    let good_yaml = spec(&url, &[("keep", &["berth-base"])]);
    let good = sandbox.spec(&good_yaml);
    let (rc, out) = apply(&sandbox, good.to_str().unwrap(), &[]);
    assert_eq!(rc, 0, "{out}");
    let before = installed(&keep);
    let record = fs::read_to_string(sandbox.state().join("machines/keep.json")).ok();

    // 1. A bootstrap that fails (a package the repository lacks) exits 1,
    //    names the package, and leaves no staging dir, root or record.
    let bad = sandbox.spec(&spec(
        &url,
        &[
            ("keep", &["berth-base"]),
            ("bad", &["berth-base", "no-such-package"]),
        ],
    ));
    let bad = bad.to_str().unwrap();
    let (rc, out) = apply(&sandbox, bad, &["bad"]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("no-such-package"), "{out}");
    assert!(
        sandbox.staging_left().is_empty(),
        "{:?}",
        sandbox.staging_left()
    );
    assert!(!sandbox.root("bad").exists());
    let status = sandbox.berth(&["status", "-f", bad, "--json", "bad"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("\"absent\""),
        "{}",
        describe(&status)
    );

    // 2. Installing it into the existing machine fails too, and changes nothing.
    let worse = sandbox.spec(&spec(&url, &[("keep", &["berth-base", "no-such-package"])]));
    let (rc, out) = apply(&sandbox, worse.to_str().unwrap(), &[]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("no-such-package"), "{out}");
    assert_eq!(installed(&keep), before);
    assert_eq!(
        fs::read_to_string(sandbox.state().join("machines/keep.json")).ok(),
        record
    );
    assert_eq!(
        fs::read_to_string(keep.join("etc/hostname")).unwrap(),
        "keep-host\n"
    );
    sandbox.spec(&good_yaml);
    let (rc, out) = plan(&sandbox, good.to_str().unwrap());
    assert_eq!(rc, 0, "{out}");

    let out = sandbox.berth(&["destroy", "--yes", "keep"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(!keep.exists());
}
