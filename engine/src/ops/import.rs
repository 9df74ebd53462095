//! `berth import`: read machines made by hand (pacstrap/debootstrap +
//! chroot, as in the article) and write the spec that describes them, so
//! that after `berth adopt` a plan on that spec changes nothing.
//!
//! Everything is read natively and confined to the root ([`Root`]): the
//! distribution from `/etc/os-release`, the explicitly installed packages
//! from the package database, the unit states that differ from the
//! distribution's presets, the hostname, `/etc/securetty`, root's password
//! hash, and the machine's `.nspawn` file mapped back to spec fields. Unit
//! enablement is asked of `systemctl --root is-enabled` (one call), as the
//! planner does.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;

use berth_schema::yaml::{BindDoc, Entry, MachineDoc, NetworkDoc, RootPasswordDoc, UnitsDoc};
use berth_schema::{DesiredState, Distro, Machine, NetworkMode, PrivateUsers};

use crate::confined::{FileKind, Root};
use crate::drivers::launcher;
use crate::drivers::shadow;
use crate::drivers::units::{self, UnitState};
use crate::drivers::{network, settings};
use crate::error::EngineError;
use crate::host::Host;
use crate::observe;

/// Directories systemd loads unit files from, in a root.
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// Directories of preset files, highest priority first.
const PRESET_DIRS: &[&str] = &[
    "/etc/systemd/system-preset",
    "/run/systemd/system-preset",
    "/usr/local/lib/systemd/system-preset",
    "/usr/lib/systemd/system-preset",
    "/lib/systemd/system-preset",
];

/// Unit types that `systemctl enable` makes sense for.
const ENABLEABLE: &[&str] = &[
    "service",
    "socket",
    "target",
    "timer",
    "path",
    "mount",
    "automount",
    "swap",
];

/// Whether `text` matches the shell-style glob `pattern`: `*` (any run of
/// characters), `?` (one character), `[abc]`, `[a-z]`, `[!abc]`; anything
/// else matches itself. The same matching systemd preset files use
/// (fnmatch without flags), and that berth uses for NAME patterns.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => class_match(&p, pi, t[ti]),
            Some(c) if *c == t[ti] => Some(pi + 1),
            _ => None,
        };
        match (step, star) {
            (Some(next), _) => {
                pi = next;
                ti += 1;
            }
            (None, Some((sp, st))) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Matches `c` against the bracket class starting at `p[start]` (`[`);
/// returns the index after the class when it matches. An unclosed `[`
/// matches a literal `[`.
fn class_match(p: &[char], start: usize, c: char) -> Option<usize> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let first = i;
    let mut matched = false;
    while i < p.len() && (p[i] != ']' || i == first) {
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|e| *e != ']') {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    if i >= p.len() {
        return (c == '[').then_some(start + 1);
    }
    (matched != negate).then_some(i + 1)
}

/// A preset rule's verdict for a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// `enable PATTERN` (also the verdict when no rule matches).
    Enable,
    /// `disable PATTERN`.
    Disable,
}

/// The preset rules of a root, in the order systemd applies them (files
/// sorted by name across the preset directories, a file in a higher
/// directory hiding one of the same name below it; first match wins).
#[derive(Debug, Clone, Default)]
pub struct Presets {
    rules: Vec<(Preset, String)>,
}

impl Presets {
    /// Reads the preset files of `root`.
    pub fn read(root: &Root) -> Result<Presets, EngineError> {
        let mut files: BTreeMap<String, String> = BTreeMap::new();
        for dir in PRESET_DIRS {
            for name in root.list_dir(dir)?.unwrap_or_default() {
                if name.ends_with(".preset") && !files.contains_key(&name) {
                    files.insert(name.clone(), format!("{dir}/{name}"));
                }
            }
        }
        let mut text = String::new();
        for path in files.values() {
            text.push_str(&root.read_string(path)?.unwrap_or_default());
            text.push('\n');
        }
        Ok(Presets::parse(&text))
    }

