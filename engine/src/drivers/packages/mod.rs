//! Package managers inside machine roots: the installed set, read natively
//! from the root's package database (confined to the root), and the
//! commands that install or remove packages, run inside the machine.

pub(crate) mod apt;
pub(crate) mod pacman;
pub(crate) mod rpm;

use std::collections::BTreeSet;
use std::path::Path;

use berth_schema::Machine;

pub use apt::Apt;
pub use pacman::Pacman;
pub use rpm::Dnf;

use crate::confined::Root;
use crate::error::EngineError;
use crate::host::Host;

/// A distribution's package manager.
pub trait PackageManager: Send + Sync {
    /// Its name, as shown in plans (`apt-get`, `pacman`, `dnf`).
    fn name(&self) -> &'static str;

    /// The names of the packages installed in `root`.
    fn installed(&self, host: &dyn Host, root: &Root) -> Result<BTreeSet<String>, EngineError>;

    /// The commands (run in order inside the machine) that install `packages`.
    fn install(&self, packages: &[String]) -> Vec<Vec<String>>;

    /// The commands (run in order inside the machine) that remove `packages`.
    fn remove(&self, packages: &[String]) -> Vec<Vec<String>>;

    /// Environment for those commands.
    fn env(&self) -> Vec<(&'static str, &'static str)> {
        Vec::new()
    }

    /// The program (path inside the root) that `install`/`remove` run.
    /// When the root lacks it, berth falls back to `host_install`/`host_remove`.
    fn guest_program(&self) -> &'static str;

    /// Commands run on the host against the root at `root` (e.g. `pacman
    /// --root`), for roots without their own package manager; None when the
    /// host cannot do it.
    fn host_install(
        &self,
        _host: &dyn Host,
        _root: &Path,
        _machine: &Machine,
        _packages: &[String],
    ) -> Option<Vec<Vec<String>>> {
        None
    }

    /// Like [`PackageManager::host_install`], for removal.
    fn host_remove(
        &self,
        _host: &dyn Host,
        _root: &Path,
        _machine: &Machine,
        _packages: &[String],
    ) -> Option<Vec<Vec<String>>> {
        None
    }
}
