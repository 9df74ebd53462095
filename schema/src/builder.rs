//! [`MachineBuilder`]: a [`Machine`] with sensible defaults and one setter
//! per field, for tests (no struct literal to update when a field is added).

use std::path::PathBuf;

use crate::spec::Snapshots;
use crate::spec::{
    Bind, BootstrapOptions, BootstrapperKind, Credential, DesiredState, Device, Distro, Launcher,
    Machine, ManagedFile, Network, NspawnExtra, PrivateUsers, Repo, Resources, RootPassword,
    Source, Storage, Units, User,
};

impl Machine {
    /// A builder for a machine named `name`: Debian bookworm, hostname
    /// `name`, launcher `nspawn`, state `running`, everything else empty or
    /// default (no packages, units, password, binds, ...; no network mode:
    /// the launcher's default).
    ///
    /// ```
    /// use berth_schema::{Distro, Machine};
    ///
    /// let m = Machine::builder("web").packages(["systemd", "dbus"]).build();
    /// assert_eq!(m.distro, Distro::Debian);
    /// assert_eq!(m.hostname, "web");
    /// assert_eq!(m.packages, ["systemd", "dbus"]);
    /// ```
    pub fn builder(name: impl Into<String>) -> MachineBuilder {
        let name = name.into();
        MachineBuilder {
            machine: Machine {
                hostname: name.clone(),
                name,
                source: Source::default(),
                distro: Distro::Debian,
                release: Some("bookworm".to_owned()),
                mirror: None,
                packages: Vec::new(),
                units: Units::default(),
                root_password: None,
                securetty: Vec::new(),
                launcher: Launcher::Nspawn,
                state: DesiredState::Running,
                bootstrapper: None,
                bootstrap_options: BootstrapOptions::default(),
                pacman_conf: None,
                repos: Vec::new(),
                autostart: None,
                prevent_destroy: None,
                network: Network::default(),
                binds: Vec::new(),
                private_users: None,
                capabilities: Vec::new(),
                drop_capabilities: Vec::new(),
                environment: Vec::new(),
                storage: Storage::Copy,
                resources: Resources::default(),
                devices: Vec::new(),
                nspawn_extra: NspawnExtra::default(),
                vars: Default::default(),
                files: Vec::new(),
                users: Vec::new(),
                ssh_authorized_keys: None,
                credentials: Vec::new(),
                snapshots: Snapshots::default(),
                health: None,
            },
        }
    }
}

/// Builds a [`Machine`] field by field; see [`Machine::builder`] for the
/// defaults. Values are taken as given: nothing is validated, unit names
/// are not suffixed, lists are not deduplicated, paths are not resolved.
#[derive(Debug, Clone)]
#[must_use]
pub struct MachineBuilder {
    machine: Machine,
}

/// Strings from any iterable of string-likes.
fn strings<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    items.into_iter().map(Into::into).collect()
}

impl MachineBuilder {
    /// The machine.
    pub fn build(self) -> Machine {
        self.machine
    }

    /// Where the machine was declared (default: an empty path, no line).
    pub fn source(mut self, source: Source) -> Self {
        self.machine.source = source;
        self
    }

    /// The distribution (default: Debian). The release is left as it is.
    pub fn distro(mut self, distro: Distro) -> Self {
        self.machine.distro = distro;
        self
    }

    /// The release (default: `bookworm`).
    pub fn release(mut self, release: impl Into<String>) -> Self {
        self.machine.release = Some(release.into());
        self
    }

    /// No release (as for Arch).
    pub fn without_release(mut self) -> Self {
        self.machine.release = None;
        self
    }

    /// The mirror (default: none, the bootstrapper's own).
    pub fn mirror(mut self, mirror: impl Into<String>) -> Self {
        self.machine.mirror = Some(mirror.into());
        self
    }

    /// The packages, in order (default: none).
    pub fn packages<I, S>(mut self, packages: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.machine.packages = strings(packages);
        self
    }

