//! berth's integration and end-to-end tests, in one test binary (one link
//! of `support` and of every helper instead of one per file). Each
//! top-level file is a module here; they drive the real `berth` binary.
//!
//! Tests from every module run in parallel in this one process: tests that
//! must not overlap with others take [`support::exclusive`] (see there why).
//!
//! `cargo test -p berth --test main` runs them all, `cargo test -p berth
//! --test main -- cli::` one module, `... -- faults::sigint` one test.

#![allow(clippy::unwrap_used)]

mod support;

#[path = "corpus/fake_root.rs"]
mod fake_root;

mod arch;
mod arch_boot;
mod cache;
mod cli;
mod debian;
mod destroy_safety;
mod dns;
mod examples;
mod exec_logs_prevent_destroy;
mod faults;
mod fedora;
mod files;
mod fleet;
mod hostile;
mod import;
mod launchers;
mod lifecycle;
mod network;
mod observe;
mod orphans;
mod plan_snapshots;
mod prune_moved;
mod resources;
mod saved_plans;
mod secrets;
mod snapshots;
mod storage;
mod systemd_box;
mod targeting;
mod upgrades;
mod users;
