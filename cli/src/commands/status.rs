//! `berth status`.

use std::process::ExitCode;

use std::path::Path;

use anyhow::{Result, bail};
use berth_engine::Engine;
use berth_engine::MachineStatus;
use berth_engine::import::glob_match;

use crate::cli::StatusArgs;
use crate::render;

/// The spec `status` reads when no `-f` is given.
const DEFAULT_SPEC: &str = "machines.yaml";

/// Shows each machine's state and launcher: the spec's machines, or, with
/// no spec (no `-f` and no `machines.yaml` here), every machine berth
/// manages, from its records.
pub fn run(engine: &Engine, args: &StatusArgs) -> Result<ExitCode> {
    let default = Path::new(DEFAULT_SPEC);
    let statuses = match &args.file {
        None if !default.exists() && !args.fleet.hosts.is_empty() => {
            bail!("--hosts needs a spec (-f, or {DEFAULT_SPEC} here)")
        }
        None if !default.exists() => {
            crate::render::verbose(format_args!(
                "no {DEFAULT_SPEC} and no -f: the machines berth manages, from its records"
            ));
            let all = engine.status_of_records()?;
            if all.is_empty() && !args.json {
                anstream::eprintln!("berth manages no machines (no {DEFAULT_SPEC} here either)");
            }
            select_records(all, &args.names, &args.exclude)?
        }
        file => {
            let path = file.as_deref().unwrap_or(default);
            let spec = super::load_path(path)?;
            if crate::fleet::applies(&spec, &args.fleet.hosts) {
                return crate::fleet::status(engine, args, &spec, path);
            }
            let machines = super::select_excluding(&spec, &args.names, &args.exclude)?;
            machines
                .into_iter()
                .map(|m| engine.status(m))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&statuses)?);
    } else {
        render::status(&statuses);
    }
    Ok(ExitCode::SUCCESS)
}

/// The statuses whose names match any of `patterns` (all when empty) and
/// none of `excludes`; a pattern matching no managed machine is an error.
fn select_records(
    all: Vec<MachineStatus>,
    patterns: &[String],
    excludes: &[String],
) -> Result<Vec<MachineStatus>> {
    for pattern in patterns.iter().chain(excludes) {
        if !all.iter().any(|s| glob_match(pattern, &s.name)) {
            bail!("no machine berth manages matches `{pattern}`");
        }
    }
    Ok(all
        .into_iter()
        .filter(|s| patterns.is_empty() || patterns.iter().any(|p| glob_match(p, &s.name)))
        .filter(|s| !excludes.iter().any(|p| glob_match(p, &s.name)))
        .collect())
}
