//! `network:`: mode, zone, bridge, port forwards, the machine's address,
//! pool, gateway, NAT and `/etc/hosts`, and how they fit together.

use std::collections::HashMap;

use serde_saphyr::{Location, Spanned};

use super::values::NETWORK_MODES;
use super::{Field, Validator, optional, valid_or};
use crate::names;
use crate::raw::{RawBool, RawNetwork};
use crate::spec::{Address, Network, NetworkMode, Port};

impl Validator<'_, '_> {
    /// `network:`: a mode, a zone or a bridge (each implying veth), port
    /// forwards, an address (static or `auto`) with its pool or gateway,
    /// NAT and `/etc/hosts`. Port forwards, the address, the gateway and
    /// NAT need a veth link: they are refused only when the mode is
    /// explicitly `host` or `private` (left out, the launcher's default may
    /// be veth; the engine checks the effective mode).
    pub(super) fn network(&mut self, raw: &Spanned<RawNetwork>, field: &str) -> Field<Network> {
        let before = self.count();
        let net = &raw.value;
        let mode = self.choice(
            net.mode.as_ref(),
            &format!("{field}.mode"),
            "network mode",
            NETWORK_MODES,
        );
        let zone = self.scalar(net.zone.as_ref(), &format!("{field}.zone"), names::zone);
        let bridge = self.scalar(
            net.bridge.as_ref(),
            &format!("{field}.bridge"),
            names::bridge,
        );
        if let (Some(_), Some(b)) = (&net.zone, &net.bridge) {
            self.error(
                &b.referenced,
                format!("{field}.bridge"),
                "zone and bridge cannot both be set: the veth link joins either a zone or a bridge",
            );
        }
        let link = [("zone", &net.zone), ("bridge", &net.bridge)]
            .into_iter()
            .find_map(|(key, v)| v.as_ref().map(|v| (key, v)));
        if let (Field::Valid(m), Some((key, v))) = (&mode, link)
            && *m != NetworkMode::Veth
        {
            self.error(
                &v.referenced,
                format!("{field}.{key}"),
                format!(
                    "a {key} needs a veth link, but network.mode is `{}`: set mode: veth or leave it out",
                    m.as_str()
                ),
            );
        }
        // A mode written as `host` or `private` without a zone or bridge
        // (with one, the zone or bridge is already reported): no veth link.
        let linkless = match mode {
            Field::Valid(m) if m != NetworkMode::Veth && link.is_none() => Some(m),
            _ => None,
        };
        let ports = self.ports(net, field, linkless);

        let address = self.parsed(
            net.address.as_ref(),
            &format!("{field}.address"),
            names::address,
        );
        let pool = self.parsed(net.pool.as_ref(), &format!("{field}.pool"), names::pool);
        let gateway = self.parsed(
            net.gateway.as_ref(),
            &format!("{field}.gateway"),
            names::gateway,
        );
        let nat = self.boolean(net.nat.as_ref(), &format!("{field}.nat"));
        let hosts = self.boolean(net.hosts.as_ref(), &format!("{field}.hosts"));

        // Each of address, gateway and `nat: true` needs a veth link.
        let nat_on = net
            .nat
            .as_ref()
            .filter(|n| matches!(n.value, RawBool::Bool(true)));
        let refused = |v: &mut Self, key: &str, loc: Option<&Location>| -> bool {
            match (linkless, loc) {
                (Some(m), Some(loc)) => {
                    v.error(
                        loc,
                        format!("{field}.{key}"),
                        format!(
                            "network.{key} needs a private network with a veth link, but network.mode is `{}`: set `mode: veth` or a zone, or leave mode out",
                            m.as_str()
                        ),
                    );
                    true
                }
                _ => false,
            }
        };
        refused(self, "address", net.address.as_ref().map(|a| &a.referenced));
        let gateway_refused = refused(self, "gateway", net.gateway.as_ref().map(|g| &g.referenced));
        let nat_refused = refused(self, "nat", nat_on.map(|n| &n.referenced));

        if let Some(p) = &net.pool {
            let wrong = match &address {
                Field::Valid(Address::Auto) | Field::Invalid => None,
                Field::Absent => Some("network.address is not set".to_owned()),
                Field::Valid(Address::Static(a)) => {
                    Some(format!("network.address is the static `{a}`"))
                }
            };
            if let Some(why) = wrong {
                self.error(
                    &p.referenced,
                    format!("{field}.pool"),
                    format!(
                        "network.pool is only used with `address: auto`, but {why}: set address: auto or remove pool"
                    ),
                );
            }
        }
        if let Some(g) = net.gateway.as_ref().filter(|_| !gateway_refused) {
            let problem = match (&address, &gateway) {
                (Field::Valid(Address::Static(a)), Field::Valid(gw)) => {
                    names::gateway_fits(*gw, *a).err()
                }
                (Field::Valid(Address::Auto), _) => Some(
                    "network.gateway needs a static network.address: with `address: auto`, the gateway is the host side of the link".to_owned(),
                ),
                (Field::Absent, _) => Some(
                    "network.gateway needs a static network.address in the gateway's network (e.g. `address: 10.0.0.5/24` with `gateway: 10.0.0.1`)".to_owned(),
                ),
                _ => None,
            };
            if let Some(msg) = problem {
                self.error(&g.referenced, format!("{field}.gateway"), msg);
            }
        }
        if let (Some(n), Field::Absent, false) = (nat_on, &address, nat_refused) {
            self.error(
                &n.referenced,
                format!("{field}.nat"),
                "network.nat needs network.address (a static address or `auto`): berth masquerades the machine's address",
            );
        }

        if self.count() > before {
            return Field::Invalid;
        }
        let mode = match mode {
            _ if link.is_some() => Some(NetworkMode::Veth),
            Field::Valid(m) => Some(m),
            _ => None,
        };
        let network = || {
            Some(Network {
                mode,
                zone: optional(zone)?,
                bridge: optional(bridge)?,
                ports,
                address: optional(address)?,
                pool: optional(pool)?,
                gateway: optional(gateway)?,
                nat: valid_or(nat, false)?,
                hosts: valid_or(hosts, false)?,
            })
        };
        network().map_or(Field::Invalid, Field::Valid)
    }

    /// `ports:`: each parsed, no host port forwarded twice; refused as a
    /// whole when the mode is `linkless` (`host` or `private` written out).
    fn ports(&mut self, net: &RawNetwork, field: &str, linkless: Option<NetworkMode>) -> Vec<Port> {
        let mut ports: Vec<Port> = Vec::new();
        let Some(items) = &net.ports else {
            return ports;
        };
        let mut seen: HashMap<(&str, u16), usize> = HashMap::new();
        for (i, item) in items.value.iter().enumerate() {
            let at = format!("{field}.ports[{i}]");
            match names::port(&item.value) {
                Ok(p) => {
                    let key = (p.protocol.as_str(), p.host);
                    if let Some(first) = seen.get(&key) {
                        self.error(
                            &item.referenced,
                            at,
                            format!(
                                "host port {} {} is already forwarded by network.ports[{first}]",
                                p.protocol.as_str(),
                                p.host
                            ),
                        );
                    } else {
                        seen.insert(key, i);
                        ports.push(p);
                    }
                }
                Err(msg) => self.error(&item.referenced, at, msg),
            }
        }
        if !items.value.is_empty() && linkless.is_some() {
            self.error(
                &items.referenced,
                format!("{field}.ports"),
                "port forwards need a private network with a veth link: set network.mode: veth",
            );
        }
        ports
    }
}
