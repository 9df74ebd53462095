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
