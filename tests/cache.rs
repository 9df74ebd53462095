//! The base cache and parallel apply, for real: machines of one base are
//! bootstrapped once and cloned, with distinct machine-ids; a later machine
//! of that base runs no bootstrap tool at all (it is applied with the tool
//! missing from PATH); `berth cache list|prune`.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use crate::support::{Sandbox, code, describe, require_root};

fn spec(names: &[&str]) -> String {
    let mut out = String::from(
        "defaults:\n  distro: debian\n  release: bookworm\n  bootstrapper: mmdebstrap\n  packages: [systemd, systemd-sysv, dbus]\n  launcher: nspawn\n  state: stopped\nmachines:\n",
    );
    for name in names {
        out.push_str(&format!("  {name}:\n    hostname: {name}\n"));
    }
    out
}

/// A PATH with every program of /usr/bin and /usr/sbin except the Debian
/// bootstrap tools.
fn path_without_bootstrappers(dir: &Path) -> String {
    let mut dirs = Vec::new();
    for (i, from) in ["/usr/bin", "/usr/sbin"].into_iter().enumerate() {
        let to = dir.join(format!("bin{i}"));
        fs::create_dir_all(&to).unwrap();
        for entry in fs::read_dir(from).unwrap().flatten() {
            let name = entry.file_name();
            if name == "mmdebstrap" || name == "debootstrap" {
                continue;
            }
            let _ = symlink(entry.path(), to.join(&name));
        }
        dirs.push(to.display().to_string());
    }
    dirs.join(":")
}

