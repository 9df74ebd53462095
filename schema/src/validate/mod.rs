//! From the file as written ([`RawFile`]) to validated [`Machine`]s: every
//! check, defaults merged, unit names suffixed, lists deduplicated, `file:`
//! secrets, `pacman_conf` and files' `source`/`template` resolved against
//! the spec file's directory, bind paths normalised, port forwards parsed.
//!
//! All problems are collected; nothing stops at the first one. Values that
//! come from `defaults:` are checked once, and their errors point there
//! (`defaults.launcher`).
//!
//! [`validate`] walks the file; [`machine`] checks each machine's fields and
//! merges the defaults (and the file's top-level `vars`); one submodule per
//! part of a machine holds its rules: [`bootstrap`] (`bootstrap_options`,
//! `repos`), [`network`], [`binds`], [`environment`], [`units`],
//! [`secrets`] (`root_password`, a user's `password`, a file's `secret`, a
//! credential's source), [`resources`], [`devices`], [`nspawn_extra`],
//! [`vars`], [`files`], [`users`] (and SSH keys), [`credentials`],
//! [`health`];
//! [`values`] has the checks every field uses (booleans, strings,
//! spellings, lists).

mod binds;
mod bootstrap;
mod credentials;
mod devices;
mod environment;
mod files;
mod health;
mod machine;
pub(crate) mod moved;
mod network;
mod nspawn_extra;
mod resources;
mod secrets;
mod snapshots;
mod units;
mod users;
mod values;
mod vars;

use std::path::{Component, Path, PathBuf};

use serde_saphyr::Location;

use crate::diagnostic::{Diagnostic, SourceText};
use crate::raw::{RawFile, RawMachine, position};
use crate::spec::Snapshots;
use crate::spec::{
    Bind, BootstrapOptions, BootstrapperKind, Credential, DesiredState, Device, Distro, Health,
    Launcher, Machine, ManagedFile, Network, NspawnExtra, PrivateUsers, Repo, Resources,
    RootPassword, Storage, Units, User,
};
use vars::{Vars, merge_vars};

/// Most diagnostics kept for one file; the rest are only counted.
const MAX_DIAGNOSTICS: usize = 100;

/// A field after checking one mapping (`defaults` or a machine).
enum Field<T> {
    /// Not written.
    Absent,
    /// Written, but wrong (already reported).
    Invalid,
    /// Written and valid.
    Valid(T),
}

/// A valid value with where it was written, for checks against other fields
/// after merging (the value may come from `defaults`).
#[derive(Clone)]
struct Placed<T> {
    value: T,
    /// Where the value is.
    loc: Location,
    /// Its field path (`machines.web.bootstrapper` or `defaults.bootstrapper`).
    field: String,
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
    bootstrapper: Field<Placed<BootstrapperKind>>,
    bootstrap_options: Field<BootstrapOptions>,
    pacman_conf: Field<Placed<PathBuf>>,
    repos: Field<Placed<Vec<Repo>>>,
    autostart: Field<bool>,
    prevent_destroy: Field<Placed<bool>>,
    network: Field<Network>,
    binds: Field<Vec<Bind>>,
    private_users: Field<PrivateUsers>,
    capabilities: Field<Vec<String>>,
    drop_capabilities: Field<Vec<String>>,
    environment: Field<Vec<(String, String)>>,
    storage: Field<Placed<Storage>>,
    resources: Field<Resources>,
    devices: Field<Vec<Device>>,
    nspawn_extra: Field<NspawnExtra>,
    vars: Field<Vars>,
    files: Field<Vec<ManagedFile>>,
    users: Field<Vec<User>>,
    ssh_authorized_keys: Field<Vec<String>>,
    credentials: Field<Vec<Credential>>,
    health: Field<Health>,
    snapshots: Field<Snapshots>,
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
            bootstrapper: self.bootstrapper.or(clone(&defaults.bootstrapper)),
            bootstrap_options: self
                .bootstrap_options
                .or(clone(&defaults.bootstrap_options)),
            pacman_conf: self.pacman_conf.or(clone(&defaults.pacman_conf)),
            repos: self.repos.or(clone(&defaults.repos)),
            autostart: self.autostart.or(copy(&defaults.autostart)),
            prevent_destroy: self.prevent_destroy.or(clone(&defaults.prevent_destroy)),
            network: self.network.or(clone(&defaults.network)),
            binds: self.binds.or(clone(&defaults.binds)),
            private_users: self.private_users.or(copy(&defaults.private_users)),
            capabilities: self.capabilities.or(clone(&defaults.capabilities)),
            drop_capabilities: self
                .drop_capabilities
                .or(clone(&defaults.drop_capabilities)),
            environment: self.environment.or(clone(&defaults.environment)),
            storage: self.storage.or(clone(&defaults.storage)),
            resources: self.resources.or(copy(&defaults.resources)),
            devices: self.devices.or(clone(&defaults.devices)),
            nspawn_extra: self.nspawn_extra.or(clone(&defaults.nspawn_extra)),
            vars: merge_vars(self.vars, &defaults.vars),
            files: self.files.or(clone(&defaults.files)),
            users: self.users.or(clone(&defaults.users)),
            ssh_authorized_keys: self
                .ssh_authorized_keys
                .or(clone(&defaults.ssh_authorized_keys)),
            credentials: self.credentials.or(clone(&defaults.credentials)),
            health: self.health.or(clone(&defaults.health)),
            snapshots: self.snapshots.or(copy(&defaults.snapshots)),
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
    let mut defaults = match &raw.defaults {
        Some(d) => v.fields(d, "defaults"),
        None => v.fields(&RawMachine::default(), "defaults"),
    };
    // The file's own `vars` go under the defaults', key by key.
    let top_vars = match &raw.vars {
        Some(vars) => v.vars(vars, "vars"),
        None => Field::Absent,
    };
    defaults.vars = merge_vars(defaults.vars, &top_vars);
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

/// A valid field with where it was written; `loc` is `None` only when absent.
fn placed<T>(field: Field<T>, loc: Option<Location>, path: String) -> Field<Placed<T>> {
    match (field, loc) {
        (Field::Valid(value), Some(loc)) => Field::Valid(Placed {
            value,
            loc,
            field: path,
        }),
        (Field::Absent, _) => Field::Absent,
        _ => Field::Invalid,
    }
}

/// A checked absolute path with `.` components, repeated and trailing `/` dropped.
fn normalize(path: &str) -> PathBuf {
    Path::new(path).components().collect()
}

/// `path` resolved against the directory of `spec_file`, `.` components dropped.
pub(crate) fn resolve(spec_file: &Path, path: &Path) -> PathBuf {
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
