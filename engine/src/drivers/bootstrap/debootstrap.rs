//! debootstrap: Debian and Ubuntu roots.

use std::path::Path;

use berth_schema::{BootstrapperKind, Machine};

use super::{Bootstrapper, Requirement};
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
        _host: &dyn Host,
        machine: &Machine,
        target: &Path,
    ) -> Result<Vec<String>, String> {
        // With host_cache, debootstrap keeps downloaded .debs in apt's
        // archive cache and reuses them.
        super::debian_command(
            "debootstrap",
            &[],
            &["--cache-dir=/var/cache/apt/archives"],
            machine,
            target,
        )
    }

    fn package_manager(&self) -> &'static dyn PackageManager {
        &Apt
    }
}
