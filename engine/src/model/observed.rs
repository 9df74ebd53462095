//! What observation found: the input of the pure planner. Built by
//! [`crate::observe`] on a real host, or by hand in the planner's tests.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use berth_schema::{BootstrapperKind, Launcher};
use indexmap::IndexMap;
use sha2::{Digest, Sha256};

use crate::drivers::files::observe::FilesObservation;
use crate::drivers::network::observe::NetworkObservation;
use crate::drivers::resources::ResourceObservation;
use crate::drivers::units::UnitState;
use crate::host::state::MachineRecord;

/// What berth found for one machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The machine name.
    pub name: String,
    /// Whether and how its root exists.
    pub root: RootPresence,
    /// berth's record, if berth manages it.
    pub record: Option<MachineRecord>,
    /// The configuration found inside the root (when the root is a directory).
    pub facts: Option<RootFacts>,
    /// Whether it runs, and under which launcher.
    pub run: RunState,
    /// The current `.nspawn` settings file, if any.
    pub settings: Option<String>,
    /// Whether it starts at host boot, under the launcher the spec names
    /// (None: that launcher has no boot integration, or the spec does not ask).
    pub autostart: Option<bool>,
    /// The concrete launcher the spec's `launcher:` means on this host
    /// (`auto` resolved), or why there is none.
    pub launcher: Result<Launcher, String>,
    /// How a root for this machine would be made, or why it cannot be.
    pub base: Result<BaseObservation, String>,
    /// Whether the root holds its own package manager (packages change in
    /// the guest; otherwise from the host, against the root).
    pub guest_package_manager: bool,
    /// Whether the host's networkd serves DHCP to containers' veth links
    /// (the plain nspawn launcher then defaults to a veth link).
    pub host_dhcp: bool,
    /// Where the machine's `.nspawn` file lives on this host.
    pub settings_path: PathBuf,
    /// The directory of machine roots on this host (for messages).
    pub machines_dir: PathBuf,
    /// Its network beyond the `.nspawn` file: addresses, the guest's
    /// networkd file and `/etc/hosts`, the host side, NAT.
    pub network: NetworkObservation,
    /// Its resource limits (live and persisted) and devices.
    pub resources: ResourceObservation,
    /// The paths its spec's `files:` manage (empty when not observed).
    pub files: FilesObservation,
    /// Its users, SSH keys and credentials (no secret in sight: password
    /// fields and credential digests never show in `Debug`).
    pub users: crate::drivers::users::UsersObservation,
    /// Set when a `moved:` entry renames the machine berth manages under
    /// another name to this one: the rest was observed as it will be after
    /// the rename (that machine's root and record, stopped).
    pub moved_from: Option<MovedFrom>,
}

/// The machine a `moved:` entry renames (see [`Observed::moved_from`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedFrom {
    /// Its current name.
    pub name: String,
    /// The launcher it runs under now (the rename stops it), if it runs.
    pub running: Option<Launcher>,
}

/// How the root of a machine would be made: the resolved bootstrapper, the
/// base cache entry it shares, and the exact bootstrap command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseObservation {
    /// The bootstrapper (the spec's, or the distro's default on this host).
    pub bootstrapper: BootstrapperKind,
    /// The base cache key id.
    pub key: String,
    /// The id of the cached base, when the cache holds it (the root is then a clone).
    pub cached: Option<String>,
    /// The bootstrap command line into the cache's staging root.
    pub command: Result<Vec<String>, String>,
    /// A tool the bootstrap needs that the host lacks: (program, Debian package).
    pub missing_tool: Option<(String, String)>,
}

/// The machine directory as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootPresence {
    /// Nothing there.
    Absent,
    /// A directory.
    Directory,
    /// Something else (a symlink, a file): berth will not touch it.
    Invalid(String),
}

