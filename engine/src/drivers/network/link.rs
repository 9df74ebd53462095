//! The host's side of a machine's link, where nothing else configures it
//! (a host not booted with systemd, or one whose systemd-networkd does not
//! run; where it runs, its `80-container-ve.network` and
//! `80-container-vz.network` do). systemd-nspawn makes the link at every
//! start and removes it when the machine stops, so berth configures it after
//! every start, and repairs it when a running machine's is found missing or
//! wrong:
//!
//! - a plain veth link `ve-NAME`: the gateway as a /32, the link up, and a
//!   /32 route to the machine's address (so many machines share one pool,
//!   and the gateway address sits on several links);
//! - a zone's bridge `vz-ZONE`: the gateway with the network's prefix, up
//!   (its machines' links are joined to it up by systemd-nspawn).
//!
//! A `bridge:` is the user's own and never touched.

use std::net::Ipv4Addr;

use berth_schema::{Ipv4Cidr, Network, NetworkMode};
use serde_json::Value;

use super::ifname;
use crate::error::EngineError;
use crate::host::{Cmd, Host};

/// The host-side link berth configures for a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostLink {
    /// The machine's own veth link, `ve-NAME`.
    Veth {
        /// The interface.
        interface: String,
    },
    /// The bridge of the machine's zone, `vz-ZONE`.
    Zone {
        /// The bridge.
        bridge: String,
    },
}

impl HostLink {
    /// The interface berth configures.
    pub fn interface(&self) -> &str {
        match self {
            HostLink::Veth { interface } => interface,
            HostLink::Zone { bridge } => bridge,
        }
    }
}

/// The link berth configures for machine `name` on this host, if any: a
/// veth link (plain or in a zone) where the host's networkd does not serve
/// it (`host_dhcp` false).
pub fn managed(
    name: &str,
    network: &Network,
    mode: NetworkMode,
    host_dhcp: bool,
) -> Option<HostLink> {
    if mode != NetworkMode::Veth || host_dhcp || network.bridge.is_some() {
        return None;
    }
    Some(match &network.zone {
        Some(zone) => HostLink::Zone {
            bridge: ifname::zone_bridge(zone),
        },
        None => HostLink::Veth {
            interface: ifname::veth_host(name),
        },
    })
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// The `ip` commands that configure `link` for a machine at `address`
/// behind `gateway` (each idempotent: `replace`, `set up`).
pub fn commands(link: &HostLink, gateway: Ipv4Addr, address: Ipv4Cidr) -> Vec<Vec<String>> {
    match link {
        HostLink::Veth { interface } => vec![
            argv(&[
                "ip",
                "addr",
                "replace",
                &format!("{gateway}/32"),
                "dev",
                interface,
            ]),
            argv(&["ip", "link", "set", "dev", interface, "up"]),
            argv(&[
                "ip",
                "route",
                "replace",
                &format!("{}/32", address.address),
                "dev",
                interface,
            ]),
        ],
        HostLink::Zone { bridge } => vec![
            argv(&[
                "ip",
                "addr",
                "replace",
                &format!("{gateway}/{}", address.prefix),
                "dev",
                bridge,
            ]),
            argv(&["ip", "link", "set", "dev", bridge, "up"]),
        ],
    }
}

/// The host side of a link as `ip` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkFacts {
    /// Whether the interface exists.
    pub exists: bool,
    /// Whether it is administratively up.
    pub up: bool,
    /// Its IPv4 addresses with their prefix lengths.
    pub addresses: Vec<(Ipv4Addr, u8)>,
    /// The destinations of the IPv4 routes through it (`10.0.0.5`, `10.0.0.0/24`).
    pub routes: Vec<String>,
}

/// Reads `ip -j addr show dev NAME` and `ip -j -4 route show dev NAME`.
pub fn parse(name: &str, addr_json: &str, route_json: &str) -> LinkFacts {
    let links: Vec<Value> = serde_json::from_str(addr_json).unwrap_or_default();
    let Some(entry) = links.iter().find(|l| l["ifname"] == name) else {
        return LinkFacts::default();
    };
    let up = entry["flags"]
        .as_array()
        .is_some_and(|flags| flags.iter().any(|f| f == "UP"));
    let addresses = entry["addr_info"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["family"] == "inet")
        .filter_map(|a| {
            let address = a["local"].as_str()?.parse().ok()?;
            let prefix = u8::try_from(a["prefixlen"].as_u64()?).ok()?;
            Some((address, prefix))
        })
        .collect();
    let routes: Vec<Value> = serde_json::from_str(route_json).unwrap_or_default();
    LinkFacts {
        exists: true,
        up,
        addresses,
        routes: routes
            .iter()
            .filter_map(|r| r["dst"].as_str().map(str::to_owned))
            .collect(),
    }
}

/// What is missing or wrong on `link` for a machine at `address` behind
/// `gateway`; empty when it is as berth configures it.
pub fn problems(
    facts: &LinkFacts,
    link: &HostLink,
    gateway: Ipv4Addr,
    address: Ipv4Cidr,
) -> Vec<String> {
    let name = link.interface();
    if !facts.exists {
        return vec![format!("{name} does not exist")];
    }
    let mut out = Vec::new();
    if !facts.up {
        out.push(format!("{name} is down"));
    }
    let prefix = match link {
        HostLink::Veth { .. } => 32,
        HostLink::Zone { .. } => address.prefix,
    };
    if !facts.addresses.contains(&(gateway, prefix)) {
        out.push(format!(
            "{name} lacks the gateway address {gateway}/{prefix}"
        ));
    }
    if let HostLink::Veth { .. } = link {
        let target = address.address.to_string();
        let routed = facts
            .routes
            .iter()
            .any(|dst| *dst == target || *dst == format!("{target}/32"));
        if !routed {
            out.push(format!("no route to {target}/32 through {name}"));
        }
    }
    out
}

