//! mmdebstrap: Debian and Ubuntu roots, 3-6x faster than debootstrap.

use std::path::Path;

use berth_schema::{BootstrapperKind, Machine};

use berth_schema::Distro;

use super::{Bootstrapper, DebianTools, Requirement, UBUNTU_KEYRING};
use crate::drivers::packages::{Apt, PackageManager};
use crate::host::Host;

/// `mmdebstrap --variant=minbase --include=... --components=... RELEASE TARGET [MIRROR]`.
#[derive(Debug, Clone, Copy)]
pub struct Mmdebstrap;

impl Bootstrapper for Mmdebstrap {
    fn kind(&self) -> BootstrapperKind {
        BootstrapperKind::Mmdebstrap
    }

    fn requirements(&self) -> &'static [Requirement] {
        &[Requirement {
            program: "mmdebstrap",
            package: "mmdebstrap",
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

/// The mmdebstrap line for `machine` into `target` with the host's `tools`.
///
/// mmdebstrap takes any suite name. For Ubuntu it is given Ubuntu's
/// archive keyring explicitly (its own guess depends on the host knowing
/// the suite), and, without `mirror:`, the default archive debootstrap's
/// `gutsy` script defines, when that script is installed.
pub(crate) fn command_for(
    machine: &Machine,
    target: &Path,
    tools: &DebianTools,
) -> Result<Vec<String>, String> {
    let keyring = format!("--keyring={UBUNTU_KEYRING}");
    let mut options = vec!["--mode=root"];
    let mut mirror = machine.mirror.as_deref();
    if machine.distro == Distro::Ubuntu {
        if !tools.ubuntu_keyring {
            return Err(format!(
                "mmdebstrap cannot check Ubuntu's archive: Ubuntu's archive keyring \
                 {UBUNTU_KEYRING} is not installed (install the package `ubuntu-keyring`)"
            ));
        }
        options.push(&keyring);
        mirror = mirror.or(tools.family_mirror.as_deref());
    }
    // With host_cache: mmdebstrap's documented way to share apt's
    // archive cache with the host.
    super::debian_command(
        "mmdebstrap",
        &options,
        &[
            "--setup-hook=mkdir -p /var/cache/apt/archives \"$1\"/var/cache/apt/archives",
            "--setup-hook=sync-in /var/cache/apt/archives /var/cache/apt/archives",
            "--customize-hook=sync-out /var/cache/apt/archives /var/cache/apt/archives",
        ],
        machine,
        target,
        mirror,
        None,
    )
}
