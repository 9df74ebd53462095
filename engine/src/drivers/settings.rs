//! A machine's nspawn settings: the `.nspawn` file berth writes to
//! `/etc/systemd/nspawn/NAME.nspawn` (the only place privileged keys such as
//! `Bind=`, `Port=` and `VirtualEthernet=` take effect), and the same
//! settings as command-line options for the plain `nspawn` launcher.
//!
//! Both come from one list of [`Entry`]s: berth's own keys, then the spec's
//! `nspawn_extra:` merged in (an extra key replaces berth's lines for the
//! same key in its section).
//!
//! Every key is written explicitly, defaults included: systemd-nspawn@.service
//! runs with `--network-veth -U --settings=override`, so a key left out would
//! silently take the unit's value instead of the spec's.

use std::fmt::Write as _;

use berth_schema::{Machine, NetworkMode, PrivateUsers};

/// How every settings file berth writes begins (destroy removes only those).
pub const HEADER: &str = "# Written by berth";

/// A section of a `.nspawn` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `[Exec]`.
    Exec,
    /// `[Files]`.
    Files,
    /// `[Network]`.
    Network,
}

impl Section {
    /// The name between the brackets.
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Exec => "Exec",
            Section::Files => "Files",
            Section::Network => "Network",
        }
    }
}

/// One `Key=value` line of a `.nspawn` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its section.
    pub section: Section,
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// How the guest's `/etc/resolv.conf` is handled (`ResolvConf=`). Under the
/// host's network the guest gets a copy of the host's file at every start,
/// replacing whatever is there, a symlink to systemd-resolved's stub
/// included: the guest's own resolved has no upstream server under host
/// networking, and a copy into the stub's place would be overwritten by it.
/// On a private network the file is left as it is: the guest's resolved
/// (or what berth configures) serves it.
pub fn resolv_conf(mode: NetworkMode) -> &'static str {
    match mode {
        NetworkMode::Host => "replace-host",
        NetworkMode::Private | NetworkMode::Veth => "auto",
    }
}

/// The settings for `machine` running with network mode `mode`, in file order.
pub fn entries(machine: &Machine, mode: NetworkMode) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut add = |section: Section, key: &str, value: String| {
        out.push(Entry {
            section,
            key: key.to_owned(),
            value,
        })
    };
    add(Section::Exec, "Boot", "yes".into());
    add(
        Section::Exec,
        "PrivateUsers",
        private_users(machine).as_str().into(),
    );
    add(Section::Exec, "ResolvConf", resolv_conf(mode).into());
    for (name, value) in &machine.environment {
        add(Section::Exec, "Environment", format!("{name}={value}"));
    }
    for cap in &machine.capabilities {
        add(Section::Exec, "Capability", cap.clone());
    }
    for cap in &machine.drop_capabilities {
        add(Section::Exec, "DropCapability", cap.clone());
    }

    if private_users(machine) != PrivateUsers::No {
        // An idmapped mount where the kernel and filesystem allow, else a
        // chown of the tree on first start (systemd-nspawn's own choice).
        add(Section::Files, "PrivateUsersOwnership", "auto".into());
    }
    for bind in &machine.binds {
        let key = if bind.read_only {
            "BindReadOnly"
        } else {
            "Bind"
        };
        add(
            Section::Files,
            key,
            format!("{}:{}", bind.host.display(), bind.machine.display()),
        );
    }
    for device in &machine.devices {
        add(Section::Files, "Bind", device.path.display().to_string());
    }

    let network = &machine.network;
    let veth = mode == NetworkMode::Veth;
    let private = veth || mode == NetworkMode::Private;
    add(Section::Network, "Private", yes_no(private).into());
    add(Section::Network, "VirtualEthernet", yes_no(veth).into());
    if veth {
        if let Some(zone) = &network.zone {
            add(Section::Network, "Zone", zone.clone());
        }
        if let Some(bridge) = &network.bridge {
            add(Section::Network, "Bridge", bridge.clone());
        }
        // A machine with an address has its ports forwarded by berth, in
        // its own nftables table (see drivers/network/nat.rs).
        if network.address.is_none() {
            for port in &network.ports {
                add(Section::Network, "Port", port.to_string());
            }
        }
    }
    merge_extra(machine, out)
}

