//! Users, SSH keys and credentials, for real: a booted Debian bookworm
//! machine under the nspawn launcher on this host (users made, changed and
//! removed by the guest's own tools, keys with their modes and owner, a
//! credential readable inside and nowhere else), and the machinectl
//! launcher in a systemd box (the credential passed through berth's drop-in
//! for systemd-nspawn@.service). Needs root and the Debian mirror.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::systemd_box::SystemdBox;
use crate::support::{Sandbox, describe, require_root, require_tools};

const ROOT_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBerthTestRootKey root@example";
const ALICE_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBerthTestAliceKey alice@example";
/// The credential's values: canaries searched for everywhere they must not be.
const CRED_V1: &str = "berth-cred-canary-7d1e0c55a3";
const CRED_V2: &str = "berth-cred-canary-2b9f41e806";
/// The machine's name: its credentials live in /run/berth/credentials/NAME,
/// shared by every sandbox, so no other test uses it.
const NAME: &str = "usrkeys";

fn spec(bob: &str) -> String {
    format!(
        r#"machines:
  {NAME}:
    distro: debian
    release: bookworm
    packages: [systemd, systemd-sysv, dbus, sudo]
    launcher: nspawn
    ssh_authorized_keys: ["{ROOT_KEY}"]
    users:
      alice:
        groups: [sudo]
        shell: /bin/bash
        ssh_authorized_keys: ["{ALICE_KEY}"]
        password: {{env: BERTH_TEST_ALICE_PW}}
      bob: {bob}
    credentials:
      db-password: {{env: BERTH_TEST_DB_PW}}
"#
    )
}

/// Runs `argv` in the guest whose init is `leader`, in all its namespaces
/// and its root, with a clean environment.
fn in_guest(leader: i64, argv: &[&str]) -> Output {
    Command::new("nsenter")
        .arg(format!("--target={leader}"))
        .args(["--all", "--root", "--wd", "--"])
        .args(argv)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .expect("running nsenter")
}

fn guest_ok(leader: i64, argv: &[&str]) -> String {
    let out = in_guest(leader, argv);
    assert!(out.status.success(), "{argv:?}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every regular file below `dir` (not following links) that holds `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file()
                && fs::read(entry.path())
                    .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            {
                found.push(entry.path().display().to_string());
            }
        }
    }
    found
}

/// Processes on this host whose environment or command line holds `needle`.
fn processes_holding(needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        for file in ["environ", "cmdline"] {
            let bytes = fs::read(entry.path().join(file)).unwrap_or_default();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                let comm = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                found.push(format!("/proc/{name}/{file} ({})", comm.trim()));
            }
        }
    }
    found
}

fn leader(sandbox: &Sandbox, spec: &Path) -> i64 {
    let status = sandbox
        .berth_cmd()
        .args([
            "status",
            "--json",
            "-f",
            spec.to_str().expect("a UTF-8 path"),
        ])
        .run();
    let status = status.success().json();
    status[0]["leader"].as_i64().expect("a running guest")
}