/// Reads `link`'s state with `ip`.
pub fn observe(host: &dyn Host, link: &HostLink) -> Result<LinkFacts, EngineError> {
    let name = link.interface();
    let addr = host.run(&Cmd::new(["ip", "-j", "addr", "show", "dev", name]).quiet())?;
    if !addr.success() {
        return Ok(LinkFacts::default());
    }
    let route = match link {
        HostLink::Veth { .. } => {
            host.run(&Cmd::new(["ip", "-j", "-4", "route", "show", "dev", name]).quiet())?
                .stdout
        }
        HostLink::Zone { .. } => Vec::new(),
    };
    Ok(parse(
        name,
        &String::from_utf8_lossy(&addr.stdout),
        &String::from_utf8_lossy(&route),
    ))
}

/// Runs `commands` on the host (machine `name`'s link), failing with the
/// command and its output.
pub fn configure(host: &dyn Host, name: &str, commands: &[Vec<String>]) -> Result<(), EngineError> {
    for argv in commands {
        let out = host.run(&Cmd::new(argv.clone()))?;
        if !out.success() {
            return Err(EngineError::Command {
                what: format!(
                    "{} (the host side of machine {name}'s link)",
                    argv.join(" ")
                ),
                output: out.stderr_text(),
                status: out.status,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::network::address::parse_cidr;

    fn gw() -> Ipv4Addr {
        Ipv4Addr::new(10, 231, 0, 1)
    }

    #[test]
    fn only_veth_links_the_hosts_networkd_does_not_serve_are_managed() {
        let plain = Network::default();
        assert_eq!(
            managed("web", &plain, NetworkMode::Veth, false),
            Some(HostLink::Veth {
                interface: "ve-web".into()
            })
        );
        assert_eq!(managed("web", &plain, NetworkMode::Veth, true), None);
        assert_eq!(managed("web", &plain, NetworkMode::Host, false), None);
        let zone = Network {
            zone: Some("lab".into()),
            ..Network::default()
        };
        assert_eq!(
            managed("web", &zone, NetworkMode::Veth, false),
            Some(HostLink::Zone {
                bridge: "vz-lab".into()
            })
        );
        let bridge = Network {
            bridge: Some("br0".into()),
            ..Network::default()
        };
        assert_eq!(managed("web", &bridge, NetworkMode::Veth, false), None);
    }

    #[test]
    fn commands_give_a_veth_link_a_32_each_way_and_a_zone_bridge_the_prefix() {
        let address = parse_cidr("10.231.0.2/16").unwrap();
        let veth = HostLink::Veth {
            interface: "ve-web".into(),
        };
        let lines: Vec<String> = commands(&veth, gw(), address)
            .iter()
            .map(|c| c.join(" "))
            .collect();
        assert_eq!(
            lines,
            [
                "ip addr replace 10.231.0.1/32 dev ve-web",
                "ip link set dev ve-web up",
                "ip route replace 10.231.0.2/32 dev ve-web"
            ]
        );
        let zone = HostLink::Zone {
            bridge: "vz-lab".into(),
        };
        let lines: Vec<String> = commands(&zone, gw(), address)
            .iter()
            .map(|c| c.join(" "))
            .collect();
        assert_eq!(
            lines,
            [
                "ip addr replace 10.231.0.1/16 dev vz-lab",
                "ip link set dev vz-lab up"
            ]
        );
    }

    #[test]
    fn problems_are_read_from_ip_json() {
        let address = parse_cidr("10.231.0.2/16").unwrap();
        let veth = HostLink::Veth {
            interface: "ve-web".into(),
        };
        let good = r#"[{"ifindex":5,"ifname":"ve-web","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],
            "addr_info":[{"family":"inet","local":"10.231.0.1","prefixlen":32},
                         {"family":"inet6","local":"fe80::1","prefixlen":64}]}]"#;
        let route = r#"[{"dst":"10.231.0.2","scope":"link","flags":[]}]"#;
        let facts = parse("ve-web", good, route);
        assert_eq!(facts.addresses, [(gw(), 32)]);
        assert!(problems(&facts, &veth, gw(), address).is_empty());
        let down =
            r#"[{"ifindex":5,"ifname":"ve-web","flags":["BROADCAST","MULTICAST"],"addr_info":[]}]"#;
        assert_eq!(
            problems(&parse("ve-web", down, "[]"), &veth, gw(), address),
            [
                "ve-web is down",
                "ve-web lacks the gateway address 10.231.0.1/32",
                "no route to 10.231.0.2/32 through ve-web"
            ]
        );
        assert_eq!(
            problems(&parse("ve-web", "", ""), &veth, gw(), address),
            ["ve-web does not exist"]
        );
        let zone = HostLink::Zone {
            bridge: "vz-lab".into(),
        };
        let bridge = r#"[{"ifname":"vz-lab","flags":["UP"],
            "addr_info":[{"family":"inet","local":"10.231.0.1","prefixlen":16}]}]"#;
        assert!(problems(&parse("vz-lab", bridge, ""), &zone, gw(), address).is_empty());
    }
}
