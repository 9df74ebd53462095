//! Drivers: the tools berth drives and the formats it owns, one module each.
//! Bootstrappers, launchers, package managers, units, the `.nspawn`
//! settings file, the base cache, securetty, shadow, running commands
//! inside a machine, overlay storage, and resource limits and devices.

pub mod bootstrap;
pub mod cache;
pub mod credentials;
pub mod files;
pub mod guest;
pub mod health;
pub mod launcher;
pub mod network;
pub mod packages;
pub mod resources;
pub mod securetty;
pub mod settings;
pub mod shadow;
pub mod snapshot;
pub(crate) mod staging;
pub mod storage;
pub mod units;
pub mod upgrade;
pub mod users;