#[test]
fn users_keys_and_credentials_on_a_booted_debian_machine() {
    if !require_root("users_keys_and_credentials_on_a_booted_debian_machine")
        || !require_tools(
            "users_keys_and_credentials_on_a_booted_debian_machine",
            &[
                ("mmdebstrap", "mmdebstrap"),
                ("systemd-nspawn", "systemd-container"),
            ],
        )
    {
        return;
    }
    let sandbox = Sandbox::new("users");
    // Values an earlier run of this test left (killed before its destroy).
    let values = Path::new("/run/berth/credentials").join(NAME);
    let _ = fs::remove_dir_all(&values);
    let path = sandbox.spec(&spec("{}"));
    let spec_arg = path.to_str().expect("a UTF-8 path").to_owned();
    let berth = |value: &str, args: &[&str]| {
        let mut cmd = sandbox
            .berth_cmd()
            .env("BERTH_TEST_ALICE_PW", "alice-password-1")
            .env("BERTH_TEST_DB_PW", value)
            .args(args.iter().copied());
        cmd = cmd.args(["-f", spec_arg.as_str()]);
        cmd.run()
    };

    // The plan names every user, key and credential, and no value.
    let plan = berth(CRED_V1, &["plan"]);
    plan.success()
        .stdout_has("+ create user alice (groups sudo, shell /bin/bash)")
        .stdout_has("set password of user alice from env (sensitive)")
        .stdout_has("+ create user bob")
        .stdout_has("+ write /home/alice/.ssh/authorized_keys (1 key)")
        .stdout_has("+ write /root/.ssh/authorized_keys (1 key)")
        .stdout_has("hand credential db-password to the machine (sensitive")
        .stdout_lacks(CRED_V1);
    let json = berth(CRED_V1, &["plan", "--json"]);
    json.success().stdout_lacks(CRED_V1);
    let apply = berth(CRED_V1, &["apply", "--yes"]);
    apply.success().stdout_lacks(CRED_V1).stderr_lacks(CRED_V1);
    let leader = leader(&sandbox, &path);

    // Users, as the guest sees them.
    let alice = guest_ok(leader, &["getent", "passwd", "alice"]);
    assert!(
        alice.trim_end().ends_with(":/home/alice:/bin/bash"),
        "{alice}"
    );
    let id = guest_ok(leader, &["id", "alice"]);
    assert!(id.contains("(sudo)"), "{id}");
    assert!(guest_ok(leader, &["getent", "passwd", "bob"]).contains("bob:"));
    let shadow = guest_ok(leader, &["getent", "shadow", "alice"]);
    assert!(shadow.starts_with("alice:$6$"), "alice's password is set");
    let uid: u32 = alice.split(':').nth(2).unwrap().parse().unwrap();
    let gid: u32 = alice.split(':').nth(3).unwrap().parse().unwrap();
    // The skeleton was copied into the new home.
    assert!(sandbox.root(NAME).join("home/alice/.bashrc").is_file());

    // Keys: content, modes, owner.
    let root = sandbox.root(NAME);
    let keys = root.join("home/alice/.ssh/authorized_keys");
    assert_eq!(fs::read_to_string(&keys).unwrap(), format!("{ALICE_KEY}\n"));
    let meta = fs::metadata(&keys).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!((meta.uid(), meta.gid()), (uid, gid));
    let dir = fs::metadata(root.join("home/alice/.ssh")).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o700);
    assert_eq!((dir.uid(), dir.gid()), (uid, gid));
    assert_eq!(
        fs::read_to_string(root.join("root/.ssh/authorized_keys")).unwrap(),
        format!("{ROOT_KEY}\n")
    );

    // The credential: the guest's systemd has it, and so does a service
    // that asks for it.
    assert_eq!(
        guest_ok(leader, &["cat", "/run/credentials/@system/db-password"]),
        CRED_V1
    );
    let service = guest_ok(
        leader,
        &[
            "systemd-run",
            "--wait",
            "--pipe",
            "--quiet",
            "--property=LoadCredential=db-password",
            "--",
            "sh",
            "-c",
            "cat \"$CREDENTIALS_DIRECTORY/db-password\"",
        ],
    );
    assert_eq!(service, CRED_V1);
    // ... and its value is nowhere else: not in the root, berth's state or
    // settings, no process's environment or command line.
    assert_eq!(
        files_holding(&root, CRED_V1.as_bytes()),
        Vec::<String>::new()
    );
    for dir in [sandbox.state(), sandbox.nspawn(), sandbox.cache()] {
        assert_eq!(
            files_holding(&dir, CRED_V1.as_bytes()),
            Vec::<String>::new(),
            "{}",
            dir.display()
        );
    }
    assert_eq!(processes_holding(CRED_V1.as_bytes()), Vec::<String>::new());
    let value = Path::new("/run/berth/credentials")
        .join(NAME)
        .join("db-password");
    assert_eq!(
        fs::metadata(&value).unwrap().permissions().mode() & 0o777,
        0o400
    );
    assert_eq!(
        fs::metadata(value.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );

    // A second apply changes nothing.
    berth(CRED_V1, &["plan", "--detailed-exitcode"]).code(0);

    // bob leaves (his home stays), the credential changes: a restart, saying why.
    let path = sandbox.spec(&spec("{state: absent}"));
    assert_eq!(path.to_str(), Some(spec_arg.as_str()));
    let plan = berth(CRED_V2, &["plan"]);
    plan.success()
        .stdout_has("- remove user bob (home kept)")
        .stdout_has(
            "restart machine: credential db-password changed; nspawn reads credentials at start",
        )
        .stdout_lacks(CRED_V2)
        .stdout_lacks(CRED_V1);
    berth(CRED_V2, &["apply", "--yes"])
        .success()
        .stdout_lacks(CRED_V2);
    let leader = self::leader(&sandbox, &path);
    assert!(
        !in_guest(leader, &["getent", "passwd", "bob"])
            .status
            .success()
    );
    assert!(root.join("home/bob").is_dir(), "bob's home is kept");
    assert_eq!(
        guest_ok(leader, &["cat", "/run/credentials/@system/db-password"]),
        CRED_V2
    );
    assert_eq!(processes_holding(CRED_V2.as_bytes()), Vec::<String>::new());
    berth(CRED_V2, &["plan", "--detailed-exitcode"]).code(0);

    // A hand edit of alice's keys and their mode shows with a diff and is restored.
    let mut text = fs::read_to_string(&keys).unwrap();
    text.push_str("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQHandEdit mallory@example\n");
    fs::write(&keys, text).unwrap();
    fs::set_permissions(&keys, fs::Permissions::from_mode(0o644)).unwrap();
    berth(CRED_V2, &["plan"])
        .success()
        .stdout_has("~ write /home/alice/.ssh/authorized_keys (1 key); mode 0644 -> 0600")
        .stdout_has("-ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQHandEdit mallory@example");
    berth(CRED_V2, &["apply", "--yes"]).success();
    assert_eq!(fs::read_to_string(&keys).unwrap(), format!("{ALICE_KEY}\n"));
    assert_eq!(
        fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
        0o600
    );
    berth(CRED_V2, &["plan", "--detailed-exitcode"]).code(0);

    // destroy takes the values with the machine.
    sandbox
        .berth_cmd()
        .args(["destroy", "--yes", NAME])
        .run()
        .success();
    assert!(!value.parent().unwrap().exists());
}

