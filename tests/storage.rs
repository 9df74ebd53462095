//! `storage: overlay` beside `storage: copy`, for real, with the nspawn
//! launcher on this host: two machines of one base, one of each storage, go
//! through the same lifecycle (apply and boot; hostname, units and packages
//! changed while running and while stopped; stop; start; destroy). The
//! overlay root is mounted exactly while berth works on it or it runs; plan
//! reads a stopped one without mounting anything on the host; its base is
//! never pruned; nothing stays mounted. (The machinectl lifecycle with
//! autostart across a reboot: tests/launchers.rs.)

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::{self, Sandbox, code, describe, require_root};

const HASH: &str =
    "$6$salt$0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ./0123456789abcdefghijk";

fn spec(state: &str, suffix: &str, units: &str, packages: &str) -> String {
    let mut out = format!(
        "defaults:\n  distro: debian\n  release: bookworm\n  bootstrapper: mmdebstrap\n  packages: [systemd, systemd-sysv, dbus{packages}]\n  launcher: nspawn\n  state: {state}\n  root_password: {{hash: '{HASH}'}}\n  units: {units}\nmachines:\n"
    );
    // The overlay with a user namespace that needs no ID-mapped mount
    // (overlayfs cannot be ID-mapped; `pick` is refused by validation).
    for (name, storage) in [
        ("cp", "copy\n"),
        ("ov", "overlay\n    private_users: identity\n"),
    ] {
        out.push_str(&format!(
            "  {name}:\n    hostname: {name}{suffix}\n    storage: {storage}"
        ));
    }
    out
}

/// Mount points under `dir` in this host's mount table.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|p| p.starts_with(&dir))
        .collect()
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

fn du_mb(path: &Path) -> u64 {
    let out = Command::new("du").arg("-sxm").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

/// Destroys the machines and unmounts leftovers when the test ends, passed or not.
struct Cleanup<'a>(&'a Sandbox);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.berth(&["destroy", "--yes", "cp", "ov"]);
        for point in mounts_under(self.0.dir.path()).iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(point).status();
        }
    }
}

