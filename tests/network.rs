//! Machine networks for real, on this host (no systemd as PID 1, the plain
//! nspawn launcher, no host networkd): static addresses in a zone, `auto`
//! addresses from a pool, the guest's networkd file, `/etc/hosts`, NAT and a
//! port forward, and the host side berth configures. Traffic goes only to
//! the machines' own network namespaces (and the host's side of their
//! links). The host's interfaces, routes and firewall are the same after
//! `berth destroy` as before the first apply. Needs root, the Debian mirror,
//! and nft (Debian package nftables).

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::{self, Sandbox, describe, require_root, require_tools};

const PACKAGES: &str = "[systemd, systemd-sysv, dbus, iproute2, iputils-ping]";
/// The host port forwarded to b's echo service.
const HOST_PORT: u16 = 17777;

/// The zone: a and b in `lab`, static addresses, NAT, `/etc/hosts`; b
/// forwards a host port to its echo service once it has one.
fn zone_spec(state: &str, b_units: &str) -> String {
    format!(
        r#"defaults:
  distro: debian
  release: bookworm
  packages: {PACKAGES}
  launcher: nspawn
  state: {state}
machines:
  a:
    network: {{zone: lab, address: 10.77.0.2/24, nat: true, hosts: true}}
  b:
    network: {{zone: lab, address: 10.77.0.3/24, nat: true, hosts: true, ports: ["tcp:{HOST_PORT}:7777"]}}
{b_units}"#
    )
}

/// Two machines on plain veth links with addresses from a pool.
fn auto_spec() -> String {
    format!(
        r#"defaults:
  distro: debian
  release: bookworm
  packages: {PACKAGES}
  launcher: nspawn
  state: running
  network: {{address: auto, pool: 10.78.0.0/24}}
machines:
  c: {{}}
  d: {{}}
"#
    )
}

/// Runs a command on the host; its output.
fn host(argv: &[&str]) -> Output {
    Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {argv:?}: {e}"))
}

fn host_text(argv: &[&str]) -> String {
    let out = host(argv);
    assert!(out.status.success(), "{argv:?}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `nft list ruleset` without berth's own table.
fn ruleset_without_berth() -> String {
    let text = host_text(&["nft", "list", "ruleset"]);
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with("table ip berth ") {
            skipping = true;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
        if skipping && line == "}" {
            skipping = false;
        }
    }
    out
}

/// What berth must leave as it found it: addresses, routes, the firewall
/// (berth's table aside) and IPv4 forwarding.
#[derive(Debug, PartialEq, Eq)]
struct HostNetwork {
    addresses: String,
    routes: String,
    routes6: String,
    firewall: String,
    forwarding: String,
}

fn host_network() -> HostNetwork {
    HostNetwork {
        addresses: host_text(&["ip", "addr"]),
        routes: host_text(&["ip", "route"]),
        routes6: host_text(&["ip", "-6", "route"]),
        firewall: ruleset_without_berth(),
        forwarding: fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
    }
}

/// Checks that `after` is `before`, firewall included: berth forwards the
/// ports of machines with an address in its own table, so nothing of
/// systemd-nspawn's (`io.systemd.nat`, which it leaves behind) appears.
fn assert_host_unchanged(before: &HostNetwork, after: &HostNetwork) {
    assert_eq!(before.addresses, after.addresses, "ip addr changed");
    assert_eq!(before.routes, after.routes, "ip route changed");
    assert_eq!(before.routes6, after.routes6, "ip -6 route changed");
    assert_eq!(before.forwarding, after.forwarding, "ip_forward changed");
    assert_eq!(
        before.firewall, after.firewall,
        "the firewall changed:\n--- before\n{}\n--- after\n{}",
        before.firewall, after.firewall
    );
}

/// The running guest's init, from `berth status --json`.
fn leader(sandbox: &Sandbox, spec: &str, name: &str) -> i64 {
    let status = sandbox
        .berth_cmd()
        .args(["status", "--json", "-f", spec, name])
        .run();
    let status = status.success().json();
    status[0]["leader"]
        .as_i64()
        .unwrap_or_else(|| panic!("{name} runs: {status}"))
}

/// Runs `argv` in the guest whose init is `leader`.
fn in_guest(leader: i64, argv: &[&str]) -> Output {
    Command::new("nsenter")
        .arg(format!("--target={leader}"))
        .args(["--mount", "--uts", "--ipc", "--net", "--pid", "--"])
        .args(argv)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .expect("running nsenter")
}

/// Retries `check` for up to 30 s; panics with its last output.
fn eventually(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match check() {
            Ok(()) => return,
            Err(last) if Instant::now() >= deadline => panic!("{what}: {last}"),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

fn succeeds(out: Output) -> Result<(), String> {
    if out.status.success() {
        Ok(())
    } else {
        Err(describe(&out))
    }
}

/// Sends a line to `addr` and reads the echo.
fn echo(addr: SocketAddrV4) -> Result<(), String> {
    let mut stream = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(3))
        .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"hello berth\n")
        .map_err(|e| e.to_string())?;
    let mut got = [0u8; 12];
    stream.read_exact(&mut got).map_err(|e| e.to_string())?;
    if &got == b"hello berth\n" {
        Ok(())
    } else {
        Err(format!("echoed {:?}", String::from_utf8_lossy(&got)))
    }
}

/// The address berth recorded for `name`.
fn recorded(sandbox: &Sandbox, name: &str) -> Option<String> {
    let text = fs::read_to_string(sandbox.state().join(format!("machines/{name}.json"))).ok()?;
    let record: serde_json::Value = serde_json::from_str(&text).ok()?;
    record["address"].as_str().map(str::to_owned)
}

/// Destroys the named machines when dropped (a failing test included), so
/// their NAT rules leave the host's firewall.
struct DestroyOnDrop<'a> {
    sandbox: &'a Sandbox,
    names: &'a [&'a str],
}

