//! `berth status`.

use std::process::ExitCode;

use anyhow::Result;
use berth_engine::Engine;

use crate::cli::StatusArgs;
use crate::render;

/// Shows each machine's state and launcher.
pub fn run(engine: &Engine, args: &StatusArgs) -> Result<ExitCode> {
    let spec = super::load(&args.spec)?;
    let machines = super::select_excluding(&spec, &args.names, &args.exclude)?;
    let statuses = machines
        .into_iter()
        .map(|m| engine.status(m))
        .collect::<Result<Vec<_>, _>>()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&statuses)?);
    } else {
        render::status(&statuses);
    }
    Ok(ExitCode::SUCCESS)
}
