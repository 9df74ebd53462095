//! Outbound NAT for machines with `network.nat: true`, and the port
//! forwards of machines with an address: one nftables table berth owns,
//! `table ip berth`. Its `postrouting` nat chain holds one masquerade rule
//! per machine (`ip saddr ADDRESS masquerade comment "berth:NAME"`); its
//! `prerouting` and `output` nat chains hold one DNAT rule per forwarded
//! port (`comment "berth:NAME port tcp:8080:80 to ADDRESS"`), for traffic
//! from outside and from the host itself (loopback excluded, as with
//! systemd-nspawn's own forwards). Nothing else in the firewall is touched.
//! Rules are removed by their handle; the table goes when its last rule does.
//!
//! berth forwards the ports of a machine whose address it knows (the spec's
//! `network.address`) itself, rather than with systemd-nspawn's `Port=`:
//! nspawn leaves its own tables (`io.systemd.nat`, ip and ip6) behind when
//! its last machine exits, and berth leaves the host's firewall as it found
//! it.
//!
//! NAT needs IPv4 forwarding. When `net.ipv4.ip_forward` is 0, berth sets
//! it to 1 and says so in its table: an empty chain named
//! [`FORWARDING_MARKER`]. The mark is host-wide (every berth state dir on
//! the host shares the table) and goes with the table: when the last NAT
//! rule is removed and the mark is there, berth sets forwarding back to 0.

use std::fs;
use std::path::PathBuf;

use serde_json::Value;

use crate::error::EngineError;
use crate::host::{Cmd, Host};

/// The nftables program.
pub const NFT: &str = "nft";
/// The Debian package that ships it.
pub const PACKAGE: &str = "nftables";
/// The table berth owns (family `ip`).
pub const TABLE: &str = "berth";
/// Its nat chain.
pub const CHAIN: &str = "postrouting";
/// The empty chain that records that berth turned IPv4 forwarding on.
pub const FORWARDING_MARKER: &str = "ip_forward_was_0";

/// The comment that names machine `name`'s masquerade rule.
pub fn comment(name: &str) -> String {
    format!("berth:{name}")
}

/// The comment that names the rules forwarding `port` to machine `name`
/// at `address` (it says all a rule does, so comparing comments compares
/// rules).
pub fn forward_comment(name: &str, port: &berth_schema::Port, address: &str) -> String {
    format!("berth:{name} port {port} to {address}")
}

/// The nat chains of the forwards: (name, hook, priority).
const FORWARD_CHAINS: [(&str, &str, &str); 2] = [
    ("prerouting", "prerouting", "dstnat"),
    ("output", "output", "-100"),
];

/// A rule in berth's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Its handle (what deletes it).
    pub handle: u64,
    /// Its chain.
    pub chain: String,
    /// Its comment (`berth:NAME` for berth's).
    pub comment: Option<String>,
    /// The source address it matches, if it matches one.
    pub saddr: Option<String>,
}

/// berth's table as `nft -j list table ip berth` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Every rule, in order.
    pub rules: Vec<Rule>,
    /// Whether the forwarding mark is there.
    pub forwarding_marker: bool,
}

impl Table {
    /// The masquerade rules of machine `name`.
    pub fn rules_of<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Rule> + 'a {
        let comment = comment(name);
        self.rules
            .iter()
            .filter(move |r| r.comment.as_deref() == Some(comment.as_str()))
    }

    /// The port forwarding rules of machine `name`.
    pub fn forwards_of<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Rule> + 'a {
        let prefix = format!("{} port ", comment(name));
        self.rules
            .iter()
            .filter(move |r| r.comment.as_deref().is_some_and(|c| c.starts_with(&prefix)))
    }
}

/// Parses `nft -j list table ip berth`.
pub fn parse(json: &str) -> Table {
    let value: Value = serde_json::from_str(json).unwrap_or_default();
    let mut table = Table::default();
    for item in value["nftables"].as_array().into_iter().flatten() {
        if item["chain"]["name"] == FORWARDING_MARKER {
            table.forwarding_marker = true;
        }
        let rule = &item["rule"];
        let Some(handle) = rule["handle"].as_u64() else {
            continue;
        };
        let saddr = rule["expr"].as_array().and_then(|exprs| {
            exprs.iter().find_map(|e| {
                let m = &e["match"];
                (m["left"]["payload"]["field"] == "saddr")
                    .then(|| m["right"].as_str().map(str::to_owned))
                    .flatten()
            })
        });
        table.rules.push(Rule {
            handle,
            chain: rule["chain"].as_str().unwrap_or_default().to_owned(),
            comment: rule["comment"].as_str().map(str::to_owned),
            saddr,
        });
    }
    table
}