impl Drop for DestroyOnDrop<'_> {
    fn drop(&mut self) {
        let mut args = vec!["destroy", "--yes"];
        args.extend_from_slice(self.names);
        let out = self.sandbox.berth(&args);
        if !out.status.success() {
            eprintln!("cleanup: berth destroy: {}", describe(&out));
        }
    }
}

const ECHO_SOCKET: &str = "[Unit]\nDescription=berth test echo\n\n[Socket]\nListenStream=7777\nAccept=yes\n\n[Install]\nWantedBy=sockets.target\n";
const ECHO_SERVICE: &str = "[Unit]\nDescription=berth test echo\n\n[Service]\nExecStart=/bin/cat\nStandardInput=socket\nStandardOutput=socket\n";

#[test]
fn zones_static_and_auto_addresses_hosts_nat_and_ports_under_nspawn() {
    if !require_root("zones_static_and_auto_addresses_hosts_nat_and_ports_under_nspawn")
        || !require_tools(
            "zones_static_and_auto_addresses_hosts_nat_and_ports_under_nspawn",
            &[("nft", "nftables"), ("ip", "iproute2")],
        )
    {
        return;
    }
    // The host's interfaces and firewall are what this test asserts about.
    let _alone = support::exclusive();
    let sandbox = Sandbox::new("network");
    let before = host_network();
    let nameserver = fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver "))
        .filter_map(|a| a.trim().parse::<Ipv4Addr>().ok())
        .find(|a| !a.is_loopback());

    // --- A zone: a and b, static addresses, first applied stopped.
    let path = sandbox.spec(&zone_spec("stopped", ""));
    let spec = path.to_str().expect("a UTF-8 path");
    {
        let _cleanup = DestroyOnDrop {
            sandbox: &sandbox,
            names: &["a", "b"],
        };
        let plan = sandbox.berth_cmd().args(["plan", "-f", spec]).run();
        plan.success()
            .stdout_has("network: zone lab")
            .stdout_has("record address 10.77.0.2/24 as the machine's")
            .stdout_has("enable unit systemd-networkd.service")
            .stdout_has("write /etc/systemd/network/10-berth-host0.network (address 10.77.0.3/24, gateway 10.77.0.1)")
            .stdout_has("+Address=10.77.0.2/24")
            .stdout_has("write the spec's machines into /etc/hosts (b)")
            .stdout_has("+10.77.0.3\tb")
            .stdout_has("masquerade outbound traffic from 10.77.0.3");
        sandbox
            .berth_cmd()
            .args(["apply", "--yes", "-f", spec])
            .run()
            .success();
        // One bootstrap, two clones: the sandbox's cache holds one base.
        let bases: Vec<String> = fs::read_dir(sandbox.cache().join("bases"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.') && !n.ends_with(".lock"))
            .collect();
        assert_eq!(bases.len(), 1, "{bases:?}");
        assert_eq!(recorded(&sandbox, "a").as_deref(), Some("10.77.0.2/24"));
        assert_eq!(recorded(&sandbox, "b").as_deref(), Some("10.77.0.3/24"));
        let config = fs::read_to_string(
            sandbox
                .root("a")
                .join("etc/systemd/network/10-berth-host0.network"),
        )
        .unwrap();
        assert!(
            config.contains("Name=host0") && config.contains("Gateway=10.77.0.1\n"),
            "{config}"
        );
        if let Some(ns) = nameserver {
            assert!(config.contains(&format!("DNS={ns}\n")), "{config}");
        }
        let hosts_a = fs::read_to_string(sandbox.root("a").join("etc/hosts")).unwrap();
        assert!(
            hosts_a.contains("# berth: machines of this spec\n10.77.0.3\tb\n# end berth\n"),
            "{hosts_a}"
        );

        // b gets a socket-activated echo service; both run.
        let units = sandbox.root("b").join("etc/systemd/system");
        fs::write(units.join("echo.socket"), ECHO_SOCKET).unwrap();
        fs::write(units.join("echo@.service"), ECHO_SERVICE).unwrap();
        let path = sandbox.spec(&zone_spec(
            "running",
            "    units: {enable: [echo.socket]}\n",
        ));
        let spec = path.to_str().expect("a UTF-8 path");
        sandbox
            .berth_cmd()
            .args(["apply", "--yes", "-f", spec])
            .run()
            .success();
        sandbox
            .berth_cmd()
            .args(["plan", "--detailed-exitcode", "-f", spec])
            .run()
            .code(0);

        // The host side: vz-lab holds the gateway, up; NAT rules; forwarding.
        let bridge = host_text(&["ip", "-4", "addr", "show", "dev", "vz-lab"]);
        assert!(
            bridge.contains("inet 10.77.0.1/24") && bridge.contains(",UP"),
            "{bridge}"
        );
        let table = host_text(&["nft", "list", "table", "ip", "berth"]);
        for (address, name) in [("10.77.0.2", "a"), ("10.77.0.3", "b")] {
            assert!(
                table.contains(&format!(
                    "ip saddr {address} masquerade comment \"berth:{name}\""
                )),
                "{table}"
            );
        }
        assert_eq!(
            fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
            "1\n"
        );

        // a reaches b by address and by name; the host reaches b's echo
        // service through the forwarded port on the zone's gateway address.
        let a = leader(&sandbox, spec, "a");
        eventually("a pings b by address", || {
            succeeds(in_guest(a, &["ping", "-c", "1", "-W", "2", "10.77.0.3"]))
        });
        eventually("a pings b by name", || {
            succeeds(in_guest(a, &["ping", "-c", "1", "-W", "2", "b"]))
        });
        eventually("the host reaches b's forwarded port", || {
            echo(SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 1), HOST_PORT))
        });

        // Drift: hand edits of a's files and of the zone's host side.
        let a_root = sandbox.root("a");
        let file = a_root.join("etc/systemd/network/10-berth-host0.network");
        fs::write(
            &file,
            config.replace("Gateway=10.77.0.1", "Gateway=10.77.0.9"),
        )
        .unwrap();
        let hosts_path = a_root.join("etc/hosts");
        fs::write(&hosts_path, hosts_a.replace("10.77.0.3\tb", "10.77.0.9\tb")).unwrap();
        host_text(&["ip", "addr", "del", "10.77.0.1/24", "dev", "vz-lab"]);
        let plan = sandbox
            .berth_cmd()
            .args(["plan", "--detailed-exitcode", "-f", spec])
            .run();
        plan.code(2)
            .stdout_has("write /etc/systemd/network/10-berth-host0.network")
            .stdout_has("-Gateway=10.77.0.9")
            .stdout_has("+Gateway=10.77.0.1")
            .stdout_has("-10.77.0.9\tb")
            .stdout_has("+10.77.0.3\tb")
            .stdout_has("configure the host side of the link, vz-lab (vz-lab lacks the gateway address 10.77.0.1/24)");
        sandbox
            .berth_cmd()
            .args(["apply", "--yes", "-f", spec])
            .run()
            .success();
        sandbox
            .berth_cmd()
            .args(["plan", "--detailed-exitcode", "-f", spec])
            .run()
            .code(0);
        assert_eq!(fs::read_to_string(&hosts_path).unwrap(), hosts_a);
        eventually("the host reaches b's forwarded port again", || {
            echo(SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 1), HOST_PORT))
        });
        sandbox
            .berth_cmd()
            .args(["destroy", "--yes", "a", "b"])
            .run()
            .success();
    }
    assert!(
        !host_text(&["nft", "list", "tables"]).contains("table ip berth"),
        "berth's table outlived its last rule"
    );
    assert_host_unchanged(&before, &host_network());

    // --- `auto`: two machines on plain veth links get distinct addresses
    // from the pool, recorded; a second plan is empty.
    let path = sandbox.spec(&auto_spec());
    let spec = path.to_str().expect("a UTF-8 path");
    {
        let _cleanup = DestroyOnDrop {
            sandbox: &sandbox,
            names: &["c", "d"],
        };
        let plan = sandbox.berth_cmd().args(["plan", "-f", spec]).run();
        plan.success()
            .stdout_has("allocate address 10.78.0.2/24 from pool 10.78.0.0/24")
            .stdout_has("allocate address 10.78.0.3/24 from pool 10.78.0.0/24")
            .stdout_has("create debian bookworm as a clone of cached base");
        sandbox
            .berth_cmd()
            .args(["apply", "--yes", "-f", spec])
            .run()
            .success();
        assert_eq!(recorded(&sandbox, "c").as_deref(), Some("10.78.0.2/24"));
        assert_eq!(recorded(&sandbox, "d").as_deref(), Some("10.78.0.3/24"));
        sandbox
            .berth_cmd()
            .args(["plan", "--detailed-exitcode", "-f", spec])
            .run()
            .code(0);
        // The host side of each veth link: the gateway as a /32, a /32 route
        // (one gateway address on both links).
        for (name, address) in [("c", "10.78.0.2"), ("d", "10.78.0.3")] {
            let link = host_text(&["ip", "-4", "addr", "show", "dev", &format!("ve-{name}")]);
            assert!(link.contains("inet 10.78.0.1/32"), "{link}");
            let route = host_text(&["ip", "route", "show", &format!("{address}/32")]);
            assert!(route.contains(&format!("dev ve-{name}")), "{route}");
            // The guest reaches the host's side, which answers over its route.
            let guest = leader(&sandbox, spec, name);
            eventually(&format!("{name} pings its gateway"), || {
                succeeds(in_guest(
                    guest,
                    &["ping", "-c", "1", "-W", "2", "10.78.0.1"],
                ))
            });
        }
        sandbox
            .berth_cmd()
            .args(["destroy", "--yes", "c", "d"])
            .run()
            .success();
    }
    assert_host_unchanged(&before, &host_network());
}
