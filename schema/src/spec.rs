//! The validated spec: what the engine plans against.
//!
//! Every value here has passed validation ([`crate::load`]); defaults are merged
//! in, unit names carry their suffix, and each machine knows where in which
//! file it was declared.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// A whole spec: every machine, from one file or a directory of files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Spec {
    /// Machines by name, in the order they were declared (files sorted by name).
    pub machines: IndexMap<String, Machine>,
    /// The hosts and which machine runs where (`hosts:`, `host:`); empty
    /// when every machine is local.
    pub fleet: crate::hosts::Fleet,
    /// The top-level `moved:` entries: machines renamed in the spec, whose
    /// existing machine berth renames instead of destroying and creating.
    pub moved: Vec<Moved>,
}

/// One `moved:` entry: the machine berth knows as `from` is now `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The old name (not a machine of the spec).
    pub from: String,
    /// The new name (a machine of the spec).
    pub to: String,
    /// Where the entry was declared.
    pub source: Source,
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
    /// `prevent_destroy: true`: where it is written (on the machine or
    /// under `defaults:`); `None` when unset or false. berth then refuses
    /// to destroy the machine or replace its root.
    pub prevent_destroy: Option<Source>,
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
    /// Resource limits for the running machine (cgroup properties).
    pub resources: Resources,
    /// Host devices made available in the machine (`Bind=` plus `DeviceAllow=`).
    pub devices: Vec<Device>,
    /// Extra keys merged into the `.nspawn` file berth writes.
    pub nspawn_extra: NspawnExtra,
    /// Template variables: the file's top-level `vars`, then `defaults`',
    /// then the machine's own (a later one wins, key by key).
    pub vars: std::collections::BTreeMap<String, serde_json::Value>,
    /// Files, directories and links berth manages in the root, in spec order.
    pub files: Vec<ManagedFile>,
    /// Users berth manages in the root, in spec order.
    pub users: Vec<User>,
    /// root's SSH authorized keys (`/root/.ssh/authorized_keys`); `None`
    /// leaves the file alone.
    pub ssh_authorized_keys: Option<Vec<String>>,
    /// systemd credentials handed to the machine at start, in spec order.
    pub credentials: Vec<Credential>,
    /// Snapshots berth takes on its own (`snapshots:`).
    pub snapshots: Snapshots,
    /// Health checks run in the guest after an apply changed the running
    /// machine (`health:`); `None` when the spec has none.
    pub health: Option<Health>,
}

/// `snapshots: {before_apply: true, keep: 3}`: a snapshot of the root
/// before every apply that changes it, the newest `keep` of them kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshots {
    /// Take a snapshot before an apply changes the root.
    pub before_apply: bool,
    /// How many of those snapshots to keep (1–1000; default 3).
    pub keep: u32,
}

impl Default for Snapshots {
    fn default() -> Self {
        Snapshots {
            before_apply: false,
            keep: 3,
        }
    }
}

/// Health checks of a running machine (`health:`): run in the guest after
/// an apply changed it, all retried until they pass or `timeout` ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Units that must be active (`systemctl is-active`), suffixed.
    pub units: Vec<String>,
    /// A command run in the guest that must exit 0; `None`: none.
    pub command: Option<Vec<String>>,
    /// How long the checks may take to pass (default 60 s).
    pub timeout: std::time::Duration,
    /// Where the `health:` mapping is in the spec.
    pub source: Source,
}

impl Health {
    /// The timeout when the spec gives none.
    pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
}

/// A file, directory or link berth manages inside the root (`files:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFile {
    /// The absolute, normalised path inside the machine.
    pub path: PathBuf,
    /// What should be there.
    pub content: FileContent,
    /// The mode (permission bits, `0o640`); `None`: 0644 for files, 0755
    /// for directories (links have none).
    pub mode: Option<u32>,
    /// The owner, a name or a numeric id, resolved in the guest's
    /// `/etc/passwd`; `None`: root.
    pub owner: Option<String>,
    /// The group, a name or a numeric id, resolved in the guest's
    /// `/etc/group`; `None`: root.
    pub group: Option<String>,
    /// Replace something of another kind (a directory where a file should
    /// be, or the other way round); otherwise that is an error.
    pub replace: bool,
    /// Where the entry was declared.
    pub source: Source,
}

/// What a managed path holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// Text given inline (`content:`).
    Content(String),
    /// A file next to the spec, copied as is, binary or not (`source:`);
    /// already resolved against the spec file's directory.
    Source(PathBuf),
    /// A minijinja template next to the spec (`template:`), rendered with
    /// the machine's vars and facts; already resolved.
    Template(PathBuf),
    /// A secret value (`secret: {env: VAR}` or `{file: PATH}`): never shown,
    /// never in berth's state.
    Secret(SecretSource),
    /// A directory (`type: directory`).
    Directory,
    /// A symbolic link to this target (`link:`).
    Link(PathBuf),
    /// Nothing: removed if present (`state: absent`).
    Absent,
}

impl FileContent {
    /// Whether the content is sensitive (never shown or hashed).
    pub fn is_secret(&self) -> bool {
        matches!(self, FileContent::Secret(_))
    }
}

/// Where a secret comes from: never a plaintext value in the spec.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretSource {
    /// The name of an environment variable of berth's.
    Env(String),
    /// A file holding the value; already resolved against the spec file's directory.
    File(PathBuf),
}

