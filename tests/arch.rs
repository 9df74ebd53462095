//! Arch machines, for real but offline: pacstrap from a local pacman
//! repository built from `tests/fixtures/arch` (see
//! `support/pacman_repo.rs`), package drift through the host's pacman, and
//! the pacstrap command line berth plans for the example's Arch machine.
//! The machine is never booted (the test `base` has no init): `state: stopped`.
//! Needs root (fails under CI=true without it) and the Debian packages
//! arch-install-scripts, pacman-package-manager, makepkg, libarchive-tools
//! (`scripts/install-deps` installs them).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::pacman_repo;
use crate::support::{Sandbox, code, describe, require_root};

const HASH: &str = "$6$berthsalt$0qRJluiQdW/xyOsvNsop/hQkAUC16BfDuTQ.ksG1rN/QrLg4mtrYciRYIknq2GOIQBi.pIdIW.KP/d6yXWbI31"; // openssl passwd -6 -salt berthsalt r00tpw

/// Whether the tools these tests drive are installed (see [`crate::support::require_tools`]).
fn require_tools(test: &str) -> bool {
    crate::support::require_tools(test, &pacman_repo::TOOLS)
}

/// A sandbox with `pacman.conf` (pointing at the test repository) beside
/// its spec.
fn arch_sandbox(prefix: &str) -> (Sandbox, PathBuf) {
    let repo = pacman_repo::repo();
    let sandbox = Sandbox::new(prefix);
    let conf = sandbox.dir.path().join("pacman.conf");
    pacman_repo::write_pacman_conf(&conf, &repo);
    (sandbox, conf)
}

fn spec(packages: &[&str]) -> String {
    format!(
        r#"machines:
  arch:
    distro: arch
    packages: [{}]
    pacman_conf: ./pacman.conf
    hostname: arch-test
    units:
      enable: [berth-hello]
    root_password:
      hash: '{HASH}'
    securetty: [pts/0]
    launcher: nspawn
    state: stopped
"#,
        packages.join(", ")
    )
}

fn plan_code(sandbox: &Sandbox, spec: &str) -> (i32, String) {
    let out = sandbox.berth(&["plan", "-f", spec, "--detailed-exitcode"]);
    (code(&out), describe(&out))
}

