//! Many hosts from one spec: the top-level `hosts:`, `known_hosts:` and
//! `host_key_checking:`, and each machine's `host:` (or `defaults.host`).
//!
//! A host is reached over the system's `ssh` (`ssh: user@address[:port]`
//! or an ssh_config alias); a host without `ssh:` (`local: {}`) is the
//! machine berth runs on. A machine without `host:` runs on `local`, the
//! implicit default host. [`Fleet`] is the validated result, kept on
//! [`crate::Spec`]; [`host_part`] renders one host's part of a spec file
//! for the agent on that host.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diagnostic::{Diagnostic, SourceText};
use crate::names::{self, quote};
use crate::raw::{RawFile, position};
use crate::spec::Source;

/// The name of the machine berth runs on, the host of every machine
/// without `host:`.
pub const LOCAL_HOST: &str = "local";

/// A host as written under `hosts:`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Host", extend("additionalProperties" = false))]
pub(crate) struct RawHost {
    /// How to reach the host with the system's `ssh`: `user@address`,
    /// `user@address:port` (`[v6]:port` for an IPv6 address) or an alias
    /// from `~/.ssh/config`. Left out: the machine berth runs on.
    #[schemars(
        with = "Option<String>",
        regex(pattern = r"^[A-Za-z0-9_.\[][^\s]*$"),
        length(min = 1, max = 255)
    )]
    pub ssh: Option<Spanned<String>>,
    /// A private key for this host (`ssh -i`, with `IdentitiesOnly=yes`),
    /// relative to the spec file's directory or absolute.
    #[schemars(with = "Option<String>", length(min = 1, max = 4096))]
    pub identity: Option<Spanned<String>>,
    /// Labels, to pick hosts with `--hosts label:NAME`.
    #[schemars(with = "Option<Vec<LabelName>>")]
    pub labels: Option<Vec<Spanned<String>>>,
    /// An installed berth on the host (an absolute path) to use instead of
    /// pushing this one, e.g. when this binary cannot run there.
    #[schemars(
        with = "Option<String>",
        regex(pattern = r"^/[^\s]*$"),
        length(max = 4096)
    )]
    pub berth: Option<Spanned<String>>,
}

/// A host label (`edge`).
#[derive(JsonSchema)]
#[allow(dead_code)] // Only describes the JSON Schema.
struct LabelName(
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9._-]*$"),
        length(min = 1, max = 64)
    )]
    String,
);

/// The JSON Schema of `hosts:`.
pub(crate) fn hosts_schema(generator: &mut SchemaGenerator) -> Schema {
    let host = generator.subschema_for::<Option<RawHost>>();
    json_schema!({
        "description": "The hosts machines run on, by name: each reached over ssh (`ssh:`), or the machine berth runs on (no `ssh:`; `local` is that one by default). Absent: every machine is local.",
        "type": ["object", "null"],
        "propertyNames": {
            "pattern": "^[A-Za-z0-9_][A-Za-z0-9._-]*$",
            "maxLength": 64
        },
        "additionalProperties": host
    })
}

/// How ssh checks a host's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyChecking {
    /// Only hosts whose key is known (`StrictHostKeyChecking=yes`).
    #[default]
    Strict,
    /// Unknown hosts' keys are added; changed keys are refused
    /// (`StrictHostKeyChecking=accept-new`).
    AcceptNew,
}

/// Where ssh connects: `user@address[:port]` split, or an alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// The login user, when given.
    pub user: Option<String>,
    /// The address, name or ssh_config alias (an IPv6 address without brackets).
    pub address: String,
    /// The port, when given.
    pub port: Option<u16>,
}

impl SshTarget {
    /// `user@address` (or `address`): the destination argument for ssh.
    pub fn destination(&self) -> String {
        match &self.user {
            Some(user) => format!("{user}@{}", self.address),
            None => self.address.clone(),
        }
    }
}

