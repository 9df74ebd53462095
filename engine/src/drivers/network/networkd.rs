//! The guest's side: a systemd-networkd file for `host0` with the
//! machine's address, its gateway and the host's nameservers. Its name
//! sorts before systemd's own `80-container-host0.network` (which asks for
//! DHCP), and networkd uses the first file that matches a link.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use berth_schema::Ipv4Cidr;

/// Where berth writes the file, inside the root.
pub const PATH: &str = "/etc/systemd/network/10-berth-host0.network";
/// The directory it goes in (shipped by systemd; berth does not create it).
pub const DIR: &str = "/etc/systemd/network";
/// The guest's network manager.
pub const UNIT: &str = "systemd-networkd.service";

/// The file for machine `name` with `address`, `gateway` and `dns`. The
/// gateway is on the link (`GatewayOnLink=yes`): for a plain veth link the
/// host side holds it as a /32, outside any prefix the guest knows.
pub fn render(name: &str, address: Ipv4Cidr, gateway: Ipv4Addr, dns: &[Ipv4Addr]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Written by berth for machine {name:?} (network.address); `berth apply` overwrites changes made here."
    );
    out.push_str("[Match]\nName=host0\n\n[Network]\n");
    let _ = writeln!(out, "Address={address}");
    for server in dns {
        let _ = writeln!(out, "DNS={server}");
    }
    let _ = write!(out, "\n[Route]\nGateway={gateway}\nGatewayOnLink=yes\n");
    out
}

/// The nameservers of a `resolv.conf` a machine can use: IPv4 ones that
/// are not loopback (a resolver on the host's 127.0.0.x is not reachable
/// from the machine's network namespace). Reached through the gateway,
/// which masquerades the machine's traffic only with `nat: true`.
pub fn nameservers(resolv_conf: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    for line in resolv_conf.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        if let Some(addr) = words.next().and_then(|w| w.parse::<Ipv4Addr>().ok())
            && !addr.is_loopback()
            && !addr.is_unspecified()
            && !out.contains(&addr)
        {
            out.push(addr);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::network::address::parse_cidr;

    #[test]
    fn the_file_matches_host0_with_address_route_and_dns() {
        let text = render(
            "web",
            parse_cidr("10.0.0.5/24").unwrap(),
            Ipv4Addr::new(10, 0, 0, 1),
            &[Ipv4Addr::new(192, 0, 2, 53)],
        );
        assert!(
            text.contains(
                "[Match]\nName=host0\n\n[Network]\nAddress=10.0.0.5/24\nDNS=192.0.2.53\n"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("[Route]\nGateway=10.0.0.1\nGatewayOnLink=yes\n"),
            "{text}"
        );
        assert!(PATH.rsplit('/').next().unwrap() < "80-container-host0.network");
    }

    #[test]
    fn loopback_and_ipv6_nameservers_are_left_out() {
        let conf = "# x\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver ::1\n\
                    nameserver 2001:db8::1\nnameserver 192.0.2.1\nnameserver 10.255.255.53\n";
        assert_eq!(
            nameservers(conf),
            [Ipv4Addr::new(10, 255, 255, 53), Ipv4Addr::new(192, 0, 2, 1)]
        );
    }
}
