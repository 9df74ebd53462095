//! Planning a machine's network beyond its `.nspawn` file: its address
//! (recorded, unique on the host), the guest's networkd file for `host0`,
//! networkd itself, berth's block in `/etc/hosts`, NAT, and the repair of a
//! running machine's host side. Pure, like the rest of the planner: the
//! addresses other machines hold, the peers, the host's nameservers and the
//! host side's state are all in [`NetworkObservation`].

use berth_schema::{Address, DesiredState, Machine, NetworkMode};

use crate::drivers::network::address::{self, Peer};
use crate::drivers::network::observe::{GuestNetwork, NetworkObservation};
use crate::drivers::network::{hosts, link, nat, networkd};
use crate::drivers::units::UnitState;
use crate::model::action::Action;
use crate::model::observed::{Observed, RunState};
use crate::model::warning::Warning;
use crate::planner::ChangeKind;

// The mode a machine gets, for the planner's callers of `network::`.
pub(super) use crate::drivers::network::{describe_mode, effective_mode};

/// Plans `machine`'s network actions into `actions`: the configuration
/// goes before the settings file and the run state; a repair of a running
/// machine's host side, last. `change` says whether the root is made anew
/// (its configuration is then shown against an empty root).
pub(super) fn plan(
    machine: &Machine,
    observed: &Observed,
    mode: NetworkMode,
    change: ChangeKind,
    actions: &mut Vec<Action>,
    warnings: &mut Vec<Warning>,
) -> Result<(), String> {
    let net = &machine.network;
    let seen = &observed.network;
    let fresh = matches!(change, ChangeKind::Create | ChangeKind::Replace);
    let guest = if fresh { None } else { seen.guest.as_ref() };
    refuse_without_a_link(machine, mode)?;

    let address = address::resolve(net, seen.recorded, &seen.taken)?;
    let served = observed.host_dhcp;
    if address.is_none() && !served {
        if net.nat {
            return Err(
                "network.nat masquerades the machine's address, and nothing gives it \
                 one on this host (its networkd does not serve DHCP to containers): set \
                 network.address (an address, or auto)"
                    .to_owned(),
            );
        }
        if !net.ports.is_empty() && mode == NetworkMode::Veth {
            // The guest may configure host0 itself; nspawn follows it.
            warnings.push(Warning::PortsWithoutAddress);
        }
    }
    if net.nat && !seen.nat.nft {
        return Err(format!(
            "network.nat needs {}, which is not installed (install the Debian package `{}`)",
            nat::NFT,
            nat::PACKAGE
        ));
    }

    let mut planned = Vec::new();
    if let Some(cidr) = address {
        let recorded = if fresh { None } else { seen.recorded };
        if recorded != Some(cidr) {
            planned.push(Action::AllocateAddress {
                address: cidr.to_string(),
                from: recorded.map(|c| c.to_string()),
                pool: (net.address == Some(Address::Auto)).then(|| address::pool(net).to_string()),
            });
        }
        plan_networkd(machine, guest, &mut planned)?;
        let gateway = address::gateway(net, cidr);
        let wanted = networkd::render(&machine.name, cidr, gateway, &seen.nameservers);
        let before = guest.and_then(|g| g.config.clone());
        if before.as_deref() != Some(wanted.as_str()) {
            planned.push(Action::WriteNetworkConfig {
                path: networkd::PATH.to_owned(),
                address: cidr.to_string(),
                gateway: gateway.to_string(),
                before,
                after: wanted,
            });
        }
    } else if !fresh {
        let before = guest.and_then(|g| g.config.clone());
        if before.is_some() || seen.recorded.is_some() {
            planned.push(Action::RemoveNetworkConfig {
                path: networkd::PATH.to_owned(),
                address: seen.recorded.map(|c| c.to_string()),
                before,
            });
        }
    }
    plan_hosts(net.hosts, guest, &seen.peers, &mut planned);
    plan_nat(
        machine,
        seen,
        address.map(|c| c.address.to_string()),
        &mut planned,
    );
    plan_forwards(machine, seen, mode, address, &mut planned)?;

    // Before the settings file and the run state.
    let at = actions
        .iter()
        .position(|a| {
            matches!(
                a,
                Action::WriteSettings { .. }
                    | Action::SetAutostart { .. }
                    | Action::Start { .. }
                    | Action::Stop { .. }
                    | Action::Restart { .. }
            )
        })
        .unwrap_or(actions.len());
    actions.splice(at..at, planned);

    if let Some(cidr) = address {
        plan_host_link(machine, observed, mode, cidr, actions);
    }
    Ok(())
}