/// `entries` with the spec's `nspawn_extra:` merged in: an extra key drops
/// berth's lines for that key in its section; the extra lines follow the
/// section's own.
fn merge_extra(machine: &Machine, mut entries: Vec<Entry>) -> Vec<Entry> {
    let extra = &machine.nspawn_extra;
    for (section, pairs) in [
        (Section::Exec, &extra.exec),
        (Section::Files, &extra.files),
        (Section::Network, &extra.network),
    ] {
        if pairs.is_empty() {
            continue;
        }
        entries.retain(|e| e.section != section || !pairs.iter().any(|(k, _)| *k == e.key));
        let at = entries
            .iter()
            .rposition(|e| e.section == section)
            .map_or_else(
                || {
                    entries
                        .iter()
                        .position(|e| section_order(e.section) > section_order(section))
                        .unwrap_or(entries.len())
                },
                |i| i + 1,
            );
        let added = pairs.iter().map(|(key, value)| Entry {
            section,
            key: key.clone(),
            value: value.clone(),
        });
        entries.splice(at..at, added);
    }
    entries
}

fn section_order(section: Section) -> u8 {
    match section {
        Section::Exec => 0,
        Section::Files => 1,
        Section::Network => 2,
    }
}

/// The `.nspawn` file for `machine` running with network mode `mode`.
pub fn render(machine: &Machine, mode: NetworkMode) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{HEADER} from the spec of machine {:?}; `berth apply` overwrites changes made here.",
        machine.name
    );
    let entries = entries(machine, mode);
    for section in [Section::Exec, Section::Files, Section::Network] {
        let _ = write!(out, "\n[{}]\n", section.as_str());
        for entry in entries.iter().filter(|e| e.section == section) {
            let _ = writeln!(out, "{}={}", entry.key, entry.value);
        }
    }
    out
}

/// The same settings as systemd-nspawn options, for the plain launcher
/// (which runs with `--settings=no`, so only these apply). `Boot=` is the
/// launcher's own `--boot`. Errors name an `nspawn_extra` key that has no
/// command-line form.
pub fn command_line(machine: &Machine, mode: NetworkMode) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut caps: Vec<&str> = Vec::new();
    let mut drops: Vec<&str> = Vec::new();
    let entries = entries(machine, mode);
    let is_yes = |v: &str| matches!(v, "yes" | "true" | "on" | "1");
    for entry in &entries {
        let v = entry.value.as_str();
        let flag = |name: &str| format!("--{name}={v}");
        match entry.key.as_str() {
            "Boot" => {}
            "Capability" => caps.push(v),
            "DropCapability" => drops.push(v),
            "Private" if is_yes(v) && mode != NetworkMode::Veth => {
                args.push("--private-network".to_owned())
            }
            "VirtualEthernet" if is_yes(v) && machine.network.zone.is_none() => {
                if machine.network.bridge.is_none() {
                    args.push("--network-veth".to_owned())
                }
            }
            "Private" | "VirtualEthernet" => {}
            "Ephemeral" | "ProcessTwo" | "NoNewPrivileges" | "ReadOnly" => {
                if is_yes(v) {
                    args.push(match entry.key.as_str() {
                        "Ephemeral" => "--ephemeral".to_owned(),
                        "ProcessTwo" => "--as-pid2".to_owned(),
                        "NoNewPrivileges" => "--no-new-privileges=yes".to_owned(),
                        _ => "--read-only".to_owned(),
                    })
                }
            }
            key => match option_for(key) {
                Some(OptionForm::Flag(name)) => args.push(flag(name)),
                Some(OptionForm::Rlimit(name)) => args.push(format!("--rlimit={name}={v}")),
                None => {
                    return Err(format!(
                        "nspawn_extra: {}={v} has no systemd-nspawn option, and the nspawn \
                         launcher runs without a settings file; use launcher: machinectl or \
                         nspawn-unit",
                        entry.key
                    ));
                }
            },
        }
    }
    if !caps.is_empty() {
        args.push(format!("--capability={}", caps.join(",")));
    }
    if !drops.is_empty() {
        args.push(format!("--drop-capability={}", drops.join(",")));
    }
    Ok(args)
}

