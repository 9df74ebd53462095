//! A machine's IPv4 address on its `host0` link: the spec's static one, or
//! one drawn from `network.pool` (`address: auto`) that berth records; the
//! gateway; and the addresses one planning run gives out, so two machines
//! planned together never get the same one.
//!
//! Addresses are unique on the host: every machine berth manages (its
//! record) holds its address, and a static address another machine holds is
//! a plan error. apply checks again, under berth's lock, before it records
//! an allocation ([`crate::execute`]).

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use berth_schema::{Address, DEFAULT_POOL, Ipv4Cidr, Machine, Network};
use serde::Serialize;

use crate::host::state::MachineRecord;

/// `10.0.0.5/24` as an [`Ipv4Cidr`]; what berth's records hold.
pub fn parse_cidr(text: &str) -> Result<Ipv4Cidr, String> {
    let (address, prefix) = text
        .trim()
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not ADDRESS/PREFIX"))?;
    let address: Ipv4Addr = address
        .parse()
        .map_err(|e| format!("{text:?}: the address: {e}"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| format!("{text:?}: the prefix length is not 0-32"))?;
    Ok(Ipv4Cidr { address, prefix })
}

/// The pool `address: auto` draws from.
pub fn pool(network: &Network) -> Ipv4Cidr {
    network.pool.unwrap_or(DEFAULT_POOL)
}

/// The first host address of the network of `cidr` (`10.0.0.1` for
/// `10.0.0.5/24`).
pub fn first_host(cidr: Ipv4Cidr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(cidr.network()).wrapping_add(1))
}

/// The network's broadcast address.
fn broadcast(cidr: Ipv4Cidr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(cidr.network()) | !cidr.mask())
}

/// The machine's default gateway: the spec's `network.gateway`, else the
/// first host address of its network (for `auto`, of the pool).
pub fn gateway(network: &Network, address: Ipv4Cidr) -> Ipv4Addr {
    network.gateway.unwrap_or_else(|| match network.address {
        Some(Address::Auto) => first_host(pool(network)),
        _ => first_host(address),
    })
}

/// Who holds each address on this host, besides the machine being planned:
/// berth's records of other machines and the other machines of this run.
pub type Taken = BTreeMap<Ipv4Addr, String>;

/// Why an address cannot be a machine's, if it cannot: it is its network's
/// own address or broadcast, or the gateway.
fn unusable(cidr: Ipv4Cidr, gateway: Ipv4Addr) -> Option<&'static str> {
    if cidr.prefix <= 30 && cidr.address == cidr.network() {
        Some("the network's own address")
    } else if cidr.prefix <= 30 && cidr.address == broadcast(cidr) {
        Some("the network's broadcast address")
    } else if cidr.address == gateway {
        Some("the gateway (the host's side of the link)")
    } else {
        None
    }
}

/// The address `network` gives the machine: the static one (checked), or
/// for `auto` the recorded one while it still fits the pool and no other
/// machine holds it, else the lowest free address of the pool. None when the
/// spec asks for no address.
pub fn resolve(
    network: &Network,
    recorded: Option<Ipv4Cidr>,
    taken: &Taken,
) -> Result<Option<Ipv4Cidr>, String> {
    match network.address {
        None => Ok(None),
        Some(Address::Static(cidr)) => {
            let gateway = gateway(network, cidr);
            if let Some(why) = unusable(cidr, gateway) {
                return Err(format!(
                    "network.address {cidr} is {why}; choose another address"
                ));
            }
            if !cidr.contains(gateway) {
                return Err(format!(
                    "network.gateway {gateway} is not in the machine's network {}/{}",
                    cidr.network(),
                    cidr.prefix
                ));
            }
            if let Some(holder) = taken.get(&cidr.address) {
                return Err(format!(
                    "network.address {} is already machine {holder}'s on this host; \
                     every machine needs its own address",
                    cidr.address
                ));
            }
            Ok(Some(cidr))
        }
        Some(Address::Auto) => {
            let pool = pool(network);
            let gateway = gateway(network, pool);
            if pool.prefix > 30 {
                return Err(format!(
                    "network.pool {pool} is too small: it needs room for a gateway and a machine"
                ));
            }
            if !pool.contains(gateway) {
                return Err(format!(
                    "network.gateway {gateway} is not in network.pool {pool}"
                ));
            }
            let fits = |cidr: Ipv4Cidr| {
                cidr.prefix == pool.prefix
                    && pool.contains(cidr.address)
                    && unusable(cidr, gateway).is_none()
                    && !taken.contains_key(&cidr.address)
            };
            if let Some(cidr) = recorded.filter(|c| fits(*c)) {
                return Ok(Some(cidr));
            }
            let first = u32::from(pool.network()).saturating_add(1);
            let last = u32::from(broadcast(pool)).saturating_sub(1);
            (first..=last)
                .map(|n| Ipv4Cidr {
                    address: Ipv4Addr::from(n),
                    prefix: pool.prefix,
                })
                .find(|c| fits(*c))
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "network.pool {pool} has no free address left ({} taken by other machines)",
                        taken.keys().filter(|a| pool.contains(**a)).count()
                    )
                })
        }
    }
}