#[test]
fn one_bootstrap_per_base_and_clones_with_their_own_machine_id() {
    if !require_root("one_bootstrap_per_base_and_clones_with_their_own_machine_id") {
        return;
    }
    let sandbox = Sandbox::new("cache");
    let path = sandbox.spec(&spec(&["ci-1", "ci-2", "ci-3"]));
    let path_arg = path.to_str().unwrap();

    let out = sandbox.berth(&["apply", "--yes", "--jobs", "3", "-f", path_arg]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("$ mmdebstrap").count(),
        1,
        "one bootstrap for three machines:\n{err}"
    );
    for name in ["ci-1", "ci-2", "ci-3"] {
        assert!(err.contains(&format!("{name}: applied")), "{err}");
    }
    let ids: Vec<String> = ["ci-1", "ci-2", "ci-3"]
        .iter()
        .map(|n| {
            fs::read_to_string(sandbox.root(n).join("etc/machine-id"))
                .unwrap()
                .trim()
                .to_owned()
        })
        .collect();
    for id in &ids {
        assert_eq!(id.len(), 32, "{ids:?}");
    }
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "machine-ids must differ: {ids:?}"
    );
    for name in ["ci-1", "ci-2", "ci-3"] {
        assert_eq!(
            fs::read_to_string(sandbox.root(name).join("etc/hostname")).unwrap(),
            format!("{name}\n")
        );
    }
    let out = sandbox.berth(&["plan", "--detailed-exitcode", "-f", path_arg]);
    assert_eq!(code(&out), 0, "{}", describe(&out));

    let out = sandbox.berth(&["cache", "list", "--json"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        list[0][1].as_array().unwrap().len(),
        3,
        "used by all three: {list}"
    );

    // A fourth machine of the base: planned as a clone, applied with no bootstrap tool on PATH.
    let path = sandbox.spec(&spec(&["ci-1", "ci-2", "ci-3", "ci-4"]));
    let path_arg = path.to_str().unwrap();
    let out = sandbox.berth(&["plan", "-f", path_arg, "ci-4"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("as a clone of cached base"),
        "{}",
        describe(&out)
    );
    let tools = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::cargo_bin("berth")
        .unwrap()
        .env("BERTH_MACHINES_DIR", sandbox.machines())
        .env("BERTH_STATE_DIR", sandbox.state())
        .env("BERTH_NSPAWN_DIR", sandbox.nspawn())
        .env("BERTH_CACHE_DIR", sandbox.cache())
        .env("PATH", path_without_bootstrappers(tools.path()))
        .args(["apply", "--yes", "-f", path_arg, "ci-4"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        sandbox
            .root("ci-4")
            .join("usr/lib/systemd/systemd")
            .exists()
    );

    // prune keeps what managed machines were made from, then removes it once they are gone.
    let out = sandbox.berth(&["cache", "prune"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Nothing to prune"),
        "{}",
        describe(&out)
    );
    let out = sandbox.berth(&["destroy", "--yes", "ci-1", "ci-2", "ci-3", "ci-4"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let out = sandbox.berth(&["cache", "prune"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("removed"),
        "{}",
        describe(&out)
    );
    let out = sandbox.berth(&["cache", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(list.as_array().unwrap().is_empty(), "{list}");
}

#[test]
fn a_failure_in_one_machine_does_not_stop_the_others() {
    if !require_root("a_failure_in_one_machine_does_not_stop_the_others") {
        return;
    }
    let sandbox = Sandbox::new("partial");
    let yaml = format!(
        "{}  broken:\n    hostname: broken\n    packages: [no-such-package-berth]\n",
        spec(&["good"])
    );
    let path = sandbox.spec(&yaml);
    let out = sandbox.berth(&["apply", "--yes", "--json", "-f", path.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let result = |name: &str| {
        report["machines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .map(|m| m["result"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(result("good").as_deref(), Some("applied"), "{report}");
    assert_eq!(result("broken").as_deref(), Some("failed"), "{report}");
    assert!(sandbox.root("good").join("etc/hostname").exists());
    assert!(!sandbox.root("broken").exists());
}

/// A loop-mounted btrfs filesystem, unmounted (lazily if busy) on drop.
struct LoopBtrfs {
    dir: tempfile::TempDir,
}

impl LoopBtrfs {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-btrfs-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let image = dir.path().join("img");
        let run = |cmd: &mut std::process::Command| {
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(std::process::Command::new("truncate")
            .args(["-s", "3G"])
            .arg(&image));
        run(std::process::Command::new("mkfs.btrfs")
            .arg("-q")
            .arg(&image));
        fs::create_dir(dir.path().join("mnt")).unwrap();
        run(std::process::Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(dir.path().join("mnt")));
        LoopBtrfs { dir }
    }

    fn mnt(&self) -> std::path::PathBuf {
        self.dir.path().join("mnt")
    }
}

impl Drop for LoopBtrfs {
    fn drop(&mut self) {
        let mnt = self.mnt();
        let out = std::process::Command::new("umount").arg(&mnt).output();
        if !out.is_ok_and(|o| o.status.success()) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&mnt)
                .output();
        }
    }
}

#[test]
fn on_btrfs_the_base_is_a_subvolume_and_machines_are_snapshots_of_it() {
    if !require_root("on_btrfs_the_base_is_a_subvolume_and_machines_are_snapshots_of_it") {
        return;
    }
    // Runs alone: a loop-mounted btrfs on the host (see support::exclusive).
    let _alone = crate::support::exclusive();
    let sandbox = Sandbox::new("btrfs");
    let fs_ = LoopBtrfs::new();
    let machines = fs_.mnt().join("machines");
    let cache = fs_.mnt().join("cache");
    let path = sandbox.spec(&spec(&["snap-1", "snap-2"]));
    let berth = |args: &[&str]| {
        assert_cmd::Command::cargo_bin("berth")
            .unwrap()
            .env("BERTH_MACHINES_DIR", &machines)
            .env("BERTH_STATE_DIR", sandbox.state())
            .env("BERTH_NSPAWN_DIR", sandbox.nspawn())
            .env("BERTH_CACHE_DIR", &cache)
            .args(args)
            .output()
            .unwrap()
    };
    let out = berth(&["apply", "--yes", "-f", path.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let list = std::process::Command::new("btrfs")
        .args(["subvolume", "list"])
        .arg(fs_.mnt())
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for expected in ["path machines/snap-1", "path machines/snap-2", "/root"] {
        assert!(
            list.contains(expected),
            "{expected} is not a subvolume:\n{list}"
        );
    }
    let ids: Vec<String> = ["snap-1", "snap-2"]
        .iter()
        .map(|n| fs::read_to_string(machines.join(n).join("etc/machine-id")).unwrap())
        .collect();
    assert_ne!(ids[0], ids[1]);
    let out = berth(&["destroy", "--yes", "snap-1", "snap-2"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let out = berth(&["cache", "prune", "--all"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let list = std::process::Command::new("btrfs")
        .args(["subvolume", "list"])
        .arg(fs_.mnt())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&list.stdout).trim().is_empty(),
        "subvolumes left behind"
    );
}
