//! debootstrap: Debian roots.

use std::path::Path;

use berth_schema::Machine;

use super::Bootstrapper;

/// `debootstrap --variant=minbase --include=... RELEASE TARGET [MIRROR]`.
#[derive(Debug, Clone, Copy)]
pub struct Debootstrap;

impl Bootstrapper for Debootstrap {
    fn name(&self) -> &'static str {
        "debootstrap"
    }

    fn package(&self) -> &'static str {
        "debootstrap"
    }

    fn command(&self, machine: &Machine, target: &Path) -> Vec<String> {
        let mut cmd = vec!["debootstrap".to_owned(), "--variant=minbase".to_owned()];
        if !machine.packages.is_empty() {
            cmd.push(format!("--include={}", machine.packages.join(",")));
        }
        // Validation guarantees release, packages and mirror cannot be read as
        // options; `--` is not accepted by debootstrap, so positional order is kept.
        cmd.push(machine.release.clone().unwrap_or_default());
        cmd.push(target.display().to_string());
        // No mirror argument: debootstrap's own default, never a hard-coded host.
        if let Some(mirror) = &machine.mirror {
            cmd.push(mirror.clone());
        }
        cmd
    }
}