fn nft(words: &[&str]) -> Cmd {
    let mut argv = vec![NFT.to_owned()];
    argv.extend(words.iter().map(|w| (*w).to_owned()));
    Cmd::new(argv)
}

/// Runs an nft command, failing with its output.
fn run(host: &dyn Host, words: &[&str], why: &str) -> Result<(), EngineError> {
    let cmd = nft(words);
    let out = host.run(&cmd)?;
    if out.success() {
        Ok(())
    } else {
        Err(EngineError::Command {
            what: format!("{} ({why})", cmd.display()),
            output: out.stderr_text(),
            status: out.status,
        })
    }
}

/// berth's table, None when there is none (or no nft).
pub fn list(host: &dyn Host) -> Result<Option<Table>, EngineError> {
    if host.which(NFT).is_none() {
        return Ok(None);
    }
    let out = host.run(&nft(&["-j", "list", "table", "ip", TABLE]).quiet())?;
    Ok(out
        .success()
        .then(|| parse(&String::from_utf8_lossy(&out.stdout))))
}

/// The host's `net.ipv4.ip_forward`.
fn forwarding_file(host: &dyn Host) -> PathBuf {
    host.proc_dir().join("sys/net/ipv4/ip_forward")
}

/// Whether IPv4 forwarding is on (None: unreadable).
pub fn forwarding(host: &dyn Host) -> Option<bool> {
    let text = fs::read_to_string(forwarding_file(host)).ok()?;
    Some(text.trim() != "0")
}

fn set_forwarding(host: &dyn Host, on: bool) -> Result<(), EngineError> {
    let path = forwarding_file(host);
    fs::write(&path, if on { "1\n" } else { "0\n" })
        .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))
}

fn require_nft(host: &dyn Host) -> Result<(), EngineError> {
    if host.which(NFT).is_none() {
        return Err(EngineError::MissingTool {
            tool: NFT.to_owned(),
            package: PACKAGE.to_owned(),
        });
    }
    Ok(())
}

fn delete_rules<'a>(
    host: &dyn Host,
    rules: impl IntoIterator<Item = &'a Rule>,
    why: &str,
) -> Result<(), EngineError> {
    for rule in rules {
        let handle = rule.handle.to_string();
        run(
            host,
            &[
                "delete",
                "rule",
                "ip",
                TABLE,
                &rule.chain,
                "handle",
                &handle,
            ],
            why,
        )?;
    }
    Ok(())
}

/// Forwards `ports` of the host to machine `name` at `address`: its
/// earlier forwards replaced by these (none: all removed, and the table
/// with its last rule).
pub fn set_forwards(
    host: &dyn Host,
    name: &str,
    address: &str,
    ports: &[berth_schema::Port],
) -> Result<(), EngineError> {
    let why = format!("port forwards of machine {name}");
    if ports.is_empty() {
        let Some(table) = list(host)? else {
            return Ok(());
        };
        let ours: Vec<&Rule> = table.forwards_of(name).collect();
        delete_rules(host, ours.iter().copied(), &why)?;
        return drop_if_empty(host, &table, ours.len(), &why);
    }
    require_nft(host)?;
    run(host, &["add", "table", "ip", TABLE], &why)?;
    for (chain, hook, priority) in FORWARD_CHAINS {
        let spec = format!("{{ type nat hook {hook} priority {priority}; policy accept; }}");
        run(host, &["add", "chain", "ip", TABLE, chain, &spec], &why)?;
    }
    let table = list(host)?.unwrap_or_default();
    delete_rules(host, table.forwards_of(name), &why)?;
    for port in ports {
        let quoted = format!("\"{}\"", forward_comment(name, port, address));
        let target = format!("{address}:{}", port.machine);
        let dport = port.host.to_string();
        for (chain, _, _) in FORWARD_CHAINS {
            run(
                host,
                &[
                    "add",
                    "rule",
                    "ip",
                    TABLE,
                    chain,
                    "fib",
                    "daddr",
                    "type",
                    "local",
                    "ip",
                    "daddr",
                    "!=",
                    "127.0.0.0/8",
                    port.protocol.as_str(),
                    "dport",
                    &dport,
                    "dnat",
                    "to",
                    &target,
                    "comment",
                    &quoted,
                ],
                &why,
            )?;
        }
    }
    Ok(())
}

/// Deletes berth's table when `removed` of its rules were all it had, and
/// turns forwarding off again if berth turned it on.
fn drop_if_empty(
    host: &dyn Host,
    table: &Table,
    removed: usize,
    why: &str,
) -> Result<(), EngineError> {
    if table.rules.len() > removed {
        return Ok(());
    }
    run(host, &["delete", "table", "ip", TABLE], why)?;
    if table.forwarding_marker {
        set_forwarding(host, false)?;
    }
    Ok(())
}

