//! Checks shared by every field: YAML booleans, strings checked by a
//! rule or parsed into a value, one of a fixed set of spellings (and those
//! spellings), lists.

use std::collections::HashSet;

use serde_saphyr::Spanned;

use super::{Field, Validator};
use crate::names::{self, quote};
use crate::raw::RawBool;
use crate::spec::{
    BootstrapperKind, DesiredState, Distro, Launcher, NetworkMode, PrivateUsers, Storage,
};

impl Validator<'_, '_> {
    /// A YAML boolean; anything else (`"yes"`, `1`) is reported.
    pub(super) fn boolean(&mut self, value: Option<&Spanned<RawBool>>, field: &str) -> Field<bool> {
        let Some(value) = value else {
            return Field::Absent;
        };
        match &value.value {
            RawBool::Bool(b) => Field::Valid(*b),
            RawBool::Other(what) => {
                let name = field.rsplit('.').next().unwrap_or(field);
                self.error(
                    &value.referenced,
                    field.to_owned(),
                    format!("`{name}` must be a boolean, `true` or `false`, not {what}"),
                );
                Field::Invalid
            }
        }
    }

    /// A string checked by `check`.
    pub(super) fn scalar(
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

    /// A string turned into its value by `parse`, which says what is wrong
    /// when it cannot.
    pub(super) fn parsed<T>(
        &mut self,
        value: Option<&Spanned<String>>,
        field: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Field<T> {
        let Some(value) = value else {
            return Field::Absent;
        };
        match parse(&value.value) {
            Ok(v) => Field::Valid(v),
            Err(msg) => {
                self.error(&value.referenced, field.to_owned(), msg);
                Field::Invalid
            }
        }
    }

    /// One of a fixed set of spellings.
    pub(super) fn choice<T: Copy>(
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
    pub(super) fn list(
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
}

/// Distro spellings.
pub(super) const DISTROS: &[(&str, Distro)] = &[
    ("debian", Distro::Debian),
    ("ubuntu", Distro::Ubuntu),
    ("arch", Distro::Arch),
    ("fedora", Distro::Fedora),
];

/// Distro spellings only, for messages.
pub(super) const DISTROS_NAMES: &[&str] = &["debian", "ubuntu", "arch", "fedora"];

/// Launcher spellings.
pub(super) const LAUNCHERS: &[(&str, Launcher)] = &[
    ("auto", Launcher::Auto),
    ("machinectl", Launcher::Machinectl),
    ("nspawn-unit", Launcher::NspawnUnit),
    ("nspawn", Launcher::Nspawn),
];

/// Bootstrapper spellings.
pub(super) const BOOTSTRAPPERS: &[(&str, BootstrapperKind)] = &[
    ("debootstrap", BootstrapperKind::Debootstrap),
    ("mmdebstrap", BootstrapperKind::Mmdebstrap),
    ("pacstrap", BootstrapperKind::Pacstrap),
    ("dnf", BootstrapperKind::Dnf),
];

/// Network mode spellings.
pub(super) const NETWORK_MODES: &[(&str, NetworkMode)] = &[
    ("host", NetworkMode::Host),
    ("private", NetworkMode::Private),
    ("veth", NetworkMode::Veth),
];

/// `private_users` spellings.
pub(super) const PRIVATE_USERS: &[(&str, PrivateUsers)] = &[
    ("pick", PrivateUsers::Pick),
    ("no", PrivateUsers::No),
    ("identity", PrivateUsers::Identity),
];

/// `storage` spellings.
pub(super) const STORAGES: &[(&str, Storage)] =
    &[("copy", Storage::Copy), ("overlay", Storage::Overlay)];

/// Desired state spellings.
pub(super) const STATES: &[(&str, DesiredState)] = &[
    ("running", DesiredState::Running),
    ("stopped", DesiredState::Stopped),
];
