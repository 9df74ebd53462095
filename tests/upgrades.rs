//! Issue 14, for real: upgrades and health checks on a booted Debian
//! bookworm machine (the nspawn launcher). The test builds a local apt
//! repository (`dpkg-deb --build`, `dpkg-scanpackages`) holding
//! `berth-hello`, whose `berth-hello.service` stays active, bound read-only
//! into the guest at /srv/repo as its only apt source. 1.0 is installed
//! through the spec's `packages`; with 2.0 published, `plan --upgrade`
//! shows `berth-hello 1.0 -> 2.0` and `apply --upgrade` installs it; 3.0's
//! postinst breaks the unit, so `apply --upgrade` with `health: {units:
//! [berth-hello]}` fails, rolls back to the `before-upgrade` snapshot on its
//! own (2.0 again, the unit active) and exits 1. Stopped, the machine's
//! upgrades are listed through `systemd-nspawn --pipe`. A normal apply's
//! health command that fails fails the apply, naming the check, and is
//! rolled back when `snapshots: {before_apply: true}` took a snapshot.
//! Needs root, dpkg-dev and the Debian mirror (for the bootstrap only).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::berth::Berth;
use crate::support::{Sandbox, require_root, require_tools};

/// The unit every version ships.
const UNIT: &str = "[Unit]\nDescription=berth test service\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n";

/// The postinst of a good version: the unit enabled and (re)started.
pub(crate) const POSTINST: &str = "#!/bin/sh\nset -e\nsystemctl enable berth-hello.service || true\n\
if [ -d /run/systemd/system ]; then\n  systemctl daemon-reload || true\n  systemctl restart berth-hello.service || true\nfi\nexit 0\n";

/// 3.0's postinst: a drop-in makes the service exit at once, then restarts it.
const BROKEN_POSTINST: &str = "#!/bin/sh\nset -e\nmkdir -p /etc/systemd/system/berth-hello.service.d\n\
printf '[Service]\\nExecStart=\\nExecStart=/bin/false\\n' > /etc/systemd/system/berth-hello.service.d/broken.conf\n\
systemctl enable berth-hello.service || true\n\
if [ -d /run/systemd/system ]; then\n  systemctl daemon-reload || true\n  systemctl restart berth-hello.service || true\nfi\nexit 0\n";

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("running a command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(path: &Path, text: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Builds `berth-hello_VERSION_all.deb` into `repo` and rewrites the
/// repository's index (`Packages`, and a `Release` listing it).
pub(crate) fn publish(work: &Path, repo: &Path, version: &str, postinst: &str) {
    let tree = work.join(format!("berth-hello-{version}"));
    write(
        &tree.join("DEBIAN/control"),
        &format!(
            "Package: berth-hello\nVersion: {version}\nArchitecture: all\n\
             Maintainer: berth tests <tests@example.org>\nDescription: berth's upgrade test package\n"
        ),
        0o644,
    );
    write(&tree.join("DEBIAN/postinst"), postinst, 0o755);
    write(
        &tree.join("lib/systemd/system/berth-hello.service"),
        UNIT,
        0o644,
    );
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&tree)
        .arg(repo.join(format!("berth-hello_{version}_all.deb"))));
    let out = Command::new("dpkg-scanpackages")
        .args(["--multiversion", "."])
        .current_dir(repo)
        .output()
        .expect("dpkg-scanpackages");
    assert!(out.status.success(), "{out:?}");
    fs::write(repo.join("Packages"), &out.stdout).unwrap();
    let sha = Command::new("sha256sum")
        .arg("Packages")
        .current_dir(repo)
        .output()
        .expect("sha256sum");
    let sum = String::from_utf8_lossy(&sha.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    fs::write(
        repo.join("Release"),
        format!(
            "Suite: berth-test\nCodename: berth-test\nSHA256:\n {sum} {} Packages\n",
            out.stdout.len()
        ),
    )
    .unwrap();
}

fn spec(repo: &Path, packages: &str, extra: &str) -> String {
    format!(
        "machines:\n  up:\n    distro: debian\n    release: bookworm\n    \
         packages: [systemd, systemd-sysv, dbus{packages}]\n    launcher: nspawn\n    \
         state: running\n    binds:\n      - {{host: {}, machine: /srv/repo, read_only: true}}\n    \
         files:\n      /etc/apt/sources.list: {{content: \"deb [trusted=yes] file:/srv/repo ./\\n\"}}\n      \
         /etc/apt/sources.list.d/debian.sources: {{state: absent}}\n{extra}",
        repo.display()
    )
}

