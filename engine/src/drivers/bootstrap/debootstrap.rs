//! debootstrap: Debian and Ubuntu roots.

use std::path::Path;

use berth_schema::{BootstrapperKind, Machine};

use berth_schema::Distro;

use super::{Bootstrapper, DebianTools, Requirement, UBUNTU_KEYRING};
use crate::drivers::packages::{Apt, PackageManager};
use crate::host::Host;

/// `debootstrap --variant=minbase --include=... --components=... RELEASE TARGET [MIRROR]`.
#[derive(Debug, Clone, Copy)]
pub struct Debootstrap;

impl Bootstrapper for Debootstrap {
    fn kind(&self) -> BootstrapperKind {
        BootstrapperKind::Debootstrap
    }

    fn requirements(&self) -> &'static [Requirement] {
        &[Requirement {
            program: "debootstrap",
            package: "debootstrap",
        }]
    }

    fn command(
        &self,
        host: &dyn Host,
        machine: &Machine,
        target: &Path,
    ) -> Result<Vec<String>, String> {
        command_for(machine, target, &DebianTools::probe(host, machine))
    }

    fn package_manager(&self) -> &'static dyn PackageManager {
        &Apt
    }
}

/// The debootstrap line for `machine` into `target` with the host's `tools`.
///
/// A release debootstrap has no script of its own for (Ubuntu 24.04 `noble`
/// on Debian 12's debootstrap, a Debian release newer than the tool) is
/// made with the script its whole family uses, passed as debootstrap's
/// fourth argument (`SUITE TARGET MIRROR SCRIPT`): `gutsy` for every Ubuntu
/// release since 7.10, `sid` for Debian. The mirror is then required: the
/// spec's, or the default that script itself defines.
pub(crate) fn command_for(
    machine: &Machine,
    target: &Path,
    tools: &DebianTools,
) -> Result<Vec<String>, String> {
    let release = machine.release.as_deref().unwrap_or("");
    if machine.distro == Distro::Ubuntu && !tools.ubuntu_keyring {
        return Err(format!(
            "debootstrap cannot check Ubuntu's archive: Ubuntu's archive keyring \
             {UBUNTU_KEYRING} is not installed (install the package `ubuntu-keyring`)"
        ));
    }
    let (mirror, script) = if !tools.scripts_dir || tools.release_script {
        (machine.mirror.as_deref(), None)
    } else {
        let family = match machine.distro {
            Distro::Ubuntu => "gutsy",
            _ => "sid",
        };
        let Some(script) = tools.family_script.as_deref() else {
            return Err(format!(
                "debootstrap has no script for {release} (and no `{family}` script to use \
                 instead): install a newer debootstrap, or set `bootstrapper: mmdebstrap`"
            ));
        };
        let Some(mirror) = machine.mirror.as_deref().or(tools.family_mirror.as_deref()) else {
            return Err(format!(
                "debootstrap has no script for {release}; its `{family}` script can make it, \
                 but then needs a mirror and defines none for this architecture: set `mirror:`"
            ));
        };
        (Some(mirror), Some(script))
    };
    // With host_cache, debootstrap keeps downloaded .debs in apt's
    // archive cache and reuses them.
    super::debian_command(
        "debootstrap",
        &[],
        &["--cache-dir=/var/cache/apt/archives"],
        machine,
        target,
        mirror,
        script,
    )
}
