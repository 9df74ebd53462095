//! Writing specs: the YAML format of a spec file as berth prints it
//! (`berth import`), with comments.
//!
//! A [`Document`] is a header comment and machines; a [`MachineDoc`] has one
//! [`Entry`] per machine key, each with optional comments on the lines
//! before it and an optional note at the end of its line. [`Document::render`]
//! and [`MachineDoc::render`] write the text; the format is fixed here so
//! that every spec berth prints reads back, through [`crate::load_str`], as
//! the values that were put in.
//!
//! Strings are written in one of two [`Style`]s: free text (releases,
//! package names, paths, ...) single-quoted, words (`debian`, `veth`,
//! `running`) plain. Either falls back to a double-quoted scalar with
//! escapes when it cannot hold the string: single quotes cannot hold line
//! breaks or control characters, and a plain scalar cannot be anything YAML
//! would read as something else (`yes`, `null`, `123`, `: x`, `# y`, leading
//! spaces, ...).

use std::fmt::Write as _;

use crate::spec::{
    DesiredState, Device, Distro, Limit, NetworkMode, NspawnExtra, PrivateUsers, Resources,
};

/// How a string is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    /// `'single quoted'` (`'` doubled); double-quoted when the string has a
    /// line break or a control character other than tab.
    #[default]
    Quoted,
    /// Bare, when YAML (1.1 or 1.2) reads it back as this same string;
    /// double-quoted otherwise.
    Plain,
}

/// `value` as a YAML scalar in `style`, fit for block and flow context (as
/// a value, a list item or a mapping key).
pub fn scalar(value: &str, style: Style) -> String {
    match style {
        Style::Quoted if single_quotable(value) => format!("'{}'", value.replace('\'', "''")),
        Style::Plain if plain_safe(value) => value.to_owned(),
        _ => double_quoted(value),
    }
}

/// `items` as a flow sequence of `style` scalars: `['a', 'b']`, `[]`.
pub fn flow_list<S: AsRef<str>>(items: &[S], style: Style) -> String {
    let items: Vec<String> = items.iter().map(|s| scalar(s.as_ref(), style)).collect();
    format!("[{}]", items.join(", "))
}

/// Whether single quotes can hold `value`: only [`text_char`]s.
fn single_quotable(value: &str) -> bool {
    value.chars().all(text_char)
}

/// Characters YAML 1.2 allows as they are inside a quoted scalar or a
/// comment: its printable set (tab included) but line breaks and the byte
/// order mark.
fn text_char(c: char) -> bool {
    matches!(c,
        '\t'
        | '\u{20}'..='\u{7E}'
        | '\u{85}'
        | '\u{A0}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FEFE}'
        | '\u{FF00}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// Characters a double-quoted scalar writes as escapes, and a plain one
/// cannot hold: those that are not [`text_char`]s, and the ones YAML 1.1
/// reads as line breaks (U+0085, U+2028, U+2029).
fn needs_escape(c: char) -> bool {
    !text_char(c) || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// YAML 1.1 and 1.2 spellings of null and booleans, which a plain scalar
/// must not be (matched case-sensitively as YAML does, all three casings).
const NOT_STRINGS: &[&str] = &[
    "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "y", "Y",
    "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "=",
    "<<",
];

/// Whether `value` can be written bare and read back as the same string,
/// in block and flow context, by a YAML 1.1 or 1.2 reader.
fn plain_safe(value: &str) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    if NOT_STRINGS.contains(&value) || looks_numeric(value) {
        return false;
    }
    // Indicators that cannot start a plain scalar (`-`, `?`, `:` can, when
    // not followed by a space; refused anyway for simplicity).
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) || first.is_whitespace() {
        return false;
    }
    if value.ends_with(|c: char| c.is_whitespace() || c == ':') {
        return false;
    }
    // Flow indicators, comments and mapping values inside the scalar.
    if value.contains([',', '[', ']', '{', '}'])
        || value.contains(": ")
        || value.contains(" #")
        || value.contains(":\t")
        || value.contains("\t#")
    {
        return false;
    }
    !value.chars().any(|c| needs_escape(c) || c == '\t')
}

/// Whether YAML 1.1 or 1.2 might read `value` as a number, a timestamp or
/// a sexagesimal (`123`, `-1.5`, `0x1F`, `1e3`, `1_000`, `.inf`,
/// `2024-01-01`, `1:20`): anything made only of digits and the characters
/// numbers are written with, holding a digit, or an infinity or NaN.
fn looks_numeric(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if matches!(unsigned, ".inf" | ".nan") {
        return true;
    }
    value.chars().any(|c| c.is_ascii_digit())
        && value
            .chars()
            .all(|c| c.is_ascii_hexdigit() || "+-._:xXoObBtTzZ ".contains(c))
        && value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || "+-.".contains(c))
}