    /// The hostname (default: the machine name).
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.machine.hostname = hostname.into();
        self
    }

    /// All three unit lists at once (default: empty).
    pub fn units(mut self, units: Units) -> Self {
        self.machine.units = units;
        self
    }

    /// Units to enable, with their suffix (`sshd.service`).
    pub fn enable<I, S>(mut self, units: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.machine.units.enable = strings(units);
        self
    }

    /// Units to disable, with their suffix.
    pub fn disable<I, S>(mut self, units: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.machine.units.disable = strings(units);
        self
    }

    /// Units to mask, with their suffix.
    pub fn mask<I, S>(mut self, units: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.machine.units.mask = strings(units);
        self
    }

    /// Where the root password comes from (default: not managed).
    pub fn root_password(mut self, source: RootPassword) -> Self {
        self.machine.root_password = Some(source);
        self
    }

    /// The `/etc/securetty` entries (default: none).
    pub fn securetty<I, S>(mut self, entries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.machine.securetty = strings(entries);
        self
    }

    /// The launcher (default: `nspawn`).
    pub fn launcher(mut self, launcher: Launcher) -> Self {
        self.machine.launcher = launcher;
        self
    }

    /// The desired state (default: running).
    pub fn state(mut self, state: DesiredState) -> Self {
        self.machine.state = state;
        self
    }

    /// The bootstrap tool (default: none, the distro's).
    pub fn bootstrapper(mut self, kind: BootstrapperKind) -> Self {
        self.machine.bootstrapper = Some(kind);
        self
    }

    /// The bootstrap tool's options (default: all default).
    pub fn bootstrap_options(mut self, options: BootstrapOptions) -> Self {
        self.machine.bootstrap_options = options;
        self
    }

    /// pacstrap's pacman.conf (default: none).
    pub fn pacman_conf(mut self, path: impl Into<PathBuf>) -> Self {
        self.machine.pacman_conf = Some(path.into());
        self
    }

    /// dnf repositories, in order (default: none).
    pub fn repos(mut self, repos: impl IntoIterator<Item = Repo>) -> Self {
        self.machine.repos = repos.into_iter().collect();
        self
    }

    /// Start at host boot, or not (default: unset, boot integration left alone).
    pub fn autostart(mut self, autostart: bool) -> Self {
        self.machine.autostart = Some(autostart);
        self
    }

    /// The network (default: nothing set, the mode left to the launcher).
    pub fn network(mut self, network: Network) -> Self {
        self.machine.network = network;
        self
    }

    /// The binds, in order (default: none).
    pub fn binds(mut self, binds: impl IntoIterator<Item = Bind>) -> Self {
        self.machine.binds = binds.into_iter().collect();
        self
    }

    /// How the root is stored (default: `copy`).
    pub fn storage(mut self, storage: Storage) -> Self {
        self.machine.storage = storage;
        self
    }

    /// Resource limits (default: none).
    pub fn resources(mut self, resources: Resources) -> Self {
        self.machine.resources = resources;
        self
    }

    /// Devices made available in the machine (default: none).
    pub fn devices(mut self, devices: Vec<Device>) -> Self {
        self.machine.devices = devices;
        self
    }

    /// Template variables (default: none).
    pub fn vars(mut self, vars: std::collections::BTreeMap<String, serde_json::Value>) -> Self {
        self.machine.vars = vars;
        self
    }

    /// Managed files (default: none).
    pub fn files(mut self, files: Vec<ManagedFile>) -> Self {
        self.machine.files = files;
        self
    }

    /// Managed users (default: none).
    pub fn users(mut self, users: Vec<User>) -> Self {
        self.machine.users = users;
        self
    }

    /// root's SSH authorized keys (default: not managed).
    pub fn ssh_authorized_keys<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.machine.ssh_authorized_keys = Some(strings(keys));
        self
    }

    /// Credentials (default: none).
    pub fn credentials(mut self, credentials: Vec<Credential>) -> Self {
        self.machine.credentials = credentials;
        self
    }

    /// Sets `snapshots:`.
    pub fn snapshots(mut self, snapshots: Snapshots) -> Self {
        self.machine.snapshots = snapshots;
        self
    }

    /// Health checks (default: none).
    pub fn health(mut self, health: crate::spec::Health) -> Self {
        self.machine.health = Some(health);
        self
    }

    /// Extra `.nspawn` keys (default: none).
    pub fn nspawn_extra(mut self, extra: NspawnExtra) -> Self {
        self.machine.nspawn_extra = extra;
        self
    }

    /// User namespacing (default: unset, meaning `no`).
    pub fn private_users(mut self, users: PrivateUsers) -> Self {
        self.machine.private_users = Some(users);
        self
    }

    /// Capabilities granted (default: none).
    pub fn capabilities<I, S>(mut self, capabilities: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.machine.capabilities = strings(capabilities);
        self
    }

    /// Capabilities dropped (default: none).
    pub fn drop_capabilities<I, S>(mut self, capabilities: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.machine.drop_capabilities = strings(capabilities);
        self
    }

    /// Environment variables, in order (default: none).
    pub fn environment<I, K, V>(mut self, variables: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.machine.environment = variables
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use std::net::Ipv4Addr;

    use super::*;
    use crate::spec::{Address, Ipv4Cidr, Limit, NetworkMode, Port, Protocol};

    #[test]
    fn defaults() {
        assert_eq!(
            Machine::builder("web").build(),
            Machine {
                name: "web".into(),
                source: Source::default(),
                distro: Distro::Debian,
                release: Some("bookworm".into()),
                mirror: None,
                packages: Vec::new(),
                hostname: "web".into(),
                units: Units::default(),
                root_password: None,
                securetty: Vec::new(),
                launcher: Launcher::Nspawn,
                state: DesiredState::Running,
                bootstrapper: None,
                bootstrap_options: BootstrapOptions::default(),
                pacman_conf: None,
                repos: Vec::new(),
                autostart: None,
                prevent_destroy: None,
                network: Network::default(),
                binds: Vec::new(),
                private_users: None,
                capabilities: Vec::new(),
                drop_capabilities: Vec::new(),
                environment: Vec::new(),
                storage: Storage::Copy,
                resources: Resources::default(),
                devices: Vec::new(),
                nspawn_extra: NspawnExtra::default(),
                vars: Default::default(),
                files: Vec::new(),
                users: Vec::new(),
                ssh_authorized_keys: None,
                credentials: Vec::new(),
                snapshots: Snapshots::default(),
                health: None,
            }
        );
    }

    #[test]
    fn every_setter_sets_its_field() {
        let source = Source {
            file: "/etc/berth/spec.yaml".into(),
            line: Some(3),
            column: Some(3),
        };
        let options = BootstrapOptions {
            host_cache: true,
            variant: Some("buildd".into()),
            components: vec!["main".into()],
            install_weak_deps: true,
        };
        let repo = Repo {
            id: "local".into(),
            url: "file:///srv/repo".into(),
            gpgcheck: false,
        };
        let network = Network {
            mode: Some(NetworkMode::Veth),
            zone: Some("web".into()),
            bridge: None,
            ports: vec![Port {
                protocol: Protocol::Tcp,
                host: 8080,
                machine: 80,
            }],
            address: Some(Address::Static(Ipv4Cidr {
                address: Ipv4Addr::new(10, 0, 0, 5),
                prefix: 24,
            })),
            pool: None,
            gateway: Some(Ipv4Addr::new(10, 0, 0, 1)),
            nat: true,
            hosts: true,
        };
        let resources = Resources {
            memory_max: Some(Limit::Value(1 << 30)),
            memory_high: Some(Limit::Infinity),
            cpu_quota: Some(150),
            cpu_weight: Some(200),
            tasks_max: Some(Limit::Value(512)),
            io_weight: Some(50),
        };
        let devices = vec![Device {
            path: "/dev/fuse".into(),
            access: "rw".into(),
        }];
        let extra = NspawnExtra {
            exec: vec![("LimitNOFILE".into(), "4096".into())],
            files: vec![("BindReadOnly".into(), "/etc/ssl".into())],
            network: Vec::new(),
        };
        let bind = Bind {
            host: "/srv".into(),
            machine: "/srv".into(),
            read_only: true,
        };
        let m = Machine::builder("f40")
            .source(source.clone())
            .distro(Distro::Fedora)
            .release("40")
            .mirror("https://mirror.example/fedora")
            .packages(["systemd", "dnf"])
            .hostname("build.example.org")
            .enable(["a.service"])
            .disable(vec!["b.timer".to_owned()])
            .mask(["c.socket"])
            .root_password(RootPassword::Env("ROOT_PW".into()))
            .securetty(["pts/0"])
            .launcher(Launcher::Machinectl)
            .state(DesiredState::Stopped)
            .bootstrapper(BootstrapperKind::Dnf)
            .bootstrap_options(options.clone())
            .pacman_conf("/etc/pacman.conf")
            .repos([repo.clone()])
            .autostart(false)
            .network(network.clone())
            .binds([bind.clone()])
            .private_users(PrivateUsers::Pick)
            .capabilities(["CAP_NET_ADMIN"])
            .drop_capabilities(["CAP_SYS_MODULE"])
            .environment([("LANG", "C.UTF-8"), ("EMPTY", "")])
            .resources(resources)
            .devices(devices.clone())
            .nspawn_extra(extra.clone())
            .build();
        assert_eq!(m.name, "f40");
        assert_eq!(m.source, source);
        assert_eq!(m.distro, Distro::Fedora);
        assert_eq!(m.release.as_deref(), Some("40"));
        assert_eq!(m.mirror.as_deref(), Some("https://mirror.example/fedora"));
        assert_eq!(m.packages, ["systemd", "dnf"]);
        assert_eq!(m.hostname, "build.example.org");
        assert_eq!(m.units.enable, ["a.service"]);
        assert_eq!(m.units.disable, ["b.timer"]);
        assert_eq!(m.units.mask, ["c.socket"]);
        assert_eq!(m.root_password, Some(RootPassword::Env("ROOT_PW".into())));
        assert_eq!(m.securetty, ["pts/0"]);
        assert_eq!(m.launcher, Launcher::Machinectl);
        assert_eq!(m.state, DesiredState::Stopped);
        assert_eq!(m.bootstrapper, Some(BootstrapperKind::Dnf));
        assert_eq!(m.bootstrap_options, options);
        assert_eq!(
            m.pacman_conf.as_deref(),
            Some(Path::new("/etc/pacman.conf"))
        );
        assert_eq!(m.repos, [repo]);
        assert_eq!(m.autostart, Some(false));
        assert_eq!(m.network, network);
        assert_eq!(m.binds, [bind]);
        assert_eq!(m.private_users, Some(PrivateUsers::Pick));
        assert_eq!(m.capabilities, ["CAP_NET_ADMIN"]);
        assert_eq!(m.drop_capabilities, ["CAP_SYS_MODULE"]);
        assert_eq!(
            m.environment,
            [
                ("LANG".to_owned(), "C.UTF-8".to_owned()),
                ("EMPTY".to_owned(), String::new())
            ]
        );
        assert_eq!(m.resources, resources);
        assert!(!m.resources.is_empty());
        assert_eq!(m.devices, devices);
        assert_eq!(m.nspawn_extra, extra);
        assert!(!m.nspawn_extra.is_empty());

        let units = Units {
            enable: vec!["x.service".into()],
            ..Units::default()
        };
        let m = Machine::builder("a")
            .units(units.clone())
            .distro(Distro::Arch)
            .without_release()
            .build();
        assert_eq!(m.units, units);
        assert_eq!(m.release, None);
        // A hostname set before is kept; the name alone does not change it.
        assert_eq!(Machine::builder("a").hostname("b").build().hostname, "b");
    }

    #[test]
    fn a_built_machine_equals_the_loaded_one() {
        let text = "machines:
  web:
    distro: debian
    release: bookworm
    packages: [systemd, dbus]
    units:
      enable: [systemd-networkd]
      mask: [apt-daily.timer]
    root_password: {hash: '$6$salt$hash'}
    launcher: nspawn
    network: {mode: veth, ports: ['tcp:8080:80'], address: auto, nat: true}
    environment: {LANG: C.UTF-8}
    resources: {memory_max: 1G, cpu_quota: 50%}
    devices: [{path: /dev/fuse}]
    nspawn_extra: {Exec: {LimitNOFILE: 4096}}
";
        let spec = crate::load_str(text, Path::new("spec.yaml")).expect("valid spec");
        let loaded = &spec.machines["web"];
        let built = Machine::builder("web")
            .source(loaded.source.clone())
            .packages(["systemd", "dbus"])
            .enable(["systemd-networkd.service"])
            .mask(["apt-daily.timer"])
            .root_password(RootPassword::Hash("$6$salt$hash".into()))
            .network(Network {
                mode: Some(NetworkMode::Veth),
                ports: vec![Port {
                    protocol: Protocol::Tcp,
                    host: 8080,
                    machine: 80,
                }],
                address: Some(Address::Auto),
                nat: true,
                ..Network::default()
            })
            .environment([("LANG", "C.UTF-8")])
            .resources(Resources {
                memory_max: Some(Limit::Value(1 << 30)),
                cpu_quota: Some(50),
                ..Resources::default()
            })
            .devices(vec![Device {
                path: "/dev/fuse".into(),
                access: "rwm".into(),
            }])
            .nspawn_extra(NspawnExtra {
                exec: vec![("LimitNOFILE".into(), "4096".into())],
                ..NspawnExtra::default()
            })
            .build();
        assert_eq!(&built, loaded);
    }
}