#[test]
fn overlay_and_copy_machines_share_one_lifecycle_and_no_mount_outlives_its_use() {
    let _alone = support::exclusive();
    if !require_root("overlay_and_copy_machines_share_one_lifecycle_and_no_mount_outlives_its_use")
    {
        return;
    }
    let sandbox = Sandbox::new("storage");
    let _cleanup = Cleanup(&sandbox);
    let ov = sandbox.root("ov");
    let cp = sandbox.root("cp");
    let layers = sandbox.machines().join(".ov.overlay");
    let apply = |yaml: &str, extra: &[&str]| {
        let path = sandbox.spec(yaml);
        let mut args = vec![
            "apply",
            "--yes",
            "--jobs",
            "1",
            "-f",
            path.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        sandbox.berth(&args)
    };
    let plan = |yaml: &str| {
        let path = sandbox.spec(yaml);
        let out = sandbox.berth(&["plan", "--detailed-exitcode", "-f", path.to_str().unwrap()]);
        (code(&out), describe(&out))
    };

    // 1. Both boot; the overlay is mounted while it runs and holds only its changes.
    let running = spec("running", "", "{enable: [systemd-networkd]}", "");
    let (rc, out) = plan(&running);
    assert_eq!(rc, 2, "{out}");
    let out = apply(&running, &[]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("an overlay on cached base") || err.contains("an overlay on the new base"),
        "{err}"
    );
    assert_eq!(
        mounts_under(&sandbox.machines()),
        [ov.display().to_string()]
    );
    assert_eq!(plan(&running).0, 0, "{}", plan(&running).1);
    let ids: Vec<String> = [&cp, &ov]
        .iter()
        .map(|r| fs::read_to_string(r.join("etc/machine-id")).unwrap())
        .collect();
    assert_ne!(ids[0], ids[1]);
    let (upper_mb, copy_mb) = (du_mb(&layers), du_mb(&cp));
    assert!(
        upper_mb * 10 < copy_mb,
        "the overlay's own layer ({upper_mb} MB) must be a fraction of a copy ({copy_mb} MB)"
    );
    let record: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(sandbox.state().join("machines/ov.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["storage"], "overlay", "{record}");
    let base = record["base"].as_str().unwrap().to_owned();

    // 2. Hostname, units and a package changed while running.
    let changed = spec("running", "-2", "{disable: [systemd-networkd]}", ", less");
    let out = apply(&changed, &[]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    for (root, name) in [(&cp, "cp"), (&ov, "ov")] {
        assert_eq!(
            fs::read_to_string(root.join("etc/hostname")).unwrap(),
            format!("{name}-2\n")
        );
        assert_eq!(dpkg_status(root, "less"), "install ok installed", "{name}");
        assert!(
            !root
                .join("etc/systemd/system/multi-user.target.wants/systemd-networkd.service")
                .exists(),
            "{name}"
        );
        let shadow = fs::read_to_string(root.join("etc/shadow")).unwrap();
        assert!(
            shadow
                .lines()
                .any(|l| l.starts_with(&format!("root:{HASH}:"))),
            "{name}: {shadow}"
        );
    }
    assert_eq!(plan(&changed).0, 0, "{}", plan(&changed).1);

    // 3. Stopped: the overlay is unmounted, and plan reads it through its
    //    layers without mounting anything on the host.
    let stopped = spec("stopped", "-2", "{disable: [systemd-networkd]}", ", less");
    let out = apply(&stopped, &[]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(mounts_under(sandbox.dir.path()), Vec::<String>::new());
    assert_eq!(
        fs::read_dir(&ov).unwrap().count(),
        0,
        "an empty mount point"
    );
    assert_eq!(
        fs::read_to_string(layers.join("upper/etc/hostname")).unwrap(),
        "ov-2\n"
    );
    let (rc, out) = plan(&stopped);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(mounts_under(sandbox.dir.path()), Vec::<String>::new());

    // 4. Changed while stopped: a package removed through systemd-nspawn on
    //    the stopped root, a new hostname; unmounted again afterwards.
    let stopped2 = spec("stopped", "-3", "{enable: [systemd-networkd]}", "");
    let (rc, out) = plan(&stopped2);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("remove less"), "{out}");
    let out = apply(&stopped2, &[]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(mounts_under(sandbox.dir.path()), Vec::<String>::new());
    assert_eq!(plan(&stopped2).0, 0, "{}", plan(&stopped2).1);
    assert_eq!(
        fs::read_to_string(layers.join("upper/etc/hostname")).unwrap(),
        "ov-3\n"
    );

    // 5. Started again: mounted, booted, configured.
    let running2 = spec("running", "-3", "{enable: [systemd-networkd]}", "");
    let out = apply(&running2, &[]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(
        mounts_under(&sandbox.machines()),
        [ov.display().to_string()]
    );
    assert_ne!(dpkg_status(&ov, "less"), "install ok installed");
    assert!(
        ov.join("etc/systemd/system/multi-user.target.wants/systemd-networkd.service")
            .exists()
    );
    assert_eq!(plan(&running2).0, 0, "{}", plan(&running2).1);

    // 6. Another storage is a replacement, refused without --replace.
    let swapped = running2
        .replace("storage: copy", "storage: COPY")
        .replace("storage: overlay", "storage: copy")
        .replace("storage: COPY", "storage: overlay");
    assert!(
        swapped.contains("  ov:\n    hostname: ov-3\n    storage: copy\n"),
        "{swapped}"
    );
    let (rc, out) = plan(&swapped);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("-/+") && out.contains("storage: overlay with debian bookworm"),
        "{out}"
    );
    let out = apply(&swapped, &[]);
    assert_ne!(code(&out), 0, "{}", describe(&out));
    assert!(describe(&out).contains("--replace"), "{}", describe(&out));

    // 7. The base is the overlay's lower layer: never pruned, even with --all.
    let out = sandbox.berth(&["cache", "prune", "--all"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "kept {base}: the lower layer of overlay machine ov"
        )),
        "{text}"
    );
    assert!(
        sandbox
            .cache()
            .join("bases")
            .join(&base)
            .join("root/usr")
            .is_dir()
    );

    // 8. destroy: nothing mounted, no layers, no mount point left.
    let out = sandbox.berth(&["destroy", "--yes", "cp", "ov"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(mounts_under(sandbox.dir.path()), Vec::<String>::new());
    assert!(!ov.exists() && !cp.exists() && !layers.exists());
    assert_eq!(sandbox.staging_left(), Vec::<String>::new());
}

/// The spec of the box test: machine `web` from the seeded base, as an overlay.
fn box_spec(state: &str, hostname: &str, autostart: bool) -> String {
    format!(
        "machines:\n  web:\n    distro: debian\n    release: bookworm\n    bootstrapper: debootstrap\n    packages: [systemd, systemd-sysv, dbus]\n    hostname: {hostname}\n    units: {{mask: [apt-daily.timer]}}\n    launcher: machinectl\n    state: {state}\n    autostart: {autostart}\n    storage: overlay\n"
    )
}

/// The cache id of [`box_spec`]'s base (no bootstrap tool runs in the box:
/// the base is seeded into its cache).
fn box_base() -> berth_engine::cache::BaseKey {
    berth_engine::cache::BaseKey {
        format: 1,
        arch: std::env::consts::ARCH.to_owned(),
        distro: "debian".into(),
        release: Some("bookworm".into()),
        bootstrapper: "debootstrap".into(),
        mirror: None,
        packages: vec!["dbus".into(), "systemd".into(), "systemd-sysv".into()],
        variant: None,
        components: vec!["main".into()],
        install_weak_deps: false,
        repos: Vec::new(),
        pacman_conf: None,
    }
}

#[test]
fn an_overlay_machine_under_machinectl_is_mounted_at_boot_for_autostart_and_unmounted_when_stopped()
{
    use std::time::Duration;

    use crate::support::systemd_box::SystemdBox;

    if !require_root(
        "an_overlay_machine_under_machinectl_is_mounted_at_boot_for_autostart_and_unmounted_when_stopped",
    ) {
        return;
    }
    let mut sbox = SystemdBox::boot("overlay");
    sbox.install_file(
        Path::new(env!("CARGO_BIN_EXE_berth")),
        "/usr/local/bin/berth",
    );
    let key = box_base();
    let id = key.id();
    let entry = format!("/var/cache/berth/bases/{id}");
    sbox.seed_nested_root(&format!("{entry}/root"));
    fs::write(
        sbox.host_path(&format!("{entry}/entry.json")),
        serde_json::json!({"id": id, "key": key, "created_at": 0}).to_string(),
    )
    .unwrap();
    let spec_path = "/root/machines.yaml";
    let berth = |sbox: &SystemdBox, args: &[&str]| {
        let mut argv = vec!["berth"];
        argv.extend_from_slice(args);
        if args.first() != Some(&"destroy") {
            argv.extend_from_slice(&["-f", spec_path]);
        }
        let out = sbox.exec_timeout(&argv, Duration::from_secs(300));
        (out.status.code().unwrap_or(-1), describe(&out))
    };
    let mounted = |sbox: &SystemdBox| {
        sbox.exec(&["findmnt", "-n", "-o", "FSTYPE", "/var/lib/machines/web"])
            .stdout
    };
    let write = |sbox: &SystemdBox, yaml: &str| fs::write(sbox.host_path(spec_path), yaml).unwrap();

    // apply: an overlay on the seeded base, started through machinectl, boot-enabled.
    write(&sbox, &box_spec("running", "web", true));
    let (rc, out) = berth(&sbox, &["plan", "--detailed-exitcode"]);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains(&format!("as an overlay on cached base {id}")),
        "{out}"
    );
    let (rc, out) = berth(&sbox, &["apply", "--yes"]);
    assert_eq!(rc, 0, "{out}\n{}", sbox.console_tail());
    assert_eq!(String::from_utf8_lossy(&mounted(&sbox)).trim(), "overlay");
    let state = sbox.exec_ok(&["systemctl", "-M", "web", "is-system-running"]);
    assert!(matches!(state.trim(), "running" | "degraded"), "{state}");
    assert!(
        sbox.host_path("/etc/systemd/system/var-lib-machines-web.mount")
            .is_file()
    );
    let deps = sbox.exec_ok(&[
        "systemctl",
        "show",
        "-p",
        "RequiresMountsFor",
        "systemd-nspawn@web.service",
    ]);
    assert!(deps.contains("/var/lib/machines/web"), "{deps}");
    assert_eq!(berth(&sbox, &["plan", "--detailed-exitcode"]).0, 0);

    // A change while it runs.
    write(&sbox, &box_spec("running", "web2", true));
    let (rc, out) = berth(&sbox, &["apply", "--yes"]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(
        fs::read_to_string(sbox.host_path("/var/lib/machines/.web.overlay/upper/etc/hostname"))
            .unwrap(),
        "web2\n"
    );

    // After a reboot of the host, without berth: mounted by its unit, autostarted.
    sbox.reboot();
    sbox.wait_machine_running("web", Duration::from_secs(90));
    assert_eq!(String::from_utf8_lossy(&mounted(&sbox)).trim(), "overlay");
    let (rc, out) = berth(&sbox, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        rc, 0,
        "after a reboot the autostarted overlay machine is berth's: {out}"
    );

    // Stopped: unmounted; plan reads it through its layers and mounts nothing.
    write(&sbox, &box_spec("stopped", "web3", false));
    let (rc, out) = berth(&sbox, &["apply", "--yes"]);
    assert_eq!(rc, 0, "{out}");
    assert!(mounted(&sbox).is_empty(), "unmounted once stopped");
    assert!(!sbox.machines().contains(&"web".to_owned()));
    let (rc, out) = berth(&sbox, &["plan", "--detailed-exitcode"]);
    assert_eq!(rc, 0, "{out}");
    assert!(mounted(&sbox).is_empty());

    // Started again by berth, then destroyed: nothing mounted, no units, no layers.
    write(&sbox, &box_spec("running", "web3", false));
    let (rc, out) = berth(&sbox, &["apply", "--yes"]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(String::from_utf8_lossy(&mounted(&sbox)).trim(), "overlay");
    let (rc, out) = berth(&sbox, &["destroy", "--yes", "web"]);
    assert_eq!(rc, 0, "{out}");
    assert!(mounted(&sbox).is_empty());
    assert!(!sbox.host_path("/var/lib/machines/web").exists());
    assert!(!sbox.host_path("/var/lib/machines/.web.overlay").exists());
    assert!(
        !sbox
            .host_path("/etc/systemd/system/var-lib-machines-web.mount")
            .exists()
    );
    assert!(
        !sbox
            .host_path("/etc/systemd/system/systemd-nspawn@web.service.d/50-berth-overlay.conf")
            .exists()
    );
}

#[test]
fn an_overlay_machine_under_a_symlinked_machines_dir_is_mounted_and_unmounted_by_its_real_path() {
    use std::os::unix::fs::PermissionsExt;

    use crate::fake_root;

    let _alone = support::exclusive();
    if !require_root(
        "an_overlay_machine_under_a_symlinked_machines_dir_is_mounted_and_unmounted_by_its_real_path",
    ) {
        return;
    }
    let sandbox = Sandbox::new("storage-link");
    let _cleanup = Cleanup(&sandbox);
    // A stand-in debootstrap copying a small fake root (nothing boots here).
    let template = sandbox.dir.path().join("template");
    fake_root::make(&template);
    let bin = sandbox.dir.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::write(
        bin.join("debootstrap"),
        format!(
            "#!/bin/sh\nfor target; do :; done\nmkdir -p \"$target\" && cp -a '{}'/. \"$target\"/\n",
            template.display()
        ),
    )
    .unwrap();
    fs::set_permissions(bin.join("debootstrap"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let link = sandbox.dir.path().join("machines-link");
    std::os::unix::fs::symlink(sandbox.machines(), &link).unwrap();
    let berth = |hostname: &str, args: &[&str]| {
        sandbox.spec(
            &format!(
                "{}    storage: overlay\n",
                fake_root::spec("ln", &fake_root::hash_source())
            )
            .replace("hostname: ln-host", &format!("hostname: {hostname}")),
        );
        sandbox
            .berth_cmd()
            .env("PATH", &path)
            .env("BERTH_MACHINES_DIR", &link)
            .args(args)
            .run()
    };
    berth("ln-1", &["apply", "--yes"]).success();
    let upper = sandbox.machines().join(".ln.overlay/upper");
    assert_eq!(
        fs::read_to_string(upper.join("etc/hostname")).unwrap(),
        "ln-1\n"
    );
    assert_eq!(mounts_under(sandbox.dir.path()), Vec::<String>::new());
    berth("ln-1", &["plan", "--detailed-exitcode"]).code(0);
    berth("ln-2", &["apply", "--yes"]).success();
    assert_eq!(
        fs::read_to_string(upper.join("etc/hostname")).unwrap(),
        "ln-2\n"
    );
    assert_eq!(mounts_under(sandbox.dir.path()), Vec::<String>::new());
    berth("ln-2", &["destroy", "--yes", "ln"]).success();
    assert!(!sandbox.machines().join(".ln.overlay").exists());
    assert!(!sandbox.machines().join("ln").exists());
}
