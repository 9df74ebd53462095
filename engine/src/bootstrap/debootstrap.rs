//! debootstrap: Debian and Ubuntu roots.

use std::path::Path;

use berth_schema::{BootstrapperKind, Machine};

use super::{Bootstrapper, Requirement};
use crate::packages::{Apt, PackageManager};

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

    fn command(&self, machine: &Machine, target: &Path) -> Result<Vec<String>, String> {
        let options = &machine.bootstrap_options;
        let mut cmd = vec![
            "debootstrap".to_owned(),
            format!(
                "--variant={}",
                options.variant.as_deref().unwrap_or("minbase")
            ),
        ];
        if !machine.packages.is_empty() {
            cmd.push(format!("--include={}", machine.packages.join(",")));
        }
        cmd.push(format!(
            "--components={}",
            super::components(machine).join(",")
        ));
        if options.host_cache {
            // debootstrap keeps downloaded .debs here and reuses them.
            cmd.push("--cache-dir=/var/cache/apt/archives".to_owned());
        }
        // Validation guarantees release and mirror cannot be read as options;
        // debootstrap does not accept `--`, so positional order is kept.
        let release = machine
            .release
            .clone()
            .ok_or_else(|| "release: debootstrap needs a release".to_owned())?;
        cmd.push(release);
        cmd.push(target.display().to_string());
        // No mirror argument: debootstrap's own default, never a hard-coded host.
        if let Some(mirror) = &machine.mirror {
            cmd.push(mirror.clone());
        }
        Ok(cmd)
    }

    fn package_manager(&self) -> &'static dyn PackageManager {
        &Apt
    }
}
