//! Bootstrappers: the tools that make a root from nothing. Each one builds
//! its exact command line (shown in the plan and while applying), names the
//! programs it needs and the Debian packages that install them, and runs
//! into a staging directory that apply renames into place.

mod debootstrap;
mod dnf;
mod mmdebstrap;
mod pacstrap;

use std::path::Path;

use berth_schema::{BootstrapperKind, Distro, Machine};

pub use debootstrap::Debootstrap;
pub use dnf::Dnf;
pub use mmdebstrap::Mmdebstrap;
pub use pacstrap::Pacstrap;

use crate::host;
use crate::packages::PackageManager;

/// A program a bootstrapper needs, and the Debian package that installs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// The program looked up on PATH.
    pub program: &'static str,
    /// The Debian package that installs it.
    pub package: &'static str,
}

/// A tool that creates a root filesystem.
pub trait Bootstrapper: Send + Sync {
    /// Which tool this is.
    fn kind(&self) -> BootstrapperKind;

    /// The tool's name (`debootstrap`).
    fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The programs the tool needs on PATH.
    fn requirements(&self) -> &'static [Requirement];

    /// The exact command line that bootstraps `machine` into `target`.
    fn command(&self, machine: &Machine, target: &Path) -> Result<Vec<String>, String>;

    /// Extra environment variables for the command.
    fn env(&self, _machine: &Machine) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Whether the tool wants the target directory to exist already
    /// (pacstrap refuses a missing one; the Debian tools create it).
    fn needs_existing_target(&self) -> bool {
        false
    }

    /// The package manager of the roots this tool makes.
    fn package_manager(&self) -> &'static dyn PackageManager;
}

/// The first requirement of `bootstrapper` missing from PATH, as an error message.
pub fn missing_requirement(bootstrapper: &dyn Bootstrapper) -> Option<Requirement> {
    bootstrapper
        .requirements()
        .iter()
        .find(|r| host::which(r.program).is_none())
        .copied()
}

/// The bootstrapper for `machine`: the spec's `bootstrapper:`, else the
/// distro's default (mmdebstrap for Debian when installed, else debootstrap).
pub fn for_machine(machine: &Machine) -> Result<Box<dyn Bootstrapper>, String> {
    let kind = match machine.bootstrapper {
        Some(kind) => kind,
        None => default_kind(machine),
    };
    let fits = matches!(
        (machine.distro, kind),
        (
            Distro::Debian | Distro::Ubuntu,
            BootstrapperKind::Debootstrap | BootstrapperKind::Mmdebstrap
        ) | (Distro::Arch, BootstrapperKind::Pacstrap)
            | (Distro::Fedora, BootstrapperKind::Dnf)
    );
    if !fits {
        return Err(format!(
            "bootstrapper: {kind} cannot bootstrap {}",
            machine.distro
        ));
    }
    match kind {
        BootstrapperKind::Debootstrap => Ok(Box::new(Debootstrap)),
        BootstrapperKind::Mmdebstrap => Ok(Box::new(Mmdebstrap)),
        BootstrapperKind::Pacstrap => Ok(Box::new(Pacstrap)),
        BootstrapperKind::Dnf => Ok(Box::new(Dnf)),
    }
}

/// The default tool for a distro on this host.
fn default_kind(machine: &Machine) -> BootstrapperKind {
    match machine.distro {
        // mmdebstrap is 3-6x faster; without a mirror, Ubuntu needs
        // debootstrap, whose scripts know Ubuntu's default archive.
        Distro::Debian if host::which("mmdebstrap").is_some() => BootstrapperKind::Mmdebstrap,
        Distro::Ubuntu if machine.mirror.is_some() && host::which("mmdebstrap").is_some() => {
            BootstrapperKind::Mmdebstrap
        }
        Distro::Debian | Distro::Ubuntu => BootstrapperKind::Debootstrap,
        Distro::Arch => BootstrapperKind::Pacstrap,
        Distro::Fedora => BootstrapperKind::Dnf,
    }
}

/// The components for a Debian-family bootstrap: the spec's, else `main`
/// (Debian) or `main,universe` (Ubuntu).
pub(crate) fn components(machine: &Machine) -> Vec<String> {
    if !machine.bootstrap_options.components.is_empty() {
        return machine.bootstrap_options.components.clone();
    }
    match machine.distro {
        Distro::Ubuntu => vec!["main".into(), "universe".into()],
        _ => vec!["main".into()],
    }
}
