//! `berth import`: print a spec for machines made by hand.

use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_engine::Engine;

use crate::cli::ImportArgs;

/// Prints one spec with every named machine, or fails on the first that
/// cannot be read (nothing is printed then).
pub fn run(engine: &Engine, args: &ImportArgs) -> Result<ExitCode> {
    let mut blocks = Vec::new();
    for name in &args.names {
        let block = berth_engine::import::import(engine.host(), name)
            .with_context(|| format!("importing {name}"))?;
        blocks.push(block);
    }
    let mut out = String::from(
        "# Written by `berth import` from machines made by hand. Review it, then\n\
         # `berth adopt NAME` takes a machine under management: `berth plan` on this\n\
         # spec then changes nothing.\n\
         machines:\n",
    );
    out.push_str(&blocks.join("\n"));
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
