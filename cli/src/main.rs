//! The `berth` binary: parse arguments, run a command, map the outcome to
//! an exit code (0 success, 1 error, 2 changes under --detailed-exitcode).

mod cli;
mod commands;
mod fleet;
mod flow;
mod progress;
mod prompt;
mod prune;
mod render;
mod select;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Usage errors exit 1, keeping 2 for "changes" under --detailed-exitcode.
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    render::set_verbosity(cli.quiet, cli.verbose);
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            render::error(&e);
            ExitCode::from(1)
        }
    }
}