/// `value` as a double-quoted scalar, with escapes for `"`, `\`, control
/// characters and the characters of [`needs_escape`].
fn double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if needs_escape(c) => {
                let code = u32::from(c);
                if code <= 0xff {
                    let _ = write!(out, "\\x{code:02X}");
                } else {
                    let _ = write!(out, "\\u{code:04X}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One key of a mapping: comments on the lines before it, its value (when
/// `None`, only the comments are written, e.g. to say why the key is left
/// out) and a note at the end of its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<T> {
    /// Comment lines written before the key, without the `# `.
    pub comments: Vec<String>,
    /// The value; `None` leaves the key out.
    pub value: Option<T>,
    /// A comment at the end of the key's line, without the `# `.
    pub note: Option<String>,
}

impl<T> Default for Entry<T> {
    fn default() -> Self {
        Entry {
            comments: Vec::new(),
            value: None,
            note: None,
        }
    }
}

impl<T> From<Option<T>> for Entry<T> {
    /// An entry holding the value when there is one, without comments.
    fn from(value: Option<T>) -> Self {
        Entry {
            value,
            ..Entry::default()
        }
    }
}

impl<T> Entry<T> {
    /// An entry holding `value`, without comments.
    pub fn new(value: T) -> Self {
        Entry {
            value: Some(value),
            ..Entry::default()
        }
    }

    /// No value, only the comment `line` (the key is left out).
    pub fn omitted(line: impl Into<String>) -> Self {
        Entry::default().comment(line)
    }

    /// Adds a comment line before the key.
    #[must_use]
    pub fn comment(mut self, line: impl Into<String>) -> Self {
        self.comments.push(line.into());
        self
    }

    /// Sets the note at the end of the key's line.
    #[must_use]
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Whether nothing is written for this entry.
    pub fn is_empty(&self) -> bool {
        self.comments.is_empty() && self.value.is_none()
    }
}

/// A whole spec file: a header comment, then `machines:` and each machine,
/// separated by blank lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    /// Comment lines at the top of the file, without the `# `.
    pub header: Vec<String>,
    /// The machines, in order.
    pub machines: Vec<MachineDoc>,
}

impl Document {
    /// The spec file's text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.header {
            comment_line(&mut out, 0, line);
        }
        out.push_str("machines:");
        if self.machines.is_empty() {
            out.push_str(" {}");
        }
        out.push('\n');
        let blocks: Vec<String> = self.machines.iter().map(MachineDoc::render).collect();
        out.push_str(&blocks.join("\n"));
        out
    }
}

/// One machine, in the order its keys are written. Keys that `berth
/// import` does not write (mirror, launcher, bootstrapper, ...) are not
/// here yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineDoc {
    /// The machine name (its key under `machines:`).
    pub name: String,
    /// `distro:`.
    pub distro: Entry<Distro>,
    /// `release:`.
    pub release: Entry<String>,
    /// `packages:`, a flow list (`[]` when empty).
    pub packages: Entry<Vec<String>>,
    /// `hostname:`.
    pub hostname: Entry<String>,
    /// `units:`.
    pub units: Entry<UnitsDoc>,
    /// `root_password:`.
    pub root_password: Entry<RootPasswordDoc>,
    /// `securetty:`, a flow list.
    pub securetty: Entry<Vec<String>>,
    /// `network:`.
    pub network: Entry<NetworkDoc>,
    /// `binds:`, one flow mapping per line.
    pub binds: Entry<Vec<BindDoc>>,
    /// `private_users:`.
    pub private_users: Entry<PrivateUsers>,
    /// `capabilities:`, a flow list.
    pub capabilities: Entry<Vec<String>>,
    /// `drop_capabilities:`, a flow list.
    pub drop_capabilities: Entry<Vec<String>>,
    /// `environment:`, names and values in order.
    pub environment: Entry<Vec<(String, String)>>,
    /// `resources:`.
    pub resources: Entry<ResourcesDoc>,
    /// `devices:`, one flow mapping per line.
    pub devices: Entry<Vec<DeviceDoc>>,
    /// `nspawn_extra:`.
    pub nspawn_extra: Entry<NspawnExtraDoc>,
    /// `state:`.
    pub state: Entry<DesiredState>,
}

