#![cfg_attr(test, allow(clippy::unwrap_used))]
//! berth's engine: observe machines on disk, plan typed actions, execute them.
//!
//! Three stages with data between them (see the README's "How it works"):
//!
//! - [`observe`] reads the real state of a machine through a [`Host`](host::Host): its
//!   root, berth's record, whether and how it runs, the resolved
//!   bootstrapper and launcher, the base cache, missing tools. The result is
//!   an [`Observed`](model::observed::Observed) value.
//! - [`planner`] is a pure function `plan(&Machine, &Observed) -> MachinePlan`:
//!   it touches no file, PATH, environment or clock, and every [`Action`]
//!   carries its whole payload (the bootstrap argv, each file's content,
//!   unit verbs, a typed launcher, package-manager commands).
//! - [`execute`] runs the approved actions as they are, after checking that
//!   what was observed has not changed since (`plan is stale: ...`).
//!
//! Everything berth does to a host goes through the [`Host`](host::Host) trait:
//! [`LocalHost`](host::LocalHost) in production; a fake in the unit tests.
//! The engine never prints; progress goes to a [`Reporter`].
//!
//! Layout: [`model`] (the data), [`observe`], [`planner`], [`execute`],
//! [`host`] (the seam), [`drivers`] (bootstrappers, launchers, package
//! managers, units, settings, the base cache, health checks, package
//! upgrades), [`ops`] (status, destroy, adopt, import, console, saved
//! plans, snapshots, upgrades), [`confined`] (file operations that
//! never leave a machine root).

pub mod confined;
pub mod drivers;
mod engine;
pub mod error;
pub mod execute;
#[doc(hidden)]
pub mod fuzzing;
pub mod host;
pub mod inputs;
pub mod interrupt;
pub mod model;
pub mod observe;
pub mod ops;
pub mod planner;
pub mod remote;
pub mod report;
pub mod secret;
#[cfg(test)]
mod testing;

// The paths the CLI and the tests use.
pub use confined::{ConfinedError, FileKind, Root, mounts, remove};
pub use drivers::{bootstrap, cache, launcher, packages, units};
pub use engine::{Engine, select};
pub use error::EngineError;
pub use host::lock::StateLock;
pub use host::paths::Paths;
pub use model::action::{Action, Effect};
pub use ops::cache::Pruned;
pub use ops::console::Console;
pub use ops::guest::LogsOptions;
pub use ops::snapshot::{RollbackReport, SnapshotInfo, SnapshotOrigin};
pub use ops::status::MachineStatus;
pub use ops::{import, saved_plan};
pub use planner::{ChangeKind, MachinePlan, Plan};
pub use report::{Event, Reporter, Silent};
