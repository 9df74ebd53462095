//! `berth shell` and `berth login`: hand the terminal over to the machine,
//! so nobody needs to remember which launcher runs it.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result};
use berth_engine::{Console, Engine};

use crate::cli::ConsoleArgs;

/// Replaces berth with the launcher's shell or login command.
pub fn run(engine: &Engine, args: &ConsoleArgs, console: Console) -> Result<ExitCode> {
    let spec = super::load(&args.spec)?;
    let machines = super::select(&spec, std::slice::from_ref(&args.name))?;
    let machine = machines.first().context("no machine selected")?;
    let argv = engine.console_command(machine, console)?;
    let err = Command::new(&argv[0]).args(&argv[1..]).exec();
    Err(err).with_context(|| format!("running {}", argv.join(" ")))
}