/// Addresses, NAT and port forwards need a veth link.
fn refuse_without_a_link(machine: &Machine, mode: NetworkMode) -> Result<(), String> {
    if mode == NetworkMode::Veth {
        return Ok(());
    }
    let net = &machine.network;
    let wants: Vec<&str> = [
        (!net.ports.is_empty(), "network.ports"),
        (net.address.is_some(), "network.address"),
        (net.nat, "network.nat"),
    ]
    .into_iter()
    .filter_map(|(set, key)| set.then_some(key))
    .collect();
    if wants.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} need{} a veth link to the host, and the machine's network is {} ({}); \
         set network.mode: veth or a zone",
        wants.join(" and "),
        if wants.len() == 1 { "s" } else { "" },
        mode.as_str(),
        match mode {
            NetworkMode::Host => "it shares the host's network",
            _ => "it has only loopback",
        }
    ))
}

/// The guest must have networkd, enabled: enabled here unless the spec
/// disables or masks it (a conflict).
fn plan_networkd(
    machine: &Machine,
    guest: Option<&GuestNetwork>,
    planned: &mut Vec<Action>,
) -> Result<(), String> {
    let unit = networkd::UNIT;
    let units = &machine.units;
    if units.disable.iter().chain(&units.mask).any(|u| u == unit) {
        return Err(format!(
            "network.address is configured through the guest's {unit}, which units.{} lists; \
             leave it out of units.disable and units.mask",
            if units.disable.iter().any(|u| u == unit) {
                "disable"
            } else {
                "mask"
            }
        ));
    }
    let state = match guest {
        None => None,
        Some(g) => match &g.networkd {
            None | Some(UnitState::NotFound) => {
                return Err(format!(
                    "network.address is configured through the guest's {unit}, and the \
                     machine's root has none (no {unit} unit file); install systemd-networkd \
                     in it (on Debian it is part of the package systemd), or leave \
                     network.address out"
                ));
            }
            Some(_) if !g.network_dir => {
                return Err(format!(
                    "network.address: the machine's root has no directory {} for \
                     systemd-networkd's files",
                    networkd::DIR
                ));
            }
            Some(state) => Some(state),
        },
    };
    if units.enable.iter().any(|u| u == unit) {
        // The spec's own units.enable plans it.
        return Ok(());
    }
    match state {
        Some(UnitState::Enabled | UnitState::Other(_)) => {}
        Some(UnitState::Masked) => {
            planned.push(Action::UnmaskUnit {
                unit: unit.to_owned(),
            });
            planned.push(Action::EnableUnit {
                unit: unit.to_owned(),
                from: Some("masked".to_owned()),
            });
        }
        Some(other) => planned.push(Action::EnableUnit {
            unit: unit.to_owned(),
            from: Some(other.as_str().to_owned()),
        }),
        None => planned.push(Action::EnableUnit {
            unit: unit.to_owned(),
            from: None,
        }),
    }
    Ok(())
}

/// berth's block in `/etc/hosts`: written while `hosts: true`, removed
/// once it is not.
fn plan_hosts(
    wanted: bool,
    guest: Option<&GuestNetwork>,
    peers: &[Peer],
    planned: &mut Vec<Action>,
) {
    let before = guest.and_then(|g| g.hosts.clone());
    if wanted {
        let after = hosts::with_block(before.as_deref(), Some(peers));
        if before.as_deref() != Some(after.as_str()) {
            planned.push(Action::WriteHosts {
                peers: peers.to_vec(),
                remove: false,
                before,
                after,
            });
        }
    } else if let Some(current) = before.as_deref().filter(|t| hosts::has_block(t)) {
        planned.push(Action::WriteHosts {
            peers: Vec::new(),
            remove: true,
            after: hosts::with_block(Some(current), None),
            before,
        });
    }
}

