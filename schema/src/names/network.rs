//! `network:`: zone and bridge names, port forwards.

use std::fmt::Write as _;

use crate::spec::{Port, Protocol};

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
}