    /// Parses preset rules (`enable PATTERN`, `disable PATTERN`; other
    /// verbs, comments and blank lines are ignored).
    pub fn parse(text: &str) -> Presets {
        let rules = text
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let verdict = match words.next()? {
                    "enable" => Preset::Enable,
                    "disable" => Preset::Disable,
                    _ => return None,
                };
                Some((verdict, words.next()?.to_owned()))
            })
            .collect();
        Presets { rules }
    }

    /// The verdict for `unit`: the first matching rule, else enable (systemd's default).
    pub fn verdict(&self, unit: &str) -> Preset {
        self.rules
            .iter()
            .find(|(_, pattern)| glob_match(pattern, unit))
            .map(|(verdict, _)| *verdict)
            .unwrap_or(Preset::Enable)
    }
}

/// The spec fields a `.nspawn` file maps back to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SettingsFields {
    /// `VirtualEthernet=`.
    pub veth: bool,
    /// `Private=`.
    pub private: bool,
    /// `Zone=`.
    pub zone: Option<String>,
    /// `Bridge=`.
    pub bridge: Option<String>,
    /// `Port=` values, normalised to `PROTO:HOST:MACHINE`.
    pub ports: Vec<String>,
    /// `Bind=`/`BindReadOnly=`: (host, machine, read_only).
    pub binds: Vec<(String, String, bool)>,
    /// `PrivateUsers=`.
    pub private_users: Option<PrivateUsers>,
    /// `Capability=`.
    pub capabilities: Vec<String>,
    /// `DropCapability=`.
    pub drop_capabilities: Vec<String>,
    /// `Environment=`.
    pub environment: Vec<(String, String)>,
    /// Lines berth has no spec field for (kept out of the spec, reported).
    pub unknown: Vec<String>,
}

/// Maps a `.nspawn` file back to spec fields. `unit_defaults`: the machine
/// runs under `systemd-nspawn@.service` (machinectl), whose command line
/// has `--network-veth -U`, so a key the file leaves out means veth and
/// `PrivateUsers=pick` there.
pub fn settings_fields(text: Option<&str>, unit_defaults: bool) -> SettingsFields {
    let mut out = SettingsFields {
        veth: unit_defaults,
        private: unit_defaults,
        private_users: unit_defaults.then_some(PrivateUsers::Pick),
        ..SettingsFields::default()
    };
    let mut private_set = false;
    let mut section = String::new();
    for raw in text.unwrap_or("").lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            section = line[1..line.len() - 1].to_owned();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            out.unknown.push(line.to_owned());
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        let words = || value.split_whitespace().map(str::to_owned);
        match (section.as_str(), key) {
            ("Exec", "Boot") if yes(value) == Some(true) => {}
            ("Exec", "PrivateUsers") => match value {
                "pick" | "yes" | "true" | "1" => out.private_users = Some(PrivateUsers::Pick),
                "no" | "false" | "0" => out.private_users = Some(PrivateUsers::No),
                "identity" => out.private_users = Some(PrivateUsers::Identity),
                _ => out.unknown.push(line.to_owned()),
            },
            ("Exec", "Capability") => out.capabilities.extend(words()),
            ("Exec", "DropCapability") => out.drop_capabilities.extend(words()),
            ("Exec", "Environment") => match value.split_once('=') {
                Some((k, v)) => out.environment.push((k.to_owned(), v.to_owned())),
                None => out.unknown.push(line.to_owned()),
            },
            ("Files", "PrivateUsersOwnership") if value == "auto" => {}
            ("Files", "Bind" | "BindReadOnly") => {
                let mut parts = value.splitn(3, ':');
                let host = parts.next().unwrap_or("").to_owned();
                let inside = parts.next().filter(|s| !s.is_empty()).unwrap_or(&host);
                let inside = inside.to_owned();
                if parts.next().is_some() || host.is_empty() {
                    // Mount options (idmap, norbind, ...) have no spec field.
                    out.unknown.push(line.to_owned());
                } else {
                    out.binds.push((host, inside, key == "BindReadOnly"));
                }
            }
            ("Network", "Private") => match yes(value) {
                Some(b) => {
                    out.private = b;
                    private_set = true;
                }
                None => out.unknown.push(line.to_owned()),
            },
            ("Network", "VirtualEthernet") => match yes(value) {
                Some(b) => out.veth = b,
                None => out.unknown.push(line.to_owned()),
            },
            ("Network", "Zone") => out.zone = Some(value.to_owned()),
            ("Network", "Bridge") => out.bridge = Some(value.to_owned()),
            ("Network", "Port") => match normalise_port(value) {
                Some(port) => out.ports.push(port),
                None => out.unknown.push(line.to_owned()),
            },
            _ => out.unknown.push(format!("[{section}] {line}")),
        }
    }
    if out.veth || out.zone.is_some() || out.bridge.is_some() {
        out.veth = true;
        out.private = true;
    } else if !private_set && !unit_defaults {
        out.private = false;
    }
    out
}