/// Configuration read from inside a root.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RootFacts {
    /// The hostname in `/etc/hostname` (first line, trimmed), if the file exists.
    pub hostname: Option<String>,
    /// The state of each unit the spec names.
    pub units: IndexMap<String, UnitState>,
    /// root's password field in `/etc/shadow` (never rendered), if there is one.
    pub root_hash: Option<String>,
    /// The contents of `/etc/securetty`, if it exists.
    pub securetty: Option<String>,
    /// The installed packages, read from the root's package database
    /// (None when berth has no package manager for this root).
    pub packages: Option<BTreeSet<String>>,
}

/// Whether a machine runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// Running, started by berth with this launcher.
    Running {
        /// The launcher.
        launcher: Launcher,
        /// The supervising process.
        pid: i32,
        /// The settings fingerprint it was started with.
        settings: Option<String>,
    },
    /// Running, but not started by berth (e.g. `machinectl start` by hand).
    Foreign {
        /// The supervising process.
        pid: i32,
        /// How it was started, as far as can be told.
        how: String,
    },
    /// Not running.
    Stopped,
}

impl RunState {
    /// Whether the machine runs, whoever started it.
    pub fn is_running(&self) -> bool {
        !matches!(self, RunState::Stopped)
    }
}

/// `sha256:HEX` of `text`.
pub(crate) fn sha256(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::from("sha256:");
    for byte in digest {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

impl Observed {
    /// SHA-256 of each part of what was observed: `root` (presence and the
    /// configuration read inside), `record`, `run`, `settings`, `autostart`,
    /// `network` (the files berth writes for the network in the root),
    /// `resources`, `files` (the managed paths; for a secret only whether
    /// it matches, never its bytes or their hash).
    /// Only digests: root's salted hash from `/etc/shadow` never leaves.
    pub fn fingerprint(&self) -> BTreeMap<String, String> {
        let mut parts = BTreeMap::new();
        parts.insert(
            "root".to_owned(),
            sha256(&format!("{:?} {:?}", self.root, self.facts)),
        );
        parts.insert("record".to_owned(), sha256(&format!("{:?}", self.record)));
        parts.insert("run".to_owned(), sha256(&format!("{:?}", self.run)));
        parts.insert(
            "settings".to_owned(),
            sha256(&format!("{:?}", self.settings)),
        );
        parts.insert(
            "autostart".to_owned(),
            sha256(&format!("{:?}", self.autostart)),
        );
        parts.insert(
            "network".to_owned(),
            sha256(&self.network.fingerprint_text()),
        );
        parts.insert(
            "resources".to_owned(),
            sha256(&format!("{:?}", self.resources)),
        );
        if !self.files.entries.is_empty() {
            parts.insert("files".to_owned(), sha256(&format!("{:?}", self.files)));
        }
        parts.insert("users".to_owned(), sha256(&format!("{:?}", self.users)));
        if let Some(moved) = &self.moved_from {
            parts.insert("moved".to_owned(), sha256(&format!("{moved:?}")));
        }
        parts
    }

    /// What a changed part means, for "plan is stale" messages.
    pub fn describe_part(part: &str) -> &'static str {
        match part {
            "root" => "its root (hostname, units, packages, root password, securetty) changed",
            "record" => {
                "berth's record of it changed (it was applied to, adopted, started or destroyed since)"
            }
            "run" => "it was started or stopped",
            "settings" => "its .nspawn settings file changed",
            "autostart" => "its boot integration changed",
            "network" => "its network files (networkd's host0 file, /etc/hosts) changed",
            "resources" => "its resource limits or device access changed",
            "files" => "the paths its spec's files: manage changed",
            "users" => "its users, SSH keys or credentials changed",
            "moved" => "the machine it is renamed from was started, stopped or renamed",
            _ => "it changed",
        }
    }

    /// The first part of `then` that differs now, if any.
    pub fn changed_since(&self, then: &BTreeMap<String, String>) -> Option<&'static str> {
        let now = self.fingerprint();
        then.iter()
            .find(|(part, value)| now.get(*part) != Some(*value))
            .map(|(part, _)| Self::describe_part(part))
    }
}
