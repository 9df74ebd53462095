//! DNS out of the box, for real, on this host (no systemd as PID 1, the
//! plain nspawn launcher, the default network: the host's). The README's
//! machine enables systemd-networkd and systemd-resolved as the article
//! does; its `/etc/resolv.conf` is then a link to resolved's stub, which has
//! no upstream server under host networking. berth's `ResolvConf=replace-host`
//! gives the guest the host's resolvers instead: the mirror's host name
//! resolves inside, and a package added to the running machine installs.
//! Debian 12 (bookworm) and 13 (trixie). Needs root and the Debian mirror.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::systemd_box::SystemdBox;
use crate::support::{Sandbox, describe, require_root};

/// The machine's name: one per release, as the two tests run at the same
/// time on this host and systemd-nspawn keys its runtime state
/// (`/run/systemd/nspawn/propagate/NAME`) and berth its view of running
/// processes (`--machine=NAME`) by the name.
fn machine(release: &str) -> String {
    format!("dns-{release}")
}

fn spec(release: &str, extra: &str) -> String {
    let name = machine(release);
    format!(
        r#"machines:
  {name}:
    distro: debian
    release: {release}
    packages: [systemd, systemd-sysv, dbus, systemd-resolved{extra}]
    units:
      enable: [systemd-networkd, systemd-resolved]
    nspawn_extra:
      Exec: {{LimitNOFILE: 4096}}
"#
    )
}

