//! From the file as written ([`RawFile`]) to validated [`Machine`]s: every
//! check, defaults merged, unit names suffixed, lists deduplicated, `file:`
//! secrets and `pacman_conf` resolved against the spec file's directory, bind
//! paths normalised, port forwards parsed.
//!
//! All problems are collected; nothing stops at the first one. Values that
//! come from `defaults:` are checked once, and their errors point there
//! (`defaults.launcher`).

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use serde_saphyr::{Location, Spanned};

use crate::diagnostic::{Diagnostic, SourceText};
use crate::names::{self, quote};
use crate::raw::{
    RawBind, RawBool, RawBootstrapOptions, RawEnvironment, RawFile, RawMachine, RawNetwork,
    RawRepo, RawRootPassword, RawUnits, SecretValue, position,
};
use crate::spec::{
    Bind, BootstrapOptions, BootstrapperKind, DesiredState, Distro, Launcher, Machine, Network,
    NetworkMode, Port, PrivateUsers, Repo, RootPassword, Source, Units,
};

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
    network: Field<Network>,
    binds: Field<Vec<Bind>>,
    private_users: Field<PrivateUsers>,
    capabilities: Field<Vec<String>>,
    drop_capabilities: Field<Vec<String>>,
    environment: Field<Vec<(String, String)>>,
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
            network: self.network.or(clone(&defaults.network)),
            binds: self.binds.or(clone(&defaults.binds)),
            private_users: self.private_users.or(copy(&defaults.private_users)),
            capabilities: self.capabilities.or(clone(&defaults.capabilities)),
            drop_capabilities: self
                .drop_capabilities
                .or(clone(&defaults.drop_capabilities)),
            environment: self.environment.or(clone(&defaults.environment)),
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
        if let Field::Valid(distro) = merged.distro {
            self.fits_distro(&name.value, distro, &merged);
        }

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
            network: valid_or(merged.network, Network::default())?,
            binds: valid_or(merged.binds, Vec::new())?,
            private_users: optional(merged.private_users)?,
            capabilities: valid_or(merged.capabilities, Vec::new())?,
            drop_capabilities: valid_or(merged.drop_capabilities, Vec::new())?,
            environment: valid_or(merged.environment, Vec::new())?,
        })
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
            network,
            binds,
            private_users,
            capabilities,
            drop_capabilities,
            environment,
        }
    }

    /// A YAML boolean; anything else (`"yes"`, `1`) is reported.
    fn boolean(&mut self, value: Option<&Spanned<RawBool>>, field: &str) -> Field<bool> {
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

    /// `bootstrap_options:`.
    fn bootstrap_options(
        &mut self,
        raw: &RawBootstrapOptions,
        field: &str,
    ) -> Field<BootstrapOptions> {
        let host_cache = self.boolean(raw.host_cache.as_ref(), &format!("{field}.host_cache"));
        let variant = self.scalar(
            raw.variant.as_ref(),
            &format!("{field}.variant"),
            names::variant,
        );
        let components = match &raw.components {
            None => Field::Absent,
            Some(items) => self.list(
                items,
                &format!("{field}.components"),
                names::component,
                str::to_owned,
            ),
        };
        let install_weak_deps = self.boolean(
            raw.install_weak_deps.as_ref(),
            &format!("{field}.install_weak_deps"),
        );
        let options = || {
            Some(BootstrapOptions {
                host_cache: valid_or(host_cache, false)?,
                variant: optional(variant)?,
                components: valid_or(components, Vec::new())?,
                install_weak_deps: valid_or(install_weak_deps, false)?,
            })
        };
        options().map_or(Field::Invalid, Field::Valid)
    }

    /// `repos:`: each with a valid, unique id and a URL dnf can take.
    fn repos(
        &mut self,
        raw: &Spanned<Vec<Spanned<RawRepo>>>,
        field: &str,
    ) -> Field<Placed<Vec<Repo>>> {
        let before = self.count();
        let mut repos = Vec::with_capacity(raw.value.len());
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, item) in raw.value.iter().enumerate() {
            let at = format!("{field}[{i}]");
            let repo = &item.value;
            for (key, present) in [("id", repo.id.is_some()), ("url", repo.url.is_some())] {
                if !present {
                    self.error(
                        &item.referenced,
                        at.clone(),
                        format!("a repository needs `{key}:`"),
                    );
                }
            }
            let id = self.scalar(repo.id.as_ref(), &format!("{at}.id"), names::repo_id);
            if let (Field::Valid(_), Some(written)) = (&id, &repo.id) {
                if let Some(first) = seen.get(written.value.as_str()) {
                    self.error(
                        &written.referenced,
                        format!("{at}.id"),
                        format!(
                            "repository id {} is already used by repos[{first}]",
                            quote(&written.value)
                        ),
                    );
                } else {
                    seen.insert(written.value.as_str(), i);
                }
            }
            let url = self.scalar(repo.url.as_ref(), &format!("{at}.url"), names::repo_url);
            let gpgcheck = self.boolean(repo.gpgcheck.as_ref(), &format!("{at}.gpgcheck"));
            if let (Field::Valid(id), Field::Valid(url), Some(gpgcheck)) =
                (id, url, valid_or(gpgcheck, true))
            {
                repos.push(Repo { id, url, gpgcheck });
            }
        }
        if self.count() > before {
            return Field::Invalid;
        }
        Field::Valid(Placed {
            value: repos,
            loc: raw.referenced,
            field: field.to_owned(),
        })
    }

    /// `network:`: a mode, a zone or a bridge (each implying veth), and port
    /// forwards, which need veth.
    fn network(&mut self, raw: &Spanned<RawNetwork>, field: &str) -> Field<Network> {
        let before = self.count();
        let net = &raw.value;
        let mode = self.choice(
            net.mode.as_ref(),
            &format!("{field}.mode"),
            "network mode",
            NETWORK_MODES,
        );
        let zone = self.scalar(net.zone.as_ref(), &format!("{field}.zone"), names::zone);
        let bridge = self.scalar(
            net.bridge.as_ref(),
            &format!("{field}.bridge"),
            names::bridge,
        );
        if let (Some(_), Some(b)) = (&net.zone, &net.bridge) {
            self.error(
                &b.referenced,
                format!("{field}.bridge"),
                "zone and bridge cannot both be set: the veth link joins either a zone or a bridge",
            );
        }
        let link = [("zone", &net.zone), ("bridge", &net.bridge)]
            .into_iter()
            .find_map(|(key, v)| v.as_ref().map(|v| (key, v)));
        if let (Field::Valid(m), Some((key, v))) = (&mode, link)
            && *m != NetworkMode::Veth
        {
            self.error(
                &v.referenced,
                format!("{field}.{key}"),
                format!(
                    "a {key} needs a veth link, but network.mode is `{}`: set mode: veth or leave it out",
                    m.as_str()
                ),
            );
        }
        let veth = link.is_some() || matches!(mode, Field::Valid(NetworkMode::Veth));
        let mut ports: Vec<Port> = Vec::new();
        if let Some(items) = &net.ports {
            let mut seen: HashMap<(&str, u16), usize> = HashMap::new();
            for (i, item) in items.value.iter().enumerate() {
                let at = format!("{field}.ports[{i}]");
                match names::port(&item.value) {
                    Ok(p) => {
                        let key = (p.protocol.as_str(), p.host);
                        if let Some(first) = seen.get(&key) {
                            self.error(
                                &item.referenced,
                                at,
                                format!(
                                    "host port {} {} is already forwarded by network.ports[{first}]",
                                    p.protocol.as_str(),
                                    p.host
                                ),
                            );
                        } else {
                            seen.insert(key, i);
                            ports.push(p);
                        }
                    }
                    Err(msg) => self.error(&item.referenced, at, msg),
                }
            }
            // An invalid mode is already reported: do not guess what it meant.
            if !items.value.is_empty() && !veth && !matches!(mode, Field::Invalid) {
                self.error(
                    &items.referenced,
                    format!("{field}.ports"),
                    "port forwards need a private network with a veth link: set network.mode: veth",
                );
            }
        }
        if self.count() > before {
            return Field::Invalid;
        }
        let mode = match mode {
            _ if link.is_some() => NetworkMode::Veth,
            Field::Valid(m) => m,
            _ => NetworkMode::default(),
        };
        Field::Valid(Network {
            mode,
            zone: optional(zone).flatten(),
            bridge: optional(bridge).flatten(),
            ports,
        })
    }

    /// `binds:`: absolute paths nspawn's `Bind=` can take, never over the
    /// machine's `/`, no machine path bound twice.
    fn binds(&mut self, items: &[Spanned<RawBind>], field: &str) -> Field<Vec<Bind>> {
        let before = self.count();
        let mut binds = Vec::with_capacity(items.len());
        let mut seen: HashMap<PathBuf, usize> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{field}[{i}]");
            let Some((bind, machine_loc, machine_field)) = self.bind(item, &at) else {
                continue;
            };
            if bind.machine == Path::new("/") {
                self.error(
                    &machine_loc,
                    machine_field,
                    "a bind cannot cover the machine's root `/`: bind to a directory inside it",
                );
            } else if let Some(first) = seen.get(&bind.machine) {
                self.error(
                    &machine_loc,
                    machine_field,
                    format!(
                        "machine path {} is already bound by binds[{first}]",
                        quote(&bind.machine.to_string_lossy())
                    ),
                );
            } else {
                seen.insert(bind.machine.clone(), i);
                binds.push(bind);
            }
        }
        if self.count() > before {
            return Field::Invalid;
        }
        Field::Valid(binds)
    }

    /// One bind, in either form; with where its machine path was written.
    fn bind(&mut self, item: &Spanned<RawBind>, at: &str) -> Option<(Bind, Location, String)> {
        match &item.value {
            RawBind::Short(text) => {
                let parts: Vec<&str> = text.split(':').collect();
                let (host, machine, read_only) = match parts.as_slice() {
                    [host] => (*host, *host, false),
                    [host, opt @ ("ro" | "rw")] => {
                        let msg = format!(
                            "bind {} has no machine path: to bind {} at the same place, write {}",
                            quote(text),
                            quote(host),
                            quote(&format!("{host}:{host}:{opt}"))
                        );
                        self.error(&item.referenced, at.to_owned(), msg);
                        return None;
                    }
                    [host, machine] => (*host, *machine, false),
                    [host, machine, "ro"] => (*host, *machine, true),
                    [host, machine, "rw"] => (*host, *machine, false),
                    [_, _, opt] => {
                        let msg = format!(
                            "bind option {} in {} must be `ro` or `rw`",
                            quote(opt),
                            quote(text)
                        );
                        self.error(&item.referenced, at.to_owned(), msg);
                        return None;
                    }
                    _ => {
                        let msg = format!(
                            "bind {} has too many `:`: write HOST, HOST:MACHINE or HOST:MACHINE:ro (paths cannot contain `:`)",
                            quote(text)
                        );
                        self.error(&item.referenced, at.to_owned(), msg);
                        return None;
                    }
                };
                let mut ok = true;
                let paths: &[(&str, &str)] = if parts.len() == 1 {
                    &[("bind path", host)]
                } else {
                    &[("host path", host), ("machine path", machine)]
                };
                for &(what, path) in paths {
                    if let Err(msg) = names::bind_path(what, path) {
                        self.error(&item.referenced, at.to_owned(), msg);
                        ok = false;
                    }
                }
                ok.then(|| {
                    (
                        Bind {
                            host: normalize(host),
                            machine: normalize(machine),
                            read_only,
                        },
                        item.referenced,
                        at.to_owned(),
                    )
                })
            }
            RawBind::Long(map) => {
                let Some(host) = &map.host else {
                    self.error(&item.referenced, at.to_owned(), "a bind needs `host:`");
                    return None;
                };
                let host_ok = self.bind_path(host, "host path", &format!("{at}.host"));
                let machine_field = format!(
                    "{at}.{}",
                    if map.machine.is_some() {
                        "machine"
                    } else {
                        "host"
                    }
                );
                let machine = map.machine.as_ref().unwrap_or(host);
                let machine_ok = map.machine.is_none()
                    || self.bind_path(machine, "machine path", &machine_field);
                let read_only = self.boolean(map.read_only.as_ref(), &format!("{at}.read_only"));
                // An invalid read_only is reported; the paths are still checked.
                let read_only = matches!(read_only, Field::Valid(true));
                (host_ok && machine_ok).then(|| {
                    (
                        Bind {
                            host: normalize(&host.value),
                            machine: normalize(&machine.value),
                            read_only,
                        },
                        machine.referenced,
                        machine_field,
                    )
                })
            }
        }
    }

    /// One path of a bind's mapping form; whether it is valid.
    fn bind_path(&mut self, path: &Spanned<String>, what: &str, field: &str) -> bool {
        match names::bind_path(what, &path.value) {
            Ok(()) => true,
            Err(msg) => {
                self.error(&path.referenced, field.to_owned(), msg);
                false
            }
        }
    }

    /// `environment:`: names and values, in order.
    fn environment(&mut self, raw: &RawEnvironment, field: &str) -> Field<Vec<(String, String)>> {
        let before = self.count();
        let mut vars = Vec::with_capacity(raw.0.len());
        for (name, value) in &raw.0 {
            let at = format!("{field}.{}", path_key(&name.value));
            if let Err(msg) = names::env_name(&name.value) {
                self.error(&name.referenced, at.clone(), msg);
            }
            let Some(value) = value else {
                self.error(
                    &name.referenced,
                    at,
                    format!(
                        "environment variable {} has no value: write `\"\"` for an empty one",
                        quote(&name.value)
                    ),
                );
                continue;
            };
            if let Err(msg) = names::env_value(&name.value, &value.value) {
                self.error(&value.referenced, at, msg);
                continue;
            }
            vars.push((name.value.clone(), value.value.clone()));
        }
        if self.count() > before {
            return Field::Invalid;
        }
        Field::Valid(vars)
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

/// Bootstrapper spellings.
const BOOTSTRAPPERS: &[(&str, BootstrapperKind)] = &[
    ("debootstrap", BootstrapperKind::Debootstrap),
    ("mmdebstrap", BootstrapperKind::Mmdebstrap),
    ("pacstrap", BootstrapperKind::Pacstrap),
    ("dnf", BootstrapperKind::Dnf),
];

/// Network mode spellings.
const NETWORK_MODES: &[(&str, NetworkMode)] = &[
    ("host", NetworkMode::Host),
    ("private", NetworkMode::Private),
    ("veth", NetworkMode::Veth),
];

/// `private_users` spellings.
const PRIVATE_USERS: &[(&str, PrivateUsers)] = &[
    ("pick", PrivateUsers::Pick),
    ("no", PrivateUsers::No),
    ("identity", PrivateUsers::Identity),
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