/// systemd's boolean spellings.
fn yes(value: &str) -> Option<bool> {
    match value {
        "yes" | "true" | "on" | "1" => Some(true),
        "no" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// `Port=` as `PROTO:HOST:MACHINE` (`80` and `8080:80` mean TCP).
fn normalise_port(value: &str) -> Option<String> {
    let parts: Vec<&str> = value.split(':').collect();
    let (proto, host, inside) = match parts.as_slice() {
        [p] => ("tcp", *p, *p),
        [p @ ("tcp" | "udp"), h] => (*p, *h, *h),
        [h, m] => ("tcp", *h, *m),
        [p, h, m] => (*p, *h, *m),
        _ => return None,
    };
    let ok = |s: &str| s.parse::<u16>().is_ok_and(|n| n > 0);
    (matches!(proto, "tcp" | "udp") && ok(host) && ok(inside))
        .then(|| format!("{proto}:{host}:{inside}"))
}

/// `machine` with its settings fields replaced by `fields`.
fn with_fields(machine: &Machine, fields: &SettingsFields) -> Machine {
    let mut m = machine.clone();
    m.network.mode = Some(if fields.veth {
        NetworkMode::Veth
    } else if fields.private {
        NetworkMode::Private
    } else {
        NetworkMode::Host
    });
    m.network.zone = fields.zone.clone();
    m.network.bridge = fields.bridge.clone();
    m.binds = fields
        .binds
        .iter()
        .map(|(host, inside, read_only)| berth_schema::Bind {
            host: host.into(),
            machine: inside.into(),
            read_only: *read_only,
        })
        .collect();
    m.private_users = fields.private_users;
    m.capabilities = fields.capabilities.clone();
    m.drop_capabilities = fields.drop_capabilities.clone();
    m.environment = fields.environment.clone();
    m
}

/// For `berth adopt`: when the machine's existing `.nspawn` file (or its
/// absence) means exactly what the spec's settings mean, replace it with
/// the file berth writes, so the first plan has nothing to rewrite. A file
/// with anything the spec cannot say is left alone (plan then shows the
/// rewrite). Ports are compared as written.
pub(crate) fn adopt_settings(host: &dyn Host, machine: &Machine) -> Result<bool, EngineError> {
    let path = host.paths().settings_file(&machine.name);
    let existing = match fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(EngineError::io(format!("reading {}", path.display()), e)),
    };
    let mode = match launcher::resolve(machine.launcher, host.facts()) {
        Ok(kind) => network::mode_on(machine, kind, host.facts()),
        Err(_) => return Ok(false),
    };
    let wanted = settings::render(machine, mode);
    if existing.as_deref() == Some(wanted.as_str())
        || existing
            .as_deref()
            .is_some_and(|t| t.starts_with(settings::HEADER))
    {
        return Ok(false);
    }
    let fields = settings_fields(existing.as_deref(), host.booted_with_systemd());
    if !fields.unknown.is_empty() {
        return Ok(false);
    }
    let mut spec_ports: Vec<String> = machine
        .network
        .ports
        .iter()
        .map(|p| p.to_string())
        .collect();
    let mut file_ports = fields.ports.clone();
    spec_ports.sort();
    file_ports.sort();
    if spec_ports != file_ports || settings::render(&with_fields(machine, &fields), mode) != wanted
    {
        return Ok(false);
    }
    crate::host::state::write_file_atomic(&path, wanted.as_bytes())
        .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))?;
    Ok(true)
}