/// The host name of the first `deb` line's URL in the root's apt sources:
/// the mirror the guest's apt uses.
fn mirror_host(root: &Path) -> String {
    let mut text = fs::read_to_string(root.join("etc/apt/sources.list")).unwrap_or_default();
    if let Ok(dir) = fs::read_dir(root.join("etc/apt/sources.list.d")) {
        for entry in dir.flatten() {
            text.push_str(&fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    text.split_whitespace()
        .find_map(|word| {
            let rest = word
                .strip_prefix("http://")
                .or_else(|| word.strip_prefix("https://"))?;
            rest.split('/').next().map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no mirror URL in {}'s apt sources", root.display()))
}

/// Runs `argv` in the guest whose init is `leader`, in all its namespaces.
fn in_guest(leader: i64, argv: &[&str]) -> std::process::Output {
    Command::new("nsenter")
        .arg(format!("--target={leader}"))
        .args(["--mount", "--uts", "--ipc", "--net", "--pid", "--"])
        .args(argv)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .expect("running nsenter")
}

fn names_resolve_and_packages_install(release: &str) {
    let sandbox = Sandbox::new(&format!("dns-{release}"));
    let path = sandbox.spec(&spec(release, ""));
    let spec_arg = path.to_str().expect("a UTF-8 path");

    // plan names the network and warns about the guest's daemons.
    let plan = sandbox.berth_cmd().args(["plan", "-f", spec_arg]).run();
    plan.success().stdout_has("network: host").stdout_has(
        "systemd-networkd.service and systemd-resolved.service enabled under host networking",
    );
    sandbox
        .berth_cmd()
        .args(["apply", "--yes", "-f", spec_arg])
        .run()
        .success();
    let name = machine(release);
    let nspawn = fs::read_to_string(sandbox.nspawn().join(format!("{name}.nspawn")))
        .expect("the .nspawn file");
    assert!(nspawn.contains("ResolvConf=replace-host"), "{nspawn}");

    let status = sandbox
        .berth_cmd()
        .args(["status", "--json", "-f", spec_arg])
        .run();
    let status = status.success().json();
    assert_eq!(status[0]["network"], "host", "{status}");
    let leader = status[0]["leader"].as_i64().expect("a running guest");

    // nspawn_extra reaches the file and, under the nspawn launcher, the
    // command line: the guest's init has the limit.
    assert!(nspawn.contains("LimitNOFILE=4096"), "{nspawn}");
    let limits = fs::read_to_string(format!("/proc/{leader}/limits")).expect("the guest's limits");
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.split_whitespace().nth(3) == Some("4096")),
        "{limits}"
    );

    // The guest's resolver is the host's, not resolved's stub at 127.0.0.53.
    let resolv = in_guest(leader, &["cat", "/etc/resolv.conf"]);
    let resolv_text = String::from_utf8_lossy(&resolv.stdout).into_owned();
    assert!(
        !resolv_text.contains("127.0.0.53") && resolv_text.contains("nameserver"),
        "{}",
        describe(&resolv)
    );
    let host = mirror_host(&sandbox.root(&name));
    let lookup = in_guest(leader, &["getent", "hosts", &host]);
    assert!(
        lookup.status.success() && !lookup.stdout.is_empty(),
        "{host} does not resolve in the {release} guest: {}",
        describe(&lookup)
    );

    // A package added to the running machine installs (apt resolves the mirror).
    let path = sandbox.spec(&spec(release, ", less"));
    sandbox
        .berth_cmd()
        .args(["apply", "--yes", "-f", path.to_str().expect("a UTF-8 path")])
        .run()
        .success()
        .stdout_has("install less");
    let less = in_guest(leader, &["dpkg-query", "-W", "-f=${Status}", "less"]);
    assert_eq!(
        String::from_utf8_lossy(&less.stdout),
        "install ok installed",
        "{}",
        describe(&less)
    );
    // A second apply changes nothing.
    sandbox
        .berth_cmd()
        .args([
            "plan",
            "--detailed-exitcode",
            "-f",
            path.to_str().expect("a UTF-8 path"),
        ])
        .run()
        .code(0);
}

#[test]
fn debian_12_resolves_names_under_host_networking() {
    if !require_root("debian_12_resolves_names_under_host_networking") {
        return;
    }
    names_resolve_and_packages_install("bookworm");
}

#[test]
fn debian_13_resolves_names_under_host_networking() {
    if !require_root("debian_13_resolves_names_under_host_networking") {
        return;
    }
    names_resolve_and_packages_install("trixie");
}

/// The article's machine on a systemd host whose networkd runs: launcher
/// machinectl, networkd and resolved enabled inside, no `network:`. As
/// with `machinectl start` by hand, it gets a veth link; the host's
/// networkd (`80-container-ve.network`) hands it an address over DHCP, its
/// resolved resolves names over the link (LLMNR: the box has no uplink and
/// so no upstream DNS server to hand out), and `machinectl list` shows the
/// address.
#[test]
fn the_articles_machine_gets_an_address_and_names_from_the_hosts_networkd() {
    if !require_root("the_articles_machine_gets_an_address_and_names_from_the_hosts_networkd") {
        return;
    }
    const EXTRA: &[&str] = &["systemd-resolved"];
    let sbox = SystemdBox::boot_with("article", EXTRA);
    sbox.install_file(
        Path::new(env!("CARGO_BIN_EXE_berth")),
        "/usr/local/bin/berth",
    );
    sbox.exec_ok(&["systemctl", "enable", "--now", "systemd-networkd.service"]);
    sbox.seed_nested_root_with("/var/lib/machines/web", EXTRA);
    fs::write(
        sbox.host_path("/root/machines.yaml"),
        "machines:\n  web:\n    distro: debian\n    release: bookworm\n    \
         packages: [systemd, systemd-sysv, dbus, systemd-resolved]\n    launcher: machinectl\n    \
         units:\n      enable: [systemd-networkd, systemd-resolved]\n",
    )
    .expect("writing the spec");
    let berth = |args: &[&str]| {
        let mut argv = vec!["berth"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["-f", "/root/machines.yaml"]);
        sbox.exec_timeout(&argv, Duration::from_secs(300))
    };
    let ok = |args: &[&str]| {
        let out = berth(args);
        assert!(
            out.status.success(),
            "berth {args:?}: {}\n{}",
            describe(&out),
            sbox.console_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&["adopt", "web"]);
    let plan = ok(&["plan"]);
    assert!(plan.contains("network: veth"), "{plan}");
    assert!(!plan.contains("under host networking"), "{plan}");
    ok(&["apply", "--yes"]);

    // An address from the host's DHCP server on host0, shown by machinectl.
    let deadline = Instant::now() + Duration::from_secs(60);
    let address = loop {
        let out = sbox.exec(&[
            "systemd-run",
            "-M",
            "web",
            "--wait",
            "--pipe",
            "--quiet",
            "ip",
            "-4",
            "-o",
            "addr",
            "show",
            "dev",
            "host0",
            "scope",
            "global",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let address = text
            .split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .and_then(|a| a.split('/').next())
            .map(str::to_owned);
        if let Some(address) = address {
            break address;
        }
        assert!(
            Instant::now() < deadline,
            "no DHCP address on host0 within 60 s: {}\n{}",
            describe(&out),
            sbox.exec_ok(&["networkctl", "status", "--no-pager", "ve-web"])
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = sbox.exec_ok(&["machinectl", "list", "--no-pager", "--full"]);
        if list.contains(&address) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "machinectl list does not show {address}: {list}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Names resolve through the guest's resolved, over the link.
    let box_name = sbox.machine().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = sbox.exec(&[
            "systemd-run",
            "-M",
            "web",
            "--wait",
            "--pipe",
            "--quiet",
            "getent",
            "hosts",
            &box_name,
        ]);
        if out.status.success() && !out.stdout.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the host's name {box_name} does not resolve in the guest: {}",
            describe(&out)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let out = berth(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = sbox.exec_timeout(
        &["berth", "destroy", "--yes", "web"],
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{}", describe(&out));
}