fn plan_json(sandbox: &Sandbox, spec: &str) -> serde_json::Value {
    let out = sandbox.berth(&["plan", "-f", spec, "--json"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    serde_json::from_slice(&out.stdout).expect("plan --json")
}

/// The bootstrap action's command line in a `plan --json` of one machine.
fn bootstrap_command(plan: &serde_json::Value) -> Vec<String> {
    let actions = plan["machines"][0]["actions"].as_array().expect("actions");
    let bootstrap = actions
        .iter()
        .find(|a| a["action"] == "bootstrap")
        .unwrap_or_else(|| panic!("no bootstrap action in {plan}"));
    serde_json::from_value(bootstrap["command"].clone()).expect("a command line")
}

/// Whether the installed pacstrap still has `-d` (its usage lists it).
fn pacstrap_has_d() -> bool {
    let out = Command::new("pacstrap").arg("-h").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.split_whitespace().next() == Some("-d"))
}

/// The flags berth must pass on this host besides `-C`: `-d` only for a
/// pacstrap that has it, `-G` without a host keyring, `-M` without a host
/// mirror list.
fn host_flags() -> (bool, bool, bool) {
    (
        pacstrap_has_d(),
        !Path::new("/etc/pacman.d/gnupg").is_dir(),
        !Path::new("/etc/pacman.d/mirrorlist").is_file(),
    )
}

/// `pacman -Qq` on the root, with the host's pacman and the root's database.
fn installed(root: &Path) -> Vec<String> {
    let out = Command::new("pacman")
        .arg("--root")
        .arg(root)
        .arg("--dbpath")
        .arg(root.join("var/lib/pacman"))
        .arg("-Qq")
        .output()
        .unwrap();
    assert!(out.status.success(), "pacman -Qq: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The bootstrap target in `cmd`: a staging dir of the sandbox's base cache
/// (`CACHE/bases/.ID.staging/root`), where a bootstrap runs before the
/// cache entry is renamed into place and the machine cloned from it.
fn cache_staging(sandbox: &Sandbox, cmd: &[String]) -> std::path::PathBuf {
    let bases = sandbox.cache().join("bases");
    let target = cmd
        .iter()
        .find(|a| a.starts_with(&bases.display().to_string()))
        .unwrap_or_else(|| panic!("no target under {} in {cmd:?}", bases.display()));
    assert!(target.ends_with(".staging/root"), "{target}");
    std::path::PathBuf::from(target)
}

#[test]
fn arch_machine_lifecycle() {
    if !require_root("arch_machine_lifecycle") || !require_tools("arch_machine_lifecycle") {
        return;
    }
    let (sandbox, conf) = arch_sandbox("arch");
    let path = sandbox.spec(&spec(&["base"]));
    let spec_arg = path.to_str().unwrap();
    let root = sandbox.root("arch");

    // 1. The plan shows pacstrap's exact command line and writes nothing.
    let (rc, out) = plan_code(&sandbox, spec_arg);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("$ pacstrap "), "{out}");
    let cmd = bootstrap_command(&plan_json(&sandbox, spec_arg));
    let staging = cache_staging(&sandbox, &cmd);
    let (has_d, no_keyring, no_mirrorlist) = host_flags();
    let mut expected = vec!["pacstrap".to_owned()];
    if has_d {
        expected.push("-d".into());
    }
    expected.extend(["-C".to_owned(), conf.display().to_string()]);
    if no_keyring {
        expected.push("-G".into());
    }
    if no_mirrorlist {
        expected.push("-M".into());
    }
    expected.extend([staging.display().to_string(), "base".to_owned()]);
    assert_eq!(cmd, expected);
    assert!(!cmd.iter().any(|a| a == "-i" || a == "-c"), "{cmd:?}");
    assert!(sandbox.written_files().is_empty());

    // 2. apply bootstraps and configures the root.
    let out = sandbox.berth(&["apply", "-f", spec_arg, "--yes"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(sandbox.staging_left().is_empty());
    assert_eq!(installed(&root), ["base"]);
    assert_eq!(
        fs::read_to_string(root.join("usr/share/berth/base")).unwrap(),
        "base\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "arch-test\n"
    );
    let shadow = fs::read_to_string(root.join("etc/shadow")).unwrap();
    assert!(shadow.starts_with(&format!("root:{HASH}:")), "{shadow}");
    let enabled = Command::new("systemctl")
        .arg(format!("--root={}", root.display()))
        .args(["is-enabled", "berth-hello.service"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&enabled.stdout).trim(), "enabled");
    let status = sandbox.berth(&["status", "-f", spec_arg, "--json"]);
    assert_eq!(code(&status), 0, "{}", describe(&status));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status[0]["state"], "stopped", "{status}");
    let (rc, out) = plan_code(&sandbox, spec_arg);
    assert_eq!(rc, 0, "{out}");

    // 3. A package added to the spec is installed (with the host's pacman:
    //    the test base has none of its own).
    let more = sandbox.spec(&spec(&["base", "hello-berth"]));
    let more_arg = more.to_str().unwrap();
    let (rc, out) = plan_code(&sandbox, more_arg);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("hello-berth") && out.contains("pacman"),
        "{out}"
    );
    let plan = plan_json(&sandbox, more_arg);
    let actions = plan["machines"][0]["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{plan}");
    assert_eq!(actions[0]["action"], "install-packages", "{plan}");
    assert_eq!(actions[0]["packages"], serde_json::json!(["hello-berth"]));
    let out = sandbox.berth(&["apply", "-f", more_arg, "--yes"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(installed(&root), ["base", "hello-berth"]);
    assert!(root.join("usr/share/berth/hello-berth").is_file());
    let (rc, out) = plan_code(&sandbox, more_arg);
    assert_eq!(rc, 0, "{out}");

    // 4. Removed from the spec, it is removed from the root (the sandbox
    //    has one machines.yaml: write the first spec again).
    sandbox.spec(&spec(&["base"]));
    let (rc, out) = plan_code(&sandbox, spec_arg);
    assert_eq!(rc, 2, "{out}");
    let plan = plan_json(&sandbox, spec_arg);
    let actions = plan["machines"][0]["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{plan}");
    assert_eq!(actions[0]["action"], "remove-packages", "{plan}");
    assert_eq!(actions[0]["packages"], serde_json::json!(["hello-berth"]));
    let out = sandbox.berth(&["apply", "-f", spec_arg, "--yes"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(installed(&root), ["base"]);
    assert!(!root.join("usr/share/berth/hello-berth").exists());
    let (rc, out) = plan_code(&sandbox, spec_arg);
    assert_eq!(rc, 0, "{out}");

    // 5. destroy removes it.
    let out = sandbox.berth(&["destroy", "--yes", "arch"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(!root.exists());
    assert!(sandbox.staging_left().is_empty());
}

#[test]
fn a_missing_package_fails_the_bootstrap_and_leaves_no_staging_dir() {
    if !require_root("a_missing_package_fails_the_bootstrap")
        || !require_tools("a_missing_package_fails_the_bootstrap")
    {
        return;
    }
    let (sandbox, _conf) = arch_sandbox("arch-missing");
    let path = sandbox.spec(&spec(&["base", "no-such-pkg"]));
    let out = sandbox.berth(&["apply", "-f", path.to_str().unwrap(), "--yes"]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    // The command line names the package too: require pacman's own words
    // (from the log tail the error carries).
    assert!(
        err.contains("pacstrap") && err.contains("target not found: no-such-pkg"),
        "{}",
        describe(&out)
    );
    assert!(
        sandbox.staging_left().is_empty(),
        "{:?}",
        sandbox.staging_left()
    );
    assert!(!sandbox.root("arch").exists());
    // Nothing pacstrap mounted is left behind.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    for dir in [sandbox.machines(), sandbox.cache()] {
        assert!(
            !mounts.contains(dir.to_str().unwrap()),
            "mounts left under {}",
            dir.display()
        );
    }
}

/// The example's Arch machine (the article's `pacstrap -i -c -d ...
/// --noconfirm base base-devel`), as berth plans it on this host.
#[test]
fn the_examples_arch_machine_plans_pacstrap_without_i_or_d() {
    if !require_tools("the_examples_arch_machine_plans_pacstrap") {
        return;
    }
    let sandbox = Sandbox::new("arch-example");
    let example =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../machines.example.yaml"))
            .unwrap();
    assert!(example.contains("    launcher: machinectl\n"));
    let path = sandbox.spec(&example);
    let spec_arg = path.to_str().unwrap();

    // As written (launcher: machinectl): plan it where the launcher works,
    // else plan a copy with launcher nspawn.
    let out = sandbox.berth(&["plan", "-f", spec_arg, "--json", "archcontainer"]);
    let plan: serde_json::Value = if code(&out) == 0 {
        serde_json::from_slice(&out.stdout).unwrap()
    } else {
        eprintln!(
            "the example as written does not plan on this host, planning it with launcher nspawn:\n{}",
            describe(&out)
        );
        let nspawn =
            sandbox.spec(&example.replace("    launcher: machinectl\n", "    launcher: nspawn\n"));
        let nspawn_arg = nspawn.to_str().unwrap();
        let out = sandbox.berth(&["plan", "-f", nspawn_arg, "--json", "archcontainer"]);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(plan["machines"][0]["name"], "archcontainer", "{plan}");
    let cmd = bootstrap_command(&plan);
    eprintln!("planned: {}", cmd.join(" "));
    assert_eq!(cmd[0], "pacstrap");
    assert!(!cmd.iter().any(|a| a == "-i"), "{cmd:?}");
    assert!(!cmd.iter().any(|a| a == "--noconfirm"), "{cmd:?}");
    assert_eq!(cmd.iter().any(|a| a == "-d"), pacstrap_has_d(), "{cmd:?}");
    let staging = cache_staging(&sandbox, &cmd);
    let n = cmd.len();
    assert_eq!(
        cmd[n - 3..],
        [
            staging.display().to_string(),
            "base".to_owned(),
            "base-devel".to_owned()
        ]
    );
    // No host_cache in the example: the target's own cache, not the host's.
    assert!(!cmd.iter().any(|a| a == "-c"), "{cmd:?}");
    assert!(sandbox.written_files().is_empty());
}