/// Whether a value is imported at all (no control characters): a hostname,
/// a securetty entry, a hash or a settings line with one is left out.
fn printable(value: &str) -> bool {
    !value.chars().any(char::is_control)
}

/// The explicitly installed packages of a dpkg root: installed, not
/// `Priority: required|important`, not `Essential: yes`, not marked
/// automatically installed in apt's `extended_states`, and not a
/// dependency of another installed package (what the bootstrapper unpacked
/// with dpkg itself carries no apt marks). Leaving a package out never
/// changes a plan: berth only installs what is missing.
pub fn dpkg_explicit(status: &str, extended_states: &str) -> Vec<String> {
    let mut auto = BTreeSet::new();
    for stanza in extended_states.split("\n\n") {
        let mut name = None;
        let mut is_auto = false;
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("Package:") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Auto-Installed:") {
                is_auto = v.trim() == "1";
            }
        }
        if let (Some(name), true) = (name, is_auto) {
            auto.insert(name.to_owned());
        }
    }
    let mut out = BTreeSet::new();
    let mut depended = BTreeSet::new();
    for stanza in status.split("\n\n") {
        let (mut name, mut installed, mut base) = (None, false, false);
        let mut depends = Vec::new();
        for line in stanza.lines() {
            if let Some(v) = line
                .strip_prefix("Depends:")
                .or_else(|| line.strip_prefix("Pre-Depends:"))
            {
                depends.extend(v.split([',', '|']).filter_map(|d| {
                    let d = d.split_whitespace().next()?;
                    Some(d.split(':').next().unwrap_or(d).to_owned())
                }));
            }
            if let Some(v) = line.strip_prefix("Package:") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Status:") {
                installed = v.trim().ends_with(" installed");
            } else if let Some(v) = line.strip_prefix("Priority:") {
                base |= matches!(v.trim(), "required" | "important");
            } else if let Some(v) = line.strip_prefix("Essential:") {
                base |= v.trim() == "yes";
            }
        }
        if installed {
            depended.extend(depends);
        }
        if let Some(name) = name.filter(|n| installed && !base && !auto.contains(*n)) {
            out.insert(name.to_owned());
        }
    }
    out.difference(&depended).cloned().collect()
}

/// The explicitly installed packages of a pacman root: `desc` files
/// without `%REASON%` 1 (installed as a dependency).
fn pacman_explicit(root: &Root) -> Result<Vec<String>, EngineError> {
    const LOCAL_DB: &str = "/var/lib/pacman/local";
    let mut out = BTreeSet::new();
    for entry in root.list_dir(LOCAL_DB)?.unwrap_or_default() {
        let dir = format!("{LOCAL_DB}/{entry}");
        if root.kind(&dir)? != Some(FileKind::Dir) {
            continue;
        }
        let Some(desc) = root.read_string(&format!("{dir}/desc"))? else {
            continue;
        };
        let mut name = None;
        let mut reason = "0";
        let mut lines = desc.lines();
        while let Some(line) = lines.next() {
            match line.trim() {
                "%NAME%" => name = lines.next().map(str::trim),
                "%REASON%" => reason = lines.next().map(str::trim).unwrap_or("0"),
                _ => {}
            }
        }
        if let Some(name) = name.filter(|_| reason != "1") {
            out.insert(name.to_owned());
        }
    }
    Ok(out.into_iter().collect())
}