impl std::fmt::Display for SshTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        if self.address.contains(':') {
            write!(f, "[{}]", self.address)?;
        } else {
            f.write_str(&self.address)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// One host of the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Its name under `hosts:`.
    pub name: String,
    /// How to reach it; `None`: the machine berth runs on.
    pub ssh: Option<SshTarget>,
    /// A private key (`-i`), resolved against the spec file's directory.
    pub identity: Option<PathBuf>,
    /// Labels for `--hosts label:NAME`.
    pub labels: Vec<String>,
    /// An installed berth on the host to use instead of pushing this one.
    pub berth: Option<String>,
    /// Where the host is declared.
    pub source: Source,
}

impl Host {
    /// The implicit `local` host.
    pub fn local() -> Host {
        Host {
            name: LOCAL_HOST.to_owned(),
            ssh: None,
            identity: None,
            labels: Vec::new(),
            berth: None,
            source: Source::default(),
        }
    }

    /// Whether this is the machine berth runs on.
    pub fn is_local(&self) -> bool {
        self.ssh.is_none()
    }
}

/// The spec's hosts and which machine runs where.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fleet {
    /// Hosts by name, in order; `local` is added when a machine runs there
    /// and the spec does not declare it.
    pub hosts: IndexMap<String, Host>,
    /// `known_hosts:`, resolved against the spec file's directory.
    pub known_hosts: Option<PathBuf>,
    /// `host_key_checking:` (default strict).
    pub host_key_checking: HostKeyChecking,
    /// Each machine's host, by machine name (machines without `host:` are
    /// on [`LOCAL_HOST`]).
    pub placement: IndexMap<String, String>,
}

impl Fleet {
    /// Whether the spec uses any host reached over ssh.
    pub fn has_remote(&self) -> bool {
        self.hosts.values().any(|h| !h.is_local())
    }

    /// The host `machine` runs on ([`LOCAL_HOST`] if not placed).
    pub fn host_of(&self, machine: &str) -> &str {
        self.placement
            .get(machine)
            .map_or(LOCAL_HOST, String::as_str)
    }

    /// The host named `name` (the implicit local one for `local`).
    pub fn host(&self, name: &str) -> Option<Host> {
        match self.hosts.get(name) {
            Some(h) => Some(h.clone()),
            None if name == LOCAL_HOST => Some(Host::local()),
            None => None,
        }
    }

    /// Hosts matching any of `patterns`: a name, a glob (`web-*`, `?`), or
    /// `label:NAME`. A pattern that matches no host is an error naming it.
    pub fn select(&self, patterns: &[String]) -> Result<Vec<String>, String> {
        let mut all: Vec<&str> = self.hosts.keys().map(String::as_str).collect();
        if !all.contains(&LOCAL_HOST) {
            all.push(LOCAL_HOST);
        }
        let mut picked: Vec<String> = Vec::new();
        for pattern in patterns {
            let hits: Vec<&str> = if let Some(label) = pattern.strip_prefix("label:") {
                self.hosts
                    .values()
                    .filter(|h| h.labels.iter().any(|l| l == label))
                    .map(|h| h.name.as_str())
                    .collect()
            } else {
                all.iter()
                    .copied()
                    .filter(|name| glob_match(pattern, name))
                    .collect()
            };
            if hits.is_empty() {
                let mut msg = format!("--hosts {pattern}: no such host");
                if let Some(s) = names::suggest(pattern, &all) {
                    msg.push_str(&format!(" (did you mean `{s}`?)"));
                }
                let known: Vec<String> = all.iter().map(|s| s.to_string()).collect();
                msg.push_str(&format!("; the spec's hosts: {}", known.join(", ")));
                return Err(msg);
            }
            for hit in hits {
                if !picked.iter().any(|p| p == hit) {
                    picked.push(hit.to_owned());
                }
            }
        }
        // In the spec's order.
        picked.sort_by_key(|p| all.iter().position(|a| a == p));
        Ok(picked)
    }