impl MachineDoc {
    /// A machine named `name` with nothing set.
    pub fn new(name: impl Into<String>) -> Self {
        MachineDoc {
            name: name.into(),
            distro: Entry::default(),
            release: Entry::default(),
            packages: Entry::default(),
            hostname: Entry::default(),
            units: Entry::default(),
            root_password: Entry::default(),
            securetty: Entry::default(),
            network: Entry::default(),
            binds: Entry::default(),
            private_users: Entry::default(),
            capabilities: Entry::default(),
            drop_capabilities: Entry::default(),
            environment: Entry::default(),
            resources: Entry::default(),
            devices: Entry::default(),
            nspawn_extra: Entry::default(),
            state: Entry::default(),
        }
    }

    /// The machine's block, to go under `machines:`: `  NAME:` and its keys
    /// indented by four spaces, each line ending with a newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "  {}:", scalar(&self.name, Style::Plain));
        let w = &mut out;
        let i = 4;
        word(w, i, "distro", &self.distro, |d| d.as_str());
        text(w, i, "release", &self.release);
        list(w, i, "packages", &self.packages);
        text(w, i, "hostname", &self.hostname);
        map(w, i, "units", &self.units, |w, u| {
            list(w, i + 2, "enable", &u.enable);
            list(w, i + 2, "disable", &u.disable);
            list(w, i + 2, "mask", &u.mask);
        });
        map(w, i, "root_password", &self.root_password, |w, p| {
            text(w, i + 2, "hash", &p.hash);
            text(w, i + 2, "env", &p.env);
            text(w, i + 2, "file", &p.file);
        });
        list(w, i, "securetty", &self.securetty);
        map(w, i, "network", &self.network, |w, n| {
            word(w, i + 2, "mode", &n.mode, |m| m.as_str());
            text(w, i + 2, "zone", &n.zone);
            text(w, i + 2, "bridge", &n.bridge);
            list(w, i + 2, "ports", &n.ports);
            text(w, i + 2, "address", &n.address);
            text(w, i + 2, "pool", &n.pool);
            text(w, i + 2, "gateway", &n.gateway);
            boolean(w, i + 2, "nat", &n.nat);
            boolean(w, i + 2, "hosts", &n.hosts);
        });
        binds(w, i, &self.binds);
        word(w, i, "private_users", &self.private_users, |p| p.as_str());
        list(w, i, "capabilities", &self.capabilities);
        list(w, i, "drop_capabilities", &self.drop_capabilities);
        environment(w, i, &self.environment);
        map(w, i, "resources", &self.resources, |w, r| {
            number(w, i + 2, "memory_max", &r.memory_max, |l| limit(*l, true));
            number(w, i + 2, "memory_high", &r.memory_high, |l| limit(*l, true));
            number(w, i + 2, "cpu_quota", &r.cpu_quota, |q| format!("{q}%"));
            number(w, i + 2, "cpu_weight", &r.cpu_weight, u64::to_string);
            number(w, i + 2, "io_weight", &r.io_weight, u64::to_string);
            number(w, i + 2, "tasks_max", &r.tasks_max, |l| limit(*l, false));
        });
        devices(w, i, &self.devices);
        map(w, i, "nspawn_extra", &self.nspawn_extra, |w, x| {
            section(w, i + 2, "Exec", &x.exec);
            section(w, i + 2, "Files", &x.files);
            section(w, i + 2, "Network", &x.network);
        });
        word(w, i, "state", &self.state, |s| match s {
            DesiredState::Running => "running",
            DesiredState::Stopped => "stopped",
        });
        out
    }
}

