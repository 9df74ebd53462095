//! Many hosts over SSH (issue 15), for real: two booted systemd boxes
//! (tests/support/systemd_box.rs, with openssh-server) stand in for the
//! hosts, each on its own private veth link to this host's namespace
//! (10.251.N.1/30 here, .2 in the box; traffic only to those addresses),
//! with a key pair and a known_hosts file the test makes. Plus quick
//! checks that need no box (`--hosts` errors, a spec without hosts).
//! Needs root (fails under CI=true without it).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::systemd_box::{SystemdBox, copy_of_cached_root};
use crate::support::{Sandbox, describe, require_root};

/// The secret the spec's `root_password: env:` names.
const CANARY: &str = "fleet-canary-7f3a9c2e51";

/// A veth pair between this host and a box: `NAME` here with
/// `10.251.N.1/30`, `fleet0` in the box with `10.251.N.2/30`. Deleted on drop.
struct Link {
    name: String,
    /// The box's address, `10.251.N.2`.
    address: String,
}

impl Link {
    fn new(sbox: &SystemdBox, n: u8) -> Link {
        let name = format!("bfl{}n{n}", std::process::id() % 100_000);
        let pid = sbox.init_pid_on_host().to_string();
        run(&[
            "ip", "link", "add", &name, "type", "veth", "peer", "name", "fleet0", "netns", &pid,
        ]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("10.251.{n}.1/30"),
            "dev",
            &name,
        ]);
        run(&["ip", "link", "set", &name, "up"]);
        sbox.exec_ok(&["ip", "link", "set", "lo", "up"]);
        sbox.exec_ok(&[
            "ip",
            "addr",
            "add",
            &format!("10.251.{n}.2/30"),
            "dev",
            "fleet0",
        ]);
        sbox.exec_ok(&["ip", "link", "set", "fleet0", "up"]);
        Link {
            name,
            address: format!("10.251.{n}.2"),
        }
    }
}

impl Link {
    /// Takes the link down (`up: false`) or brings it back.
    fn set(&self, up: bool) {
        run(&[
            "ip",
            "link",
            "set",
            &self.name,
            if up { "up" } else { "down" },
        ]);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        end_masters(&self.address);
        let _ = Command::new("ip")
            .args(["link", "del", &self.name])
            .output();
    }
}