    /// Merges another file's fleet into this one (a spec directory).
    pub(crate) fn merge(&mut self, other: Fleet, src_file: &Path) -> Vec<Diagnostic> {
        let mut diags = Vec::new();
        for (name, host) in other.hosts {
            let implicit = |h: &Host| h.source.file.as_os_str().is_empty();
            if let Some(first) = self.hosts.get(&name) {
                if implicit(&host) {
                    continue;
                }
                if implicit(first) {
                    self.hosts.insert(name, host);
                    continue;
                }
                diags.push(Diagnostic {
                    file: src_file.to_path_buf(),
                    line: host.source.line,
                    column: host.source.column,
                    field: Some(format!("hosts.{name}")),
                    message: format!(
                        "host {} is defined twice: also at {}",
                        quote(&name),
                        first.source
                    ),
                    snippet: None,
                });
            } else {
                self.hosts.insert(name, host);
            }
        }
        if other.known_hosts.is_some() {
            self.known_hosts = other.known_hosts;
        }
        if other.host_key_checking != HostKeyChecking::Strict {
            self.host_key_checking = other.host_key_checking;
        }
        self.placement.extend(other.placement);
        diags
    }
}

/// Whether `name` matches the glob `pattern` (`*` any run, `?` one char).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some(pi);
                mark = ni;
                pi += 1;
            }
            Some(c) if *c == '?' || Some(c) == n.get(ni) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some(s) => {
                    pi = s + 1;
                    mark += 1;
                    ni = mark;
                }
                None => return false,
            },
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|c| *c == '*')
}

/// Splits and checks an `ssh:` value.
pub fn parse_ssh(value: &str) -> Result<SshTarget, String> {
    if value.is_empty() {
        return Err("`ssh` is empty: write user@address[:port] or an ssh_config alias".into());
    }
    if value.starts_with('-') {
        return Err(format!(
            "bad ssh address {}: it must not start with `-`",
            quote(value)
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "bad ssh address {}: no spaces or control characters",
            quote(value)
        ));
    }
    let (user, rest) = match value.rsplit_once('@') {
        Some((user, rest)) => (Some(user), rest),
        None => (None, value),
    };
    if let Some(user) = user
        && (user.is_empty()
            || user.starts_with('-')
            || !user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '$')))
    {
        return Err(format!(
            "bad ssh address {}: the user must be a login name (letters, digits, `_.-`)",
            quote(value)
        ));
    }
    let (address, port) = if let Some(v6) = rest.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return Err(format!("bad ssh address {}: missing `]`", quote(value)));
        };
        match after {
            "" => (addr, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (addr, Some(port)),
                None => {
                    return Err(format!(
                        "bad ssh address {}: expected `:PORT` after `]`",
                        quote(value)
                    ));
                }
            },
        }
    } else {
        match rest.split_once(':') {
            Some((addr, port)) => (addr, Some(port)),
            None => (rest, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                return Err(format!(
                    "bad ssh address {}: the port must be a number from 1 to 65535",
                    quote(value)
                ));
            }
        },
    };
    let v6 = rest.starts_with('[');
    let ok_char =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') || (v6 && c == ':');
    if address.is_empty() || address.starts_with('-') || !address.chars().all(ok_char) {
        return Err(format!(
            "bad ssh address {}: expected user@address[:port] (an IPv6 address in brackets) or an ssh_config alias",
            quote(value)
        ));
    }
    Ok(SshTarget {
        user: user.map(str::to_owned),
        address: address.to_owned(),
        port,
    })
}

