//! A machine's network: the mode it effectively gets on this host, and (in
//! submodules) what berth configures for it beyond the `.nspawn` file.

pub mod address;
pub mod apply;
pub mod hosts;
pub mod ifname;
pub mod link;
pub mod nat;
pub mod networkd;
pub mod observe;

use berth_schema::{Launcher, Network, NetworkMode};

/// The network mode a machine gets: the spec's `network.mode`, else the
/// launcher's default. systemd-nspawn@.service (machinectl, nspawn-unit)
/// runs with `--network-veth`, so those default to a veth link, as the
/// article's machines have. The plain nspawn launcher defaults to a veth
/// link too where the host's networkd serves DHCP to containers
/// (`80-container-ve.network`), and to the host's network elsewhere, where
/// a veth link would leave the guest without an address. A spec that names
/// a zone or bridge, or asks for an address, NAT or port forwards, without
/// naming a mode gets a veth link.
pub fn effective_mode(network: &Network, launcher: Launcher, host_dhcp: bool) -> NetworkMode {
    if let Some(mode) = network.mode {
        return mode;
    }
    if network.wants_link() || network.address.is_some() || !network.ports.is_empty() || network.nat
    {
        return NetworkMode::Veth;
    }
    match launcher {
        Launcher::Machinectl | Launcher::NspawnUnit => NetworkMode::Veth,
        Launcher::Nspawn | Launcher::Auto if host_dhcp => NetworkMode::Veth,
        Launcher::Nspawn | Launcher::Auto => NetworkMode::Host,
    }
}

/// The mode `machine` gets when `launcher` starts it on the host of `facts`.
pub fn mode_on(
    machine: &berth_schema::Machine,
    launcher: Launcher,
    facts: &crate::host::HostFacts,
) -> NetworkMode {
    effective_mode(&machine.network, launcher, facts.host_dhcp)
}

/// How the mode reads in `plan` and `status`: `veth`, `zone web`,
/// `bridge br0`, `host`, `private`.
pub fn describe_mode(network: &Network, mode: NetworkMode) -> String {
    match (mode, &network.zone, &network.bridge) {
        (NetworkMode::Veth, Some(zone), _) => format!("zone {zone}"),
        (NetworkMode::Veth, None, Some(bridge)) => format!("bridge {bridge}"),
        (mode, _, _) => mode.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_launcher() {
        let net = Network::default();
        assert_eq!(
            effective_mode(&net, Launcher::Machinectl, false),
            NetworkMode::Veth
        );
        assert_eq!(
            effective_mode(&net, Launcher::NspawnUnit, false),
            NetworkMode::Veth
        );
        assert_eq!(
            effective_mode(&net, Launcher::Nspawn, false),
            NetworkMode::Host
        );
        assert_eq!(
            effective_mode(&net, Launcher::Nspawn, true),
            NetworkMode::Veth
        );
        let host = Network {
            mode: Some(NetworkMode::Host),
            ..Network::default()
        };
        assert_eq!(
            effective_mode(&host, Launcher::Machinectl, true),
            NetworkMode::Host
        );
        let addressed = Network {
            address: Some(berth_schema::Address::Auto),
            ..Network::default()
        };
        assert_eq!(
            effective_mode(&addressed, Launcher::Nspawn, false),
            NetworkMode::Veth
        );
        let zoned = Network {
            zone: Some("lab".into()),
            ..Network::default()
        };
        assert_eq!(
            effective_mode(&zoned, Launcher::Nspawn, false),
            NetworkMode::Veth
        );
    }
}