/// Masquerades `address`'s outbound traffic for machine `name`: the table
/// and chain made if missing, the machine's earlier rules replaced by one
/// for `address`, forwarding turned on (and marked) if it was off.
pub fn add(host: &dyn Host, name: &str, address: &str) -> Result<(), EngineError> {
    require_nft(host)?;
    let why = format!("NAT for machine {name}");
    run(host, &["add", "table", "ip", TABLE], &why)?;
    run(
        host,
        &[
            "add",
            "chain",
            "ip",
            TABLE,
            CHAIN,
            "{ type nat hook postrouting priority srcnat; policy accept; }",
        ],
        &why,
    )?;
    let table = list(host)?.unwrap_or_default();
    delete_rules(host, table.rules_of(name), &why)?;
    let quoted = format!("\"{}\"", comment(name));
    run(
        host,
        &[
            "add",
            "rule",
            "ip",
            TABLE,
            CHAIN,
            "ip",
            "saddr",
            address,
            "masquerade",
            "comment",
            &quoted,
        ],
        &why,
    )?;
    if forwarding(host) == Some(false) {
        run(
            host,
            &["add", "chain", "ip", TABLE, FORWARDING_MARKER],
            &why,
        )?;
        set_forwarding(host, true)?;
    }
    Ok(())
}

/// Removes machine `name`'s masquerade rules; when none of anyone's rules
/// is left, the table, and forwarding is turned off again if berth turned
/// it on.
pub fn remove(host: &dyn Host, name: &str) -> Result<(), EngineError> {
    match list(host)? {
        Some(table) => remove_from(host, name, &table),
        None => Ok(()),
    }
}

/// [`remove`], with berth's table as listed.
pub fn remove_from(host: &dyn Host, name: &str, table: &Table) -> Result<(), EngineError> {
    let why = format!("removing NAT for machine {name}");
    let ours: Vec<&Rule> = table.rules_of(name).collect();
    delete_rules(host, ours.iter().copied(), &why)?;
    drop_if_empty(host, table, ours.len(), &why)
}

/// Removes every rule of machine `name` (masquerade and forwards), for
/// destroy; the table with the last rule.
pub fn remove_all(host: &dyn Host, name: &str) -> Result<(), EngineError> {
    let Some(table) = list(host)? else {
        return Ok(());
    };
    let why = format!("removing the rules of machine {name}");
    let ours: Vec<&Rule> = table
        .rules_of(name)
        .chain(table.forwards_of(name))
        .collect();
    delete_rules(host, ours.iter().copied(), &why)?;
    drop_if_empty(host, &table, ours.len(), &why)
}

/// Machine `name`'s rules in berth's table: the source addresses its
/// masquerade rules match, and the comments of its port forwards.
pub fn observe(host: &dyn Host, name: &str) -> Result<(Vec<String>, Vec<String>), EngineError> {
    let Some(table) = list(host)? else {
        return Ok((Vec::new(), Vec::new()));
    };
    let masquerades = table
        .rules_of(name)
        .filter_map(|r| r.saddr.clone())
        .collect();
    let mut forwards: Vec<String> = table
        .forwards_of(name)
        .filter_map(|r| r.comment.clone())
        .collect();
    forwards.sort();
    forwards.dedup();
    Ok((masquerades, forwards))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_read_from_nft_json_by_their_comment() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
          {"table": {"family": "ip", "name": "berth", "handle": 1}},
          {"chain": {"family": "ip", "table": "berth", "name": "ip_forward_was_0", "handle": 1}},
          {"chain": {"family": "ip", "table": "berth", "name": "postrouting", "handle": 2, "type": "nat"}},
          {"rule": {"family": "ip", "table": "berth", "chain": "postrouting", "handle": 3,
            "comment": "berth:web", "expr": [{"match": {"op": "==", "left": {"payload":
            {"protocol": "ip", "field": "saddr"}}, "right": "10.0.0.5"}}, {"masquerade": null}]}},
          {"rule": {"family": "ip", "table": "berth", "chain": "postrouting", "handle": 4,
            "comment": "berth:db", "expr": [{"match": {"op": "==", "left": {"payload":
            {"protocol": "ip", "field": "saddr"}}, "right": "10.0.0.6"}}, {"masquerade": null}]}}]}"#;
        let table = parse(json);
        assert!(table.forwarding_marker);
        let web: Vec<&Rule> = table.rules_of("web").collect();
        assert_eq!(web.len(), 1);
        assert_eq!(web[0].handle, 3);
        assert_eq!(web[0].saddr.as_deref(), Some("10.0.0.5"));
        assert_eq!(table.rules_of("we").count(), 0);
        assert_eq!(parse(""), Table::default());
    }
}