/// Checks `hosts:`, `known_hosts:`, `host_key_checking:` and every
/// machine's `host:` of one file. Problems are added to `diags`; a `host:`
/// naming no host of this file goes to `pending` with its host name (in a
/// spec directory another file may declare that host).
pub(crate) fn validate(
    raw: &RawFile,
    src: &SourceText<'_>,
    diags: &mut Vec<Diagnostic>,
    pending: &mut Vec<(String, Diagnostic)>,
) -> Fleet {
    let mut fleet = Fleet::default();
    let mut err = |loc: &serde_saphyr::Location, field: String, message: String| {
        let (line, column) = position(loc);
        diags.push(src.at(line, column, Some(field), message));
    };
    for (name, host) in raw
        .hosts
        .as_ref()
        .map(|h| h.0.as_slice())
        .unwrap_or_default()
    {
        let field = format!("hosts.{}", crate::validate::path_key(&name.value));
        if let Err(e) = names::machine_name(&name.value) {
            err(
                &name.referenced,
                field.clone(),
                e.replace("machine name", "host name"),
            );
            continue;
        }
        let (line, column) = position(&name.referenced);
        let mut out = Host {
            name: name.value.clone(),
            ssh: None,
            identity: None,
            labels: Vec::new(),
            berth: None,
            source: Source {
                file: src.file.to_path_buf(),
                line,
                column,
            },
        };
        let host = host.as_ref();
        if let Some(ssh) = host.and_then(|h| h.ssh.as_ref()) {
            match parse_ssh(&ssh.value) {
                Ok(t) => out.ssh = Some(t),
                Err(e) => err(&ssh.referenced, format!("{field}.ssh"), e),
            }
        }
        if let Some(identity) = host.and_then(|h| h.identity.as_ref()) {
            if out.ssh.is_none() {
                err(
                    &identity.referenced,
                    format!("{field}.identity"),
                    "`identity` needs `ssh`: a host without `ssh` is the machine berth runs on"
                        .into(),
                );
            } else if identity.value.is_empty() || identity.value.contains('\0') {
                err(
                    &identity.referenced,
                    format!("{field}.identity"),
                    "`identity` must be a path to a private key".into(),
                );
            } else {
                out.identity = Some(crate::validate::resolve(
                    src.file,
                    Path::new(&identity.value),
                ));
            }
        }
        for label in host.and_then(|h| h.labels.as_ref()).into_iter().flatten() {
            let ok = !label.value.is_empty()
                && label.value.len() <= 64
                && !label.value.starts_with(['.', '-'])
                && label
                    .value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                err(
                    &label.referenced,
                    format!("{field}.labels"),
                    format!(
                        "bad label {}: 1–64 of letters, digits and `_.-`",
                        quote(&label.value)
                    ),
                );
            } else if !out.labels.contains(&label.value) {
                out.labels.push(label.value.clone());
            }
        }
        if let Some(berth) = host.and_then(|h| h.berth.as_ref()) {
            if !berth.value.starts_with('/')
                || berth
                    .value
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control())
            {
                err(
                    &berth.referenced,
                    format!("{field}.berth"),
                    format!(
                        "`berth` must be an absolute path on the host without spaces, not {}",
                        quote(&berth.value)
                    ),
                );
            } else if out.ssh.is_none() {
                err(
                    &berth.referenced,
                    format!("{field}.berth"),
                    "`berth` needs `ssh`: a host without `ssh` is the machine berth runs on".into(),
                );
            } else {
                out.berth = Some(berth.value.clone());
            }
        }
        fleet.hosts.insert(name.value.clone(), out);
    }
    if let Some(kh) = &raw.known_hosts {
        if kh.value.is_empty() || kh.value.contains('\0') {
            err(
                &kh.referenced,
                "known_hosts".into(),
                "`known_hosts` must be a path".into(),
            );
        } else {
            fleet.known_hosts = Some(crate::validate::resolve(src.file, Path::new(&kh.value)));
        }
    }
    if let Some(hkc) = &raw.host_key_checking {
        match hkc.value.as_str() {
            "strict" => fleet.host_key_checking = HostKeyChecking::Strict,
            "accept-new" => fleet.host_key_checking = HostKeyChecking::AcceptNew,
            other => err(
                &hkc.referenced,
                "host_key_checking".into(),
                format!(
                    "unknown host_key_checking {}: expected `strict` or `accept-new`",
                    quote(other)
                ),
            ),
        }
    }
    let mut known: Vec<String> = fleet.hosts.keys().cloned().collect();
    if !known.iter().any(|k| k == LOCAL_HOST) {
        known.push(LOCAL_HOST.to_owned());
    }
    let known_refs: Vec<&str> = known.iter().map(String::as_str).collect();
    let mut check_host = |h: &Spanned<String>, field: String| -> bool {
        if known_refs.contains(&h.value.as_str()) {
            return true;
        }
        let mut msg = format!(
            "unknown host {}: the hosts are {}",
            quote(&h.value),
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(s) = names::suggest(&h.value, &known_refs) {
            msg.push_str(&format!(" (did you mean `{s}`?)"));
        }
        let (line, column) = position(&h.referenced);
        pending.push((h.value.clone(), src.at(line, column, Some(field), msg)));
        true
    };
    let default_host = raw
        .defaults
        .as_ref()
        .and_then(|d| d.host.as_ref())
        .filter(|h| check_host(h, "defaults.host".into()))
        .map(|h| h.value.clone());
    for (name, machine) in raw
        .machines
        .as_ref()
        .map(|m| m.0.as_slice())
        .unwrap_or_default()
    {
        let host = match &machine.host {
            Some(h) => {
                let field = format!("machines.{}.host", crate::validate::path_key(&name.value));
                check_host(h, field).then(|| h.value.clone())
            }
            None => default_host.clone(),
        };
        let host = host.unwrap_or_else(|| LOCAL_HOST.to_owned());
        if host == LOCAL_HOST && !fleet.hosts.contains_key(LOCAL_HOST) && !fleet.hosts.is_empty() {
            fleet.hosts.insert(LOCAL_HOST.to_owned(), Host::local());
        }
        fleet.placement.insert(name.value.clone(), host);
    }
    fleet
}

