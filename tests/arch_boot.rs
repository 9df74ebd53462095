//! The article's Arch machine, booted: the exact spec of the README (distro
//! arch, `base` and `base-devel`, systemd-networkd and systemd-resolved
//! enabled, a root password, `securetty: [pts/0]`, `launcher: machinectl`)
//! applied by berth inside a booted systemd host (the box of
//! `support/systemd_box.rs`) from a pacman repository whose `base` boots
//! (`support/arch_boot_repo.rs`), then logged into through `machinectl
//! login` over a pty. Needs root (fails under CI=true without it).

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::arch_boot_repo::{self, IN_MACHINE};
use crate::support::pty::Pty;
use crate::support::systemd_box::SystemdBox;
use crate::support::{describe, require_root};

const SPEC: &str = "/root/machines.yaml";
const NAME: &str = "archcontainer";
/// The root password, read by berth from `ROOT_PW` (`root_password: {env: ROOT_PW}`).
const PASSWORD: &str = "r00tpw-berth";

/// The README's spec, plus what this offline host needs: the repository's
/// pacman.conf for pacstrap, and the repository bound into the machine for
/// its own pacman. `securetty` and `packages` vary along the test.
fn spec(securetty: &str, packages: &str, state: &str) -> String {
    format!(
        "machines:\n  {NAME}:\n    distro: arch\n    packages: [{packages}]\n    units:\n      \
         enable: [systemd-networkd, systemd-resolved]\n    root_password:\n      env: ROOT_PW\n    \
         securetty: [{securetty}]\n    launcher: machinectl\n    state: {state}\n    \
         pacman_conf: /root/pacman.conf\n    binds:\n      - {{host: {IN_MACHINE}, machine: {IN_MACHINE}, read_only: true}}\n"
    )
}

