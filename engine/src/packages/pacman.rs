//! pacman: the installed set from the local database (`/var/lib/pacman/local`).

use std::collections::BTreeSet;

use super::PackageManager;
use crate::confined::Root;
use crate::error::EngineError;

/// Arch's pacman.
#[derive(Debug, Clone, Copy)]
pub struct Pacman;

impl PackageManager for Pacman {
    fn name(&self) -> &'static str {
        "pacman"
    }

    fn installed(&self, _root: &Root) -> Result<BTreeSet<String>, EngineError> {
        Ok(BTreeSet::new())
    }

    fn install(&self, _packages: &[String]) -> Vec<Vec<String>> {
        Vec::new()
    }

    fn guest_program(&self) -> &'static str {
        "/usr/bin/pacman"
    }

    fn remove(&self, _packages: &[String]) -> Vec<Vec<String>> {
        Vec::new()
    }
}