/// Ends the ssh masters berth keeps (`ControlPersist`) to `address`, by
/// the pids `ss` shows on their connections, and removes their sockets.
fn end_masters(address: &str) {
    let Ok(out) = Command::new("ss").args(["-Htnp", "dst", address]).output() else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines().filter(|l| l.contains("\"ssh\"")) {
        for part in line.split("pid=").skip(1) {
            let pid: String = part.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(pid) = pid.parse::<i32>() {
                // The master removes its socket as it ends.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
    }
}

fn run(argv: &[&str]) -> String {
    let out = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    assert!(out.status.success(), "{argv:?}\n{}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A box with sshd (root may log in with `pubkey`), reachable at
/// 10.251.N.2 over its own link, and a seeded Debian root at
/// /var/lib/machines/NAME that berth inside manages (adopted).
fn ssh_box(label: &str, n: u8, pubkey: &str, machine: &str) -> (SystemdBox, Link) {
    let sbox = SystemdBox::boot_with(label, &["openssh-server"]);
    let link = Link::new(&sbox, n);
    let ssh_dir = sbox.host_path("/root/.ssh");
    fs::create_dir_all(&ssh_dir).unwrap();
    fs::set_permissions(&ssh_dir, fs::Permissions::from_mode(0o700)).unwrap();
    let keys = ssh_dir.join("authorized_keys");
    fs::write(&keys, pubkey).unwrap();
    fs::set_permissions(&keys, fs::Permissions::from_mode(0o600)).unwrap();
    // sshd comes up with the box; wait for it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = sbox.exec(&["systemctl", "is-active", "ssh.service"]);
        if String::from_utf8_lossy(&out.stdout).trim() == "active" {
            break;
        }
        if Instant::now() > deadline {
            // Socket activation or a late start: start it by hand.
            sbox.exec_ok(&["systemctl", "start", "ssh.service"]);
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    // The machine berth manages inside: a seeded root, adopted.
    sbox.install_file(
        Path::new(env!("CARGO_BIN_EXE_berth")),
        "/usr/local/bin/berth",
    );
    sbox.seed_nested_root(&format!("/var/lib/machines/{machine}"));
    fs::write(
        sbox.host_path("/root/adopt.yaml"),
        format!("machines:\n  {machine}: {{distro: debian, release: bookworm}}\n"),
    )
    .unwrap();
    sbox.exec_ok(&["berth", "-q", "adopt", "-f", "/root/adopt.yaml", machine]);
    (sbox, link)
}

/// `ADDRESS KEYTYPE KEY` for the box's ed25519 host key.
fn known_host(sbox: &SystemdBox, address: &str) -> String {
    let key = fs::read_to_string(sbox.host_path("/etc/ssh/ssh_host_ed25519_key.pub")).unwrap();
    let mut parts = key.split_whitespace();
    format!(
        "{address} {} {}\n",
        parts.next().unwrap(),
        parts.next().unwrap()
    )
}

/// Every process's argv and environment in the box, as text.
fn box_processes(sbox: &SystemdBox) -> String {
    let out = sbox.exec(&[
        "sh",
        "-c",
        "for p in /proc/[0-9]*; do cat $p/cmdline $p/environ 2>/dev/null; echo; done",
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn spec(extra_hosts: &str, extra_machines: &str) -> String {
    format!(
        "hosts:
  alpha: {{ssh: root@10.251.1.2, identity: ./id_fleet, labels: [edge]}}
  beta: {{ssh: root@10.251.2.2, identity: ./id_fleet}}
  local: {{}}
{extra_hosts}known_hosts: ./known_hosts
defaults: {{distro: debian, release: bookworm}}
machines:
  fleetweb: {{host: alpha, state: running, root_password: {{env: FLEET_PW}}}}
  fleetedge: {{host: beta, state: running}}
  fleethere: {{state: stopped}}
{extra_machines}"
    )
}

#[test]
fn two_boxes_and_local_over_ssh() {
    if !require_root("fleet::two_boxes_and_local_over_ssh") {
        return;
    }
    let sandbox = Sandbox::new("fleet");
    let dir = sandbox.dir.path();
    run(&[
        "ssh-keygen",
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        "berth-fleet-test",
        "-f",
        &dir.join("id_fleet").display().to_string(),
    ]);
    let pubkey = fs::read_to_string(dir.join("id_fleet.pub")).unwrap();
    let (alpha, alpha_link) = ssh_box("fleet-alpha", 1, &pubkey, "fleetweb");
    let (beta, _beta_link) = ssh_box("fleet-beta", 2, &pubkey, "fleetedge");
    let known = format!(
        "{}{}",
        known_host(&alpha, "10.251.1.2"),
        known_host(&beta, "10.251.2.2")
    );
    fs::write(dir.join("known_hosts"), &known).unwrap();
    // The local machine: a seeded root, adopted.
    copy_of_cached_root(&sandbox.root("fleethere"));
    let spec1 = spec("", "");
    sandbox
        .berth_cmd()
        .spec(&spec1)
        .args(["adopt", "fleethere"])
        .run()
        .success();

    // An old pushed berth on beta: the push of this one removes it.
    let old_bin = beta.host_path("/var/lib/berth/bin/berth-00000000deadbeef");
    fs::create_dir_all(old_bin.parent().unwrap()).unwrap();
    fs::write(&old_bin, "old").unwrap();

    // Apply brings each machine up where it belongs.
    let applied = sandbox
        .berth_cmd()
        .env("FLEET_PW", CANARY)
        .args(["apply", "--yes"])
        .run();
    applied.success();
    let out = applied.stdout();
    assert!(out.contains("== host alpha (root@10.251.1.2) =="), "{out}");
    assert!(out.contains("== host beta (root@10.251.2.2) =="), "{out}");
    assert!(out.contains("== host local =="), "{out}");
    // Each host's steps show on stderr as they happen.
    assert!(
        applied
            .stderr()
            .contains("alpha: fleetweb: done: start machine"),
        "{}",
        applied.stderr()
    );
    alpha.wait_machine_running("fleetweb", Duration::from_secs(90));
    beta.wait_machine_running("fleetedge", Duration::from_secs(90));
    assert!(!old_bin.exists(), "the old pushed berth is still there");
    let pushed: Vec<_> = fs::read_dir(old_bin.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        pushed.len() == 1 && pushed[0].starts_with("berth-"),
        "{pushed:?}"
    );
    // The agent's work directory is gone; only its (empty) lock file stays.
    let run_dir = beta.exec_ok(&["ls", "-A", "/run/berth"]);
    assert!(
        run_dir.split_whitespace().all(|n| n.ends_with(".lock")),
        "{run_dir}"
    );
    assert!(alpha.exec_ok(&["machinectl", "list"]).contains("fleetweb"));
    assert!(beta.exec_ok(&["machinectl", "list"]).contains("fleetedge"));
    assert!(!alpha.exec_ok(&["machinectl", "list"]).contains("fleetedge"));

    // status --json: every machine with its host.
    let status = sandbox.berth_cmd().args(["status", "--json"]).run();
    status.success();
    let rows = status.json();
    let host_of = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| (r["host"].clone(), r["state"].clone()))
            .unwrap_or_else(|| panic!("{name} missing: {rows}"))
    };
    assert_eq!(
        host_of("fleetweb"),
        ("alpha".into(), "running".into()),
        "{rows}"
    );
    assert_eq!(
        host_of("fleetedge"),
        ("beta".into(), "running".into()),
        "{rows}"
    );
    assert_eq!(host_of("fleethere").0, "local", "{rows}");

    // A second plan changes nothing, on every host.
    let again = sandbox
        .berth_cmd()
        .env("FLEET_PW", CANARY)
        .args(["plan", "--detailed-exitcode"])
        .run();
    assert_eq!(again.exit_code(), Some(0), "{}", describe(again.output()));
    let json = sandbox
        .berth_cmd()
        .env("FLEET_PW", CANARY)
        .args(["plan", "--json", "--hosts", "label:edge"])
        .run();
    json.success();
    let plan = json.json();
    assert_eq!(plan["changes"], 0, "{plan}");
    assert_eq!(plan["machines"][0]["host"], "alpha", "{plan}");
    assert_eq!(plan["machines"].as_array().unwrap().len(), 1, "{plan}");

    // Cut link: alpha's link goes down while it starts fleetweb (a guest unit
    // holds its boot for 25 s); beta and local complete, alpha is reported
    // as lost mid-step, and once the link is back the next apply converges.
    let stopped = spec1.replace(
        "fleetweb: {host: alpha, state: running,",
        "fleetweb: {host: alpha, state: stopped,",
    );
    sandbox
        .berth_cmd()
        .spec(&stopped)
        .env("FLEET_PW", CANARY)
        .args(["apply", "--yes", "--hosts", "alpha"])
        .run()
        .success();
    assert!(!alpha.exec_ok(&["machinectl", "list"]).contains("fleetweb"));
    let slow = spec1.replace(
        "fleetweb: {host: alpha, state: running,",
        "fleetweb: {host: alpha, state: running, units: {enable: [slow]}, files: {/etc/systemd/system/slow.service: {content: \"[Service]\\nType=oneshot\\nExecStart=/bin/sleep 25\\n[Install]\\nWantedBy=multi-user.target\\n\"}},",
    );
    let cut = std::thread::scope(|scope| {
        let apply = scope.spawn(|| {
            sandbox
                .berth_cmd()
                .spec(&slow)
                .env("FLEET_PW", CANARY)
                .args(["apply", "--yes"])
                .run()
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        while !alpha.exec_ok(&["machinectl", "list"]).contains("fleetweb") {
            assert!(Instant::now() < deadline, "fleetweb never started on alpha");
            std::thread::sleep(Duration::from_millis(200));
        }
        alpha_link.set(false);
        apply.join().unwrap()
    });
    alpha_link.set(true);
    assert_eq!(cut.exit_code(), Some(1), "{}", describe(cut.output()));
    let err = cut.stderr();
    assert!(
        err.contains("host alpha: connection lost during 'start machine'"),
        "{err}"
    );
    assert!(
        !err.contains("host beta:") && !err.contains("host local:"),
        "{err}"
    );
    let converge = sandbox
        .berth_cmd()
        .spec(&slow)
        .env("FLEET_PW", CANARY)
        .args(["apply", "--yes"])
        .run();
    assert_eq!(
        converge.exit_code(),
        Some(0),
        "{}",
        describe(converge.output())
    );
    alpha.wait_machine_running("fleetweb", Duration::from_secs(90));
    let settled = sandbox
        .berth_cmd()
        .env("FLEET_PW", CANARY)
        .args(["plan", "--detailed-exitcode", "--hosts", "alpha"])
        .run();
    assert_eq!(
        settled.exit_code(),
        Some(0),
        "{}",
        describe(settled.output())
    );

    // A saved plan over hosts: each host gets its part; a host where
    // something changed since refuses (`plan is stale: host beta: ...`)
    // while the others apply theirs.
    let renamed = slow
        .replace(
            "fleetweb: {host: alpha, state: running,",
            "fleetweb: {host: alpha, state: running, hostname: web-saved,",
        )
        .replace(
            "fleetedge: {host: beta, state: running}",
            "fleetedge: {host: beta, state: running, hostname: edge-saved}",
        );
    let saved = sandbox
        .berth_cmd()
        .spec(&renamed)
        .env("FLEET_PW", CANARY)
        .args(["plan", "--out", "fleet.plan"])
        .run();
    saved.success();
    let text = fs::read_to_string(dir.join("fleet.plan")).unwrap();
    assert!(!text.contains(CANARY));
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(file["format"], "berth-fleet-plan", "{file}");
    assert!(
        file["hosts"]["alpha"]["targets"] == serde_json::json!(["fleetweb"]),
        "{file}"
    );
    let edge_hostname = beta.host_path("/var/lib/machines/fleetedge/etc/hostname");
    fs::write(&edge_hostname, "tampered\n").unwrap();
    let stale = sandbox
        .berth_cmd()
        .env("FLEET_PW", CANARY)
        .args(["apply", "./fleet.plan"])
        .run();
    assert_eq!(stale.exit_code(), Some(1), "{}", describe(stale.output()));
    assert!(
        stale.stderr().contains("plan is stale: host beta: "),
        "{}",
        stale.stderr()
    );
    assert_eq!(fs::read_to_string(&edge_hostname).unwrap(), "tampered\n");
    assert_eq!(
        fs::read_to_string(alpha.host_path("/var/lib/machines/fleetweb/etc/hostname"))
            .unwrap()
            .trim(),
        "web-saved"
    );
    sandbox
        .berth_cmd()
        .env("FLEET_PW", CANARY)
        .args(["plan", "--out", "fleet.plan"])
        .run()
        .success();
    sandbox
        .berth_cmd()
        .env("FLEET_PW", CANARY)
        .args(["apply", "./fleet.plan"])
        .run()
        .success();
    assert_eq!(
        fs::read_to_string(&edge_hostname).unwrap().trim(),
        "edge-saved"
    );

    // An unreachable host fails alone: the others are applied, exit 1.
    let spec2 = spec(
        "  gamma: {ssh: \"root@10.251.1.2:2222\", identity: ./id_fleet}\n",
        "  far: {host: gamma}\n",
    )
    .replace(
        "fleetweb: {host: alpha, state: running,",
        "fleetweb: {host: alpha, state: running, hostname: web-two,",
    );
    let partial = sandbox
        .berth_cmd()
        .spec(&spec2)
        .env("FLEET_PW", CANARY)
        .args(["apply", "--yes"])
        .run();
    assert_eq!(
        partial.exit_code(),
        Some(1),
        "{}",
        describe(partial.output())
    );
    let err = partial.stderr();
    assert!(
        err.contains("host gamma: ssh: connect to host 10.251.1.2 port 2222"),
        "{err}"
    );
    assert!(!err.contains("host alpha:"), "{err}");
    assert_eq!(
        fs::read_to_string(alpha.host_path("/var/lib/machines/fleetweb/etc/hostname"))
            .unwrap()
            .trim(),
        "web-two",
        "alpha was applied despite gamma"
    );

    // exec runs on the machine's host, its exit code passed through.
    let exec = sandbox
        .berth_cmd()
        .args([
            "exec",
            "fleetweb",
            "--",
            "sh",
            "-c",
            "cat /etc/hostname; exit 3",
        ])
        .run();
    assert_eq!(exec.exit_code(), Some(3), "{}", describe(exec.output()));
    assert_eq!(exec.stdout().trim(), "web-two");

    // A changed host key fails that host, and nothing is applied there.
    let (other_key, _) = {
        let k = dir.join("other_key");
        run(&[
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            &k.display().to_string(),
        ]);
        (fs::read_to_string(dir.join("other_key.pub")).unwrap(), ())
    };
    let mut parts = other_key.split_whitespace();
    let bad_beta = format!(
        "10.251.2.2 {} {}\n",
        parts.next().unwrap(),
        parts.next().unwrap()
    );
    fs::write(
        dir.join("known_hosts"),
        format!("{}{bad_beta}", known_host(&alpha, "10.251.1.2")),
    )
    .unwrap();
    let spec3 = spec1.replace(
        "fleetedge: {host: beta, state: running}",
        "fleetedge: {host: beta, state: running, hostname: edge-two}",
    );
    // spec3's apply on beta fails with `expected` and changes nothing there.
    let refused_on_beta = |expected: &str, why: &str| {
        let run = sandbox
            .berth_cmd()
            .spec(&spec3)
            .env("FLEET_PW", CANARY)
            .args(["apply", "--yes", "--hosts", "beta"])
            .run();
        assert_eq!(run.exit_code(), Some(1), "{}", describe(run.output()));
        assert!(run.stderr().contains(expected), "{}", run.stderr());
        assert_ne!(
            fs::read_to_string(beta.host_path("/var/lib/machines/fleetedge/etc/hostname"))
                .unwrap()
                .trim(),
            "edge-two",
            "{why}"
        );
    };
    refused_on_beta(
        "host beta: ssh: host key verification failed",
        "beta was applied despite its wrong key",
    );

    // The secret never shows in the boxes' process tables nor on their
    // disks, except as the hash in the machine's /etc/shadow.
    for sbox in [&alpha, &beta] {
        assert!(
            !box_processes(sbox).contains(CANARY),
            "the canary is in a process table"
        );
        let grep = Command::new("grep")
            .args(["-rlF", "--binary-files=text", "--no-messages", CANARY])
            .arg(sbox.root())
            .output()
            .unwrap();
        let hits = String::from_utf8_lossy(&grep.stdout);
        assert!(
            hits.trim().is_empty(),
            "the canary is on a box's disk: {hits}"
        );
    }
    let shadow =
        fs::read_to_string(alpha.host_path("/var/lib/machines/fleetweb/etc/shadow")).unwrap();
    assert!(
        shadow.starts_with("root:$"),
        "root's password was not set: {shadow}"
    );

    // status groups per host; destroy removes a machine on its host
    // (with beta's right key known again).
    fs::write(dir.join("known_hosts"), &known).unwrap();
    let status = sandbox.berth_cmd().spec(&spec1).args(["status"]).run();
    status.success();
    assert!(
        status
            .stdout()
            .contains("== host beta (root@10.251.2.2) =="),
        "{}",
        status.stdout()
    );
    // The host's keys replaced on the server while berth's kept master to
    // it is up (the status above made it): the master no longer stands
    // for beta, ssh checks the new key against known_hosts, and the host
    // fails with nothing applied.
    let saved_keys = dir.join("beta-host-keys");
    fs::create_dir_all(&saved_keys).unwrap();
    run(&[
        "sh",
        "-c",
        &format!(
            "cp -a {}/ssh_host_* {}/",
            beta.host_path("/etc/ssh").display(),
            saved_keys.display()
        ),
    ]);
    beta.exec_ok(&[
        "sh",
        "-c",
        "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh.service",
    ]);
    refused_on_beta(
        "host beta: ssh: host key verification failed: the host's key changed",
        "beta was applied through a master made before its key changed",
    );
    // Its own keys back: beta is reached again.
    beta.exec_ok(&["sh", "-c", "rm -f /etc/ssh/ssh_host_*"]);
    run(&[
        "sh",
        "-c",
        &format!(
            "cp -a {}/ssh_host_* {}/",
            saved_keys.display(),
            beta.host_path("/etc/ssh").display()
        ),
    ]);
    beta.exec_ok(&["systemctl", "restart", "ssh.service"]);
    sandbox
        .berth_cmd()
        .spec(&spec1)
        .args(["status", "--hosts", "beta"])
        .run()
        .success();

    // Ctrl-C during an apply over hosts: berth tells the agent, which
    // stops at its next safe point; the host says so, berth exits 130 as a
    // local apply does, and the next apply converges. The health check
    // waits for a file, so the apply is still running when Ctrl-C comes.
    let go = beta.host_path("/var/lib/machines/fleetedge/var/tmp/berth-go");
    let _ = fs::remove_file(&go);
    let spec_int = spec1.replace(
        "fleetedge: {host: beta, state: running}",
        "fleetedge: {host: beta, state: running, hostname: edge-three, health: {command: [test, -e, /var/tmp/berth-go], timeout: 120s}}",
    );
    sandbox.spec(&spec_int);
    let controller = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["apply", "--yes", "--hosts", "beta"])
        .current_dir(dir)
        .env("BERTH_MACHINES_DIR", sandbox.machines())
        .env("BERTH_STATE_DIR", sandbox.state())
        .env("BERTH_NSPAWN_DIR", sandbox.nspawn())
        .env("BERTH_CACHE_DIR", sandbox.cache())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let hostname = beta.host_path("/var/lib/machines/fleetedge/etc/hostname");
    let deadline = Instant::now() + Duration::from_secs(180);
    while fs::read_to_string(&hostname).unwrap_or_default().trim() != "edge-three" {
        assert!(
            Instant::now() < deadline,
            "the apply never wrote the hostname"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The health check is next (or running): Ctrl-C, then let it pass.
    std::thread::sleep(Duration::from_secs(1));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(controller.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    fs::write(&go, "").unwrap();
    let stopped = controller.wait_with_output().unwrap();
    assert_eq!(stopped.status.code(), Some(130), "{}", describe(&stopped));
    let err = String::from_utf8_lossy(&stopped.stderr);
    assert!(
        err.contains("host beta: interrupted: stopped at a safe point"),
        "{err}"
    );
    assert!(err.contains("Apply interrupted"), "{err}");
    sandbox
        .berth_cmd()
        .spec(&spec_int)
        .args(["apply", "--yes", "--hosts", "beta"])
        .run()
        .success();
    let clean = sandbox
        .berth_cmd()
        .spec(&spec_int)
        .args(["plan", "--detailed-exitcode", "--hosts", "beta"])
        .run();
    assert_eq!(clean.exit_code(), Some(0), "{}", describe(clean.output()));
    // beta as spec1 has it again, for what follows.
    sandbox
        .berth_cmd()
        .spec(&spec1)
        .args(["apply", "--yes", "--hosts", "beta"])
        .run()
        .success();
    let _ = fs::remove_file(&go);

    // moved: and prune over hosts. A machine applied from the spec on
    // alpha is renamed there by a `moved:` entry; once dropped from the
    // spec it is listed under alpha's header, kept by apply with a
    // warning, and destroyed by apply --prune.
    alpha.seed_nested_root("/var/lib/machines/fleetold");
    fs::write(
        alpha.host_path("/root/adopt.yaml"),
        "machines:\n  fleetold: {distro: debian, release: bookworm}\n",
    )
    .unwrap();
    alpha.exec_ok(&["berth", "-q", "adopt", "-f", "/root/adopt.yaml", "fleetold"]);
    let on_alpha = |extra: &str| format!("{spec2}{extra}");
    sandbox
        .berth_cmd()
        .spec(&on_alpha("  fleetold: {host: alpha, state: stopped}\n"))
        .env("FLEET_PW", CANARY)
        .args(["apply", "--yes", "--hosts", "alpha"])
        .run()
        .success();
    let moved = sandbox
        .berth_cmd()
        .spec(&on_alpha(
            "  fleetnew: {host: alpha, state: stopped}\nmoved:\n  - {from: fleetold, to: fleetnew}\n",
        ))
        .env("FLEET_PW", CANARY)
        .args(["apply", "--yes", "--hosts", "alpha"])
        .run();
    moved.success();
    assert!(
        moved.stdout().contains("fleetold"),
        "{}",
        describe(moved.output())
    );
    assert!(alpha.host_path("/var/lib/machines/fleetnew").exists());
    assert!(!alpha.host_path("/var/lib/machines/fleetold").exists());
    // Dropped from the spec (the `moved:` entry with it).
    sandbox.spec(&spec2);
    let listed = sandbox
        .berth_cmd()
        .env("FLEET_PW", CANARY)
        .args(["plan", "--hosts", "alpha"])
        .run();
    listed.success();
    let out = listed.stdout();
    let header = out.find("== host alpha (root@10.251.1.2) ==");
    let line = out.find("- destroy fleetnew (no longer in the spec)");
    assert!(
        header.is_some() && line > header,
        "{}",
        describe(listed.output())
    );
    let json = sandbox
        .berth_cmd()
        .env("FLEET_PW", CANARY)
        .args(["plan", "--json", "--hosts", "alpha"])
        .run();
    json.success();
    let plan = json.json();
    let pruned = plan["machines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "fleetnew")
        .unwrap_or_else(|| panic!("fleetnew missing: {plan}"));
    assert_eq!(pruned["host"], "alpha", "{plan}");
    assert!(plan["changes"].as_u64().unwrap() >= 1, "{plan}");
    let kept = sandbox
        .berth_cmd()
        .env("FLEET_PW", CANARY)
        .args(["apply", "--yes", "--hosts", "alpha"])
        .run();
    kept.success();
    assert!(
        kept.stderr()
            .contains("! fleetnew: kept: pass --prune to destroy"),
        "{}",
        describe(kept.output())
    );
    assert!(alpha.host_path("/var/lib/machines/fleetnew").exists());
    // A saved plan lists it too, and applying it without --prune keeps it.
    sandbox
        .berth_cmd()
        .env("FLEET_PW", CANARY)
        .args(["plan", "--out", "prune.plan", "--hosts", "alpha"])
        .run()
        .success();
    let saved = sandbox
        .berth_cmd()
        .env("FLEET_PW", CANARY)
        .args(["apply", "./prune.plan"])
        .run();
    saved.success();
    assert!(
        saved
            .stderr()
            .contains("! fleetnew: kept: pass --prune to destroy"),
        "{}",
        describe(saved.output())
    );
    assert!(alpha.host_path("/var/lib/machines/fleetnew").exists());
    let pruned = sandbox
        .berth_cmd()
        .env("FLEET_PW", CANARY)
        .args(["apply", "--yes", "--prune", "--hosts", "alpha", "--json"])
        .run();
    pruned.success();
    let report = pruned.json();
    assert!(
        report["machines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "fleetnew" && m["result"] == "destroyed" && m["host"] == "alpha"),
        "{report}"
    );
    assert!(!alpha.host_path("/var/lib/machines/fleetnew").exists());
    assert!(
        !alpha
            .exec_ok(&["machinectl", "list-images"])
            .contains("fleetnew")
    );

    sandbox
        .berth_cmd()
        .spec(&spec1)
        .args(["destroy", "--yes", "fleetedge"])
        .run()
        .success();
    assert!(!beta.exec_ok(&["machinectl", "list"]).contains("fleetedge"));
    assert!(!beta.host_path("/var/lib/machines/fleetedge").exists());
    // A host of `hosts:` with no machine left is still visited by plan
    // (for its machines to prune): its empty part loads there.
    let empty = sandbox
        .berth_cmd()
        .spec(&spec1.replace("  fleetedge: {host: beta, state: running}\n", ""))
        .env("FLEET_PW", CANARY)
        .args(["plan", "--detailed-exitcode", "--hosts", "beta"])
        .run();
    assert_eq!(empty.exit_code(), Some(0), "{}", describe(empty.output()));
    assert!(
        empty.stdout().contains("== host beta (root@10.251.2.2) =="),
        "{}",
        empty.stdout()
    );

    // Upgrades over hosts: alpha's machine reads a repository in the box
    // (bound in as its only apt source). With 2.0 published there,
    // `plan --upgrade` lists it under alpha's header, and `apply --upgrade`
    // takes a snapshot there and installs it.
    let repo = alpha.host_path("/srv/berth-repo");
    fs::create_dir_all(&repo).unwrap();
    fs::set_permissions(&repo, fs::Permissions::from_mode(0o755)).unwrap();
    crate::upgrades::publish(&dir.join("debs"), &repo, "1.0", crate::upgrades::POSTINST);
    let web = "fleetweb: {host: alpha, state: running, root_password: {env: FLEET_PW}}";
    let with_repo = |packages: &str| {
        spec1.replace(
            web,
            &format!(
                "fleetweb: {{host: alpha, state: running, root_password: {{env: FLEET_PW}}{packages}, \
                 binds: [{{host: /srv/berth-repo, machine: /srv/repo, read_only: true}}], \
                 files: {{/etc/apt/sources.list: {{content: \"deb [trusted=yes] file:/srv/repo ./\\n\"}}, \
                 /etc/apt/sources.list.d/debian.sources: {{state: absent}}}}}}"
            ),
        )
    };
    for spec in [with_repo(""), with_repo(", packages: [berth-hello]")] {
        sandbox
            .berth_cmd()
            .spec(&spec)
            .env("FLEET_PW", CANARY)
            .args(["apply", "--yes", "--hosts", "alpha"])
            .run()
            .success();
    }
    let hello = with_repo(", packages: [berth-hello]");
    let version = || crate::upgrades::installed_in(sandbox.berth_cmd().spec(&hello), "fleetweb");
    assert_eq!(version(), "1.0");
    crate::upgrades::publish(&dir.join("debs"), &repo, "2.0", crate::upgrades::POSTINST);
    let upgrades = sandbox
        .berth_cmd()
        .spec(&hello)
        .env("FLEET_PW", CANARY)
        .args(["plan", "--upgrade", "--hosts", "alpha"])
        .run();
    upgrades.success();
    let out = upgrades.stdout();
    assert!(out.contains("== host alpha (root@10.251.1.2) =="), "{out}");
    assert!(out.contains("berth-hello 1.0 -> 2.0"), "{out}");
    sandbox
        .berth_cmd()
        .spec(&hello)
        .env("FLEET_PW", CANARY)
        .args(["apply", "--upgrade", "--yes", "--hosts", "alpha"])
        .run()
        .success();
    assert_eq!(version(), "2.0");
    let snapshots = fs::read_dir(alpha.host_path("/var/lib/machines/.fleetweb.snapshots"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert!(
        snapshots.iter().any(|s| s.starts_with("before-upgrade")),
        "{snapshots:?}"
    );
    // Snapshots of a machine on another host: listed, taken, rolled back
    // to and deleted there, through the spec's placement (as exec).
    let listed = sandbox
        .berth_cmd()
        .spec(&hello)
        .args(["snapshots", "fleetweb"])
        .run();
    listed.success();
    assert!(
        listed.stdout().contains("before-upgrade"),
        "{}",
        listed.stdout()
    );
    sandbox
        .berth_cmd()
        .spec(&hello)
        .args(["snapshot", "fleetweb", "--tag", "fleet-manual"])
        .run()
        .success();
    assert!(
        alpha
            .host_path("/var/lib/machines/.fleetweb.snapshots/fleet-manual")
            .is_dir()
    );
    let before = snapshots
        .iter()
        .find(|s| s.starts_with("before-upgrade"))
        .unwrap()
        .clone();
    let rolled = sandbox
        .berth_cmd()
        .spec(&hello)
        .args(["rollback", "fleetweb", &before])
        .run();
    rolled.success();
    assert!(
        rolled
            .stdout()
            .contains(&format!("fleetweb: rolled back to {before}")),
        "{}",
        rolled.stdout()
    );
    // 1.0 again, and the machine runs again (exec needs it running).
    assert_eq!(version(), "1.0");
    sandbox
        .berth_cmd()
        .spec(&hello)
        .args(["snapshot", "--delete", "fleetweb", "fleet-manual"])
        .run()
        .success();
    assert!(
        !alpha
            .host_path("/var/lib/machines/.fleetweb.snapshots/fleet-manual")
            .exists()
    );
    // alpha's machine as spec1 has it again (the package stays).
    sandbox
        .berth_cmd()
        .spec(&spec1)
        .env("FLEET_PW", CANARY)
        .args(["apply", "--yes", "--hosts", "alpha"])
        .run()
        .success();

    // A spec directory: hosts declared in one file, used in another.
    let specdir = dir.join("specdir");
    fs::create_dir(&specdir).unwrap();
    fs::write(
        specdir.join("00-hosts.yaml"),
        "hosts:\n  alpha: {ssh: root@10.251.1.2, identity: ../id_fleet}\nknown_hosts: ../known_hosts\n",
    )
    .unwrap();
    fs::write(
        specdir.join("10-web.yaml"),
        "machines:\n  fleetweb: {host: alpha, distro: debian, release: bookworm}\n",
    )
    .unwrap();
    let from_dir = sandbox
        .berth_cmd()
        .args(["status", "--json", "-f", "specdir"])
        .run();
    from_dir.success();
    let rows = from_dir.json();
    assert_eq!(rows[0]["name"], "fleetweb", "{rows}");
    assert_eq!(rows[0]["host"], "alpha", "{rows}");
    assert_eq!(rows[0]["state"], "running", "{rows}");

    // Host keys: an unknown host is refused by default, added with
    // accept-new; a `berth:` that cannot run names the way out.
    fs::write(dir.join("empty_known_hosts"), "").unwrap();
    let keys = |checking: &str| {
        format!(
            "hosts:\n  alpha: {{ssh: root@10.251.1.2, identity: ./id_fleet}}\n  delta: {{ssh: root@10.251.2.2, identity: ./id_fleet, berth: /bin/false}}\nknown_hosts: ./empty_known_hosts\nhost_key_checking: {checking}\nmachines:\n  fleetweb: {{host: alpha, distro: debian, release: bookworm}}\n  d: {{host: delta, distro: debian, release: bookworm}}\n"
        )
    };
    let strict = sandbox
        .berth_cmd()
        .spec(&keys("strict"))
        .args(["status", "--hosts", "alpha"])
        .run();
    assert_eq!(strict.exit_code(), Some(1), "{}", describe(strict.output()));
    assert!(
        strict.stderr().contains(
            "host alpha: ssh: host key verification failed: the host's key is not in known_hosts"
        ),
        "{}",
        strict.stderr()
    );
    let accept = sandbox
        .berth_cmd()
        .spec(&keys("accept-new"))
        .args(["status", "--json"])
        .run();
    assert_eq!(accept.exit_code(), Some(1), "{}", describe(accept.output()));
    assert_eq!(accept.json()[0]["host"], "alpha", "{}", accept.stdout());
    // (ssh may hash the names it adds: ask ssh-keygen.)
    let kh = dir.join("empty_known_hosts").display().to_string();
    run(&["ssh-keygen", "-F", "10.251.1.2", "-f", &kh]);
    assert!(
        accept
            .stderr()
            .contains("host delta: /bin/false cannot run on the host"),
        "{}",
        accept.stderr()
    );
    assert!(
        accept.stderr().contains("`hosts.delta.berth: PATH`"),
        "{}",
        accept.stderr()
    );
}

#[test]
fn hosts_patterns_must_match() {
    let sandbox = Sandbox::new("fleet-patterns");
    // Nothing here may connect; were it to, loopback port 1 refuses at once.
    let spec = "hosts:\n  alpha: {ssh: \"root@127.0.0.1:1\"}\nmachines:\n  web: {host: alpha, distro: debian, release: bookworm}\n";
    let run = sandbox
        .berth_cmd()
        .spec(spec)
        .args(["plan", "--hosts", "gamma"])
        .run();
    run.failure();
    assert!(
        run.stderr().contains("--hosts gamma: no such host"),
        "{}",
        run.stderr()
    );
    let run = sandbox
        .berth_cmd()
        .spec(spec)
        .args(["status", "--hosts", "label:nope"])
        .run();
    run.failure();
    assert!(
        run.stderr().contains("--hosts label:nope: no such host"),
        "{}",
        run.stderr()
    );
    // snapshot, snapshots and rollback of a machine the spec places on
    // another host go there (alpha: nothing listens), never to a local
    // machine of that name.
    for args in [
        &["snapshot", "web"][..],
        &["snapshots", "web"][..],
        &["rollback", "web"][..],
        &["rollback", "-f", "machines.yaml", "web"][..],
    ] {
        let run = sandbox.berth_cmd().spec(spec).args(args).run();
        assert_eq!(run.exit_code(), Some(1), "{}", describe(run.output()));
        assert!(
            run.stderr()
                .contains("host alpha: ssh: connect to host 127.0.0.1 port 1"),
            "{args:?}: {}",
            run.stderr()
        );
    }
    assert!(!sandbox.machines().join(".web.snapshots").exists());
}

#[test]
fn unreachable_only_host_fails_with_its_name() {
    // Loopback port 1: nothing listens, so ssh's connection is refused at
    // once (no traffic leaves the host).
    let sandbox = Sandbox::new("fleet-unreachable");
    let spec = "hosts:\n  gamma: {ssh: \"root@127.0.0.1:1\"}\nmachines:\n  web: {host: gamma, distro: debian, release: bookworm}\n";
    let run = sandbox.berth_cmd().spec(spec).args(["plan"]).run();
    assert_eq!(run.exit_code(), Some(1), "{}", describe(run.output()));
    let err = run.stderr();
    assert!(
        err.contains("host gamma: ssh: connect to host 127.0.0.1 port 1"),
        "{err}"
    );
    assert!(
        run.stdout().contains("== host gamma (root@127.0.0.1:1) =="),
        "{}",
        run.stdout()
    );
}

/// `berth plan` over two booted boxes with N converged machines each (the
/// machines adopted from cheap synthetic roots) agrees with `berth plan`
/// run locally inside each box: both are clean. In the suite it runs small
/// (2 machines per box, one round) and only checks that; it is also the
/// `fleet` row of `bench/run`, which sets `BERTH_BENCH_OUT` (and
/// `BERTH_BENCH_BIN`, `RUNS`, `BENCH_FLEET_N`): then it times `plan` over
/// the hosts against the slower box's local plan, the cold run (berth
/// pushed first) and a bare ssh connection, and writes `row side run
/// seconds` lines there for `bench/run`'s table. Timings are never
/// asserted.
#[test]
fn plan_over_hosts_agrees_with_local_plans() {
    if !require_root("plan_over_hosts_agrees_with_local_plans") {
        return;
    }
    let out = std::env::var_os("BERTH_BENCH_OUT");
    let bin =
        std::env::var("BERTH_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_berth").to_owned());
    let runs: usize = match &out {
        None => 1,
        Some(_) => std::env::var("RUNS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(3),
    };
    let n: usize = match &out {
        None => 2,
        Some(_) => std::env::var("BENCH_FLEET_N")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(50),
    };
    let sandbox = Sandbox::new("fleetbench");
    let dir = sandbox.dir.path();
    let key = dir.join("id_fleet");
    run(&[
        "ssh-keygen",
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-f",
        &key.display().to_string(),
    ]);
    let pubkey = fs::read_to_string(dir.join("id_fleet.pub")).unwrap();
    let (a, _a_link) = ssh_box("fleet-bench-a", 3, &pubkey, "seed");
    let (b, _b_link) = ssh_box("fleet-bench-b", 4, &pubkey, "seed");
    fs::write(
        dir.join("known_hosts"),
        format!(
            "{}{}",
            known_host(&a, "10.251.3.2"),
            known_host(&b, "10.251.4.2")
        ),
    )
    .unwrap();
    let hash = "$6$salt$0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ./0123456789abcdefghijk";
    let defaults = format!(
        "defaults: {{distro: debian, release: bookworm, bootstrapper: debootstrap, packages: [systemd, dbus], units: {{enable: [a], disable: [b], mask: [c]}}, root_password: {{hash: '{hash}'}}, securetty: [pts/0], launcher: nspawn, state: stopped}}\n"
    );
    let names = |p: &str| (1..=n).map(|i| format!("{p}{i:03}")).collect::<Vec<_>>();
    let mut fleet = format!(
        "hosts:\n  a: {{ssh: root@10.251.3.2, identity: ./id_fleet}}\n  b: {{ssh: root@10.251.4.2, identity: ./id_fleet}}\nknown_hosts: ./known_hosts\n{defaults}machines:\n"
    );
    for (sbox, p) in [(&a, "a"), (&b, "b")] {
        // The berth timed, inside too; cheap synthetic roots, adopted.
        sbox.install_file(Path::new(&bin), "/usr/local/bin/berth");
        let mut local = format!("{defaults}machines:\n");
        let mut script = String::from("set -e\n");
        for m in names(p) {
            fleet.push_str(&format!("  {m}: {{host: {p}}}\n"));
            local.push_str(&format!("  {m}: {{}}\n"));
            script.push_str(&format!(
                "r=/var/lib/machines/{m}; mkdir -p $r/etc/systemd/system/multi-user.target.wants $r/usr/lib/systemd/system $r/var/lib/dpkg
printf 'ID=debian\\nVERSION_CODENAME=bookworm\\n' > $r/etc/os-release
printf 'root:*:19000:0:99999:7:::\\n' > $r/etc/shadow
printf '{m}\\n' > $r/etc/hostname
printf 'Package: systemd\\nStatus: install ok installed\\n\\nPackage: dbus\\nStatus: install ok installed\\n' > $r/var/lib/dpkg/status
for u in a b c; do printf '[Service]\\nExecStart=/bin/true\\n[Install]\\nWantedBy=multi-user.target\\n' > $r/usr/lib/systemd/system/$u.service; done
"
            ));
        }
        fs::write(sbox.host_path("/root/bench.yaml"), local).unwrap();
        fs::write(sbox.host_path("/root/make.sh"), script).unwrap();
        sbox.exec_ok(&["sh", "/root/make.sh"]);
        let mut adopt = vec!["berth", "-q", "adopt", "-f", "/root/bench.yaml"];
        let all = names(p);
        adopt.extend(all.iter().map(String::as_str));
        sbox.exec_ok(&adopt);
    }
    fs::write(dir.join("machines.yaml"), &fleet).unwrap();
    let berth = |args: &[&str]| {
        let t = Instant::now();
        let o = Command::new(&bin)
            .args(args)
            .current_dir(dir)
            .env("BERTH_STATE_DIR", dir.join("state"))
            .env("BERTH_MACHINES_DIR", dir.join("machines"))
            .env("BERTH_NSPAWN_DIR", dir.join("nspawn"))
            .output()
            .unwrap();
        (t.elapsed().as_secs_f64(), o)
    };
    let (_, o) = berth(&["apply", "--yes"]);
    assert!(o.status.success(), "{}", describe(&o));
    let (_, o) = berth(&["plan", "--detailed-exitcode"]);
    assert!(o.status.success(), "not converged: {}", describe(&o));
    // The local plan inside a box, timed there.
    let local = |sbox: &SystemdBox| -> f64 {
        let ns = sbox.exec_ok(&[
            "sh",
            "-c",
            "a=$(date +%s%N); berth plan --detailed-exitcode -f /root/bench.yaml >/dev/null || exit 9; b=$(date +%s%N); echo $((b - a))",
        ]);
        ns.trim().parse::<f64>().unwrap() / 1e9
    };
    let ssh = || {
        let t = Instant::now();
        let o = Command::new("ssh")
            .args([
                "-i",
                &key.display().to_string(),
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
            ])
            .arg(format!(
                "-oUserKnownHostsFile={}",
                dir.join("known_hosts").display()
            ))
            .args(["root@10.251.3.2", "true"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", describe(&o));
        t.elapsed().as_secs_f64()
    };
    let mut lines = String::new();
    for run_no in 1..=runs {
        // Cold: no berth on either box yet, no connection up.
        for sbox in [&a, &b] {
            sbox.exec_ok(&["sh", "-c", "rm -f /var/lib/berth/bin/berth-*"]);
        }
        end_masters("10.251.3.2");
        end_masters("10.251.4.2");
        std::thread::sleep(Duration::from_millis(200));
        let (cold, o) = berth(&["plan"]);
        assert!(o.status.success(), "{}", describe(&o));
        lines.push_str(&format!("fleetcold\tcold\t{run_no}\t{cold:.3}\n"));
        // Warm: connections up, berth there (a warm-up plan first).
        let (_, o) = berth(&["plan"]);
        assert!(o.status.success(), "{}", describe(&o));
        // berth has ended; its masters stay up, one per host.
        for address in ["10.251.3.2", "10.251.4.2"] {
            let ss = run(&["ss", "-Htnp", "dst", address]);
            assert_eq!(
                ss.lines().filter(|l| l.contains("\"ssh\"")).count(),
                1,
                "{address}: {ss}"
            );
        }
        // The two sides alternate in order (A B, B A, ...).
        let fleet_side = || {
            let (t, o) = berth(&["plan"]);
            assert!(o.status.success(), "{}", describe(&o));
            t
        };
        let local_side = || local(&a).max(local(&b));
        // Both boxes' local plans at once (as the fleet plan makes them
        // plan at once on this host's 2 CPUs), the slower counting.
        let local_pair = || {
            std::thread::scope(|scope| {
                let other = scope.spawn(|| local(&b));
                local(&a).max(other.join().unwrap())
            })
        };
        let (warm, slower, pair) = if run_no % 2 == 1 {
            let w = fleet_side();
            (w, local_side(), local_pair())
        } else {
            let p = local_pair();
            let l = local_side();
            (fleet_side(), l, p)
        };
        lines.push_str(&format!("fleet\tfleet\t{run_no}\t{warm:.3}\n"));
        lines.push_str(&format!("fleet\tlocal\t{run_no}\t{slower:.3}\n"));
        lines.push_str(&format!("fleetpair\tlocal\t{run_no}\t{pair:.3}\n"));
        lines.push_str(&format!("fleetssh\tssh\t{run_no}\t{:.3}\n", ssh()));
    }
    if let Some(out) = out {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .unwrap();
        std::io::Write::write_all(&mut f, lines.as_bytes()).unwrap();
    }
    // For looking into the numbers by hand: the rig stays up while the
    // file named by BERTH_BENCH_HOLD exists.
    if let Some(hold) = std::env::var_os("BERTH_BENCH_HOLD") {
        fs::write(&hold, format!("{}\n", dir.display())).unwrap();
        while Path::new(&hold).exists() {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    // Cleanup: the boxes go with their guards; the synthetic machines were
    // never started.
}