/// `units:`: each list written when set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitsDoc {
    /// `enable:`, a flow list.
    pub enable: Entry<Vec<String>>,
    /// `disable:`, a flow list.
    pub disable: Entry<Vec<String>>,
    /// `mask:`, a flow list.
    pub mask: Entry<Vec<String>>,
}

/// `root_password:`: one of its sources (a valid spec sets exactly one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootPasswordDoc {
    /// `hash:`, a crypt(3) hash.
    pub hash: Entry<String>,
    /// `env:`, a variable name.
    pub env: Entry<String>,
    /// `file:`, a path.
    pub file: Entry<String>,
}

/// `network:`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkDoc {
    /// `mode:`.
    pub mode: Entry<NetworkMode>,
    /// `zone:`.
    pub zone: Entry<String>,
    /// `bridge:`.
    pub bridge: Entry<String>,
    /// `ports:`, a flow list of `PROTO:HOST:MACHINE`.
    pub ports: Entry<Vec<String>>,
    /// `address:`: `ADDRESS/PREFIX` or `auto`.
    pub address: Entry<String>,
    /// `pool:`: `NETWORK/PREFIX`.
    pub pool: Entry<String>,
    /// `gateway:`: an IPv4 address.
    pub gateway: Entry<String>,
    /// `nat:`.
    pub nat: Entry<bool>,
    /// `hosts:`.
    pub hosts: Entry<bool>,
}

/// `resources:`: each limit written when set; memory sizes with the
/// largest of K, M, G, T that divides them (`512M`), `infinity` for no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourcesDoc {
    /// `memory_max:`.
    pub memory_max: Entry<Limit>,
    /// `memory_high:`.
    pub memory_high: Entry<Limit>,
    /// `cpu_quota:`, in percent of one CPU (written `150%`).
    pub cpu_quota: Entry<u32>,
    /// `cpu_weight:`.
    pub cpu_weight: Entry<u64>,
    /// `io_weight:`.
    pub io_weight: Entry<u64>,
    /// `tasks_max:`.
    pub tasks_max: Entry<Limit>,
}

impl From<&Resources> for ResourcesDoc {
    /// The limits that are set, without comments.
    fn from(r: &Resources) -> Self {
        ResourcesDoc {
            memory_max: Entry::from(r.memory_max),
            memory_high: Entry::from(r.memory_high),
            cpu_quota: Entry::from(r.cpu_quota),
            cpu_weight: Entry::from(r.cpu_weight),
            io_weight: Entry::from(r.io_weight),
            tasks_max: Entry::from(r.tasks_max),
        }
    }
}

/// One device, written as a flow mapping: `{path: '/dev/fuse', access: rw}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceDoc {
    /// `path:`.
    pub path: String,
    /// `access:`, left out when `None` (then `rwm`).
    pub access: Option<String>,
}

impl From<&Device> for DeviceDoc {
    /// The device's path, and its access unless it is the default `rwm`.
    fn from(d: &Device) -> Self {
        DeviceDoc {
            path: d.path.to_string_lossy().into_owned(),
            access: (d.access != "rwm").then(|| d.access.clone()),
        }
    }
}

/// `nspawn_extra:`: each section written when set, its keys in order of
/// first appearance; a key given more than once is written once, with its
/// values as a list in their order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NspawnExtraDoc {
    /// `Exec:`, keys and values.
    pub exec: Entry<Vec<(String, String)>>,
    /// `Files:`, keys and values.
    pub files: Entry<Vec<(String, String)>>,
    /// `Network:`, keys and values.
    pub network: Entry<Vec<(String, String)>>,
}

impl From<&NspawnExtra> for NspawnExtraDoc {
    /// The sections that have keys, without comments.
    fn from(x: &NspawnExtra) -> Self {
        let section =
            |pairs: &Vec<(String, String)>| Entry::from((!pairs.is_empty()).then(|| pairs.clone()));
        NspawnExtraDoc {
            exec: section(&x.exec),
            files: section(&x.files),
            network: section(&x.network),
        }
    }
}

