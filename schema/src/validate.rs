//! From the file as written ([`RawFile`]) to validated [`Machine`]s: every
//! check, defaults merged, unit names suffixed, lists deduplicated, `file:`
//! secrets resolved against the spec file's directory.
//!
//! All problems are collected; nothing stops at the first one. Values that
//! come from `defaults:` are checked once, and their errors point there
//! (`defaults.launcher`).

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use serde_saphyr::{Location, Spanned};

use crate::diagnostic::{Diagnostic, SourceText};
use crate::names::{self, quote};
use crate::raw::{RawFile, RawMachine, RawRootPassword, RawUnits, SecretValue, position};
use crate::spec::{DesiredState, Distro, Launcher, Machine, RootPassword, Source, Units};

/// Keys under `root_password:` that would hold a plaintext password.
const PLAINTEXT_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pw",
    "plain",
    "plaintext",
    "cleartext",
    "clear",
    "value",
    "secret",
];

/// Most diagnostics kept for one file; the rest are only counted.
const MAX_DIAGNOSTICS: usize = 100;

/// The message for any plaintext password.
const PLAINTEXT: &str = "plaintext passwords are not allowed in a spec: use hash:, env: or file:";

/// The sources `root_password` accepts.
const SOURCES: &[&str] = &["hash", "env", "file"];

/// A field after checking one mapping (`defaults` or a machine).
enum Field<T> {
    /// Not written.
    Absent,
    /// Written, but wrong (already reported).
    Invalid,
    /// Written and valid.
    Valid(T),
}

impl<T> Field<T> {
    /// This field if written, else `fallback` (the defaults' field).
    fn or(self, fallback: Field<T>) -> Field<T> {
        match self {
            Field::Absent => fallback,
            other => other,
        }
    }
}

/// Every field of one mapping, checked.
struct Checked {
    distro: Field<Distro>,
    release: Field<String>,
    mirror: Field<String>,
    packages: Field<Vec<String>>,
    hostname: Field<String>,
    units: Field<Units>,
    root_password: Field<RootPassword>,
    securetty: Field<Vec<String>>,
    launcher: Field<Launcher>,
    state: Field<DesiredState>,
}

impl Checked {
    /// Machine fields first, the defaults' where the machine has none.
    fn over(self, defaults: &Checked) -> Checked {
        Checked {
            distro: self.distro.or(copy(&defaults.distro)),
            release: self.release.or(clone(&defaults.release)),
            mirror: self.mirror.or(clone(&defaults.mirror)),
            packages: self.packages.or(clone(&defaults.packages)),
            hostname: self.hostname.or(clone(&defaults.hostname)),
            units: self.units.or(clone(&defaults.units)),
            root_password: self.root_password.or(clone(&defaults.root_password)),
            securetty: self.securetty.or(clone(&defaults.securetty)),
            launcher: self.launcher.or(copy(&defaults.launcher)),
            state: self.state.or(copy(&defaults.state)),
        }
    }
}

fn copy<T: Copy>(f: &Field<T>) -> Field<T> {
    match f {
        Field::Absent => Field::Absent,
        Field::Invalid => Field::Invalid,
        Field::Valid(v) => Field::Valid(*v),
    }
}

fn clone<T: Clone>(f: &Field<T>) -> Field<T> {
    match f {
        Field::Absent => Field::Absent,
        Field::Invalid => Field::Invalid,
        Field::Valid(v) => Field::Valid(v.clone()),
    }
}