/// How a settings key is given on systemd-nspawn's command line.
enum OptionForm {
    /// `--NAME=VALUE`.
    Flag(&'static str),
    /// `--rlimit=NAME=VALUE`.
    Rlimit(&'static str),
}

/// The systemd-nspawn(1) option of a systemd.nspawn(5) key.
fn option_for(key: &str) -> Option<OptionForm> {
    use OptionForm::{Flag, Rlimit};
    Some(match key {
        "PrivateUsers" => Flag("private-users"),
        "ResolvConf" => Flag("resolv-conf"),
        "Environment" => Flag("setenv"),
        "User" => Flag("user"),
        "WorkingDirectory" => Flag("chdir"),
        "PivotRoot" => Flag("pivot-root"),
        "AmbientCapability" => Flag("ambient-capability"),
        "KillSignal" => Flag("kill-signal"),
        "Personality" => Flag("personality"),
        "MachineID" => Flag("uuid"),
        "NotifyReady" => Flag("notify-ready"),
        "SystemCallFilter" => Flag("system-call-filter"),
        "OOMScoreAdjust" => Flag("oom-score-adjust"),
        "CPUAffinity" => Flag("cpu-affinity"),
        "Hostname" => Flag("hostname"),
        "Timezone" => Flag("timezone"),
        "LinkJournal" => Flag("link-journal"),
        "SuppressSync" => Flag("suppress-sync"),
        "Volatile" => Flag("volatile"),
        "Bind" => Flag("bind"),
        "BindReadOnly" => Flag("bind-ro"),
        "BindUser" => Flag("bind-user"),
        "TemporaryFileSystem" => Flag("tmpfs"),
        "Inaccessible" => Flag("inaccessible"),
        "Overlay" => Flag("overlay"),
        "OverlayReadOnly" => Flag("overlay-ro"),
        "PrivateUsersOwnership" => Flag("private-users-ownership"),
        "VirtualEthernetExtra" => Flag("network-veth-extra"),
        "Interface" => Flag("network-interface"),
        "MACVLAN" => Flag("network-macvlan"),
        "IPVLAN" => Flag("network-ipvlan"),
        "Bridge" => Flag("network-bridge"),
        "Zone" => Flag("network-zone"),
        "Port" => Flag("port"),
        limit => Rlimit(match limit {
            "LimitCPU" => "RLIMIT_CPU",
            "LimitFSIZE" => "RLIMIT_FSIZE",
            "LimitDATA" => "RLIMIT_DATA",
            "LimitSTACK" => "RLIMIT_STACK",
            "LimitCORE" => "RLIMIT_CORE",
            "LimitRSS" => "RLIMIT_RSS",
            "LimitNOFILE" => "RLIMIT_NOFILE",
            "LimitAS" => "RLIMIT_AS",
            "LimitNPROC" => "RLIMIT_NPROC",
            "LimitMEMLOCK" => "RLIMIT_MEMLOCK",
            "LimitLOCKS" => "RLIMIT_LOCKS",
            "LimitSIGPENDING" => "RLIMIT_SIGPENDING",
            "LimitMSGQUEUE" => "RLIMIT_MSGQUEUE",
            "LimitNICE" => "RLIMIT_NICE",
            "LimitRTPRIO" => "RLIMIT_RTPRIO",
            "LimitRTTIME" => "RLIMIT_RTTIME",
            _ => return None,
        }),
    })
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
pub fn fingerprint(machine: &Machine, mode: NetworkMode) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in render(machine, mode).bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_schema::{Device, Network, NspawnExtra, Port, Protocol};

    fn web() -> Machine {
        Machine::builder("web").build()
    }

    #[test]
    fn host_mode_replaces_resolv_conf_and_veth_leaves_it() {
        let host = render(&web(), NetworkMode::Host);
        assert!(host.contains("ResolvConf=replace-host\n"), "{host}");
        assert!(host.contains("Private=no\nVirtualEthernet=no\n"), "{host}");
        let veth = render(&web(), NetworkMode::Veth);
        assert!(veth.contains("ResolvConf=auto\n"), "{veth}");
        assert!(
            veth.contains("Private=yes\nVirtualEthernet=yes\n"),
            "{veth}"
        );
    }

    #[test]
    fn extra_keys_replace_berths_and_follow_their_section() {
        let m = Machine::builder("web")
            .nspawn_extra(NspawnExtra {
                exec: vec![
                    ("ResolvConf".into(), "off".into()),
                    ("Timezone".into(), "off".into()),
                ],
                files: vec![("TemporaryFileSystem".into(), "/scratch".into())],
                network: vec![],
            })
            .build();
        let text = render(&m, NetworkMode::Host);
        assert!(!text.contains("ResolvConf=replace-host"), "{text}");
        assert!(
            text.contains("PrivateUsers=no\nResolvConf=off\nTimezone=off\n\n[Files]\nTemporaryFileSystem=/scratch\n\n[Network]"),
            "{text}"
        );
        let args = command_line(&m, NetworkMode::Host).expect("options");
        assert!(args.contains(&"--timezone=off".to_owned()), "{args:?}");
        assert!(args.contains(&"--tmpfs=/scratch".to_owned()), "{args:?}");
        assert!(args.contains(&"--resolv-conf=off".to_owned()), "{args:?}");
    }

    #[test]
    fn command_line_matches_the_file() {
        let m = Machine::builder("web")
            .network(Network {
                zone: Some("lab".into()),
                ports: vec![Port {
                    protocol: Protocol::Tcp,
                    host: 8080,
                    machine: 80,
                }],
                ..Network::default()
            })
            .devices(vec![Device {
                path: "/dev/fuse".into(),
                access: "rwm".into(),
            }])
            .build();
        let args = command_line(&m, NetworkMode::Veth).expect("options");
        assert_eq!(
            args,
            [
                "--private-users=no",
                "--resolv-conf=auto",
                "--bind=/dev/fuse",
                "--network-zone=lab",
                "--port=tcp:8080:80"
            ]
        );
        let text = render(&m, NetworkMode::Veth);
        assert!(text.contains("[Files]\nBind=/dev/fuse\n"), "{text}");
        assert!(text.contains("Zone=lab\nPort=tcp:8080:80\n"), "{text}");
        let host = command_line(&web(), NetworkMode::Host).expect("options");
        assert_eq!(host, ["--private-users=no", "--resolv-conf=replace-host"]);
        let private = command_line(&web(), NetworkMode::Private).expect("options");
        assert!(private.contains(&"--private-network".to_owned()));
        let veth = command_line(&web(), NetworkMode::Veth).expect("options");
        assert!(veth.contains(&"--network-veth".to_owned()));
        assert!(!veth.contains(&"--private-network".to_owned()));
    }

    #[test]
    fn extra_keys_without_an_option_are_refused_for_the_command_line() {
        let m = Machine::builder("web")
            .nspawn_extra(NspawnExtra {
                exec: vec![("Parameters".into(), "x".into())],
                ..NspawnExtra::default()
            })
            .build();
        assert!(render(&m, NetworkMode::Host).contains("Parameters=x"));
        let err = command_line(&m, NetworkMode::Host).expect_err("refused");
        assert!(err.contains("Parameters=x"), "{err}");
    }
}
