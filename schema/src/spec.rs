//! The validated spec: what the engine plans against.
//!
//! Every value here has passed validation ([`crate::load`]); defaults are merged
//! in, unit names carry their suffix, and each machine knows where in which
//! file it was declared.

use std::fmt;
use std::path::PathBuf;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// A whole spec: every machine, from one file or a directory of files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Spec {
    /// Machines by name, in the order they were declared (files sorted by name).
    pub machines: IndexMap<String, Machine>,
}

/// Where something was declared: a file and, when known, a line and column (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Source {
    /// The spec file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }
}

/// One machine as the user wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// The machine name (also the directory name under the machines dir).
    pub name: String,
    /// Where the machine was declared (its key under `machines:`).
    pub source: Source,
    /// The distribution to bootstrap.
    pub distro: Distro,
    /// The release (suite for Debian/Ubuntu, version for Fedora); `None` for Arch.
    pub release: Option<String>,
    /// The mirror to bootstrap from; `None` means the bootstrapper's own default.
    pub mirror: Option<String>,
    /// The bootstrap package set, in spec order, without duplicates.
    pub packages: Vec<String>,
    /// The hostname; defaults to the machine name.
    pub hostname: String,
    /// Units to enable, disable and mask.
    pub units: Units,
    /// Where the root password comes from, if the spec manages it.
    pub root_password: Option<RootPassword>,
    /// Entries that must be present in `/etc/securetty`.
    pub securetty: Vec<String>,
    /// How the machine is started and stopped.
    pub launcher: Launcher,
    /// Whether the machine should be running.
    pub state: DesiredState,
    /// The bootstrap tool; `None` means the distro's default.
    pub bootstrapper: Option<BootstrapperKind>,
    /// Options passed to the bootstrap tool.
    pub bootstrap_options: BootstrapOptions,
    /// A pacman.conf for pacstrap (`-C`), resolved against the spec file's directory.
    pub pacman_conf: Option<PathBuf>,
    /// Package repositories for dnf (`--repofrompath`), in order.
    pub repos: Vec<Repo>,
    /// Start at host boot; `None` leaves boot integration alone.
    pub autostart: Option<bool>,
    /// Networking settings for the machine's `.nspawn` file.
    pub network: Network,
    /// Host directories bound into the machine.
    pub binds: Vec<Bind>,
    /// User namespacing (`PrivateUsers=`); `None` means `no`.
    pub private_users: Option<PrivateUsers>,
    /// Capabilities granted beyond nspawn's default set (`Capability=`).
    pub capabilities: Vec<String>,
    /// Capabilities dropped from the default set (`DropCapability=`).
    pub drop_capabilities: Vec<String>,
    /// Environment variables for the machine's init (`Environment=`), in order.
    pub environment: Vec<(String, String)>,
    /// How the root is stored: a full clone of the cached base, or an overlay on it.
    pub storage: Storage,
}

/// How a machine's root is made from its cached base.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// A clone of the base: a btrfs snapshot, a reflink copy, or a full copy.
    #[default]
    Copy,
    /// An overlayfs: the base read-only below, the machine's own changes above.
    Overlay,
}

impl Storage {
    /// The spec spelling (`copy`, `overlay`).
    pub fn as_str(self) -> &'static str {
        match self {
            Storage::Copy => "copy",
            Storage::Overlay => "overlay",
        }
    }

    /// Whether this is the default, `copy` (records and JSON leave it out).
    pub fn is_copy(&self) -> bool {
        *self == Storage::Copy
    }
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A bootstrap tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BootstrapperKind {
    /// debootstrap (Debian, Ubuntu).
    Debootstrap,
    /// mmdebstrap (Debian, Ubuntu); the default when installed.
    Mmdebstrap,
    /// pacstrap (Arch).
    Pacstrap,
    /// dnf --installroot (Fedora).
    Dnf,
}

impl BootstrapperKind {
    /// The spec spelling, which is also the tool's name.
    pub fn as_str(self) -> &'static str {
        match self {
            BootstrapperKind::Debootstrap => "debootstrap",
            BootstrapperKind::Mmdebstrap => "mmdebstrap",
            BootstrapperKind::Pacstrap => "pacstrap",
            BootstrapperKind::Dnf => "dnf",
        }
    }
}

impl fmt::Display for BootstrapperKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options for the bootstrap tool; each applies where the tool has it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BootstrapOptions {
    /// Share the host's package cache (pacstrap `-c`; apt's and dnf's caches for the others).
    pub host_cache: bool,
    /// debootstrap/mmdebstrap `--variant` (default `minbase`).
    pub variant: Option<String>,
    /// debootstrap/mmdebstrap `--components` (default: `main`; Ubuntu: `main,universe`).
    pub components: Vec<String>,
    /// dnf: install weak dependencies (default false: `--setopt=install_weak_deps=False`).
    pub install_weak_deps: bool,
}

