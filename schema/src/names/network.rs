//! `network:`: zone and bridge names, port forwards, the machine's IPv4
//! address, its pool and its gateway.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use crate::spec::{Address, Ipv4Cidr, Port, Protocol};

use super::messages::{quote, suggest};
use super::{Token, check_token};

/// Longest zone name: `vz-` + the zone must fit an interface name (15).
pub(crate) const MAX_ZONE: usize = 12;

/// Longest bridge name: a Linux interface name (`IFNAMSIZ` - 1).
pub(crate) const MAX_BRIDGE: usize = 15;

/// A network zone: 1–12 of `[A-Za-z0-9_-]` (the host interface is `vz-ZONE`).
pub(crate) fn zone(name: &str) -> Result<(), String> {
    check_token(
        name,
        &Token {
            what: "zone name",
            max: MAX_ZONE,
            allowed: |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'),
            allowed_desc: "letters, digits, `_`, `-`",
            path_like: false,
        },
    )
}

/// A host bridge: an interface name, 1–15 of `[A-Za-z0-9_.-]`, not `.` or `..`.
pub(crate) fn bridge(name: &str) -> Result<(), String> {
    check_token(
        name,
        &Token {
            what: "bridge name",
            max: MAX_BRIDGE,
            allowed: |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'),
            allowed_desc: "letters, digits, `_ . -`",
            path_like: false,
        },
    )?;
    if name == "." {
        return Err("bridge name `.` is not an interface name".to_owned());
    }
    Ok(())
}

/// A port forward: `PROTO:HOST:MACHINE` or `HOST:MACHINE` (tcp), ports 1–65535.
pub(crate) fn port(value: &str) -> Result<Port, String> {
    let q = quote(value);
    let shape = || {
        format!(
            "port forward {q} must be `PROTOCOL:HOST:MACHINE` or `HOST:MACHINE` (e.g. `tcp:8080:80`)"
        )
    };
    let parts: Vec<&str> = value.split(':').collect();
    let (protocol, host, machine) = match parts.as_slice() {
        [host, machine] => (Protocol::Tcp, *host, *machine),
        [protocol, host, machine] => {
            let protocol = match *protocol {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                other => {
                    let mut msg = format!(
                        "unknown protocol {} in port forward {q}: expected `tcp` or `udp`",
                        quote(other)
                    );
                    if let Some(s) = suggest(&other.to_ascii_lowercase(), &["tcp", "udp"]) {
                        let _ = write!(msg, " (did you mean `{s}`?)");
                    }
                    return Err(msg);
                }
            };
            (protocol, *host, *machine)
        }
        _ => return Err(shape()),
    };
    let number = |which: &str, text: &str| -> Result<u16, String> {
        if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(shape());
        }
        match text.parse::<u32>() {
            Ok(n @ 1..=65535) => u16::try_from(n).map_err(|_| shape()),
            _ => Err(format!(
                "{which} port {text} in port forward {q} is out of range (1–65535)"
            )),
        }
    };
    Ok(Port {
        protocol,
        host: number("host", host)?,
        machine: number("machine", machine)?,
    })
}

/// The prefix lengths a static `network.address` may have: a /31 or /32
/// leaves no room for the host side of the link, a /7 or wider is no link.
pub(crate) const ADDRESS_PREFIXES: RangeInclusive<u8> = 8..=30;

/// The prefix lengths a `network.pool` may have: at least a /28 (a few
/// /30 links), at most a /8.
pub(crate) const POOL_PREFIXES: RangeInclusive<u8> = 8..=28;

/// An IPv4 address in dotted-quad form (`10.0.0.1`): four decimal numbers
/// 0–255 without leading zeros. `what` names the value in messages
/// (`network.gateway`).
pub(crate) fn ipv4(what: &str, text: &str) -> Result<Ipv4Addr, String> {
    let q = quote(text);
    if text.contains(':') {
        return Err(format!(
            "{what} {q} looks like an IPv6 address: only IPv4 is supported (e.g. `10.0.0.1`)"
        ));
    }
    let octets: Vec<&str> = text.split('.').collect();
    let well_formed = octets.len() == 4
        && octets.iter().all(|o| {
            !o.is_empty()
                && o.len() <= 3
                && o.bytes().all(|b| b.is_ascii_digit())
                && !(o.len() > 1 && o.starts_with('0'))
        });
    if !well_formed {
        return Err(format!(
            "{what} {q} is not an IPv4 address: write four numbers 0–255 separated by dots, without leading zeros (e.g. `10.0.0.1`)"
        ));
    }
    let mut bytes = [0u8; 4];
    for (byte, octet) in bytes.iter_mut().zip(&octets) {
        *byte = octet
            .parse::<u8>()
            .map_err(|_| format!("{what} {q} is not an IPv4 address: {octet} is more than 255"))?;
    }
    Ok(Ipv4Addr::from(bytes))
}

