//! Bootstrappers: the tools that make a root from nothing. Each one builds
//! its exact command line (shown in the plan), checks its prerequisites, and
//! runs into a staging directory that apply renames into place.

mod debootstrap;

use std::path::Path;

use berth_schema::{Distro, Machine};

pub use debootstrap::Debootstrap;

/// A tool that creates a root filesystem.
pub trait Bootstrapper {
    /// The tool's name (`debootstrap`).
    fn name(&self) -> &'static str;
    /// The Debian package that installs the tool.
    fn package(&self) -> &'static str;
    /// The exact command line that bootstraps `machine` into `target`.
    fn command(&self, machine: &Machine, target: &Path) -> Vec<String>;
}

/// The bootstrapper for `machine`, or why there is none.
pub fn for_machine(machine: &Machine) -> Result<Box<dyn Bootstrapper>, String> {
    match machine.distro {
        Distro::Debian => Ok(Box::new(Debootstrap)),
        other => Err(format!(
            "distro: {other} has no bootstrapper in this version of berth \
             (supported: debian); it validates so specs can be written ahead"
        )),
    }
}