/// A dnf repository given in the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    /// The repository id.
    pub id: String,
    /// Its base URL (`http(s)://` or `file:/`).
    pub url: String,
    /// Whether packages must be signed (default true).
    pub gpgcheck: bool,
}

/// How the machine is networked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Network {
    /// The kind of network.
    pub mode: NetworkMode,
    /// `Zone=`: a veth link joined to a zone bridge on the host.
    pub zone: Option<String>,
    /// `Bridge=`: a veth link joined to a host bridge.
    pub bridge: Option<String>,
    /// `Port=` forwards from the host to the machine.
    pub ports: Vec<Port>,
}

/// The kind of network a machine gets.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Share the host's network (`Private=no`, `VirtualEthernet=no`).
    #[default]
    Host,
    /// A private network with only loopback (`Private=yes`).
    Private,
    /// A private network with a veth link to the host (`VirtualEthernet=yes`).
    Veth,
}

impl NetworkMode {
    /// The spec spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Host => "host",
            NetworkMode::Private => "private",
            NetworkMode::Veth => "veth",
        }
    }
}

/// A port forward, `tcp:8080:80` (host port, machine port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Port {
    /// `tcp` or `udp`.
    pub protocol: Protocol,
    /// The port on the host.
    pub host: u16,
    /// The port in the machine.
    pub machine: u16,
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.protocol.as_str(),
            self.host,
            self.machine
        )
    }
}

/// A transport protocol for port forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A host directory bound into the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// The absolute host path.
    pub host: PathBuf,
    /// The absolute path inside the machine (defaults to the host path).
    pub machine: PathBuf,
    /// Bind read-only.
    pub read_only: bool,
}

/// User namespacing for the machine (`PrivateUsers=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PrivateUsers {
    /// A free UID/GID range picked by nspawn (`PrivateUsers=pick`).
    Pick,
    /// No user namespace (`PrivateUsers=no`).
    No,
    /// A user namespace mapping IDs 1:1 (`PrivateUsers=identity`).
    Identity,
}

impl PrivateUsers {
    /// The spec and `.nspawn` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PrivateUsers::Pick => "pick",
            PrivateUsers::No => "no",
            PrivateUsers::Identity => "identity",
        }
    }
}

/// Units named by the spec, each with its type suffix (`foo` became `foo.service`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Units {
    /// Units that must be enabled.
    pub enable: Vec<String>,
    /// Units that must be disabled.
    pub disable: Vec<String>,
    /// Units that must be masked.
    pub mask: Vec<String>,
}

/// Where the root password comes from. Never a plaintext value in the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootPassword {
    /// A crypt(3) hash, written to `/etc/shadow` as is.
    Hash(String),
    /// The name of an environment variable holding the password.
    Env(String),
    /// A file holding the password; already resolved against the spec file's directory.
    File(PathBuf),
}

/// A distribution berth can bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Distro {
    /// Debian, via debootstrap.
    Debian,
    /// Ubuntu, via debootstrap.
    Ubuntu,
    /// Arch Linux, via pacstrap.
    Arch,
    /// Fedora, via dnf --installroot.
    Fedora,
}

impl Distro {
    /// The spec spelling (`debian`, `ubuntu`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Distro::Debian => "debian",
            Distro::Ubuntu => "ubuntu",
            Distro::Arch => "arch",
            Distro::Fedora => "fedora",
        }
    }
}

impl fmt::Display for Distro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a machine is started and stopped.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Launcher {
    /// machinectl when the host was booted with systemd, nspawn otherwise.
    #[default]
    Auto,
    /// `machinectl start|stop NAME`.
    Machinectl,
    /// `systemctl start|stop systemd-nspawn@NAME.service`.
    NspawnUnit,
    /// A plain `systemd-nspawn --boot` process that berth supervises.
    Nspawn,
}

impl Launcher {
    /// The spec spelling (`auto`, `machinectl`, `nspawn-unit`, `nspawn`).
    pub fn as_str(self) -> &'static str {
        match self {
            Launcher::Auto => "auto",
            Launcher::Machinectl => "machinectl",
            Launcher::NspawnUnit => "nspawn-unit",
            Launcher::Nspawn => "nspawn",
        }
    }
}

impl fmt::Display for Launcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a machine should be running.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    /// Booted and running.
    #[default]
    Running,
    /// Present on disk but not running.
    Stopped,
}

impl fmt::Display for DesiredState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DesiredState::Running => "running",
            DesiredState::Stopped => "stopped",
        })
    }
}