/// Another machine of the spec, as the guest's `/etc/hosts` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peer {
    /// The machine name.
    pub name: String,
    /// Its hostname.
    pub hostname: String,
    /// Its address.
    pub address: Ipv4Addr,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.address, self.hostname)
    }
}

/// The addresses of one planning run: every machine of the spec with an
/// address it has or is given now, and who holds what on the host.
#[derive(Debug, Clone, Default)]
pub struct RunAddresses {
    /// Addresses berth's records hold, by machine.
    recorded: BTreeMap<String, Ipv4Cidr>,
    /// The address each machine of the spec has or gets in this run.
    claims: BTreeMap<String, Ipv4Cidr>,
    /// Machine names and hostnames of the spec, in spec order.
    machines: Vec<(String, String)>,
}

impl RunAddresses {
    /// Gives out the addresses for planning `selected` among `spec` (every
    /// machine of the spec), with berth's `records` of the host's machines.
    /// Static addresses are claimed first; then each selected `auto` machine,
    /// in order, keeps its recorded address or gets the lowest free one.
    /// An unselected `auto` machine keeps what its record holds (nothing if
    /// it has none yet). Conflicts are left to each machine's plan, which
    /// reports them.
    pub fn new(spec: &[&Machine], selected: &[&Machine], records: &[MachineRecord]) -> Self {
        let recorded: BTreeMap<String, Ipv4Cidr> = records
            .iter()
            .filter_map(|r| {
                let address = parse_cidr(r.address.as_deref()?).ok()?;
                Some((r.name.clone(), address))
            })
            .collect();
        let mut run = RunAddresses {
            recorded,
            claims: BTreeMap::new(),
            machines: spec
                .iter()
                .map(|m| (m.name.clone(), m.hostname.clone()))
                .collect(),
        };
        for m in spec {
            if let Some(Address::Static(cidr)) = m.network.address {
                run.claims.entry(m.name.clone()).or_insert(cidr);
            }
        }
        for m in spec {
            let is_selected = selected.iter().any(|s| s.name == m.name);
            if m.network.address != Some(Address::Auto) {
                continue;
            }
            if is_selected {
                let taken = run.taken_by_others(&m.name);
                let own = run.recorded.get(&m.name).copied();
                if let Ok(Some(cidr)) = resolve(&m.network, own, &taken) {
                    run.claims.insert(m.name.clone(), cidr);
                }
            } else if let Some(cidr) = run.recorded.get(&m.name) {
                run.claims.insert(m.name.clone(), *cidr);
            }
        }
        run
    }

    /// The addresses held by machines other than `name`: records, and
    /// this run's claims.
    pub fn taken_by_others(&self, name: &str) -> Taken {
        self.recorded
            .iter()
            .chain(&self.claims)
            .filter(|(holder, _)| holder.as_str() != name)
            .map(|(holder, cidr)| (cidr.address, holder.clone()))
            .collect()
    }

    /// The spec's other machines with an address, for `name`'s `/etc/hosts`.
    pub fn peers_of(&self, name: &str) -> Vec<Peer> {
        self.machines
            .iter()
            .filter(|(other, _)| other != name)
            .filter_map(|(other, hostname)| {
                let cidr = self.claims.get(other)?;
                Some(Peer {
                    name: other.clone(),
                    hostname: hostname.clone(),
                    address: cidr.address,
                })
            })
            .collect()
    }
}

