//! `berth destroy`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use berth_engine::Engine;

use crate::cli::DestroyArgs;
use crate::progress::Progress;
use crate::{prompt, render};

/// Stops and removes machines berth manages.
pub fn run(engine: &Engine, args: &DestroyArgs) -> Result<ExitCode> {
    for name in &args.names {
        if !berth_schema::is_valid_machine_name(name) {
            bail!("{name:?} is not a valid machine name");
        }
    }
    let _lock = super::lock_state(
        engine,
        args.lock_timeout.map(std::time::Duration::from_secs),
    )?;
    anstream::println!("berth will stop and remove: {}", args.names.join(", "));
    if !prompt::confirm("Destroy these machines and their roots?", args.yes)? {
        eprintln!("Destroy cancelled; nothing was changed.");
        return Ok(ExitCode::from(1));
    }
    let progress = Progress::new(false);
    let mut failed = 0;
    for name in &args.names {
        match engine.destroy(name, &progress) {
            Ok(true) => {
                progress.finish();
                anstream::println!("{name}: destroyed");
            }
            Ok(false) => {
                progress.finish();
                anstream::println!("{name}: absent, nothing to do");
            }
            Err(e) => {
                progress.finish();
                failed += 1;
                render::error(&anyhow::anyhow!("{e}"));
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