/// Why `addr` cannot be a machine's address, gateway or pool: it is in a
/// range no link uses (`0.0.0.0/8`, loopback, multicast, reserved).
fn unusable(addr: Ipv4Addr) -> Option<&'static str> {
    let [first, ..] = addr.octets();
    if first == 0 {
        Some("is in 0.0.0.0/8, which means \"this host\", not an address on a link")
    } else if addr.is_loopback() {
        Some("is a loopback address (127.0.0.0/8)")
    } else if addr.is_multicast() {
        Some("is a multicast address (224.0.0.0/4)")
    } else if first >= 240 {
        Some("is in the reserved range 240.0.0.0/4")
    } else {
        None
    }
}

/// `ADDRESS/PREFIX`, both parts checked for form only.
fn cidr(what: &str, text: &str, example: &str) -> Result<Ipv4Cidr, String> {
    let q = quote(text);
    let Some((addr, prefix)) = text.split_once('/') else {
        ipv4(what, text)?;
        return Err(format!(
            "{what} {q} has no prefix length: write it as `ADDRESS/PREFIX` (e.g. `{example}`)"
        ));
    };
    let address = ipv4(what, addr)?;
    let prefix =
        if !prefix.is_empty() && prefix.len() <= 2 && prefix.bytes().all(|b| b.is_ascii_digit()) {
            prefix.parse::<u8>().ok()
        } else {
            None
        };
    match prefix {
        Some(prefix) if prefix <= 32 => Ok(Ipv4Cidr { address, prefix }),
        _ => Err(format!(
            "{what} {q} has no valid prefix length: write `ADDRESS/PREFIX` with a prefix 0–32 (e.g. `{example}`)"
        )),
    }
}

/// The last address of `net` (its broadcast address).
fn broadcast(net: Ipv4Cidr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()) | !net.mask())
}

/// `network.address`: `auto`, or a host address with a prefix in
/// [`ADDRESS_PREFIXES`] that is neither the network's own address nor its
/// broadcast address.
pub(crate) fn address(text: &str) -> Result<Address, String> {
    const WHAT: &str = "network.address";
    if text == "auto" {
        return Ok(Address::Auto);
    }
    if text.eq_ignore_ascii_case("auto") {
        return Err(format!(
            "{WHAT} {} is not a value: write `auto` in lowercase",
            quote(text)
        ));
    }
    let net = cidr(WHAT, text, "10.0.0.5/24")?;
    let q = quote(text);
    if !ADDRESS_PREFIXES.contains(&net.prefix) {
        return Err(format!(
            "{WHAT} {q} has prefix /{}: the prefix must be {}–{} (the link needs room for the machine and the host side)",
            net.prefix,
            ADDRESS_PREFIXES.start(),
            ADDRESS_PREFIXES.end()
        ));
    }
    if let Some(why) = unusable(net.address) {
        return Err(format!("{WHAT} {q} {why}"));
    }
    let example = Ipv4Cidr {
        address: Ipv4Addr::from(u32::from(net.network()).saturating_add(2)),
        prefix: net.prefix,
    };
    if net.address == net.network() {
        return Err(format!(
            "{WHAT} {q} is the network's own address (its host part is all zeros): use an address inside the network, such as `{example}`"
        ));
    }
    if net.address == broadcast(net) {
        return Err(format!(
            "{WHAT} {q} is the network's broadcast address (its host part is all ones): use an address inside the network, such as `{example}`"
        ));
    }
    Ok(Address::Static(net))
}

