//! mmdebstrap: Debian and Ubuntu roots, 3-6x faster than debootstrap.

use std::path::Path;

use berth_schema::{BootstrapperKind, Machine};

use super::{Bootstrapper, Requirement};
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
        _host: &dyn Host,
        machine: &Machine,
        target: &Path,
    ) -> Result<Vec<String>, String> {
        // With host_cache: mmdebstrap's documented way to share apt's
        // archive cache with the host.
        super::debian_command(
            "mmdebstrap",
            &["--mode=root"],
            &[
                "--setup-hook=mkdir -p /var/cache/apt/archives \"$1\"/var/cache/apt/archives",
                "--setup-hook=sync-in /var/cache/apt/archives /var/cache/apt/archives",
                "--customize-hook=sync-out /var/cache/apt/archives /var/cache/apt/archives",
            ],
            machine,
            target,
        )
    }

    fn package_manager(&self) -> &'static dyn PackageManager {
        &Apt
    }
}
