//! `berth completions SHELL`: a completion script from the clap definition.

use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};

/// Prints the completion script for the shell asked for.
pub fn run(args: &CompletionsArgs) -> Result<ExitCode> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "berth", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