/// `network.pool`: a network (host bits zero) with a prefix in
/// [`POOL_PREFIXES`].
pub(crate) fn pool(text: &str) -> Result<Ipv4Cidr, String> {
    const WHAT: &str = "network.pool";
    let net = cidr(WHAT, text, "10.231.0.0/16")?;
    let q = quote(text);
    if !POOL_PREFIXES.contains(&net.prefix) {
        return Err(format!(
            "{WHAT} {q} has prefix /{}: the prefix must be {}–{}",
            net.prefix,
            POOL_PREFIXES.start(),
            POOL_PREFIXES.end()
        ));
    }
    if let Some(why) = unusable(net.address) {
        return Err(format!("{WHAT} {q} {why}"));
    }
    if net.address != net.network() {
        return Err(format!(
            "{WHAT} {q} has host bits set: a pool is a network, write `{}/{}`",
            net.network(),
            net.prefix
        ));
    }
    Ok(net)
}

/// `network.gateway`: an IPv4 address without prefix, in no unusable range.
/// Whether it fits the address is checked against the address.
pub(crate) fn gateway(text: &str) -> Result<Ipv4Addr, String> {
    const WHAT: &str = "network.gateway";
    if let Some((addr, _)) = text.split_once('/') {
        return Err(format!(
            "{WHAT} {} is an address without prefix length: write `{addr}`",
            quote(text)
        ));
    }
    let gateway = ipv4(WHAT, text)?;
    if let Some(why) = unusable(gateway) {
        return Err(format!("{WHAT} {} {why}", quote(text)));
    }
    Ok(gateway)
}

