//! `berth shell` and `berth login`: hand the terminal over to the machine,
//! so nobody needs to remember which launcher runs it.

use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_engine::{Console, Engine};

use crate::cli::ConsoleArgs;

/// Replaces berth with the launcher's shell or login command, run with the
/// engine's minimal environment plus TERM (never berth's own: it may hold a
/// secret a spec reads with `env:`).
pub fn run(engine: &Engine, args: &ConsoleArgs, console: Console) -> Result<ExitCode> {
    let spec = super::load(&args.spec)?;
    let machines = super::select(&spec, std::slice::from_ref(&args.name))?;
    let machine = machines.first().context("no machine selected")?;
    Err(engine.exec_console(machine, console).into())
}
