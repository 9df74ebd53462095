//! `berth destroy`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use berth_engine::{Engine, StateLock};

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
    let timeout = args.lock_timeout.map(std::time::Duration::from_secs);
    let _lock = StateLock::acquire_within(&engine.host().paths, timeout, |holder| {
        let who = holder.map(|p| format!(" (pid {p})")).unwrap_or_default();
        eprintln!("waiting for another berth{who} to release the state lock...");
    })?;
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
