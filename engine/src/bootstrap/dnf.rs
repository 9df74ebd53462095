//! dnf --installroot: Fedora roots.

use std::path::Path;

use berth_schema::{BootstrapperKind, Machine};

use super::{Bootstrapper, Requirement};
use crate::packages::{Dnf as DnfPackages, PackageManager};

/// `dnf --installroot=TARGET --releasever=RELEASE install ...`.
#[derive(Debug, Clone, Copy)]
pub struct Dnf;

impl Bootstrapper for Dnf {
    fn kind(&self) -> BootstrapperKind {
        BootstrapperKind::Dnf
    }

    fn requirements(&self) -> &'static [Requirement] {
        &[Requirement {
            program: "dnf",
            package: "dnf",
        }]
    }

    fn command(&self, _machine: &Machine, _target: &Path) -> Result<Vec<String>, String> {
        Err("bootstrapper: dnf is not available in this version of berth".into())
    }

    fn package_manager(&self) -> &'static dyn PackageManager {
        &DnfPackages
    }
}