/// berth inside the box, with the password in its environment only.
fn berth(sbox: &SystemdBox, args: &[&str]) -> Output {
    let mut argv = vec![
        "sh",
        "-c",
        "ROOT_PW=$(cat /root/pw) exec berth \"$@\"",
        "berth",
    ];
    argv.extend_from_slice(args);
    if args.first() != Some(&"destroy") {
        argv.extend_from_slice(&["-f", SPEC]);
    }
    sbox.exec_timeout(&argv, Duration::from_secs(600))
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

/// `machinectl login` over a pty as root with the password: Ok(the tty
/// the shell got) when root gets a shell, Err(transcript) when refused.
fn login(sbox: &SystemdBox) -> Result<String, String> {
    let mut pty = Pty::spawn(sbox.command(&["machinectl", "login", NAME]));
    let long = Duration::from_secs(60);
    pty.expect(&["login: "], long)
        .unwrap_or_else(|e| panic!("no login prompt: {e}"));
    pty.send("root\n");
    pty.expect(&["Password: "], long)
        .unwrap_or_else(|e| panic!("no password prompt: {e}"));
    pty.send(&format!("{PASSWORD}\n"));
    let outcome = pty
        .expect(&["Login incorrect", "# "], long)
        .unwrap_or_else(|e| panic!("no outcome of the login: {e}"));
    let result = if outcome == 1 {
        pty.send("echo BERTH-TTY-$(tty)-END\n");
        pty.expect(&["BERTH-TTY-/dev/"], long)
            .unwrap_or_else(|e| panic!("no answer from the shell: {e}"));
        pty.expect(&["-END"], long)
            .unwrap_or_else(|e| panic!("no answer from the shell: {e}"));
        let text = pty.transcript();
        let start = text
            .rfind("BERTH-TTY-/dev/")
            .map_or(0, |i| i + "BERTH-TTY-/dev/".len());
        let tty = text[start..].split("-END").next().unwrap_or("").to_owned();
        pty.send("exit\n");
        Ok(tty)
    } else {
        Err(pty.transcript().to_owned())
    };
    // ^] three times within a second leaves machinectl login.
    std::thread::sleep(Duration::from_millis(500));
    pty.send("\x1d\x1d\x1d");
    pty.finish(Duration::from_secs(10));
    result
}

fn securetty(sbox: &SystemdBox) -> String {
    fs::read_to_string(sbox.host_path(&format!("/var/lib/machines/{NAME}/etc/securetty")))
        .unwrap_or_default()
}

#[test]
fn the_articles_arch_machine_boots_logs_root_in_by_securetty_and_converges() {
    let test = "the_articles_arch_machine_boots_logs_root_in_by_securetty_and_converges";
    if !require_root(test)
        || !crate::support::require_tools(test, &crate::support::pacman_repo::TOOLS)
    {
        return;
    }
    let repo = arch_boot_repo::repo();
    let sbox = SystemdBox::boot_with(
        "arch-article",
        &["arch-install-scripts", "pacman-package-manager"],
    );
    sbox.install_file(
        Path::new(env!("CARGO_BIN_EXE_berth")),
        "/usr/local/bin/berth",
    );
    sbox.install_tree(&repo, IN_MACHINE);
    arch_boot_repo::write_host_pacman_conf(
        &sbox.host_path("/root/pacman.conf"),
        Path::new(IN_MACHINE),
    );
    fs::write(sbox.host_path("/root/pw"), PASSWORD).unwrap();
    fs::write(
        sbox.host_path(SPEC),
        spec("pts/0", "base, base-devel", "running"),
    )
    .unwrap();

    // plan: the article's pts/0 cannot let root in through machinectl login.
    let plan = ok(&sbox, &["plan"]);
    assert!(
        plan.contains("machinectl login` gets pts/1") && plan.contains("add pts/1"),
        "{plan}"
    );
    assert!(plan.contains("+ add pts/0 to /etc/securetty"), "{plan}");

    // apply: bootstrapped with pacstrap, configured, booted by machinectl.
    let applied = ok(&sbox, &["apply", "--yes"]);
    assert!(
        applied.contains("bootstrap arch with pacstrap"),
        "{applied}"
    );
    let machines = sbox.exec_ok(&["machinectl", "list", "--no-legend"]);
    assert!(machines.contains(NAME), "machinectl list: {machines}");
    let state = sbox.exec_ok(&["systemctl", "-M", NAME, "is-system-running", "--wait"]);
    assert!(matches!(state.trim(), "running" | "degraded"), "{state}");
    for unit in ["systemd-networkd", "systemd-resolved"] {
        let active = sbox.exec_ok(&["systemctl", "-M", NAME, "is-enabled", unit]);
        assert_eq!(active.trim(), "enabled", "{unit}");
    }
    let (rc, out) = {
        let out = berth(&sbox, &["plan", "--detailed-exitcode"]);
        (out.status.code(), describe(&out))
    };
    assert_eq!(rc, Some(0), "a second plan changes nothing: {out}");

    // Root is refused: /etc/securetty has pts/0, the login gets pts/1.
    assert_eq!(securetty(&sbox), "console\ntty1\npts/0\n");
    let refused = login(&sbox).expect_err("root must be refused on pts/1 with only pts/0 listed");
    assert!(refused.contains("Login incorrect"), "{refused}");

    // The spec lists pts/1: no warning, root gets a shell on pts/1.
    fs::write(
        sbox.host_path(SPEC),
        spec("pts/0, pts/1", "base, base-devel", "running"),
    )
    .unwrap();
    let plan = ok(&sbox, &["plan"]);
    assert!(!plan.contains("machinectl login` gets"), "{plan}");
    assert!(plan.contains("~ add pts/1 to /etc/securetty"), "{plan}");
    ok(&sbox, &["apply", "--yes"]);
    let tty = login(&sbox).unwrap_or_else(|t| panic!("root refused with pts/1 listed:\n{t}"));
    assert_eq!(tty, "pts/1");

    // Entries berth added that leave the spec are removed (with a diff);
    // console and tty1 came with the root and stay. Root is refused again.
    fs::write(
        sbox.host_path(SPEC),
        spec("pts/0", "base, base-devel", "running"),
    )
    .unwrap();
    let plan = ok(&sbox, &["plan"]);
    assert!(
        plan.contains("- remove pts/1 from /etc/securetty"),
        "{plan}"
    );
    assert!(plan.contains("-pts/1"), "the diff: {plan}");
    ok(&sbox, &["apply", "--yes"]);
    assert_eq!(securetty(&sbox), "console\ntty1\npts/0\n");
    let refused = login(&sbox).expect_err("root must be refused again once pts/1 left the spec");
    assert!(refused.contains("Login incorrect"), "{refused}");

    // A package added to the spec: installed by the guest's own pacman, live.
    fs::write(
        sbox.host_path(SPEC),
        spec("pts/0", "base, base-devel, hello-berth", "running"),
    )
    .unwrap();
    let plan = ok(&sbox, &["plan"]);
    assert!(plan.contains("+ install hello-berth with pacman"), "{plan}");
    ok(&sbox, &["apply", "--yes", "-v"]);
    let hello = sbox.exec_ok(&[
        "systemd-run",
        "-M",
        NAME,
        "--wait",
        "--pipe",
        "--quiet",
        "pacman",
        "-Q",
        "hello-berth",
    ]);
    assert!(hello.contains("hello-berth 1-1"), "{hello}");
    let machines = sbox.exec_ok(&["machinectl", "list", "--no-legend"]);
    assert!(machines.contains(NAME), "still running: {machines}");

    // state: stopped stops it through machinectl.
    fs::write(
        sbox.host_path(SPEC),
        spec("pts/0", "base, base-devel, hello-berth", "stopped"),
    )
    .unwrap();
    let plan = ok(&sbox, &["plan"]);
    assert!(plan.contains("stop machine (machinectl)"), "{plan}");
    ok(&sbox, &["apply", "--yes"]);
    let machines = sbox.exec_ok(&["machinectl", "list", "--no-legend"]);
    assert!(!machines.contains(NAME), "stopped: {machines}");

    // destroy removes it.
    ok(&sbox, &["destroy", "--yes", NAME]);
    assert!(
        !sbox
            .host_path(&format!("/var/lib/machines/{NAME}"))
            .exists()
    );
    let status = ok(&sbox, &["status", "--json"]);
    assert!(status.contains("\"absent\""), "{status}");
}

#[test]
fn the_bootable_repository_holds_systemd_pam_securetty_and_pacman() {
    if !require_root("the_bootable_repository_holds_systemd_pam_securetty_and_pacman")
        || !crate::support::require_tools(
            "the_bootable_repository_holds_systemd_pam_securetty_and_pacman",
            &crate::support::pacman_repo::TOOLS,
        )
    {
        return;
    }
    let repo = arch_boot_repo::repo();
    let base = repo.join("base-1-1-any.pkg.tar");
    let out = Command::new("bsdtar")
        .arg("-tvf")
        .arg(&base)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let list = String::from_utf8_lossy(&out.stdout);
    for path in [
        "usr/lib/systemd/systemd",
        "usr/bin/pacman",
        "usr/lib/x86_64-linux-gnu/security/pam_securetty.so",
        "usr/lib/systemd/system/systemd-resolved.service",
        "usr/lib/systemd/system/systemd-networkd.service",
        "usr/sbin/agetty",
        "usr/bin/login",
        "etc/pam.d/login",
        "etc/pacman.conf",
    ] {
        assert!(
            list.lines()
                .any(|l| l.ends_with(&format!(" {path}")) || l.ends_with(&format!(" ./{path}"))),
            "{path} is not in {}",
            base.display()
        );
    }
    // Owners and setuid bits survived makepkg (root-owned, su setuid).
    let su = list
        .lines()
        .find(|l| l.ends_with("usr/bin/su"))
        .expect("su in base");
    assert!(
        su.starts_with("-rwsr-xr-x") && su.contains(" root "),
        "{su}"
    );
    let out = Command::new("bsdtar")
        .arg("-xOf")
        .arg(&base)
        .arg("etc/pam.d/login")
        .output()
        .unwrap();
    let pam = String::from_utf8_lossy(&out.stdout);
    assert!(
        pam.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["auth", "required", "pam_securetty.so"]),
        "{pam}"
    );
    for pkg in [
        "base-devel-1-1-any.pkg.tar",
        "hello-berth-1-1-any.pkg.tar",
        "berthtest.db",
    ] {
        assert!(
            repo.join(pkg).exists(),
            "{pkg} missing in {}",
            repo.display()
        );
    }
}
