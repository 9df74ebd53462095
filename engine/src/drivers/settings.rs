//! A machine's nspawn settings: the `.nspawn` file berth writes to
//! `/etc/systemd/nspawn/NAME.nspawn` (the only place privileged keys such as
//! `Bind=`, `Port=` and `VirtualEthernet=` take effect), and the same
//! settings as command-line options for the plain `nspawn` launcher.
//!
//! Every key is written explicitly, defaults included: systemd-nspawn@.service
//! runs with `--network-veth -U --settings=override`, so a key left out would
//! silently take the unit's value instead of the spec's.

use std::fmt::Write as _;

use berth_schema::{Machine, NetworkMode, PrivateUsers};

/// How every settings file berth writes begins (destroy removes only those).
pub const HEADER: &str = "# Written by berth";

/// The `.nspawn` file for `machine`.
pub fn render(machine: &Machine) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{HEADER} from the spec of machine {:?}; `berth apply` overwrites changes made here.",
        machine.name
    );
    out.push_str("\n[Exec]\nBoot=yes\n");
    let _ = writeln!(out, "PrivateUsers={}", private_users(machine).as_str());
    for (name, value) in &machine.environment {
        let _ = writeln!(out, "Environment={name}={value}");
    }
    for cap in &machine.capabilities {
        let _ = writeln!(out, "Capability={cap}");
    }
    for cap in &machine.drop_capabilities {
        let _ = writeln!(out, "DropCapability={cap}");
    }

    out.push_str("\n[Files]\n");
    if private_users(machine) != PrivateUsers::No {
        // An idmapped mount where the kernel and filesystem allow, else a
        // chown of the tree on first start (systemd-nspawn's own choice).
        out.push_str("PrivateUsersOwnership=auto\n");
    }
    for bind in &machine.binds {
        let key = if bind.read_only {
            "BindReadOnly"
        } else {
            "Bind"
        };
        let _ = writeln!(
            out,
            "{key}={}:{}",
            bind.host.display(),
            bind.machine.display()
        );
    }

    out.push_str("\n[Network]\n");
    let network = &machine.network;
    let veth =
        network.mode == NetworkMode::Veth || network.zone.is_some() || network.bridge.is_some();
    let private = veth || network.mode == NetworkMode::Private;
    let _ = writeln!(out, "Private={}", yes_no(private));
    let _ = writeln!(out, "VirtualEthernet={}", yes_no(veth));
    if let Some(zone) = &network.zone {
        let _ = writeln!(out, "Zone={zone}");
    }
    if let Some(bridge) = &network.bridge {
        let _ = writeln!(out, "Bridge={bridge}");
    }
    for port in &network.ports {
        let _ = writeln!(out, "Port={port}");
    }
    out
}

/// The same settings as systemd-nspawn options, for the plain launcher
/// (which runs with `--settings=no`, so only these apply).
pub fn command_line(machine: &Machine) -> Vec<String> {
    let mut args = vec![format!(
        "--private-users={}",
        private_users(machine).as_str()
    )];
    if private_users(machine) != PrivateUsers::No {
        args.push("--private-users-ownership=auto".to_owned());
    }
    for (name, value) in &machine.environment {
        args.push(format!("--setenv={name}={value}"));
    }
    if !machine.capabilities.is_empty() {
        args.push(format!("--capability={}", machine.capabilities.join(",")));
    }
    if !machine.drop_capabilities.is_empty() {
        args.push(format!(
            "--drop-capability={}",
            machine.drop_capabilities.join(",")
        ));
    }
    for bind in &machine.binds {
        let flag = if bind.read_only {
            "--bind-ro"
        } else {
            "--bind"
        };
        args.push(format!(
            "{flag}={}:{}",
            bind.host.display(),
            bind.machine.display()
        ));
    }
    let network = &machine.network;
    if let Some(zone) = &network.zone {
        args.push(format!("--network-zone={zone}"));
    } else if let Some(bridge) = &network.bridge {
        args.push(format!("--network-bridge={bridge}"));
    } else if network.mode == NetworkMode::Veth {
        args.push("--network-veth".to_owned());
    } else if network.mode == NetworkMode::Private {
        args.push("--private-network".to_owned());
    }
    for port in &network.ports {
        args.push(format!("--port={port}"));
    }
    args
}

/// The spec's user namespacing; unset means `no` (systemd-nspawn@.service's
/// `-U` would otherwise chown the whole tree on first start).
pub fn private_users(machine: &Machine) -> PrivateUsers {
    machine.private_users.unwrap_or(PrivateUsers::No)
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// A stable fingerprint of the settings a machine runs with (FNV-1a 64 of
/// the rendered file), recorded at start so a later change plans a restart.
pub fn fingerprint(machine: &Machine) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in render(machine).bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}