/// Unit files of a root that enable/disable/mask can act on: unit files in
/// the unit directories (templates and aliases left out) and masks in
/// `/etc/systemd/system`.
fn unit_names(root: &Root) -> Result<Vec<String>, EngineError> {
    let mut names = BTreeSet::new();
    for dir in UNIT_DIRS {
        for name in root.list_dir(dir)?.unwrap_or_default() {
            let Some((stem, suffix)) = name.rsplit_once('.') else {
                continue;
            };
            if stem.is_empty() || name.contains('@') || !ENABLEABLE.contains(&suffix) {
                continue;
            }
            let path = format!("{dir}/{name}");
            let keep = match root.kind(&path)? {
                Some(FileKind::File) => true,
                // A mask; vendor symlinks are aliases.
                Some(FileKind::Symlink) => {
                    *dir == "/etc/systemd/system"
                        && root
                            .read_link(&path)?
                            .is_some_and(|t| t.as_os_str() == "/dev/null")
                }
                _ => false,
            };
            if keep && printable(&name) {
                names.insert(name);
            }
        }
    }
    Ok(names.into_iter().collect())
}

/// Units to enable, disable and mask.
type UnitChanges = (Vec<String>, Vec<String>, Vec<String>);

/// The units the spec must name so that a plan changes nothing: masked
/// units, and enabled/disabled units whose state differs from the preset.
fn unit_changes(root: &Root, root_path: &std::path::Path) -> Result<UnitChanges, EngineError> {
    let names = unit_names(root)?;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let states = units::states(root_path, &refs)?;
    let presets = Presets::read(root)?;
    let (mut enable, mut disable, mut mask) = (Vec::new(), Vec::new(), Vec::new());
    for (name, state) in names.iter().zip(states) {
        match (state, presets.verdict(name)) {
            (UnitState::Masked, _) => mask.push(name.clone()),
            (UnitState::Enabled, Preset::Disable) => enable.push(name.clone()),
            (UnitState::Disabled, Preset::Enable) => disable.push(name.clone()),
            _ => {}
        }
    }
    Ok((enable, disable, mask))
}

/// The spec of machine `name`, read from its root under the machines dir
/// and its `.nspawn` file: a YAML block to put under `machines:` (indented
/// by two spaces, starting with `  NAME:`), with comments where something
/// could not be expressed.
pub fn import(host: &dyn Host, name: &str) -> Result<String, EngineError> {
    import_doc(host, name).map(|doc| doc.render())
}

