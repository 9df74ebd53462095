#![cfg_attr(test, allow(clippy::unwrap_used))]
//! berth's engine: observe machines on disk, plan typed actions, apply them.
//!
//! The flow is `observe -> plan -> apply`: [`observe::observe`] reads the
//! real state of a machine (its root, berth's record, whether it runs),
//! [`plan::plan_machine`] compares it with the spec and returns a
//! [`plan::MachinePlan`] of [`action::Action`]s, and [`Engine::apply_machine`]
//! executes it. The engine never prints; progress goes to a
//! [`report::Reporter`].

pub mod action;
mod adopt;
pub(crate) mod apply;
pub mod bootstrap;
pub mod cache;
pub mod confined;
mod console;
mod destroy;
mod engine;
pub mod error;
pub mod existing;
#[doc(hidden)]
pub mod fuzzing;
pub mod guest;
pub mod host;
pub mod import;
pub mod interrupt;
pub mod launcher;
pub mod lock;
pub mod mounts;
pub mod observe;
pub mod packages;
pub mod paths;
pub mod plan;
mod process;
pub mod remove;
pub mod report;
pub mod saved_plan;
pub mod secret;
pub mod securetty;
pub mod settings;
pub mod shadow;
pub mod state;
mod status;
pub mod units;

pub use action::{Action, Effect};
pub use confined::{ConfinedError, FileKind, Root};
pub use console::Console;
pub use engine::{Engine, select};
pub use error::EngineError;
pub use lock::StateLock;
pub use paths::Paths;
pub use plan::{ChangeKind, MachinePlan, Plan};
pub use report::{Event, Reporter, Silent};
pub use status::MachineStatus;
