//! berth's native readers against the real tools, on a real bootstrapped
//! Debian root: unit enablement (read from unit files and links) against
//! `systemctl --root is-enabled` for every unit in the root, before and
//! after enabling, disabling and masking some; installed packages (read
//! from dpkg's status file) against `dpkg-query`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::support::require_root;
use crate::support::systemd_box;
use berth_engine::Root;
use berth_engine::packages::{Apt, PackageManager};
use berth_engine::units::{self, UnitState};

/// Every unit file name in the root's unit directories.
fn all_units(root: &Path) -> Vec<String> {
    let mut names = BTreeSet::new();
    for dir in ["usr/lib/systemd/system", "etc/systemd/system"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let is_unit = [
                    ".service", ".socket", ".timer", ".target", ".path", ".mount",
                ]
                .iter()
                .any(|s| name.ends_with(s));
                if is_unit && entry.file_type().is_ok_and(|t| !t.is_dir()) {
                    names.insert(name);
                }
            }
        }
    }
    names.into_iter().collect()
}

/// This host (berth's directories are not used by these readers).
fn local_host() -> berth_engine::host::LocalHost {
    berth_engine::host::LocalHost::new(berth_engine::Paths {
        machines_dir: "/nonexistent/machines".into(),
        state_dir: "/nonexistent/state".into(),
        nspawn_dir: "/nonexistent/nspawn".into(),
        cache_dir: "/nonexistent/cache".into(),
    })
}

/// Compares native and systemctl states for every unit; returns how many were compared.
fn compare_all(root: &Path) -> usize {
    let units = all_units(root);
    let refs: Vec<&str> = units.iter().map(String::as_str).collect();
    let native = units::states(root, &refs).unwrap();
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for (unit, native) in units.iter().zip(native) {
        let reference = units::systemctl_states(&local_host(), root, &[unit.as_str()])
            .unwrap()
            .remove(0);
        // States berth does not manage are compared only as "not one of ours".
        let comparable = matches!(
            reference,
            UnitState::Enabled | UnitState::Disabled | UnitState::Masked | UnitState::NotFound
        ) || matches!(&reference, UnitState::Other(s) if s == "static" || s == "indirect");
        if !comparable {
            continue;
        }
        compared += 1;
        if native != reference {
            mismatches.push(format!(
                "{unit}: native {native:?}, systemctl {reference:?}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "native unit states differ:\n{}",
        mismatches.join("\n")
    );
    compared
}

fn systemctl(root: &Path, verb: &str, unit: &str) {
    let out = Command::new("systemctl")
        .arg(format!("--root={}", root.display()))
        .args([verb, unit])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemctl {verb} {unit}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn native_readers_agree_with_systemctl_and_dpkg_query() {
    if !require_root("native_readers_agree_with_systemctl_and_dpkg_query") {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("berth-test-observe-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let root = dir.path().join("root");
    systemd_box::copy_of_cached_root(&root);

    let compared = compare_all(&root);
    assert!(compared > 50, "only {compared} units compared");
    for (verb, unit) in [
        ("enable", "systemd-networkd.service"),
        ("enable", "getty@tty2.service"),
        ("disable", "e2scrub_reap.service"),
        ("mask", "apt-daily.timer"),
        ("mask", "systemd-timesyncd.service"),
        ("disable", "systemd-pstore.service"),
    ] {
        if root
            .join("usr/lib/systemd/system")
            .join(unit.replace("tty2", ""))
            .exists()
            || root.join("usr/lib/systemd/system").join(unit).exists()
        {
            systemctl(&root, verb, unit);
        }
    }
    compare_all(&root);

    // dpkg's status file against dpkg-query.
    let native = Apt
        .installed(&local_host(), &Root::open(&root).unwrap())
        .unwrap();
    let out = Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f=${Package} ${db:Status-Status}\n"])
        .output()
        .unwrap();
    let reference: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(" installed").map(str::to_owned))
        .collect();
    assert!(reference.len() > 50);
    assert_eq!(native, reference);
}
