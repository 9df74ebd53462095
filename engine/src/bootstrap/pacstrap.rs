//! pacstrap: Arch roots.

use std::path::Path;

use berth_schema::{BootstrapperKind, Machine};

use super::{Bootstrapper, Requirement};
use crate::packages::{PackageManager, Pacman};

/// `pacstrap` (never `-i`).
#[derive(Debug, Clone, Copy)]
pub struct Pacstrap;

impl Bootstrapper for Pacstrap {
    fn kind(&self) -> BootstrapperKind {
        BootstrapperKind::Pacstrap
    }

    fn requirements(&self) -> &'static [Requirement] {
        &[Requirement {
            program: "pacstrap",
            package: "arch-install-scripts",
        }]
    }

    fn command(&self, _machine: &Machine, _target: &Path) -> Result<Vec<String>, String> {
        Err("bootstrapper: pacstrap is not available in this version of berth".into())
    }

    fn package_manager(&self) -> &'static dyn PackageManager {
        &Pacman
    }
}