/// One bind, written as a flow mapping: `{host: 'H', machine: 'M', read_only: true}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindDoc {
    /// `host:`.
    pub host: String,
    /// `machine:`, left out when `None` (then the host path).
    pub machine: Option<String>,
    /// `read_only: true` when set; left out when false.
    pub read_only: bool,
}

/// A comment line at `indent`: `# TEXT`. Line breaks in `text` start new
/// comment lines; other characters that cannot be in a comment are written
/// as Rust escapes (`\u{1b}`).
fn comment_line(out: &mut String, indent: usize, text: &str) {
    for line in text.split('\n') {
        let line: String = line
            .chars()
            .map(|c| {
                if text_char(c) {
                    c.to_string()
                } else {
                    c.escape_unicode().to_string()
                }
            })
            .collect();
        if line.is_empty() {
            let _ = writeln!(out, "{:indent$}#", "");
        } else {
            let _ = writeln!(out, "{:indent$}# {line}", "");
        }
    }
}

/// Writes an entry: its comments, then (when set) `KEY:` followed by what
/// `value` returns (`" x"`, or `""` for a nested block) and the note, then
/// the nested lines of `nested`.
fn entry<T>(
    out: &mut String,
    indent: usize,
    key: &str,
    e: &Entry<T>,
    inline: impl FnOnce(&T) -> String,
    nested: impl FnOnce(&mut String, &T),
) {
    for line in &e.comments {
        comment_line(out, indent, line);
    }
    let Some(v) = &e.value else {
        return;
    };
    let _ = write!(out, "{:indent$}{key}:{}", "", inline(v));
    if let Some(note) = &e.note {
        let note: String = note
            .chars()
            .map(|c| if text_char(c) { c } else { ' ' })
            .collect();
        let _ = write!(out, "   # {note}");
    }
    out.push('\n');
    nested(out, v);
}

/// `KEY: 'text'`.
fn text(out: &mut String, indent: usize, key: &str, e: &Entry<String>) {
    entry(
        out,
        indent,
        key,
        e,
        |v| format!(" {}", scalar(v, Style::Quoted)),
        |_, _| {},
    );
}

/// `KEY: word`, for enum values.
fn word<T>(
    out: &mut String,
    indent: usize,
    key: &str,
    e: &Entry<T>,
    spell: impl Fn(&T) -> &'static str,
) {
    entry(
        out,
        indent,
        key,
        e,
        |v| format!(" {}", scalar(spell(v), Style::Plain)),
        |_, _| {},
    );
}

/// `KEY: true` or `KEY: false`.
fn boolean(out: &mut String, indent: usize, key: &str, e: &Entry<bool>) {
    entry(out, indent, key, e, |v| format!(" {v}"), |_, _| {});
}

/// `KEY: text`, the text made by `spell`: bare when it is a whole number
/// (YAML reads an integer; berth takes its digits), else plain when YAML
/// reads it back as that same text (`150%`), double-quoted otherwise.
fn number<T>(
    out: &mut String,
    indent: usize,
    key: &str,
    e: &Entry<T>,
    spell: impl Fn(&T) -> String,
) {
    entry(
        out,
        indent,
        key,
        e,
        |v| {
            let text = spell(v);
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                format!(" {text}")
            } else {
                format!(" {}", scalar(&text, Style::Plain))
            }
        },
        |_, _| {},
    );
}

/// A limit as the spec writes it: `infinity`, or the number; a memory size
/// (`bytes`) with the largest of T, G, M, K that divides it exactly.
fn limit(l: Limit, bytes: bool) -> String {
    let Limit::Value(n) = l else {
        return "infinity".to_owned();
    };
    if bytes {
        for (suffix, shift) in [('T', 40), ('G', 30), ('M', 20), ('K', 10)] {
            if n >= 1 << shift && n % (1 << shift) == 0 {
                return format!("{}{suffix}", n >> shift);
            }
        }
    }
    n.to_string()
}

/// `KEY: ['a', 'b']`.
fn list(out: &mut String, indent: usize, key: &str, e: &Entry<Vec<String>>) {
    entry(
        out,
        indent,
        key,
        e,
        |v| format!(" {}", flow_list(v, Style::Quoted)),
        |_, _| {},
    );
}