/// A YAML value as loaded, mappings kept in order: what [`host_part`]
/// returns, for the engine to adjust before [`Node::to_yaml`].
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `null` or nothing.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer too large for `i64`.
    Uint(u64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in order (keys as text).
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value under `key` of a mapping, mutable.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match self {
            Node::Map(entries) => entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Removes `key` from a mapping.
    pub fn remove(&mut self, key: &str) {
        if let Node::Map(entries) = self {
            entries.retain(|(k, _)| k != key);
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as YAML text: JSON, one key per line (YAML 1.2 reads
    /// JSON), so it loads back as the same values.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out.push('\n');
        out
    }

    fn write(&self, out: &mut String, indent: usize) {
        let pad = |out: &mut String, n: usize| out.push_str(&" ".repeat(n));
        match self {
            Node::Null => out.push_str("null"),
            Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Node::Int(i) => out.push_str(&i.to_string()),
            Node::Uint(u) => out.push_str(&u.to_string()),
            Node::Float(f) => out.push_str(
                &serde_json::Number::from_f64(*f)
                    .map_or_else(|| "null".to_owned(), |n| n.to_string()),
            ),
            Node::Str(s) => out.push_str(&serde_json::Value::String(s.clone()).to_string()),
            Node::Seq(items) if items.is_empty() => out.push_str("[]"),
            Node::Seq(items) => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    pad(out, indent + 2);
                    item.write(out, indent + 2);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                pad(out, indent);
                out.push(']');
            }
            Node::Map(entries) if entries.is_empty() => out.push_str("{}"),
            Node::Map(entries) => {
                out.push_str("{\n");
                for (i, (k, v)) in entries.iter().enumerate() {
                    pad(out, indent + 2);
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push_str(": ");
                    v.write(out, indent + 2);
                    out.push_str(if i + 1 < entries.len() { ",\n" } else { "\n" });
                }
                pad(out, indent);
                out.push('}');
            }
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> serde::de::Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(i64::try_from(v).map_or(Node::Uint(v), Node::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Node, E> {
                Ok(Node::Str(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                // Keys as text, as the spec reads them (`on:` is a name, not a boolean).
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value::<Node>()?;
                    entries.push((key, value));
                }
                Ok(Node::Map(entries))
            }
        }
        deserializer.deserialize_any(NodeVisitor)
    }
}

/// Parses a spec file's text as a [`Node`], under the same budgets as loading.
pub fn parse_node(text: &str) -> Result<Node, String> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(crate::MAX_FILE_SIZE as usize),
            max_events: 200_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_depth: 32,
            max_documents: 1,
            max_nodes: 100_000,
        },
    };
    let value: Option<Node> =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| e.to_string())?;
    Ok(value.unwrap_or(Node::Null))
}

/// The part of a spec file (`text`, already loaded and valid) that host
/// `host` runs: [`host_part_of`] its [`parse_node`].
pub fn host_part(text: &str, fleet: &Fleet, host: &str) -> Result<Node, String> {
    Ok(host_part_of(&parse_node(text)?, fleet, host))
}

/// The part of a spec file (`file`, parsed by [`parse_node`]) that host
/// `host` runs: `hosts:`, `known_hosts:` and `host_key_checking:`
/// dropped, only the machines placed on `host` (by `fleet`), and every
/// `host:` (machines' and `defaults.host`) removed, and only the
/// `moved:` entries whose machine (`to`) is on `host`. [`Node::to_yaml`]
/// writes it. Only what the host keeps is copied.
pub fn host_part_of(file: &Node, fleet: &Fleet, host: &str) -> Node {
    let Node::Map(entries) = file else {
        return Node::Map(Vec::new());
    };
    let mut out = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        match key.as_str() {
            "hosts" | "known_hosts" | "host_key_checking" => {}
            "defaults" => {
                let mut d = value.clone();
                d.remove("host");
                out.push((key.clone(), d));
            }
            "machines" => match value {
                Node::Map(machines) => {
                    let kept = machines
                        .iter()
                        .filter(|(name, _)| fleet.host_of(name) == host)
                        .map(|(name, m)| {
                            let mut m = m.clone();
                            m.remove("host");
                            (name.clone(), m)
                        })
                        .collect();
                    out.push((key.clone(), Node::Map(kept)));
                }
                other => out.push((key.clone(), other.clone())),
            },
            // `moved:` entries go where their machine (`to`) now is.
            "moved" => match value {
                Node::Seq(list) => {
                    let kept: Vec<Node> = list
                        .iter()
                        .filter(|e| {
                            e.get("to")
                                .and_then(Node::as_str)
                                .is_some_and(|to| fleet.host_of(to) == host)
                        })
                        .cloned()
                        .collect();
                    if !kept.is_empty() {
                        out.push((key.clone(), Node::Seq(kept)));
                    }
                }
                other => out.push((key.clone(), other.clone())),
            },
            _ => out.push((key.clone(), value.clone())),
        }
    }
    Node::Map(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_addresses() {
        let t = parse_ssh("root@192.0.2.10").expect("valid");
        assert_eq!(t.user.as_deref(), Some("root"));
        assert_eq!(t.address, "192.0.2.10");
        assert_eq!(t.port, None);
        let t = parse_ssh("admin@beta.lan:2222").expect("valid");
        assert_eq!(t.port, Some(2222));
        assert_eq!(t.to_string(), "admin@beta.lan:2222");
        let t = parse_ssh("[fd00::1]:22").expect("valid");
        assert_eq!(t.address, "fd00::1");
        assert_eq!(parse_ssh("alias").expect("valid").destination(), "alias");
        for bad in [
            "-oProxyCommand=x",
            "a b",
            "root@",
            "@x",
            "x:0",
            "x:99999",
            "x:y",
            "r@-x",
        ] {
            assert!(parse_ssh(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("web-*", "web-1"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(!glob_match("web", "web-1"));
        assert!(glob_match("*-1", "web-1"));
    }
}
