//! `network:`: mode, zone, bridge and port forwards, and how they fit together.

use std::collections::HashMap;

use serde_saphyr::Spanned;

use super::values::NETWORK_MODES;
use super::{Field, Validator, optional};
use crate::names;
use crate::raw::RawNetwork;
use crate::spec::{Network, NetworkMode, Port};

impl Validator<'_, '_> {
    /// `network:`: a mode, a zone or a bridge (each implying veth), and port
    /// forwards, which need veth.
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
        let veth = link.is_some() || matches!(mode, Field::Valid(NetworkMode::Veth));
        let mut ports: Vec<Port> = Vec::new();
        if let Some(items) = &net.ports {
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
            // An invalid mode is already reported: do not guess what it meant.
            if !items.value.is_empty() && !veth && !matches!(mode, Field::Invalid) {
                self.error(
                    &items.referenced,
                    format!("{field}.ports"),
                    "port forwards need a private network with a veth link: set network.mode: veth",
                );
            }
        }
        if self.count() > before {
            return Field::Invalid;
        }
        let mode = match mode {
            _ if link.is_some() => Some(NetworkMode::Veth),
            Field::Valid(m) => Some(m),
            _ => None,
        };
        Field::Valid(Network {
            mode,
            zone: optional(zone).flatten(),
            bridge: optional(bridge).flatten(),
            ports,
            ..Network::default()
        })
    }
}