/// `KEY:` and the nested lines `body` writes; `KEY: {}` when it writes none.
fn map<T>(
    out: &mut String,
    indent: usize,
    key: &str,
    e: &Entry<T>,
    body: impl Fn(&mut String, &T),
) {
    let mut nested = String::new();
    if let Some(v) = &e.value {
        body(&mut nested, v);
    }
    let empty = nested.is_empty();
    entry(
        out,
        indent,
        key,
        e,
        |_| {
            if empty {
                " {}".to_owned()
            } else {
                String::new()
            }
        },
        |out, _| out.push_str(&nested),
    );
}

/// `binds:` and one `- {host: ..., machine: ..., read_only: true}` per bind.
fn binds(out: &mut String, indent: usize, e: &Entry<Vec<BindDoc>>) {
    let empty = e.value.as_ref().is_some_and(Vec::is_empty);
    entry(
        out,
        indent,
        "binds",
        e,
        |_| {
            if empty {
                " []".to_owned()
            } else {
                String::new()
            }
        },
        |out, binds| {
            for b in binds {
                let _ = write!(
                    out,
                    "{:w$}- {{host: {}",
                    "",
                    scalar(&b.host, Style::Quoted),
                    w = indent + 2
                );
                if let Some(machine) = &b.machine {
                    let _ = write!(out, ", machine: {}", scalar(machine, Style::Quoted));
                }
                if b.read_only {
                    out.push_str(", read_only: true");
                }
                out.push_str("}\n");
            }
        },
    );
}

/// `environment:` and one `'NAME': 'value'` line per variable.
fn environment(out: &mut String, indent: usize, e: &Entry<Vec<(String, String)>>) {
    let empty = e.value.as_ref().is_some_and(Vec::is_empty);
    entry(
        out,
        indent,
        "environment",
        e,
        |_| {
            if empty {
                " {}".to_owned()
            } else {
                String::new()
            }
        },
        |out, vars| {
            for (name, value) in vars {
                let _ = writeln!(
                    out,
                    "{:w$}{}: {}",
                    "",
                    scalar(name, Style::Quoted),
                    scalar(value, Style::Quoted),
                    w = indent + 2
                );
            }
        },
    );
}

/// `devices:` and one `- {path: ..., access: ...}` per device.
fn devices(out: &mut String, indent: usize, e: &Entry<Vec<DeviceDoc>>) {
    let empty = e.value.as_ref().is_some_and(Vec::is_empty);
    entry(
        out,
        indent,
        "devices",
        e,
        |_| {
            if empty {
                " []".to_owned()
            } else {
                String::new()
            }
        },
        |out, devices| {
            for d in devices {
                let _ = write!(
                    out,
                    "{:w$}- {{path: {}",
                    "",
                    scalar(&d.path, Style::Quoted),
                    w = indent + 2
                );
                if let Some(access) = &d.access {
                    let _ = write!(out, ", access: {}", scalar(access, Style::Plain));
                }
                out.push_str("}\n");
            }
        },
    );
}

/// One `nspawn_extra` section: `NAME:` and one `KEY: 'value'` (or
/// `KEY: ['a', 'b']` for a key given more than once) per key, in order of
/// first appearance; `NAME: {}` when empty.
fn section(out: &mut String, indent: usize, name: &str, e: &Entry<Vec<(String, String)>>) {
    let mut keys: Vec<(&str, Vec<&str>)> = Vec::new();
    if let Some(pairs) = &e.value {
        for (key, value) in pairs {
            match keys.iter_mut().find(|(k, _)| k == key) {
                Some((_, values)) => values.push(value),
                None => keys.push((key, vec![value])),
            }
        }
    }
    entry(
        out,
        indent,
        name,
        e,
        |_| {
            if keys.is_empty() {
                " {}".to_owned()
            } else {
                String::new()
            }
        },
        |out, _| {
            for (key, values) in &keys {
                let value = match values.as_slice() {
                    [one] => scalar(one, Style::Quoted),
                    many => flow_list(many, Style::Quoted),
                };
                let _ = writeln!(
                    out,
                    "{:w$}{}: {value}",
                    "",
                    scalar(key, Style::Plain),
                    w = indent + 2
                );
            }
        },
    );
}