#[test]
fn a_group_the_guest_lacks_is_a_plan_error_naming_it() {
    if !require_root("a_group_the_guest_lacks_is_a_plan_error_naming_it")
        || !require_tools(
            "a_group_the_guest_lacks_is_a_plan_error_naming_it",
            &[("mmdebstrap", "mmdebstrap")],
        )
    {
        return;
    }
    let sandbox = Sandbox::new("users-group");
    let yaml = "machines:\n  usrgroup:\n    distro: debian\n    release: bookworm\n    \
                packages: [systemd, systemd-sysv, dbus]\n    launcher: nspawn\n    state: stopped\n";
    let path = sandbox.spec(yaml);
    let spec_arg = path.to_str().expect("a UTF-8 path").to_owned();
    sandbox
        .berth_cmd()
        .args(["apply", "--yes", "-f", spec_arg.as_str()])
        .run()
        .success();
    sandbox.spec(&format!(
        "{yaml}    users:\n      carol:\n        groups: [nosuchgroup]\n"
    ));
    sandbox
        .berth_cmd()
        .args(["plan", "-f", spec_arg.as_str()])
        .run()
        .failure()
        .stderr_has("group nosuchgroup does not exist");
}

/// The machinectl launcher in a systemd box: the credential reaches the
/// guest through berth's drop-in for systemd-nspawn@web.service (its
/// LoadCredential= and the unit's own ExecStart= with --load-credential=),
/// a change restarts it, and destroy removes the drop-in and the values.
#[test]
fn in_a_systemd_box_machinectl_passes_credentials_through_the_units_dropin() {
    if !require_root("in_a_systemd_box_machinectl_passes_credentials_through_the_units_dropin") {
        return;
    }
    let sbox = SystemdBox::boot("users-cred");
    sbox.install_file(
        Path::new(env!("CARGO_BIN_EXE_berth")),
        "/usr/local/bin/berth",
    );
    sbox.seed_nested_root("/var/lib/machines/web");
    fs::write(
        sbox.host_path("/root/machines.yaml"),
        "machines:\n  web:\n    distro: debian\n    release: bookworm\n    \
         packages: [systemd, systemd-sysv, dbus]\n    launcher: machinectl\n    \
         credentials:\n      db-password: {env: BERTH_TEST_DB_PW}\n",
    )
    .expect("writing the spec");
    let berth = |value: &str, args: &[&str]| {
        let pair = format!("BERTH_TEST_DB_PW={value}");
        let mut argv = vec!["env", pair.as_str(), "berth"];
        argv.extend_from_slice(args);
        if args.first() != Some(&"destroy") {
            argv.extend_from_slice(&["-f", "/root/machines.yaml"]);
        }
        let out = sbox.exec_timeout(&argv, Duration::from_secs(300));
        assert!(
            out.status.success() || args.contains(&"--detailed-exitcode"),
            "berth {args:?}: {}\n{}",
            describe(&out),
            sbox.console_tail()
        );
        out
    };
    let credential = || {
        sbox.exec_ok(&[
            "systemd-run",
            "-M",
            "web",
            "--wait",
            "--pipe",
            "--quiet",
            "cat",
            "/run/credentials/@system/db-password",
        ])
    };
    let dropin = "/run/systemd/system/systemd-nspawn@web.service.d/zz-berth-credentials.conf";
    berth(CRED_V1, &["adopt", "web"]);
    let plan = berth(CRED_V1, &["plan"]);
    let text = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(text.contains(&format!("+ write {dropin}")), "{text}");
    assert!(
        text.contains("+LoadCredential=db-password:/run/berth/credentials/web/db-password"),
        "{text}"
    );
    assert!(!text.contains(CRED_V1), "{text}");
    berth(CRED_V1, &["apply", "--yes"]);
    assert_eq!(credential(), CRED_V1);
    let unit = sbox.exec_ok(&["systemctl", "cat", "systemd-nspawn@web.service"]);
    assert!(
        unit.contains("--load-credential=db-password:db-password") && !unit.contains(CRED_V1),
        "{unit}"
    );
    let out = berth(CRED_V1, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    let plan = berth(CRED_V2, &["plan"]);
    let text = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        text.contains("restart machine: credential db-password changed; nspawn reads credentials at start (machinectl)"),
        "{text}"
    );
    berth(CRED_V2, &["apply", "--yes"]);
    assert_eq!(credential(), CRED_V2);
    let out = berth(CRED_V2, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    berth(CRED_V2, &["destroy", "--yes", "web"]);
    // The box's /run is its own tmpfs: looked at from inside.
    for gone in [dropin, "/run/berth/credentials/web"] {
        let out = sbox.exec(&["test", "-e", gone]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{gone} is left: {}",
            describe(&out)
        );
    }
}