/// What [`import`] prints, as a document: [`MachineDoc::render`] writes it.
pub fn import_doc(host: &dyn Host, name: &str) -> Result<MachineDoc, EngineError> {
    let refuse = |message: String| EngineError::Refused {
        machine: name.to_owned(),
        message,
    };
    if !berth_schema::is_valid_machine_name(name) {
        return Err(refuse(format!("{name:?} is not a valid machine name")));
    }
    let paths = &host.paths();
    let root = crate::ops::existing::open(paths, name)?;
    let os_release = crate::ops::existing::OsRelease::read(&root)?;
    let field = |key: &str| os_release.field(key);
    let id = field("ID").unwrap_or_default();
    let (distro, release) = match id.as_str() {
        "debian" => (
            Distro::Debian,
            field("VERSION_CODENAME").filter(|v| !v.is_empty()),
        ),
        "ubuntu" => (
            Distro::Ubuntu,
            field("VERSION_CODENAME").filter(|v| !v.is_empty()),
        ),
        "fedora" => (Distro::Fedora, field("VERSION_ID")),
        "arch" => (Distro::Arch, None),
        other => {
            return Err(refuse(format!(
                "its os-release says ID={other:?}; berth knows debian, ubuntu, arch and fedora"
            )));
        }
    };
    if distro != Distro::Arch && release.is_none() {
        return Err(refuse(format!(
            "its os-release names no release (VERSION_CODENAME/VERSION_ID) for {id}"
        )));
    }

    let mut doc = MachineDoc::new(name);
    doc.distro = Entry::new(distro);
    if let Some(release) = release {
        doc.release = Entry::new(release);
    }

    // Packages.
    doc.packages = match distro {
        Distro::Debian | Distro::Ubuntu => {
            let status = root
                .read_string("/var/lib/dpkg/status")?
                .unwrap_or_default();
            let extended = root
                .read_string("/var/lib/apt/extended_states")?
                .unwrap_or_default();
            Entry::new(dpkg_explicit(&status, &extended)).comment(
                "installed explicitly (not automatically, not Priority required/important)",
            )
        }
        Distro::Arch => Entry::new(pacman_explicit(&root)?)
            .comment("installed explicitly (pacman: not --asdeps)"),
        Distro::Fedora => Entry::new(Vec::new())
            .comment("rpm keeps no native record of explicit installs berth can read; add the")
            .comment("packages you rely on (berth never removes packages it did not install)"),
    };

    // Hostname.
    doc.hostname = match root.read_string("/etc/hostname")? {
        Some(text) => {
            let hostname = text.lines().next().unwrap_or("").trim().to_owned();
            if printable(&hostname) && !hostname.is_empty() {
                Entry::new(hostname)
            } else {
                Entry::omitted("/etc/hostname is empty: berth will write the machine name")
            }
        }
        None => Entry::omitted("no /etc/hostname: berth will write the machine name"),
    };

    // Units.
    let (enable, disable, mask) = unit_changes(&root, root.path())?;
    if !(enable.is_empty() && disable.is_empty() && mask.is_empty()) {
        let set = |list: Vec<String>| Entry::from((!list.is_empty()).then_some(list));
        doc.units = Entry::new(UnitsDoc {
            enable: set(enable),
            disable: set(disable),
            mask: set(mask),
        })
        .note("where the root differs from the distribution's presets");
    }

    // Root password.
    let shadow = root.read_string("/etc/shadow")?;
    doc.root_password = match shadow.as_deref().and_then(shadow::root_hash) {
        Some(hash)
            if hash.starts_with('$')
                && hash.split('$').filter(|s| !s.is_empty()).count() >= 2
                && printable(hash)
                && !hash.contains(['\'', ' ', ':']) =>
        {
            Entry::new(RootPasswordDoc {
                hash: Entry::new(hash.to_owned()).note("from /etc/shadow"),
                ..RootPasswordDoc::default()
            })
        }
        Some("") => {
            Entry::omitted("root_password: omitted: root has an empty password in /etc/shadow")
        }
        Some(hash) if hash.starts_with(['!', '*']) => {
            Entry::omitted("root_password: omitted: root's password is locked in /etc/shadow")
        }
        Some(_) => Entry::omitted(
            "root_password: omitted: root's /etc/shadow entry is not a crypt(3) hash",
        ),
        None => Entry::omitted("root_password: omitted: no root entry in /etc/shadow"),
    };

    // securetty.
    if let Some(text) = root.read_string("/etc/securetty")? {
        let entries: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && printable(l))
            .map(str::to_owned)
            .collect();
        if !entries.is_empty() {
            doc.securetty = Entry::new(entries);
        }
    }

    // .nspawn settings.
    let settings_path = paths.settings_file(name);
    let settings_text = match fs::read_to_string(&settings_path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(EngineError::io(
                format!("reading {}", settings_path.display()),
                e,
            ));
        }
    };
    let fields = settings_fields(settings_text.as_deref(), host.booted_with_systemd());
    set_settings(&mut doc, fields, settings_text.is_some());

    // Running state.
    let run = observe::run_state(host, name, None);
    let state = if run.is_running() {
        DesiredState::Running
    } else {
        DesiredState::Stopped
    };
    doc.state.value = Some(state);
    Ok(doc)
}