/// Why `gateway` cannot be the gateway of the machine at `address`, if it
/// cannot: it must be another host address of the same network.
pub(crate) fn gateway_fits(gateway: Ipv4Addr, address: Ipv4Cidr) -> Result<(), String> {
    let net = format!("{}/{}", address.network(), address.prefix);
    if !address.contains(gateway) {
        return Err(format!(
            "network.gateway `{gateway}` is not in the machine's network {net} (from network.address `{address}`)"
        ));
    }
    if gateway == address.address {
        return Err(format!(
            "network.gateway `{gateway}` is the machine's own address: the gateway is another host on the link (by default the host side, `{}`)",
            Ipv4Addr::from(u32::from(address.network()).saturating_add(1))
        ));
    }
    if gateway == address.network() {
        return Err(format!(
            "network.gateway `{gateway}` is the network's own address ({net}), not a host"
        ));
    }
    if gateway == broadcast(address) {
        return Err(format!(
            "network.gateway `{gateway}` is the broadcast address of {net}, not a host"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        let p = port("udp:53:5353").expect("valid");
        assert_eq!((p.protocol, p.host, p.machine), (Protocol::Udp, 53, 5353));
        assert_eq!(port("8443:443").map(|p| p.protocol), Ok(Protocol::Tcp));
        assert!(port("tcp:65535:1").is_ok());
        for bad in [
            "",
            "80",
            "tcp:0:80",
            "tcp:1:0",
            "tcp:65536:1",
            "tcp:99999999999:1",
            "sctp:1:2",
            "TCP:1:2",
            "tcp:+1:2",
            "tcp: 1:2",
            "tcp:1:2:3",
            ":1:2",
            "tcp::2",
        ] {
            assert!(port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn networking_names() {
        for ok in ["web", "a_b-1", &"z".repeat(12)] {
            assert!(zone(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a.b", "a/b", &"z".repeat(13)] {
            assert!(zone(bad).is_err(), "{bad}");
        }
        for ok in ["br0", "br0.10", "virbr_0", &"b".repeat(15)] {
            assert!(bridge(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "-br", "br/0", "br 0", &"b".repeat(16)] {
            assert!(bridge(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv4_addresses() {
        assert_eq!(ipv4("x", "10.0.0.1"), Ok(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(
            ipv4("x", "255.255.255.255"),
            Ok(Ipv4Addr::new(255, 255, 255, 255))
        );
        for bad in [
            "",
            "10",
            "10.0.0",
            "10.0.0.1.2",
            "10.0.0.256",
            "10.0.0.01",
            "10.0.0.-1",
            "10.0.0.+1",
            "10..0.1",
            "a.b.c.d",
            " 10.0.0.1",
            "10.0.0.1 ",
            "0x0a.0.0.1",
            "1000.0.0.1",
            "::1",
            "10.0.0.١",
        ] {
            assert!(ipv4("x", bad).is_err(), "{bad:?}");
        }
        assert!(ipv4("x", "fe80::1").expect_err("v6").contains("IPv6"));
    }

    #[test]
    fn addresses() {
        let net = |a: [u8; 4], prefix| Ipv4Cidr {
            address: Ipv4Addr::from(a),
            prefix,
        };
        assert_eq!(address("auto"), Ok(Address::Auto));
        assert_eq!(
            address("10.0.0.5/24"),
            Ok(Address::Static(net([10, 0, 0, 5], 24)))
        );
        assert_eq!(
            address("192.168.7.1/30"),
            Ok(Address::Static(net([192, 168, 7, 1], 30)))
        );
        assert_eq!(
            address("10.255.255.254/8"),
            Ok(Address::Static(net([10, 255, 255, 254], 8)))
        );
        for (bad, part) in [
            ("Auto", "lowercase"),
            ("10.0.0.5", "has no prefix length"),
            ("10.0.0.5/", "no valid prefix length"),
            ("10.0.0.5/33", "no valid prefix length"),
            ("10.0.0.5/024", "no valid prefix length"),
            ("10.0.0.5/+4", "no valid prefix length"),
            ("10.0.0.5/24/1", "no valid prefix length"),
            ("10.0.0.5/31", "the prefix must be 8–30"),
            ("10.0.0.5/32", "the prefix must be 8–30"),
            ("10.0.0.5/7", "the prefix must be 8–30"),
            ("10.0.0.0/24", "is the network's own address"),
            ("10.0.0.255/24", "broadcast address"),
            ("10.0.0.4/30", "is the network's own address"),
            ("10.0.0.7/30", "broadcast address"),
            ("127.0.0.5/8", "loopback"),
            ("0.0.0.5/24", "0.0.0.0/8"),
            ("224.0.0.5/24", "multicast"),
            ("250.0.0.5/24", "reserved"),
            ("10.0.0.300/24", "more than 255"),
            ("fd00::5/64", "IPv6"),
        ] {
            let msg = address(bad).expect_err(bad);
            assert!(msg.contains(part), "{bad}: {msg}");
            assert!(msg.starts_with("network.address"), "{bad}: {msg}");
        }
        assert_eq!(
            address("10.0.0.0/24").expect_err("network"),
            "network.address `10.0.0.0/24` is the network's own address (its host part is all zeros): use an address inside the network, such as `10.0.0.2/24`"
        );
    }

    #[test]
    fn pools() {
        assert_eq!(
            pool("10.231.0.0/16"),
            Ok(Ipv4Cidr {
                address: Ipv4Addr::new(10, 231, 0, 0),
                prefix: 16
            })
        );
        assert!(pool("10.0.0.0/8").is_ok() && pool("10.0.0.16/28").is_ok());
        for (bad, part) in [
            ("auto", "not an IPv4 address"),
            ("10.231.0.0", "has no prefix length"),
            (
                "10.231.0.5/16",
                "has host bits set: a pool is a network, write `10.231.0.0/16`",
            ),
            ("10.0.0.0/29", "the prefix must be 8–28"),
            ("10.0.0.0/7", "the prefix must be 8–28"),
            ("127.0.0.0/8", "loopback"),
        ] {
            let msg = pool(bad).expect_err(bad);
            assert!(msg.contains(part), "{bad}: {msg}");
        }
    }

    #[test]
    fn gateways() {
        let at = |a: [u8; 4], prefix| Ipv4Cidr {
            address: Ipv4Addr::from(a),
            prefix,
        };
        assert_eq!(gateway("10.0.0.1"), Ok(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(
            gateway("10.0.0.1/24")
                .expect_err("prefix")
                .contains("write `10.0.0.1`")
        );
        assert!(gateway("127.0.0.1").is_err() && gateway("x").is_err());
        let addr = at([10, 0, 0, 5], 24);
        assert!(gateway_fits(Ipv4Addr::new(10, 0, 0, 1), addr).is_ok());
        assert!(gateway_fits(Ipv4Addr::new(10, 0, 0, 254), addr).is_ok());
        for (gw, part) in [
            ([10, 0, 1, 1], "is not in the machine's network 10.0.0.0/24"),
            ([10, 0, 0, 5], "is the machine's own address"),
            ([10, 0, 0, 0], "is the network's own address"),
            ([10, 0, 0, 255], "broadcast address"),
        ] {
            let msg = gateway_fits(Ipv4Addr::from(gw), addr).expect_err("refused");
            assert!(msg.contains(part), "{gw:?}: {msg}");
        }
    }
}
