//! `berth cache list|prune`.

use std::process::ExitCode;

use anyhow::Result;
use berth_engine::Engine;

use crate::cli::CacheCommand;

/// Lists or prunes the base cache.
pub fn run(engine: &Engine, command: &CacheCommand) -> Result<ExitCode> {
    match command {
        CacheCommand::List { json } => {
            let entries = engine.cache_entries()?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
                return Ok(ExitCode::SUCCESS);
            }
            if entries.is_empty() {
                anstream::println!("The cache is empty.");
            }
            for (entry, users) in &entries {
                let key = &entry.key;
                anstream::println!(
                    "{}  {} {} ({}) [{}]  used by: {}",
                    entry.id,
                    key.distro,
                    key.release.as_deref().unwrap_or("-"),
                    key.bootstrapper,
                    key.packages.join(","),
                    if users.is_empty() {
                        "-".to_owned()
                    } else {
                        users.join(", ")
                    }
                );
            }
        }
        CacheCommand::Prune { all } => {
            let _lock = super::lock_state(engine, None)?;
            let pruned = engine.prune_cache(*all)?;
            if pruned.removed.is_empty() {
                anstream::println!("Nothing to prune.");
            }
            for id in pruned.removed {
                anstream::println!("removed {id}");
            }
            for (id, machines) in pruned.held {
                anstream::println!(
                    "kept {id}: the lower layer of overlay machine{} {}",
                    if machines.len() == 1 { "" } else { "s" },
                    machines.join(", ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