/// Who holds which address according to berth's `records`, except `name`.
pub fn taken_by_records(records: &[MachineRecord], name: &str) -> Taken {
    records
        .iter()
        .filter(|r| r.name != name)
        .filter_map(|r| {
            let cidr = parse_cidr(r.address.as_deref()?).ok()?;
            Some((cidr.address, r.name.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Ipv4Cidr {
        parse_cidr(text).expect("a cidr")
    }

    fn auto(pool: &str) -> Network {
        Network {
            address: Some(Address::Auto),
            pool: Some(cidr(pool)),
            ..Network::default()
        }
    }

    #[test]
    fn cidrs_parse_and_refuse_nonsense() {
        assert_eq!(cidr("10.0.0.5/24").to_string(), "10.0.0.5/24");
        assert!(parse_cidr("10.0.0.5").is_err());
        assert!(parse_cidr("10.0.0.5/33").is_err());
        assert!(parse_cidr("10.0.0.256/24").is_err());
    }

    #[test]
    fn the_gateway_defaults_to_the_first_host_of_the_network_or_pool() {
        let net = Network {
            address: Some(Address::Static(cidr("10.0.0.5/24"))),
            ..Network::default()
        };
        assert_eq!(
            gateway(&net, cidr("10.0.0.5/24")),
            Ipv4Addr::new(10, 0, 0, 1)
        );
        let net = auto("10.9.0.0/16");
        assert_eq!(
            gateway(&net, cidr("10.9.3.7/16")),
            Ipv4Addr::new(10, 9, 0, 1)
        );
        let net = Network {
            address: Some(Address::Auto),
            ..Network::default()
        };
        assert_eq!(
            gateway(&net, cidr("10.231.0.2/16")),
            Ipv4Addr::new(10, 231, 0, 1)
        );
        let net = Network {
            gateway: Some(Ipv4Addr::new(10, 0, 0, 254)),
            ..net
        };
        assert_eq!(
            gateway(&net, cidr("10.231.0.2/16")),
            Ipv4Addr::new(10, 0, 0, 254)
        );
    }

    #[test]
    fn auto_takes_the_lowest_free_address_and_keeps_a_recorded_one() {
        let net = auto("10.9.0.0/29");
        let mut taken = Taken::new();
        assert_eq!(
            resolve(&net, None, &taken).unwrap(),
            Some(cidr("10.9.0.2/29"))
        );
        taken.insert(Ipv4Addr::new(10, 9, 0, 2), "a".into());
        assert_eq!(
            resolve(&net, None, &taken).unwrap(),
            Some(cidr("10.9.0.3/29"))
        );
        // A recorded address is kept while it fits.
        assert_eq!(
            resolve(&net, Some(cidr("10.9.0.6/29")), &taken).unwrap(),
            Some(cidr("10.9.0.6/29"))
        );
        // Not when the pool changed, nor when another machine holds it.
        assert_eq!(
            resolve(&net, Some(cidr("10.8.0.6/29")), &taken).unwrap(),
            Some(cidr("10.9.0.3/29"))
        );
        assert_eq!(
            resolve(&net, Some(cidr("10.9.0.2/29")), &taken).unwrap(),
            Some(cidr("10.9.0.3/29"))
        );
        // .1 is the gateway, .7 the broadcast: .2-.6 are all there is.
        for n in 3..=6 {
            taken.insert(Ipv4Addr::new(10, 9, 0, n), format!("m{n}"));
        }
        let err = resolve(&net, None, &taken).unwrap_err();
        assert!(err.contains("no free address"), "{err}");
    }

    #[test]
    fn static_addresses_are_checked() {
        let with = |address: &str, gateway: Option<Ipv4Addr>| Network {
            address: Some(Address::Static(cidr(address))),
            gateway,
            ..Network::default()
        };
        let taken = Taken::new();
        assert!(resolve(&with("10.0.0.5/24", None), None, &taken).is_ok());
        for (bad, why) in [
            ("10.0.0.0/24", "network's own address"),
            ("10.0.0.255/24", "broadcast"),
            ("10.0.0.1/24", "gateway"),
        ] {
            let err = resolve(&with(bad, None), None, &taken).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let err = resolve(
            &with("10.0.0.5/24", Some(Ipv4Addr::new(10, 1, 0, 1))),
            None,
            &taken,
        )
        .unwrap_err();
        assert!(err.contains("not in the machine's network"), "{err}");
        let taken: Taken = [(Ipv4Addr::new(10, 0, 0, 5), "db".to_owned())].into();
        let err = resolve(&with("10.0.0.5/24", None), None, &taken).unwrap_err();
        assert!(err.contains("already machine db's"), "{err}");
    }

    #[test]
    fn a_run_gives_two_auto_machines_distinct_addresses_and_lists_peers() {
        let a = Machine::builder("a").network(auto("10.9.0.0/24")).build();
        let b = Machine::builder("b")
            .hostname("bee")
            .network(auto("10.9.0.0/24"))
            .build();
        let c = Machine::builder("c")
            .network(Network {
                address: Some(Address::Static(cidr("10.9.0.2/24"))),
                ..Network::default()
            })
            .build();
        let spec = [&a, &b, &c];
        let run = RunAddresses::new(&spec, &spec, &[]);
        // c's static address is claimed first; a and b get the next ones.
        let peers = run.peers_of("c");
        assert_eq!(
            peers.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["10.9.0.3 a", "10.9.0.4 bee"]
        );
        let taken = run.taken_by_others("a");
        assert_eq!(
            resolve(&a.network, None, &taken).unwrap(),
            Some(cidr("10.9.0.3/24")),
            "the planner resolves what the run gave out"
        );
        // An unselected auto machine without a record gets nothing yet.
        let run = RunAddresses::new(&spec, &[&a], &[]);
        assert_eq!(run.peers_of("a").len(), 1, "{:?}", run.peers_of("a"));
    }
}
