//! mmdebstrap: Debian and Ubuntu roots, 3-6x faster than debootstrap.

use std::path::Path;

use berth_schema::{BootstrapperKind, Machine};

use super::{Bootstrapper, Requirement};
use crate::packages::{Apt, PackageManager};

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

    fn command(&self, machine: &Machine, target: &Path) -> Result<Vec<String>, String> {
        let options = &machine.bootstrap_options;
        let mut cmd = vec![
            "mmdebstrap".to_owned(),
            "--mode=root".to_owned(),
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
            // mmdebstrap's documented way to share apt's archive cache with the host.
            cmd.push(
                "--setup-hook=mkdir -p /var/cache/apt/archives \"$1\"/var/cache/apt/archives"
                    .to_owned(),
            );
            cmd.push(
                "--setup-hook=sync-in /var/cache/apt/archives /var/cache/apt/archives".to_owned(),
            );
            cmd.push(
                "--customize-hook=sync-out /var/cache/apt/archives /var/cache/apt/archives"
                    .to_owned(),
            );
        }
        let release = machine
            .release
            .clone()
            .ok_or_else(|| "release: mmdebstrap needs a release".to_owned())?;
        cmd.push(release);
        cmd.push(target.display().to_string());
        // Without a mirror, mmdebstrap's own default (never a hard-coded host).
        if let Some(mirror) = &machine.mirror {
            cmd.push(mirror.clone());
        }
        Ok(cmd)
    }

    fn package_manager(&self) -> &'static dyn PackageManager {
        &Apt
    }
}