/// A machine name as a field path segment, control characters escaped.
pub(crate) fn path_key(name: &str) -> String {
    name.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// Checks one file's raw spec; returns its machines in order, or every problem found.
pub(crate) fn validate(
    raw: RawFile,
    src: &SourceText<'_>,
) -> Result<Vec<Machine>, Vec<Diagnostic>> {
    let mut v = Validator {
        src,
        diags: Vec::new(),
        dropped: 0,
    };
    let defaults = match &raw.defaults {
        Some(d) => v.fields(d, "defaults"),
        None => v.fields(&RawMachine::default(), "defaults"),
    };
    let mut machines = Vec::new();
    for (name, raw_machine) in raw.machines.map(|m| m.0).unwrap_or_default() {
        if let Some(machine) = v.machine(&name, &raw_machine, &defaults) {
            machines.push(machine);
        }
    }
    if v.diags.is_empty() {
        Ok(machines)
    } else {
        // Source order; a stable sort keeps same-place diagnostics in check order.
        v.diags
            .sort_by_key(|d| (d.line.unwrap_or(usize::MAX), d.column.unwrap_or(0)));
        if v.dropped > 0 {
            v.diags.push(Diagnostic::file_level(
                src.file,
                format!("{} more problems not shown", v.dropped),
            ));
        }
        Err(v.diags)
    }
}

/// Collects diagnostics while checking.
struct Validator<'a, 'b> {
    src: &'a SourceText<'b>,
    diags: Vec<Diagnostic>,
    /// Diagnostics beyond [`MAX_DIAGNOSTICS`], counted but not kept.
    dropped: usize,
}

impl Validator<'_, '_> {
    /// Reports a problem at `loc`.
    fn error(&mut self, loc: &Location, field: String, message: impl Into<String>) {
        let (line, column) = position(loc);
        let d = self.src.at(line, column, Some(field), message);
        self.push(d);
    }

    /// How many problems were found so far, kept or not.
    fn count(&self) -> usize {
        self.diags.len() + self.dropped
    }

    /// Keeps a diagnostic, up to [`MAX_DIAGNOSTICS`]; beyond, only counts it.
    fn push(&mut self, d: Diagnostic) {
        if self.diags.len() < MAX_DIAGNOSTICS {
            self.diags.push(d);
        } else {
            self.dropped += 1;
        }
    }

    /// Reports a problem about a value that may be a password.
    fn secret_error(&mut self, loc: &Location, field: String, message: impl Into<String>) {
        let (line, column) = position(loc);
        let d = self.src.at_sensitive(line, column, Some(field), message);
        self.push(d);
    }

    /// Checks one machine and merges the defaults under it.
    fn machine(
        &mut self,
        name: &Spanned<String>,
        raw: &RawMachine,
        defaults: &Checked,
    ) -> Option<Machine> {
        let before = self.count();
        let key = path_key(&name.value);
        let prefix = format!("machines.{key}");
        let name_ok = match names::machine_name(&name.value) {
            Ok(()) => true,
            Err(msg) => {
                self.error(&name.referenced, prefix.clone(), msg);
                false
            }
        };
        let own = self.fields(raw, &prefix);
        let merged = own.over(defaults);

        let hostname = match merged.hostname {
            Field::Valid(h) => Some(h),
            Field::Invalid => None,
            Field::Absent if !name_ok => None,
            Field::Absent => match names::hostname(&name.value) {
                Ok(()) => Some(name.value.clone()),
                Err(why) => {
                    self.error(
                        &name.referenced,
                        format!("{prefix}.hostname"),
                        format!(
                            "the machine name is not a valid hostname, so set hostname: explicitly; {why}"
                        ),
                    );
                    None
                }
            },
        };
        let distro = match merged.distro {
            Field::Valid(d) => Some(d),
            Field::Invalid => None,
            Field::Absent => {
                self.error(
                    &name.referenced,
                    format!("{prefix}.distro"),
                    format!(
                        "distro is missing: set it on the machine or under defaults: (one of {})",
                        names::one_of(DISTROS_NAMES)
                    ),
                );
                None
            }
        };
        let release = match merged.release {
            Field::Valid(r) => Some(r),
            Field::Invalid => return None,
            Field::Absent => {
                if let Some(d @ (Distro::Debian | Distro::Ubuntu | Distro::Fedora)) = distro {
                    let example = match d {
                        Distro::Debian => "bookworm",
                        Distro::Ubuntu => "noble",
                        _ => "40",
                    };
                    self.error(
                        &name.referenced,
                        format!("{prefix}.release"),
                        format!("release is missing: distro `{d}` needs one (e.g. `{example}`)"),
                    );
                }
                None
            }
        };

        if self.count() > before {
            return None;
        }
        let (line, column) = position(&name.referenced);
        Some(Machine {
            name: name.value.clone(),
            source: Source {
                file: self.src.file.to_path_buf(),
                line,
                column,
            },
            distro: distro?,
            release,
            mirror: optional(merged.mirror)?,
            packages: valid_or(merged.packages, Vec::new())?,
            hostname: hostname?,
            units: valid_or(merged.units, Units::default())?,
            root_password: optional(merged.root_password)?,
            securetty: valid_or(merged.securetty, Vec::new())?,
            launcher: valid_or(merged.launcher, Launcher::default())?,
            state: valid_or(merged.state, DesiredState::default())?,
            bootstrapper: None,
            bootstrap_options: Default::default(),
            pacman_conf: None,
            repos: Vec::new(),
            autostart: None,
            network: Default::default(),
            binds: Vec::new(),
            private_users: None,
            capabilities: Vec::new(),
            drop_capabilities: Vec::new(),
            environment: Vec::new(),
        })
    }

    /// Checks every field written in one mapping (a machine or `defaults`).
    fn fields(&mut self, raw: &RawMachine, prefix: &str) -> Checked {
        let distro = self.choice(
            raw.distro.as_ref(),
            &format!("{prefix}.distro"),
            "distro",
            DISTROS,
        );
        let release = self.scalar(
            raw.release.as_ref(),
            &format!("{prefix}.release"),
            names::release,
        );
        let mirror = self.scalar(
            raw.mirror.as_ref(),
            &format!("{prefix}.mirror"),
            names::mirror,
        );
        let hostname = self.scalar(
            raw.hostname.as_ref(),
            &format!("{prefix}.hostname"),
            names::hostname,
        );
        let packages = match &raw.packages {
            None => Field::Absent,
            Some(items) => self.list(
                items,
                &format!("{prefix}.packages"),
                names::package,
                str::to_owned,
            ),
        };
        let securetty = match &raw.securetty {
            None => Field::Absent,
            Some(items) => self.list(
                items,
                &format!("{prefix}.securetty"),
                names::securetty,
                str::to_owned,
            ),
        };
        let units = match &raw.units {
            None => Field::Absent,
            Some(u) => self.units(u, &format!("{prefix}.units")),
        };
        let root_password = match &raw.root_password {
            None => Field::Absent,
            Some(rp) => self.root_password(rp, &format!("{prefix}.root_password")),
        };
        let launcher = self.choice(
            raw.launcher.as_ref(),
            &format!("{prefix}.launcher"),
            "launcher",
            LAUNCHERS,
        );
        let state = self.choice(
            raw.state.as_ref(),
            &format!("{prefix}.state"),
            "state",
            STATES,
        );
        Checked {
            distro,
            release,
            mirror,
            packages,
            hostname,
            units,
            root_password,
            securetty,
            launcher,
            state,
        }
    }

    /// A string checked by `check`.
    fn scalar(
        &mut self,
        value: Option<&Spanned<String>>,
        field: &str,
        check: fn(&str) -> Result<(), String>,
    ) -> Field<String> {
        let Some(value) = value else {
            return Field::Absent;
        };
        match check(&value.value) {
            Ok(()) => Field::Valid(value.value.clone()),
            Err(msg) => {
                self.error(&value.referenced, field.to_owned(), msg);
                Field::Invalid
            }
        }
    }

    /// One of a fixed set of spellings.
    fn choice<T: Copy>(
        &mut self,
        value: Option<&Spanned<String>>,
        field: &str,
        what: &str,
        choices: &[(&str, T)],
    ) -> Field<T> {
        let Some(value) = value else {
            return Field::Absent;
        };
        if let Some((_, v)) = choices.iter().find(|(s, _)| *s == value.value) {
            return Field::Valid(*v);
        }
        let spellings: Vec<&str> = choices.iter().map(|(s, _)| *s).collect();
        let mut msg = format!(
            "unknown {what} {}: expected {}",
            quote(&value.value),
            names::one_of(&spellings)
        );
        if let Some(s) = names::suggest(&value.value.to_ascii_lowercase(), &spellings) {
            msg.push_str(&format!(" (did you mean `{s}`?)"));
        }
        self.error(&value.referenced, field.to_owned(), msg);
        Field::Invalid
    }

    /// A list of strings, each checked by `check` and turned into its final
    /// form by `normalize`; duplicates dropped, first occurrence kept.
    fn list(
        &mut self,
        items: &[Spanned<String>],
        field: &str,
        check: fn(&str) -> Result<(), String>,
        normalize: fn(&str) -> String,
    ) -> Field<Vec<String>> {
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        let mut seen: HashSet<String> = HashSet::with_capacity(items.len());
        let mut bad = false;
        for (i, item) in items.iter().enumerate() {
            match check(&item.value) {
                Ok(()) => {
                    let v = normalize(&item.value);
                    if seen.insert(v.clone()) {
                        out.push(v);
                    }
                }
                Err(msg) => {
                    self.error(&item.referenced, format!("{field}[{i}]"), msg);
                    bad = true;
                }
            }
        }
        if bad {
            Field::Invalid
        } else {
            Field::Valid(out)
        }
    }

    /// `units:`: three lists of unit names, and no unit in two of them.
    fn units(&mut self, raw: &RawUnits, field: &str) -> Field<Units> {
        let lists = [
            ("enable", raw.enable.as_deref().unwrap_or_default()),
            ("disable", raw.disable.as_deref().unwrap_or_default()),
            ("mask", raw.mask.as_deref().unwrap_or_default()),
        ];
        let mut checked = Vec::new();
        let mut bad = false;
        for (list, items) in lists {
            match self.list(
                items,
                &format!("{field}.{list}"),
                names::unit,
                names::unit_with_suffix,
            ) {
                Field::Valid(v) => checked.push(v),
                _ => {
                    bad = true;
                    checked.push(Vec::new());
                }
            }
        }
        // A unit in two lists: report it where it appears the second time.
        let mut seen: HashMap<String, &str> = HashMap::new();
        let mut reported: HashSet<(String, &str)> = HashSet::new();
        for (list, items) in lists {
            for (i, item) in items.iter().enumerate() {
                if names::unit(&item.value).is_err() {
                    continue;
                }
                let unit = names::unit_with_suffix(&item.value);
                match seen.get(&unit) {
                    None => {
                        seen.insert(unit, list);
                    }
                    Some(&first) if first != list => {
                        if reported.insert((unit.clone(), list)) {
                            self.error(
                                &item.referenced,
                                format!("{field}.{list}[{i}]"),
                                format!(
                                    "unit {} is in both units.{first} and units.{list}",
                                    quote(&unit)
                                ),
                            );
                        }
                        bad = true;
                    }
                    Some(_) => {}
                }
            }
        }
        if bad {
            return Field::Invalid;
        }
        let mut it = checked.into_iter();
        Field::Valid(Units {
            enable: it.next().unwrap_or_default(),
            disable: it.next().unwrap_or_default(),
            mask: it.next().unwrap_or_default(),
        })
    }

    /// `root_password:`: exactly one of hash, env, file; never a plaintext value.
    /// No message or snippet here ever shows a value.
    fn root_password(
        &mut self,
        raw: &Spanned<RawRootPassword>,
        field: &str,
    ) -> Field<RootPassword> {
        let entries = match &raw.value {
            RawRootPassword::Scalar => {
                self.secret_error(&raw.referenced, field.to_owned(), PLAINTEXT);
                return Field::Invalid;
            }
            RawRootPassword::Sequence => {
                self.secret_error(
                    &raw.referenced,
                    field.to_owned(),
                    "root_password must be a mapping with exactly one of hash:, env: or file:",
                );
                return Field::Invalid;
            }
            RawRootPassword::Map(entries) => entries,
        };
        let before = self.count();
        let mut sources = Vec::new();
        for (key, value) in entries {
            let k = key.value.as_str();
            if SOURCES.contains(&k) {
                sources.push((key, value));
            } else if PLAINTEXT_KEYS.contains(&k.to_ascii_lowercase().as_str()) {
                self.secret_error(
                    &value.referenced,
                    format!("{field}.{}", path_key(k)),
                    PLAINTEXT,
                );
            } else {
                let mut msg = format!(
                    "unknown field {} in root_password: expected exactly one of {}",
                    quote(k),
                    names::one_of(SOURCES)
                );
                if let Some(s) = names::suggest(k, SOURCES) {
                    msg.push_str(&format!(" (did you mean `{s}`?)"));
                }
                self.secret_error(&value.referenced, format!("{field}.{}", path_key(k)), msg);
            }
        }
        if self.count() > before {
            return Field::Invalid;
        }
        let (key, value) = match sources.as_slice() {
            [] => {
                self.secret_error(
                    &raw.referenced,
                    field.to_owned(),
                    "root_password needs exactly one of hash:, env: or file:",
                );
                return Field::Invalid;
            }
            [one] => *one,
            [_, second, ..] => {
                let names: Vec<&str> = sources.iter().map(|(k, _)| k.value.as_str()).collect();
                self.secret_error(
                    &second.1.referenced,
                    field.to_owned(),
                    format!(
                        "root_password has several sources ({}): use exactly one",
                        names.join(", ")
                    ),
                );
                return Field::Invalid;
            }
        };
        let sub = format!("{field}.{}", key.value);
        let SecretValue::Text(text) = &value.value else {
            self.secret_error(
                &value.referenced,
                sub,
                format!("root_password.{} must be a string", key.value),
            );
            return Field::Invalid;
        };
        let checked = match key.value.as_str() {
            "hash" => names::crypt_hash(text).map(|()| RootPassword::Hash(text.clone())),
            "env" => names::env_var(text).map(|()| RootPassword::Env(text.clone())),
            _ => names::secret_file(text)
                .map(|()| RootPassword::File(resolve(self.src.file, Path::new(text)))),
        };
        match checked {
            Ok(rp) => Field::Valid(rp),
            Err(msg) => {
                self.secret_error(&value.referenced, sub, msg);
                Field::Invalid
            }
        }
    }
}

/// The value of a field that is valid or absent (`None` if it was invalid).
fn valid_or<T>(field: Field<T>, default: T) -> Option<T> {
    match field {
        Field::Valid(v) => Some(v),
        Field::Absent => Some(default),
        Field::Invalid => None,
    }
}

/// The value of an optional field: `Some(None)` if absent, `None` if invalid.
fn optional<T>(field: Field<T>) -> Option<Option<T>> {
    match field {
        Field::Valid(v) => Some(Some(v)),
        Field::Absent => Some(None),
        Field::Invalid => None,
    }
}

/// `path` resolved against the directory of `spec_file`, `.` components dropped.
fn resolve(spec_file: &Path, path: &Path) -> PathBuf {
    let base = if path.is_absolute() {
        PathBuf::new()
    } else {
        spec_file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    };
    let mut out = base;
    for c in path.components() {
        if c != Component::CurDir {
            out.push(c);
        }
    }
    out
}

/// Distro spellings.
const DISTROS: &[(&str, Distro)] = &[
    ("debian", Distro::Debian),
    ("ubuntu", Distro::Ubuntu),
    ("arch", Distro::Arch),
    ("fedora", Distro::Fedora),
];

/// Distro spellings only, for messages.
const DISTROS_NAMES: &[&str] = &["debian", "ubuntu", "arch", "fedora"];

/// Launcher spellings.
const LAUNCHERS: &[(&str, Launcher)] = &[
    ("auto", Launcher::Auto),
    ("machinectl", Launcher::Machinectl),
    ("nspawn-unit", Launcher::NspawnUnit),
    ("nspawn", Launcher::Nspawn),
];

/// Desired state spellings.
const STATES: &[(&str, DesiredState)] = &[
    ("running", DesiredState::Running),
    ("stopped", DesiredState::Stopped),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_to_spec_dir() {
        assert_eq!(
            resolve(Path::new("/etc/berth/spec.yaml"), Path::new("./secret")),
            PathBuf::from("/etc/berth/secret")
        );
        assert_eq!(
            resolve(Path::new("spec.yaml"), Path::new("secret")),
            PathBuf::from("secret")
        );
        assert_eq!(
            resolve(Path::new("/a/spec.yaml"), Path::new("/abs/pw")),
            PathBuf::from("/abs/pw")
        );
    }

    #[test]
    fn path_keys_escape_controls() {
        assert_eq!(path_key("we\nb"), "we\\nb");
        assert_eq!(path_key("web"), "web");
    }
}
