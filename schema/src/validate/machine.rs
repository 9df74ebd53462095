//! One machine: every field of a mapping (a machine or `defaults:`) checked,
//! the defaults merged under the machine, and the checks across fields: those
//! that depend on the distro (bootstrapper, `pacman_conf`, `repos`), the
//! storage, and authorized_keys files written both from `files` and from
//! `ssh_authorized_keys`.

use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

use super::values::{
    BOOTSTRAPPERS, DISTROS, DISTROS_NAMES, LAUNCHERS, PRIVATE_USERS, STATES, STORAGES,
};
use super::{Checked, Field, Validator, optional, path_key, placed, resolve, valid_or};
use crate::names::{self, quote};
use crate::raw::{RawMachine, position};
use crate::spec::{
    BootstrapOptions, BootstrapperKind, DesiredState, Distro, Launcher, Machine, Network,
    NspawnExtra, PrivateUsers, Resources, Source, Storage, Units,
};

impl Validator<'_, '_> {
    /// Checks one machine and merges the defaults under it.
    pub(super) fn machine(
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
        if let Field::Valid(distro) = merged.distro {
            self.fits_distro(&name.value, distro, &merged);
        }
        self.fits_storage(&name.value, &merged);
        self.fits_snapshots(&name.value, &merged);
        let files_field = if raw.files.is_some() {
            format!("{prefix}.files")
        } else {
            "defaults.files".to_owned()
        };
        self.fits_authorized_keys(&name.value, &merged, &files_field);

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
            bootstrapper: optional(merged.bootstrapper)?.map(|p| p.value),
            bootstrap_options: valid_or(merged.bootstrap_options, BootstrapOptions::default())?,
            pacman_conf: optional(merged.pacman_conf)?.map(|p| p.value),
            repos: optional(merged.repos)?.map(|p| p.value).unwrap_or_default(),
            autostart: optional(merged.autostart)?,
            prevent_destroy: optional(merged.prevent_destroy)?
                .filter(|p| p.value)
                .map(|p| {
                    let (line, column) = position(&p.loc);
                    Source {
                        file: self.src.file.to_path_buf(),
                        line,
                        column,
                    }
                }),
            network: valid_or(merged.network, Network::default())?,
            binds: valid_or(merged.binds, Vec::new())?,
            private_users: optional(merged.private_users)?,
            capabilities: valid_or(merged.capabilities, Vec::new())?,
            drop_capabilities: valid_or(merged.drop_capabilities, Vec::new())?,
            environment: valid_or(merged.environment, Vec::new())?,
            storage: optional(merged.storage)?.map_or(Storage::Copy, |p| p.value),
            resources: valid_or(merged.resources, Resources::default())?,
            devices: valid_or(merged.devices, Vec::new())?,
            nspawn_extra: valid_or(merged.nspawn_extra, NspawnExtra::default())?,
            vars: valid_or(merged.vars, Default::default())?,
            files: valid_or(merged.files, Vec::new())?,
            users: valid_or(merged.users, Vec::new())?,
            ssh_authorized_keys: optional(merged.ssh_authorized_keys)?,
            credentials: valid_or(merged.credentials, Vec::new())?,
            health: optional(merged.health)?,
            snapshots: valid_or(merged.snapshots, Default::default())?,
        })
    }

    /// `storage: overlay` with `private_users: pick`: systemd-nspawn would
    /// shift the ownership of every file (overlayfs cannot be ID-mapped),
    /// copying the whole base into the machine's layer. The error points at
    /// `storage:`.
    fn fits_storage(&mut self, machine: &str, merged: &Checked) {
        if let (Field::Valid(p), Field::Valid(PrivateUsers::Pick)) =
            (&merged.storage, &merged.private_users)
            && p.value == Storage::Overlay
        {
            let whose = if p.field.starts_with("defaults.") {
                format!(" (machine {})", quote(machine))
            } else {
                String::new()
            };
            let msg = format!(
                "storage: overlay does not go with private_users: pick{whose}: overlayfs cannot be \
                 ID-mapped, so systemd-nspawn would change the owner of every file and copy the \
                 whole base into the machine's layer; use private_users: identity or no, or storage: copy"
            );
            self.error(&p.loc, p.field.clone(), msg);
        }
    }

    /// No entry of `files` (written under `files_field`) writes an
    /// authorized_keys file that root's or a user's `ssh_authorized_keys`
    /// also writes: the two would undo each other. The error points at the
    /// entry, naming the machine when that is under `defaults`.
    fn fits_authorized_keys(&mut self, machine: &str, merged: &Checked, files_field: &str) {
        let Field::Valid(files) = &merged.files else {
            return;
        };
        let mut keyed: Vec<(PathBuf, String)> = Vec::new();
        if let Field::Valid(_) = merged.ssh_authorized_keys {
            keyed.push((
                PathBuf::from("/root/.ssh/authorized_keys"),
                "ssh_authorized_keys (root's keys)".to_owned(),
            ));
        }
        if let Field::Valid(users) = &merged.users {
            for user in users
                .iter()
                .filter(|u| u.present && u.ssh_authorized_keys.is_some())
            {
                let home = user
                    .home
                    .clone()
                    .unwrap_or_else(|| Path::new("/home").join(&user.name));
                keyed.push((
                    home.join(".ssh/authorized_keys"),
                    format!("users.{}.ssh_authorized_keys", user.name),
                ));
            }
        }
        let whose = if files_field.starts_with("defaults.") {
            format!(" (machine {})", quote(machine))
        } else {
            String::new()
        };
        for file in files {
            if let Some((_, by)) = keyed.iter().find(|(path, _)| *path == file.path) {
                let d = self.src.at(
                    file.source.line,
                    file.source.column,
                    Some(format!("{files_field}.{}", path_key(&file.path.to_string_lossy()))),
                    format!(
                        "{} is written from {by}{whose}: manage those keys in one place, not also under files:",
                        quote(&file.path.to_string_lossy())
                    ),
                );
                self.push(d);
            }
        }
    }

    /// The merged fields that depend on the distro: the bootstrapper,
    /// `pacman_conf` (arch) and `repos` (fedora). Errors point where the field
    /// was written, naming the machine when that is under `defaults`.
    fn fits_distro(&mut self, machine: &str, distro: Distro, merged: &Checked) {
        let whose = |p_field: &str| {
            if p_field.starts_with("defaults.") {
                format!(" (machine {})", quote(machine))
            } else {
                String::new()
            }
        };
        if let Field::Valid(p) = &merged.bootstrapper {
            let fitting = bootstrappers_for(distro);
            if !fitting.contains(&p.value) {
                let names: Vec<&str> = fitting.iter().map(|b| b.as_str()).collect();
                let msg = format!(
                    "bootstrapper `{}` does not fit distro `{distro}`{}: {} bootstraps {}; for {distro} use {}",
                    p.value,
                    whose(&p.field),
                    p.value,
                    distros_of(p.value),
                    names::one_of(&names)
                );
                self.error(&p.loc, p.field.clone(), msg);
            }
        }
        if let Field::Valid(p) = &merged.pacman_conf
            && distro != Distro::Arch
        {
            let msg = format!(
                "pacman_conf is for pacstrap, so only for distro `arch`, not `{distro}`{}",
                whose(&p.field)
            );
            self.error(&p.loc, p.field.clone(), msg);
        }
        if let Field::Valid(p) = &merged.repos
            && distro != Distro::Fedora
            && !p.value.is_empty()
        {
            let msg = format!(
                "repos are dnf repositories, so only for distro `fedora`, not `{distro}`{}",
                whose(&p.field)
            );
            self.error(&p.loc, p.field.clone(), msg);
        }
    }

    /// Checks every field written in one mapping (a machine or `defaults`).
    pub(super) fn fields(&mut self, raw: &RawMachine, prefix: &str) -> Checked {
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
            Some(rp) => self.password(rp, &format!("{prefix}.root_password"), "root_password"),
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
        let bootstrapper_field = format!("{prefix}.bootstrapper");
        let bootstrapper = placed(
            self.choice(
                raw.bootstrapper.as_ref(),
                &bootstrapper_field,
                "bootstrapper",
                BOOTSTRAPPERS,
            ),
            raw.bootstrapper.as_ref().map(|b| b.referenced),
            bootstrapper_field,
        );
        let bootstrap_options = match &raw.bootstrap_options {
            None => Field::Absent,
            Some(b) => self.bootstrap_options(b, &format!("{prefix}.bootstrap_options")),
        };
        let pacman_conf_field = format!("{prefix}.pacman_conf");
        let pacman_conf = match self.scalar(
            raw.pacman_conf.as_ref(),
            &pacman_conf_field,
            names::pacman_conf,
        ) {
            Field::Valid(p) => Field::Valid(resolve(self.src.file, Path::new(&p))),
            Field::Invalid => Field::Invalid,
            Field::Absent => Field::Absent,
        };
        let pacman_conf = placed(
            pacman_conf,
            raw.pacman_conf.as_ref().map(|p| p.referenced),
            pacman_conf_field,
        );
        let repos = match &raw.repos {
            None => Field::Absent,
            Some(r) => self.repos(r, &format!("{prefix}.repos")),
        };
        let autostart = self.boolean(raw.autostart.as_ref(), &format!("{prefix}.autostart"));
        let prevent_destroy_field = format!("{prefix}.prevent_destroy");
        let prevent_destroy = placed(
            self.boolean(raw.prevent_destroy.as_ref(), &prevent_destroy_field),
            raw.prevent_destroy.as_ref().map(|p| p.referenced),
            prevent_destroy_field,
        );
        let network = match &raw.network {
            None => Field::Absent,
            Some(n) => self.network(n, &format!("{prefix}.network")),
        };
        let binds = match &raw.binds {
            None => Field::Absent,
            Some(b) => self.binds(b, &format!("{prefix}.binds")),
        };
        let private_users = self.choice(
            raw.private_users.as_ref(),
            &format!("{prefix}.private_users"),
            "private_users value",
            PRIVATE_USERS,
        );
        let capabilities = match &raw.capabilities {
            None => Field::Absent,
            Some(items) => self.list(
                items,
                &format!("{prefix}.capabilities"),
                names::capability,
                str::to_owned,
            ),
        };
        let drop_capabilities = match &raw.drop_capabilities {
            None => Field::Absent,
            Some(items) => self.list(
                items,
                &format!("{prefix}.drop_capabilities"),
                names::drop_capability,
                str::to_owned,
            ),
        };
        let environment = match &raw.environment {
            None => Field::Absent,
            Some(e) => self.environment(&e.value, &format!("{prefix}.environment")),
        };
        let storage_field = format!("{prefix}.storage");
        let storage = placed(
            self.choice(
                raw.storage.as_ref(),
                &storage_field,
                "storage value",
                STORAGES,
            ),
            raw.storage.as_ref().map(|s| s.referenced),
            storage_field,
        );
        let resources = match &raw.resources {
            None => Field::Absent,
            Some(r) => self.resources(r, &format!("{prefix}.resources")),
        };
        let devices = match &raw.devices {
            None => Field::Absent,
            Some(d) => self.devices(d, &format!("{prefix}.devices")),
        };
        let nspawn_extra = match &raw.nspawn_extra {
            None => Field::Absent,
            Some(e) => self.nspawn_extra(e, &format!("{prefix}.nspawn_extra")),
        };
        let vars = match &raw.vars {
            None => Field::Absent,
            Some(v) => self.vars(v, &format!("{prefix}.vars")),
        };
        let files = match &raw.files {
            None => Field::Absent,
            Some(f) => self.files(f, &format!("{prefix}.files")),
        };
        let users = match &raw.users {
            None => Field::Absent,
            Some(u) => self.users(u, &format!("{prefix}.users")),
        };
        let ssh_authorized_keys = match &raw.ssh_authorized_keys {
            None => Field::Absent,
            Some(k) => self.ssh_keys(k, &format!("{prefix}.ssh_authorized_keys")),
        };
        let credentials = match &raw.credentials {
            None => Field::Absent,
            Some(c) => self.credentials(c, &format!("{prefix}.credentials")),
        };
        let health = match &raw.health {
            None => Field::Absent,
            Some(h) => self.health(h, &format!("{prefix}.health")),
        };
        let snapshots = match &raw.snapshots {
            None => Field::Absent,
            Some(s) => self.snapshots(s, &format!("{prefix}.snapshots")),
        };
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
            bootstrapper,
            bootstrap_options,
            pacman_conf,
            repos,
            autostart,
            prevent_destroy,
            network,
            binds,
            private_users,
            capabilities,
            drop_capabilities,
            environment,
            storage,
            resources,
            devices,
            nspawn_extra,
            vars,
            files,
            users,
            ssh_authorized_keys,
            credentials,
            health,
            snapshots,
        }
    }
}

/// The bootstrappers that can bootstrap `distro`.
fn bootstrappers_for(distro: Distro) -> &'static [BootstrapperKind] {
    match distro {
        Distro::Debian | Distro::Ubuntu => {
            &[BootstrapperKind::Debootstrap, BootstrapperKind::Mmdebstrap]
        }
        Distro::Arch => &[BootstrapperKind::Pacstrap],
        Distro::Fedora => &[BootstrapperKind::Dnf],
    }
}

/// What a bootstrapper bootstraps, for messages.
fn distros_of(kind: BootstrapperKind) -> &'static str {
    match kind {
        BootstrapperKind::Debootstrap | BootstrapperKind::Mmdebstrap => "debian and ubuntu",
        BootstrapperKind::Pacstrap => "arch",
        BootstrapperKind::Dnf => "fedora",
    }
}