/// The `.nspawn` file's fields in `doc`; with `from_file`, the lines berth
/// has no field for as comments before `state:`.
fn set_settings(doc: &mut MachineDoc, f: SettingsFields, from_file: bool) {
    let mode = if f.zone.is_some() || f.bridge.is_some() {
        None
    } else if f.veth {
        Some(NetworkMode::Veth)
    } else if f.private {
        Some(NetworkMode::Private)
    } else if from_file {
        // The host's network is no longer every launcher's default.
        Some(NetworkMode::Host)
    } else {
        None
    };
    if mode.is_some() || f.zone.is_some() || f.bridge.is_some() || !f.ports.is_empty() {
        doc.network = Entry::new(NetworkDoc {
            mode: Entry::from(mode),
            zone: Entry::from(f.zone),
            bridge: Entry::from(f.bridge),
            ports: Entry::from((!f.ports.is_empty()).then_some(f.ports)),
            ..NetworkDoc::default()
        });
    }
    if !f.binds.is_empty() {
        let binds = f
            .binds
            .into_iter()
            .map(|(host, inside, read_only)| BindDoc {
                host,
                machine: Some(inside),
                read_only,
            })
            .collect();
        doc.binds = Entry::new(binds);
    }
    if let Some(users) = f.private_users.filter(|u| *u != PrivateUsers::No) {
        doc.private_users = Entry::new(users);
    }
    if !f.capabilities.is_empty() {
        doc.capabilities = Entry::new(f.capabilities);
    }
    if !f.drop_capabilities.is_empty() {
        doc.drop_capabilities = Entry::new(f.drop_capabilities);
    }
    if !f.environment.is_empty() {
        doc.environment = Entry::new(f.environment);
    }
    if from_file && !f.unknown.is_empty() {
        doc.state.comments.push(
            "not imported from the .nspawn file (no spec field; `berth apply` would drop them):"
                .to_owned(),
        );
        for line in &f.unknown {
            if printable(line) {
                doc.state.comments.push(format!("  {line}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, t) in [
            ("web-*", "web-1"),
            ("web-*", "web-"),
            ("db?", "db1"),
            ("*", ""),
            ("a*b*c", "axxbyyc"),
            ("[ab]x", "bx"),
            ("[a-c]x", "cx"),
            ("[!a]x", "bx"),
            (
                "systemd-journal-gatewayd.*",
                "systemd-journal-gatewayd.socket",
            ),
        ] {
            assert!(glob_match(p, t), "{p} should match {t}");
        }
        for (p, t) in [
            ("web-*", "db"),
            ("db?", "db"),
            ("db?", "db12"),
            ("[!a]x", "ax"),
            ("a*b", "ac"),
        ] {
            assert!(!glob_match(p, t), "{p} should not match {t}");
        }
    }

    #[test]
    fn presets_first_match_wins_default_enable() {
        let p = Presets::parse("# c\nenable a.service\ndisable a.service\ndisable *\n");
        assert_eq!(p.verdict("a.service"), Preset::Enable);
        assert_eq!(p.verdict("b.service"), Preset::Disable);
        assert_eq!(Presets::parse("").verdict("x.service"), Preset::Enable);
    }

    #[test]
    fn dpkg_explicit_leaves_out_auto_and_base_packages() {
        let status = "Package: less\nStatus: install ok installed\nPriority: optional\n\n\
                      Package: libc6\nStatus: install ok installed\nPriority: required\n\n\
                      Package: apt\nStatus: install ok installed\nPriority: important\n\n\
                      Package: libfoo\nStatus: install ok installed\nPriority: optional\n\n\
                      Package: libbar\nStatus: install ok installed\nPriority: optional\n\n\
                      Package: tool\nStatus: install ok installed\nDepends: libbar:any (>= 1) | x\n\n\
                      Package: gone\nStatus: deinstall ok config-files\nPriority: optional\n";
        let ext = "Package: libfoo\nArchitecture: amd64\nAuto-Installed: 1\n";
        assert_eq!(dpkg_explicit(status, ext), ["less", "tool"]);
    }

    #[test]
    fn nspawn_files_map_back() {
        let text = "[Exec]\nBoot=yes\nPrivateUsers=pick\nCapability=CAP_NET_ADMIN\nEnvironment=LANG=C.UTF-8\n\
                    [Files]\nBindReadOnly=/srv/www:/var/www\nBind=/srv/data\n\
                    [Network]\nVirtualEthernet=yes\nPort=8080:80\nPort=udp:53:53\nHostname=x\n";
        let f = settings_fields(Some(text), false);
        assert!(f.veth && f.private);
        assert_eq!(f.ports, ["tcp:8080:80", "udp:53:53"]);
        assert_eq!(
            f.binds,
            [
                ("/srv/www".into(), "/var/www".into(), true),
                ("/srv/data".into(), "/srv/data".into(), false)
            ]
        );
        assert_eq!(f.private_users, Some(PrivateUsers::Pick));
        assert_eq!(f.unknown, ["[Network] Hostname=x"]);
        let none = settings_fields(None, false);
        assert!(!none.veth && !none.private && none.private_users.is_none());
        let unit = settings_fields(None, true);
        assert!(unit.veth && unit.private_users == Some(PrivateUsers::Pick));
    }

    #[test]
    fn settings_are_written_as_before() {
        // The bytes `berth import` printed before the schema owned the format.
        let text = "[Exec]\nBoot=yes\nPrivateUsers=identity\nCapability=CAP_NET_ADMIN CAP_SYS_TIME\n\
                    DropCapability=CAP_SYS_MODULE\nEnvironment=LANG=C.UTF-8\n\
                    Environment=QUOTE=it's \"x\" # y\nEnvironment=EMPTY=\nEnvironment=T=a\tb\n\
                    Hostname=x\n[Files]\nBindReadOnly=/srv/www:/var/www\nBind=/srv/data\n\
                    Bind=/srv/it's:/mnt/\u{fc}\nBind=/a:/b:idmap\n[Network]\nZone=web\nPort=8080:80\n\
                    Port=udp:53:53\nPort=bogus\n[Weird]\nX=\u{1b}\n";
        let mut doc = MachineDoc::new("web");
        set_settings(&mut doc, settings_fields(Some(text), false), true);
        doc.state.value = Some(DesiredState::Stopped);
        assert_eq!(
            doc.render(),
            "  web:
    network:
      zone: 'web'
      ports: ['tcp:8080:80', 'udp:53:53']
    binds:
      - {host: '/srv/www', machine: '/var/www', read_only: true}
      - {host: '/srv/data', machine: '/srv/data'}
      - {host: '/srv/it''s', machine: '/mnt/\u{fc}'}
    private_users: identity
    capabilities: ['CAP_NET_ADMIN', 'CAP_SYS_TIME']
    drop_capabilities: ['CAP_SYS_MODULE']
    environment:
      'LANG': 'C.UTF-8'
      'QUOTE': 'it''s \"x\" # y'
      'EMPTY': ''
      'T': 'a\tb'
    # not imported from the .nspawn file (no spec field; `berth apply` would drop them):
    #   [Exec] Hostname=x
    #   Bind=/a:/b:idmap
    #   Port=bogus
    state: stopped
"
        );
        // Without a file, its unknown lines are not mentioned; nothing else is set.
        let mut doc = MachineDoc::new("web");
        set_settings(&mut doc, settings_fields(None, false), false);
        assert_eq!(doc.render(), "  web:\n");
    }
}