/// One masquerade rule for the machine's address while `nat: true`; none
/// otherwise.
fn plan_nat(
    machine: &Machine,
    seen: &NetworkObservation,
    address: Option<String>,
    planned: &mut Vec<Action>,
) {
    let rules = &seen.nat.rules;
    match address.filter(|_| machine.network.nat) {
        Some(address) if rules.as_slice() != [address.clone()] => {
            planned.push(Action::AddNat {
                address,
                enable_forwarding: seen.nat.forwarding == Some(false),
            });
        }
        Some(_) => {}
        None if !rules.is_empty() => planned.push(Action::RemoveNat {
            addresses: rules.clone(),
        }),
        None => {}
    }
}

/// The port forwards of a machine with an address are berth's DNAT rules
/// (see [`nat`]); a machine without one gets systemd-nspawn's `Port=`.
fn plan_forwards(
    machine: &Machine,
    seen: &NetworkObservation,
    mode: NetworkMode,
    address: Option<berth_schema::Ipv4Cidr>,
    planned: &mut Vec<Action>,
) -> Result<(), String> {
    let net = &machine.network;
    let address = address.filter(|_| mode == NetworkMode::Veth);
    let wanted: Vec<String> = match address {
        Some(cidr) => {
            let mut w: Vec<String> = net
                .ports
                .iter()
                .map(|p| nat::forward_comment(&machine.name, p, &cidr.address.to_string()))
                .collect();
            w.sort();
            w.dedup();
            w
        }
        None => Vec::new(),
    };
    if wanted == seen.nat.forwards {
        return Ok(());
    }
    if !wanted.is_empty() && !seen.nat.nft {
        return Err(format!(
            "network.ports of a machine with an address are forwarded with {}, which is \
             not installed (install the Debian package `{}`)",
            nat::NFT,
            nat::PACKAGE
        ));
    }
    planned.push(Action::ForwardPorts {
        address: address
            .filter(|_| !wanted.is_empty())
            .map(|c| c.address.to_string()),
        ports: net.ports.iter().map(ToString::to_string).collect(),
        before: seen.nat.forwards.clone(),
        forwards: if wanted.is_empty() {
            Vec::new()
        } else {
            net.ports.clone()
        },
    });
    Ok(())
}