/// A user berth manages in the root (`users:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The login name.
    pub name: String,
    /// Present (default) or absent.
    pub present: bool,
    /// A system user (`useradd --system`: a system uid, no aging).
    pub system: bool,
    /// Supplementary groups, which must exist in the guest.
    pub groups: Vec<String>,
    /// The login shell; `None`: the guest's default, and left alone later.
    pub shell: Option<String>,
    /// The home directory; `None`: `/home/NAME` (the guest's default).
    pub home: Option<PathBuf>,
    /// The user's SSH authorized keys; `None` leaves the file alone.
    pub ssh_authorized_keys: Option<Vec<String>>,
    /// The password, from the same sources as `root_password`; `None`
    /// leaves it alone (a new user's is locked).
    pub password: Option<RootPassword>,
    /// With `state: absent`, remove the home directory too (default: kept).
    pub remove_home: bool,
    /// Where the user was declared.
    pub source: Source,
}

/// A systemd credential handed to the machine (`credentials:`): services
/// read it from `$CREDENTIALS_DIRECTORY`; never written into the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The credential's name (`db-password`).
    pub name: String,
    /// Where its value comes from.
    pub source: SecretSource,
}

/// Resource limits, applied live to the running machine's cgroup and kept
/// for its next start. `None` leaves a limit unset (the kernel's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resources {
    /// `MemoryMax=` / `memory.max`: the hard memory limit, in bytes.
    pub memory_max: Option<Limit>,
    /// `MemoryHigh=` / `memory.high`: the throttling threshold, in bytes.
    pub memory_high: Option<Limit>,
    /// `CPUQuota=` / `cpu.max`: CPU time in percent of one CPU (`150` = 1.5 CPUs).
    pub cpu_quota: Option<u32>,
    /// `CPUWeight=` / `cpu.weight`: 1–10000 (default 100).
    pub cpu_weight: Option<u64>,
    /// `TasksMax=` / `pids.max`: the number of tasks.
    pub tasks_max: Option<Limit>,
    /// `IOWeight=` / `io.weight`: 1–10000 (default 100).
    pub io_weight: Option<u64>,
}

impl Resources {
    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }
}

/// A limit: a number (bytes for memory, tasks for `tasks_max`) or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// At most this many bytes or tasks.
    Value(u64),
    /// No limit (`infinity`, cgroup `max`).
    Infinity,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Value(n) => write!(f, "{n}"),
            Limit::Infinity => f.write_str("infinity"),
        }
    }
}

/// A host device made available in the machine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Device {
    /// The absolute device node path (`/dev/fuse`), the same inside.
    pub path: PathBuf,
    /// The access granted: a non-empty subset of `rwm`, in that order.
    pub access: String,
}

/// Keys merged into the `.nspawn` file, per section, in spec order. A key
/// given here replaces every line berth would write for the same key in
/// that section; a list gives the key once per item.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NspawnExtra {
    /// `[Exec]` keys and values.
    pub exec: Vec<(String, String)>,
    /// `[Files]` keys and values.
    pub files: Vec<(String, String)>,
    /// `[Network]` keys and values.
    pub network: Vec<(String, String)>,
}

impl NspawnExtra {
    /// Whether nothing is merged.
    pub fn is_empty(&self) -> bool {
        self.exec.is_empty() && self.files.is_empty() && self.network.is_empty()
    }
}

/// An IPv4 address with its prefix length, `10.0.0.5/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Cidr {
    /// The address.
    pub address: Ipv4Addr,
    /// The prefix length, 0–32.
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// The network mask as a number.
    pub fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix.min(32)))
        }
    }

    /// The network address (host bits cleared).
    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) & self.mask())
    }

    /// Whether `addr` lies in this network.
    pub fn contains(self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & self.mask() == u32::from(self.network())
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// The machine's address on its private link (`network.address`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Address {
    /// A fixed address and prefix.
    Static(Ipv4Cidr),
    /// A free address drawn from `network.pool`, recorded by berth.
    Auto,
}

/// The pool `network.address: auto` draws from when the spec names none.
pub const DEFAULT_POOL: Ipv4Cidr = Ipv4Cidr {
    address: Ipv4Addr::new(10, 231, 0, 0),
    prefix: 16,
};

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
    /// The kind of network; `None` is the launcher's default (veth under
    /// machinectl and nspawn-unit, as systemd-nspawn@.service does).
    pub mode: Option<NetworkMode>,
    /// `Zone=`: a veth link joined to a zone bridge on the host.
    pub zone: Option<String>,
    /// `Bridge=`: a veth link joined to a host bridge.
    pub bridge: Option<String>,
    /// `Port=` forwards from the host to the machine.
    pub ports: Vec<Port>,
    /// The machine's IPv4 address on `host0`; `None` leaves addressing to
    /// DHCP (the host's networkd).
    pub address: Option<Address>,
    /// Where `address: auto` draws from (default [`DEFAULT_POOL`]).
    pub pool: Option<Ipv4Cidr>,
    /// The machine's default gateway (default: the host side of its link,
    /// the first address of its network).
    pub gateway: Option<Ipv4Addr>,
    /// Masquerade the machine's outbound traffic (an nftables table berth owns).
    pub nat: bool,
    /// Write the spec's other machines on this host into `/etc/hosts`.
    pub hosts: bool,
}

impl Network {
    /// Whether the spec asks for a veth link (a mode, zone or bridge).
    pub fn wants_link(&self) -> bool {
        self.mode == Some(NetworkMode::Veth) || self.zone.is_some() || self.bridge.is_some()
    }
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
