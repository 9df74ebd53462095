//! `berth man [COMMAND]`: the man page (roff) from the clap definition.

use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};

/// Prints berth(1), or berth-COMMAND(1).
pub fn run(args: &ManArgs) -> Result<ExitCode> {
    let command = Cli::command();
    let page = match &args.command {
        None => command,
        Some(name) => {
            let sub = command
                .get_subcommands()
                .find(|c| c.get_name() == name)
                .cloned()
                .ok_or_else(|| {
                    anyhow!(
                        "no subcommand {name:?} (subcommands: {})",
                        command
                            .get_subcommands()
                            .map(|c| c.get_name().to_owned())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
            // A one-shot process: leaking the name gives clap the 'static str it wants.
            let full: &'static str = Box::leak(format!("berth-{name}").into_boxed_str());
            let sub = sub
                .name(full)
                .bin_name(full)
                .version(env!("CARGO_PKG_VERSION"));
            let mut out = Vec::new();
            clap_mangen::Man::new(sub).render(&mut out)?;
            std::io::Write::write_all(&mut std::io::stdout(), &out)?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out)?;
    std::io::Write::write_all(&mut std::io::stdout(), &out)?;
    Ok(ExitCode::SUCCESS)
}