/// A running machine that stays running keeps its link: when its host
/// side is missing or wrong, berth repairs it (a start configures it anyway).
fn plan_host_link(
    machine: &Machine,
    observed: &Observed,
    mode: NetworkMode,
    cidr: berth_schema::Ipv4Cidr,
    actions: &mut Vec<Action>,
) {
    if !matches!(observed.run, RunState::Running { .. }) || machine.state != DesiredState::Running {
        return;
    }
    let restarts = actions.iter().any(|a| {
        matches!(
            a,
            Action::Start { .. } | Action::Stop { .. } | Action::Restart { .. }
        )
    });
    let Some(facts) = &observed.network.host_link else {
        return;
    };
    let Some(link) = link::managed(&machine.name, &machine.network, mode, observed.host_dhcp)
    else {
        return;
    };
    if restarts {
        return;
    }
    let gateway = address::gateway(&machine.network, cidr);
    let problems = link::problems(facts, &link, gateway, cidr);
    if !problems.is_empty() {
        actions.push(Action::ConfigureHostLink {
            interface: link.interface().to_owned(),
            problems,
            commands: link::commands(&link, gateway, cidr),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::path::PathBuf;

    use berth_schema::{BootstrapperKind, Ipv4Cidr, Launcher, Network, Port, Protocol, Storage};

    use super::*;
    use crate::drivers::network::address::parse_cidr;
    use crate::drivers::network::link::LinkFacts;
    use crate::drivers::network::observe::NatObservation;
    use crate::drivers::settings;
    use crate::host::state::{LaunchRecord, MachineRecord};
    use crate::model::observed::{BaseObservation, RootFacts, RootPresence};
    use crate::planner::plan_machine;

    fn cidr(text: &str) -> Ipv4Cidr {
        parse_cidr(text).unwrap()
    }

    fn lab(address: &str) -> Network {
        Network {
            zone: Some("lab".into()),
            address: Some(Address::Static(cidr(address))),
            nat: true,
            hosts: true,
            ..Network::default()
        }
    }

    fn web(network: Network) -> Machine {
        Machine::builder("web")
            .packages(["systemd", "dbus"])
            .bootstrapper(BootstrapperKind::Debootstrap)
            .network(network)
            .build()
    }

    fn peers() -> Vec<Peer> {
        vec![Peer {
            name: "db".into(),
            hostname: "db".into(),
            address: Ipv4Addr::new(10, 77, 0, 3),
        }]
    }

    const HOSTS: &str = "127.0.0.1\tlocalhost\n";
    const DNS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);

    /// `m` running under nspawn on a host without DHCP for containers,
    /// with everything its network asks for in place.
    fn converged(m: &Machine) -> Observed {
        let mode = NetworkMode::Veth;
        let address = address::resolve(&m.network, None, &Default::default()).unwrap();
        let gateway = address.map(|a| address::gateway(&m.network, a));
        let host_link = match (
            address,
            gateway,
            link::managed("web", &m.network, mode, false),
        ) {
            (Some(address), Some(gateway), Some(link)) => Some(match link {
                link::HostLink::Veth { .. } => LinkFacts {
                    exists: true,
                    up: true,
                    addresses: vec![(gateway, 32)],
                    routes: vec![address.address.to_string()],
                },
                link::HostLink::Zone { .. } => LinkFacts {
                    exists: true,
                    up: true,
                    addresses: vec![(gateway, address.prefix)],
                    routes: vec![],
                },
            }),
            _ => None,
        };
        let fingerprint = settings::fingerprint(m, mode);
        Observed {
            name: "web".into(),
            root: RootPresence::Directory,
            record: Some(MachineRecord {
                name: "web".into(),
                distro: "debian".into(),
                release: Some("bookworm".into()),
                bootstrapper: BootstrapperKind::Debootstrap,
                created_at: 0,
                launch: Some(LaunchRecord {
                    launcher: Launcher::Nspawn,
                    pid: 1,
                    start_time: 1,
                    settings: Some(fingerprint.clone()),
                }),
                bootstrap_packages: vec!["systemd".into(), "dbus".into()],
                base: None,
                added_packages: Vec::new(),
                securetty_added: Vec::new(),
                storage: Storage::Copy,
                address: address.map(|a| a.to_string()),
                resources: Default::default(),
                prevent_destroy: false,
                spec: None,
            }),
            facts: Some(RootFacts {
                hostname: Some("web".into()),
                packages: Some(["systemd", "dbus"].map(String::from).into()),
                ..RootFacts::default()
            }),
            run: RunState::Running {
                launcher: Launcher::Nspawn,
                pid: 1,
                settings: Some(fingerprint),
            },
            settings: Some(settings::render(m, mode)),
            autostart: None,
            launcher: Ok(Launcher::Nspawn),
            base: Ok(BaseObservation {
                bootstrapper: BootstrapperKind::Debootstrap,
                key: "KEY".into(),
                cached: Some("KEY".into()),
                command: Ok(Vec::new()),
                missing_tool: None,
            }),
            guest_package_manager: true,
            host_dhcp: false,
            settings_path: PathBuf::from("/n/web.nspawn"),
            machines_dir: PathBuf::from("/m"),
            resources: Default::default(),
            files: Default::default(),
            users: Default::default(),
            network: NetworkObservation {
                recorded: address,
                taken: Default::default(),
                peers: peers(),
                guest: Some(GuestNetwork {
                    networkd: Some(UnitState::Enabled),
                    network_dir: true,
                    config: address
                        .zip(gateway)
                        .map(|(a, g)| networkd::render("web", a, g, &[DNS])),
                    hosts: Some(if m.network.hosts {
                        hosts::with_block(Some(HOSTS), Some(&peers()))
                    } else {
                        HOSTS.to_owned()
                    }),
                }),
                nameservers: vec![DNS],
                host_link,
                nat: NatObservation {
                    nft: true,
                    rules: match address {
                        Some(a) if m.network.nat => vec![a.address.to_string()],
                        _ => vec![],
                    },
                    forwards: match address {
                        Some(a) => {
                            let mut f: Vec<String> = m
                                .network
                                .ports
                                .iter()
                                .map(|p| nat::forward_comment("web", p, &a.address.to_string()))
                                .collect();
                            f.sort();
                            f
                        }
                        None => vec![],
                    },
                    forwarding: Some(true),
                },
            },
            moved_from: None,
        }
    }

    fn absent(m: &Machine) -> Observed {
        let mut observed = converged(m);
        observed.root = RootPresence::Absent;
        observed.record = None;
        observed.facts = None;
        observed.run = RunState::Stopped;
        observed.settings = None;
        observed.network.recorded = None;
        observed.network.guest = None;
        observed.network.host_link = None;
        observed.network.nat.rules.clear();
        observed.network.nat.forwarding = Some(false);
        observed
    }

    fn plan(m: &Machine, observed: &Observed) -> Result<Vec<Action>, String> {
        plan_machine(m, observed, None)
            .map(|p| p.actions)
            .map_err(|e| e.to_string())
    }

    fn names(actions: &[Action]) -> Vec<&'static str> {
        actions.iter().map(Action::name).collect()
    }

    fn find<'a>(actions: &'a [Action], name: &str) -> &'a Action {
        actions
            .iter()
            .find(|a| a.name() == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", names(actions)))
    }

    #[test]
    fn a_new_zone_machine_gets_its_address_networkd_hosts_and_nat_before_it_starts() {
        let m = web(lab("10.77.0.2/24"));
        let actions = plan(&m, &absent(&m)).unwrap();
        assert_eq!(
            names(&actions),
            [
                "clone",
                "set-hostname",
                "allocate-address",
                "enable-unit",
                "write-network-config",
                "write-hosts",
                "add-nat",
                "write-settings",
                "start"
            ]
        );
        assert_eq!(
            actions[2],
            Action::AllocateAddress {
                address: "10.77.0.2/24".into(),
                from: None,
                pool: None
            }
        );
        assert_eq!(
            actions[3],
            Action::EnableUnit {
                unit: "systemd-networkd.service".into(),
                from: None
            }
        );
        let (path, old, new) = actions[4].file_change().unwrap();
        assert_eq!(path, "/etc/systemd/network/10-berth-host0.network");
        assert_eq!(old, "");
        assert!(
            new.contains("Address=10.77.0.2/24\nDNS=192.0.2.53\n"),
            "{new}"
        );
        assert!(new.contains("Gateway=10.77.0.1\n"), "{new}");
        assert_eq!(
            actions[4].describe(),
            "write /etc/systemd/network/10-berth-host0.network (address 10.77.0.2/24, gateway 10.77.0.1)"
        );
        let (path, _, new) = actions[5].file_change().unwrap();
        assert_eq!(path, "/etc/hosts");
        assert!(new.contains("10.77.0.3\tdb\n"), "{new}");
        assert_eq!(
            actions[6],
            Action::AddNat {
                address: "10.77.0.2".into(),
                enable_forwarding: true
            }
        );
        assert!(actions[6].describe().contains("turn IPv4 forwarding on"));
    }

    #[test]
    fn ports_of_a_machine_with_an_address_are_berths_dnat_rules_not_nspawns() {
        let mut net = lab("10.77.0.2/24");
        net.ports = vec![Port {
            protocol: Protocol::Tcp,
            host: 8080,
            machine: 80,
        }];
        let m = web(net);
        let text = settings::render(&m, NetworkMode::Veth);
        assert!(!text.contains("Port="), "{text}");
        let mut observed = converged(&m);
        observed.network.nat.forwards.clear();
        let actions = plan(&m, &observed).unwrap();
        assert_eq!(names(&actions), ["forward-ports"]);
        let forward = find(&actions, "forward-ports");
        assert_eq!(
            forward.describe(),
            "forward host port tcp:8080:80 to 10.77.0.2 (nftables table ip berth)"
        );
        let Action::ForwardPorts { forwards, .. } = forward else {
            unreachable!()
        };
        assert_eq!(forwards, &m.network.ports);
        // Converged: nothing to do; ports gone from the spec: removed.
        assert!(plan(&m, &converged(&m)).unwrap().is_empty());
        let mut gone = m.clone();
        gone.network.ports.clear();
        let actions = plan(&gone, &converged(&m)).unwrap();
        let forward = find(&actions, "forward-ports");
        assert!(
            matches!(forward, Action::ForwardPorts { address: None, forwards, .. } if forwards.is_empty()),
            "{forward:?}"
        );
    }

    #[test]
    fn a_converged_machine_has_nothing_to_do() {
        for network in [
            lab("10.77.0.2/24"),
            Network {
                address: Some(Address::Auto),
                ..Network::default()
            },
        ] {
            let m = web(network);
            let actions = plan(&m, &converged(&m)).unwrap();
            assert!(actions.is_empty(), "{:?}", names(&actions));
        }
    }

    #[test]
    fn hand_edits_of_the_networkd_file_and_the_hosts_block_are_drift_with_a_diff() {
        let m = web(lab("10.77.0.2/24"));
        let mut observed = converged(&m);
        let guest = observed.network.guest.as_mut().unwrap();
        let good = guest.config.clone().unwrap();
        guest.config = Some(good.replace("DNS=192.0.2.53\n", ""));
        guest.hosts = Some(format!(
            "{HOSTS}# berth: machines of this spec\n# end berth\n10.0.0.9 x\n"
        ));
        let actions = plan(&m, &observed).unwrap();
        assert_eq!(names(&actions), ["write-network-config", "write-hosts"]);
        let (_, old, new) = actions[0].file_change().unwrap();
        assert!(!old.contains("DNS=") && new == good, "{old}\n{new}");
        assert_eq!(actions[0].effect(), crate::model::action::Effect::Change);
        let (_, old, new) = actions[1].file_change().unwrap();
        assert!(
            old.contains("10.0.0.9 x") && new.contains("10.0.0.9 x"),
            "{new}"
        );
        assert!(
            new.contains("10.77.0.3\tdb\n# end berth\n10.0.0.9 x\n"),
            "{new}"
        );
    }

    #[test]
    fn networkd_is_enabled_unmasked_or_refused() {
        let m = web(lab("10.77.0.2/24"));
        let with_networkd = |state: Option<UnitState>| {
            let mut observed = converged(&m);
            observed.network.guest.as_mut().unwrap().networkd = state;
            plan(&m, &observed)
        };
        assert_eq!(
            with_networkd(Some(UnitState::Disabled)).unwrap(),
            [Action::EnableUnit {
                unit: "systemd-networkd.service".into(),
                from: Some("disabled".into())
            }]
        );
        assert_eq!(
            names(&with_networkd(Some(UnitState::Masked)).unwrap()),
            ["unmask-unit", "enable-unit"]
        );
        let err = with_networkd(None).unwrap_err();
        assert!(
            err.contains("no systemd-networkd.service unit file"),
            "{err}"
        );
        let mut observed = converged(&m);
        let guest = observed.network.guest.as_mut().unwrap();
        guest.network_dir = false;
        guest.config = None;
        let err = plan(&m, &observed).unwrap_err();
        assert!(err.contains("no directory /etc/systemd/network"), "{err}");
        // The spec's own units.enable plans it; disabling or masking it conflicts.
        let mut enabled = m.clone();
        enabled.units.enable.push("systemd-networkd.service".into());
        let mut observed = converged(&enabled);
        observed.network.guest.as_mut().unwrap().networkd = Some(UnitState::Disabled);
        observed
            .facts
            .as_mut()
            .unwrap()
            .units
            .insert("systemd-networkd.service".into(), UnitState::Disabled);
        assert_eq!(names(&plan(&enabled, &observed).unwrap()), ["enable-unit"]);
        for masked in [true, false] {
            let mut conflict = m.clone();
            if masked {
                conflict.units.mask.push("systemd-networkd.service".into());
            } else {
                conflict
                    .units
                    .disable
                    .push("systemd-networkd.service".into());
            }
            let err = plan(&conflict, &converged(&m)).unwrap_err();
            assert!(
                err.contains("leave it out of units.disable and units.mask"),
                "{err}"
            );
        }
    }

    #[test]
    fn auto_draws_a_free_address_from_the_pool_and_records_it() {
        let m = web(Network {
            address: Some(Address::Auto),
            pool: Some(cidr("10.9.0.0/24")),
            ..Network::default()
        });
        let mut observed = absent(&m);
        observed.network.taken = [
            (Ipv4Addr::new(10, 9, 0, 2), "a".to_owned()),
            (Ipv4Addr::new(10, 9, 0, 3), "b".to_owned()),
        ]
        .into();
        let actions = plan(&m, &observed).unwrap();
        let alloc = find(&actions, "allocate-address");
        assert_eq!(
            *alloc,
            Action::AllocateAddress {
                address: "10.9.0.4/24".into(),
                from: None,
                pool: Some("10.9.0.0/24".into())
            }
        );
        assert_eq!(
            alloc.describe(),
            "allocate address 10.9.0.4/24 from pool 10.9.0.0/24"
        );
        let config = find(&actions, "write-network-config")
            .file_change()
            .unwrap()
            .2;
        assert!(
            config.contains("Address=10.9.0.4/24\n") && config.contains("Gateway=10.9.0.1\n"),
            "{config}"
        );
        // Another machine took the recorded address meanwhile: a new one.
        let mut observed = converged(&m);
        observed.network.taken = [(Ipv4Addr::new(10, 9, 0, 2), "a".to_owned())].into();
        let actions = plan(&m, &observed).unwrap();
        assert_eq!(
            find(&actions, "allocate-address"),
            &Action::AllocateAddress {
                address: "10.9.0.3/24".into(),
                from: Some("10.9.0.2/24".into()),
                pool: Some("10.9.0.0/24".into())
            }
        );
        assert!(actions.iter().any(|a| a.name() == "write-network-config"));
        assert_eq!(
            find(&actions, "configure-host-link").commands(),
            [
                "ip addr replace 10.9.0.1/32 dev ve-web",
                "ip link set dev ve-web up",
                "ip route replace 10.9.0.3/32 dev ve-web"
            ]
        );
    }

    #[test]
    fn a_static_address_another_machine_holds_is_refused() {
        let m = web(lab("10.77.0.2/24"));
        let mut observed = converged(&m);
        observed.network.taken = [(Ipv4Addr::new(10, 77, 0, 2), "db".to_owned())].into();
        let err = plan(&m, &observed).unwrap_err();
        assert!(err.contains("already machine db's"), "{err}");
    }

    #[test]
    fn addresses_nat_and_ports_without_a_veth_link_are_refused() {
        let port = Port {
            protocol: Protocol::Tcp,
            host: 8080,
            machine: 80,
        };
        for (network, what) in [
            (
                Network {
                    mode: Some(NetworkMode::Host),
                    ports: vec![port],
                    ..Network::default()
                },
                "network.ports needs a veth link",
            ),
            (
                Network {
                    mode: Some(NetworkMode::Private),
                    address: Some(Address::Auto),
                    nat: true,
                    ..Network::default()
                },
                "network.address and network.nat need a veth link",
            ),
        ] {
            let m = web(network);
            let mut observed = converged(&m);
            observed.settings = Some(settings::render(&m, m.network.mode.unwrap()));
            let err = plan(&m, &observed).unwrap_err();
            assert!(err.contains(what), "{err}");
            assert!(err.contains("set network.mode: veth or a zone"), "{err}");
        }
    }

    #[test]
    fn nat_and_ports_need_an_address_where_no_dhcp_serves_one_and_nat_needs_nft() {
        let port = Port {
            protocol: Protocol::Tcp,
            host: 8080,
            machine: 80,
        };
        let m = web(Network {
            ports: vec![port],
            ..Network::default()
        });
        // Ports without an address: a warning (the guest may configure
        // host0 itself, and nspawn's Port= follows it), not an error.
        let warned = plan_machine(&m, &absent(&m), None).unwrap();
        assert!(
            warned.warnings.contains(&Warning::PortsWithoutAddress),
            "{:?}",
            warned.warnings
        );
        let text = Warning::PortsWithoutAddress.to_string();
        assert!(
            text.contains("network.ports") && text.contains("set network.address"),
            "{text}"
        );
        let nat = web(Network {
            mode: Some(NetworkMode::Veth),
            nat: true,
            ..Network::default()
        });
        let err = plan(&nat, &absent(&nat)).unwrap_err();
        assert!(
            err.contains("network.nat") && err.contains("set network.address"),
            "{err}"
        );
        // Where the host's networkd serves DHCP (and masquerades), both are fine.
        for m in [&m, &nat] {
            let mut observed = absent(m);
            observed.host_dhcp = true;
            let actions = plan(m, &observed).unwrap();
            assert!(
                !actions.iter().any(|a| a.name() == "add-nat"),
                "{:?}",
                names(&actions)
            );
        }
        let m = web(lab("10.77.0.2/24"));
        let mut observed = absent(&m);
        observed.network.nat.nft = false;
        let err = plan(&m, &observed).unwrap_err();
        assert!(
            err.contains("install the Debian package `nftables`"),
            "{err}"
        );
    }

    #[test]
    fn what_leaves_the_spec_is_removed() {
        let with = web(lab("10.77.0.2/24"));
        let observed = converged(&with);
        let mut without = with.clone();
        without.network = Network {
            zone: Some("lab".into()),
            ..Network::default()
        };
        let actions = plan(&without, &observed).unwrap();
        assert_eq!(
            names(&actions),
            ["remove-network-config", "write-hosts", "remove-nat"]
        );
        assert_eq!(
            actions[0].describe(),
            "remove /etc/systemd/network/10-berth-host0.network and release address 10.77.0.2/24"
        );
        let (_, old, new) = actions[0].file_change().unwrap();
        assert!(old.contains("Address=") && new.is_empty());
        let (_, old, new) = actions[1].file_change().unwrap();
        assert_eq!((old.contains("# berth:"), new.as_str()), (true, HOSTS));
        assert_eq!(actions[1].effect(), crate::model::action::Effect::Remove);
        assert_eq!(
            actions[2],
            Action::RemoveNat {
                addresses: vec!["10.77.0.2".into()]
            }
        );
        // nat: false alone removes only the rule.
        let mut no_nat = with.clone();
        no_nat.network.nat = false;
        assert_eq!(names(&plan(&no_nat, &observed).unwrap()), ["remove-nat"]);
    }

    #[test]
    fn a_changed_address_is_recorded_written_and_masqueraded_anew() {
        let m = web(lab("10.77.0.2/24"));
        let observed = converged(&m);
        let moved = web(lab("10.77.0.5/24"));
        let actions = plan(&moved, &observed).unwrap();
        assert_eq!(
            names(&actions),
            ["allocate-address", "write-network-config", "add-nat"]
        );
        assert_eq!(
            actions[0].describe(),
            "record address 10.77.0.5/24 as the machine's (was 10.77.0.2/24)"
        );
    }

    #[test]
    fn a_running_machines_broken_host_side_is_repaired_unless_it_restarts() {
        let m = web(lab("10.77.0.2/24"));
        let mut observed = converged(&m);
        observed.network.host_link = Some(LinkFacts {
            exists: true,
            ..LinkFacts::default()
        });
        let actions = plan(&m, &observed).unwrap();
        let Action::ConfigureHostLink {
            interface,
            problems,
            commands,
        } = &actions[..].last().cloned().unwrap_or(Action::Destroy {
            reason: None,
            root: String::new(),
        })
        else {
            panic!("{:?}", names(&actions));
        };
        assert_eq!(interface, "vz-lab");
        assert_eq!(
            problems,
            &[
                "vz-lab is down",
                "vz-lab lacks the gateway address 10.77.0.1/24"
            ]
        );
        assert_eq!(commands.len(), 2);
        // A restart configures it anyway; a host whose networkd serves it is left alone.
        let mut restarting = observed.clone();
        restarting.run = RunState::Running {
            launcher: Launcher::Nspawn,
            pid: 1,
            settings: Some("other".into()),
        };
        assert_eq!(names(&plan(&m, &restarting).unwrap()), ["restart"]);
        let mut served = observed;
        served.host_dhcp = true;
        assert!(
            !plan(&m, &served)
                .unwrap()
                .iter()
                .any(|a| a.name() == "configure-host-link")
        );
    }
}
