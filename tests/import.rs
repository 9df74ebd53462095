//! `berth import` on machines made by hand, for real: a Debian bookworm
//! root bootstrapped with mmdebstrap (cached under
//! /var/tmp/berth-test-cache, keyed by its package list, with
//! `support::cache::cached_dir`), then changed
//! by hand as in the article: units enabled, disabled and masked with
//! `systemctl --root`, a hostname, securetty, a root password hash, a
//! hand-written .nspawn file. The printed spec validates, `berth adopt`
//! takes the machine, and `berth plan` on the spec changes nothing.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::support::{Sandbox, cache, code, describe, require_root};

const PACKAGES: &str = "systemd,systemd-sysv,dbus,less";
const HASH: &str = "$6$importsalt$dk/WmxHf9CMr.odE3hg9vT8qn0Di2XShUmUm62FYkBXmiTql2DhC903Xd41QGcNkbvWipAYAnX.FFgXysmgHB/";

/// The cached hand-made-style root (built once per host).
fn cached_root() -> PathBuf {
    let key = cache::key(&[format!("bookworm minbase {PACKAGES}").as_bytes()]);
    cache::cached_dir(&format!("import-root-{key}"), |build| {
        let out = Command::new("mmdebstrap")
            .args(["--mode=root", "--variant=minbase"])
            .arg(format!("--include={PACKAGES}"))
            .arg("bookworm")
            .arg(build)
            .output()
            .expect("running mmdebstrap (apt-get install mmdebstrap)");
        assert!(
            out.status.success(),
            "mmdebstrap failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    })
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A machine made by hand from a copy of the cached root.
fn hand_made(sandbox: &Sandbox, name: &str) -> PathBuf {
    let root = sandbox.root(name);
    run(Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(cached_root())
        .arg(&root));
    let systemctl = |verb: &str, unit: &str| {
        run(Command::new("systemctl")
            .arg(format!("--root={}", root.display()))
            .args([verb, unit]))
    };
    // The preset disables it; enabled by hand.
    systemctl("enable", "systemd-networkd-wait-online.service");
    // The preset enables these (no rule: enable); changed by hand.
    systemctl("disable", "fstrim.timer");
    systemctl("mask", "apt-daily.timer");
    // Enabled by hand as in the article: the preset says enable too.
    systemctl("enable", "systemd-networkd.service");
    fs::write(root.join("etc/hostname"), "handmade\n").unwrap();
    fs::write(root.join("etc/securetty"), "# consoles\nconsole\npts/0\n").unwrap();
    let shadow = fs::read_to_string(root.join("etc/shadow")).unwrap();
    let shadow: String = shadow
        .lines()
        .map(|l| match l.strip_prefix("root:") {
            Some(rest) => format!("root:{HASH}:{}\n", rest.split_once(':').unwrap().1),
            None => format!("{l}\n"),
        })
        .collect();
    fs::write(root.join("etc/shadow"), shadow).unwrap();
    root
}

#[test]
fn an_imported_hand_made_machine_plans_clean_after_adopt() {
    if !require_root("an_imported_hand_made_machine_plans_clean_after_adopt") {
        return;
    }
    let sandbox = Sandbox::new("import");
    hand_made(&sandbox, "hand");
    fs::write(
        sandbox.nspawn().join("hand.nspawn"),
        "[Exec]\nPrivateUsers=pick\nEnvironment=LANG=C.UTF-8\nCapability=CAP_NET_ADMIN\n\n\
         [Files]\nBindReadOnly=/srv/www:/var/www\n\n[Network]\nVirtualEthernet=yes\nPort=8080:80\n",
    )
    .unwrap();

    let out = sandbox.berth(&["import", "hand"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let yaml = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "  hand:",
        "distro: debian",
        "release: 'bookworm'",
        "'dbus'",
        "hostname: 'handmade'",
        "enable: ['systemd-networkd-wait-online.service']",
        "'fstrim.timer'",
        "mask: ['apt-daily.timer']",
        &format!("hash: '{HASH}'"),
        "securetty: ['console', 'pts/0']",
        "mode: veth",
        "ports: ['tcp:8080:80']",
        "{host: '/srv/www', machine: '/var/www', read_only: true}",
        "private_users: pick",
        "capabilities: ['CAP_NET_ADMIN']",
        "'LANG': 'C.UTF-8'",
        "state: stopped",
    ] {
        assert!(yaml.contains(needle), "import lacks {needle:?}:\n{yaml}");
    }
    // Base packages (Priority required, dependencies) are not listed.
    assert!(
        !yaml.contains("'libc6'") && !yaml.contains("'apt'"),
        "{yaml}"
    );
    // Enabled as the presets say: not a difference.
    assert!(!yaml.contains("'systemd-networkd.service'"), "{yaml}");

    let spec = sandbox.spec(&yaml);
    let spec = spec.to_str().unwrap();
    let out = sandbox.berth(&["validate", "-f", spec]);
    assert_eq!(code(&out), 0, "{}\n{yaml}", describe(&out));
    let out = sandbox.berth(&["adopt", "-f", spec, "hand"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let out = sandbox.berth(&["plan", "-f", spec, "--detailed-exitcode"]);
    assert_eq!(
        code(&out),
        0,
        "not a clean no-op:\n{}\n{yaml}",
        describe(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("No changes."));
    // The hand-written settings file became berth's, meaning the same.
    let settings = fs::read_to_string(sandbox.nspawn().join("hand.nspawn")).unwrap();
    assert!(settings.starts_with("# Written by berth"), "{settings}");
    assert!(settings.contains("Port=tcp:8080:80") && settings.contains("PrivateUsers=pick"));
}

#[test]
fn a_locked_password_and_unknown_settings_are_left_out_with_comments() {
    if !require_root("a_locked_password_and_unknown_settings_are_left_out_with_comments") {
        return;
    }
    let sandbox = Sandbox::new("import-fake");
    let root = sandbox.root("fake");
    fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
    fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    fs::write(
        root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
    )
    .unwrap();
    fs::write(
        root.join("var/lib/dpkg/status"),
        "Package: curl\nStatus: install ok installed\nPriority: optional\n",
    )
    .unwrap();
    fs::write(root.join("etc/shadow"), "root:!*:19000:0:99999:7:::\n").unwrap();
    std::os::unix::fs::symlink("/dev/null", root.join("etc/systemd/system/foo.service")).unwrap();
    fs::write(
        sandbox.nspawn().join("fake.nspawn"),
        "[Exec]\nHostname=elsewhere\n",
    )
    .unwrap();
    let out = sandbox.berth(&["import", "fake"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(
        yaml.contains("# root_password: omitted: root's password is locked"),
        "{yaml}"
    );
    assert!(yaml.contains("mask: ['foo.service']"), "{yaml}");
    assert!(yaml.contains("packages: ['curl']"), "{yaml}");
    assert!(yaml.contains("#   [Exec] Hostname=elsewhere"), "{yaml}");
    assert!(yaml.contains("# no /etc/hostname"), "{yaml}");
    let spec = sandbox.spec(&yaml);
    let out = sandbox.berth(&["validate", "-f", spec.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}\n{yaml}", describe(&out));

    // Not a machine dir, or an unknown distribution: errors naming it.
    let out = sandbox.berth(&["import", "nosuch"]);
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch"));
    fs::write(root.join("etc/os-release"), "ID=gentoo\n").unwrap();
    let out = sandbox.berth(&["import", "fake"]);
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("gentoo"));
}
