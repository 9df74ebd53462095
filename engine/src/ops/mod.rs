//! Operations beside plan and apply: status, destroy, adopt, import,
//! shell/login, saved plans, opening roots berth did not make, and package
//! upgrades.

pub(crate) mod adopt;
pub mod cache;
pub(crate) mod console;
pub(crate) mod destroy;
pub mod existing;
pub mod guest;
pub mod import;
pub(crate) mod moved;
pub(crate) mod prune;
pub mod saved_plan;
pub mod snapshot;
pub(crate) mod status;
pub mod upgrade;
pub(crate) mod upgrade_snapshots;

#[cfg(test)]
mod prune_moved_tests;