/// The version of berth-hello installed in the guest.
fn installed(sandbox: &Sandbox) -> String {
    installed_in(sandbox.berth_cmd(), "up")
}

/// The version of berth-hello installed in `machine`, asked with `berth`
/// (`berth exec MACHINE -- dpkg-query ...`, on whatever host it is).
pub(crate) fn installed_in(berth: Berth, machine: &str) -> String {
    let out = berth
        .args([
            "exec",
            machine,
            "--",
            "dpkg-query",
            "-W",
            "-f",
            "${Version}",
            "berth-hello",
        ])
        .run();
    out.success().stdout().trim().to_owned()
}

/// Waits (up to 30 s) until berth-hello.service is active in the guest.
fn wait_active(sandbox: &Sandbox) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = sandbox
            .berth_cmd()
            .args([
                "exec",
                "up",
                "--",
                "systemctl",
                "is-active",
                "berth-hello.service",
            ])
            .run();
        let state = out.stdout().trim().to_owned();
        if state == "active" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "berth-hello.service is {state:?}, not active"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn upgrade_then_roll_back_a_broken_one() {
    if !require_root("upgrade_then_roll_back_a_broken_one")
        || !require_tools(
            "upgrade_then_roll_back_a_broken_one",
            &[("dpkg-deb", "dpkg"), ("dpkg-scanpackages", "dpkg-dev")],
        )
    {
        return;
    }
    let sandbox = Sandbox::new("upgrades");
    let berth = || sandbox.berth_cmd();
    let work = sandbox.dir.path().join("debs");
    let repo = sandbox.dir.path().join("repo");
    fs::create_dir_all(&repo).unwrap();
    fs::set_permissions(&repo, fs::Permissions::from_mode(0o755)).unwrap();
    publish(&work, &repo, "1.0", POSTINST);

    // The machine, its apt reading only the local repository; then 1.0
    // through the spec's packages.
    berth()
        .spec(&spec(&repo, "", ""))
        .args(["apply", "--yes"])
        .run()
        .success();
    berth()
        .spec(&spec(&repo, ", berth-hello", ""))
        .args(["apply", "--yes"])
        .run()
        .success();
    assert_eq!(installed(&sandbox), "1.0");
    wait_active(&sandbox);
    let with_hello = spec(&repo, ", berth-hello", "");
    // Nothing newer: plan --upgrade is clean.
    berth()
        .spec(&with_hello)
        .args(["plan", "--upgrade", "--detailed-exitcode"])
        .run()
        .code(0)
        .stdout_has("is up to date");

    // 2.0: shown, then installed.
    publish(&work, &repo, "2.0", POSTINST);
    berth()
        .spec(&with_hello)
        .args(["plan", "--upgrade", "--detailed-exitcode", "up"])
        .run()
        .code(2)
        .stdout_has("~ upgrade packages (apt-get dist-upgrade): berth-hello 1.0 -> 2.0");
    let json = berth()
        .spec(&with_hello)
        .args(["plan", "--upgrade", "--json"])
        .run()
        .success()
        .json();
    let action = &json["machines"][0]["actions"][0];
    assert_eq!(action["action"], "upgrade-packages", "{json}");
    assert_eq!(
        action["packages"],
        serde_json::json!([{"name": "berth-hello", "from": "1.0", "to": "2.0"}]),
        "{json}"
    );
    // A plain plan does not upgrade.
    berth()
        .spec(&with_hello)
        .args(["plan", "--detailed-exitcode"])
        .run()
        .code(0);
    let out = berth()
        .spec(&with_hello)
        .args(["apply", "--upgrade", "--yes"])
        .run();
    out.success()
        .stdout_has("berth-hello 1.0 -> 2.0")
        .stderr_has("took snapshot before-upgrade-");
    assert_eq!(installed(&sandbox), "2.0");
    wait_active(&sandbox);
    berth()
        .args(["snapshots", "up"])
        .run()
        .success()
        .stdout_has("before-upgrade-")
        .stdout_has("before-upgrade\n");

    // 3.0 breaks its unit: the health check fails, berth rolls back.
    publish(&work, &repo, "3.0", BROKEN_POSTINST);
    let checked = spec(
        &repo,
        ", berth-hello",
        "    health: {units: [berth-hello], timeout: 15s}\n",
    );
    let out = berth()
        .spec(&checked)
        .args(["apply", "--upgrade", "--yes"])
        .run();
    out.code(1)
        .stdout_has("berth-hello 2.0 -> 3.0")
        .stderr_has("health check failed: unit berth-hello.service is failed")
        .stderr_has("rolled back to snapshot before-upgrade-")
        .stderr_has("1 failed");
    assert_eq!(installed(&sandbox), "2.0");
    wait_active(&sandbox);
    assert!(
        !sandbox
            .root("up")
            .join("etc/systemd/system/berth-hello.service.d/broken.conf")
            .exists()
    );
    berth()
        .args(["snapshots", "up"])
        .run()
        .success()
        .stdout_has("pre-rollback-");

    // A stopped machine: its upgrades are asked in its root through
    // systemd-nspawn --pipe; it stays stopped.
    let stopped = checked.replace("state: running", "state: stopped");
    berth()
        .spec(&stopped)
        .args(["apply", "--yes"])
        .run()
        .success();
    berth()
        .spec(&stopped)
        .args(["plan", "--upgrade"])
        .run()
        .success()
        .stdout_has("berth-hello 2.0 -> 3.0");
    let status = berth()
        .spec(&stopped)
        .args(["status", "--json"])
        .run()
        .success()
        .json();
    assert_eq!(status[0]["state"], "stopped", "{status}");
    berth()
        .spec(&checked)
        .args(["apply", "--yes"])
        .run()
        .success();
    wait_active(&sandbox);

    // Health on a normal apply: a command that fails fails the apply,
    // naming the check; there is no snapshot of this apply to roll back to.
    let failing = spec(
        &repo,
        ", berth-hello",
        "      /etc/motd: {content: \"health\\n\"}\n    \
         health: {units: [berth-hello.service], command: [sh, -c, 'exit 3'], timeout: 3s}\n",
    );
    let out = berth().spec(&failing).args(["apply", "--yes"]).run();
    out.code(1)
        .stderr_has("health check failed: command `sh -c exit 3` exited with status 3")
        .stderr_lacks("rolled back");
    assert_eq!(
        fs::read_to_string(sandbox.root("up").join("etc/motd")).unwrap(),
        "health\n"
    );
    // With a before_apply snapshot, the failed apply is rolled back.
    let rolled_back = spec(
        &repo,
        ", berth-hello",
        "      /etc/motd: {content: \"broken\\n\"}\n    \
         snapshots: {before_apply: true}\n    \
         health: {command: [sh, -c, 'exit 3'], timeout: 3s}\n",
    );
    berth()
        .spec(&rolled_back)
        .args(["apply", "--yes"])
        .run()
        .code(1)
        .stderr_has("health check failed: command `sh -c exit 3` exited with status 3")
        .stderr_has("rolled back to snapshot before-apply-");
    assert_eq!(
        fs::read_to_string(sandbox.root("up").join("etc/motd")).unwrap(),
        "health\n"
    );
    wait_active(&sandbox);
    let passing = spec(
        &repo,
        ", berth-hello",
        "      /etc/motd: {content: \"healthy\\n\"}\n    \
         health: {units: [berth-hello.service], command: [test, -s, /etc/motd]}\n",
    );
    berth()
        .spec(&passing)
        .args(["apply", "--yes"])
        .run()
        .success()
        .stderr_has("healthy");

    berth()
        .spec(&passing)
        .args(["destroy", "--yes", "up"])
        .run()
        .success();
}

#[test]
fn upgrade_does_not_go_with_saved_plans_or_destroy() {
    let sandbox = Sandbox::new("upgrade-flags");
    let spec = "machines:\n  up:\n    distro: debian\n    release: bookworm\n";
    sandbox
        .berth_cmd()
        .spec(spec)
        .args(["plan", "--upgrade", "--out", "up.plan"])
        .run()
        .code(1)
        .stderr_has("cannot be used with '--out");
    sandbox
        .berth_cmd()
        .spec(spec)
        .args(["plan", "--upgrade", "--destroy", "up"])
        .run()
        .code(1)
        .stderr_has("cannot be used with");
    sandbox
        .berth_cmd()
        .spec(spec)
        .args(["plan", "--out", "up.plan"])
        .run()
        .success();
    sandbox
        .berth_cmd()
        .spec(spec)
        .args(["apply", "--upgrade", "./up.plan"])
        .run()
        .code(1)
        .stderr_has("--upgrade does not go with a saved plan");
    assert!(sandbox.written_files().is_empty());
}
