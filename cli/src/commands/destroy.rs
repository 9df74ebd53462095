//! `berth destroy`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use berth_engine::Engine;
use serde::Serialize;

use crate::cli::DestroyArgs;
use crate::progress::Progress;
use crate::{prompt, render};

/// Refuses names that cannot be machines (before anything is read).
pub(crate) fn check_names(names: &[String]) -> Result<()> {
    for name in names {
        if !berth_schema::is_valid_machine_name(name) {
            bail!("{name:?} is not a valid machine name");
        }
    }
    Ok(())
}

use super::MachineResult;

#[derive(Serialize)]
struct DestroyReport<'a> {
    changes: usize,
    destroyed: bool,
    machines: Vec<MachineResult<'a>>,
}

/// The engine with the spec that may say `prevent_destroy`: `file`, or
/// `default` when it exists; without either, berth's records decide.
pub(crate) fn with_spec(
    engine: &Engine,
    file: Option<&std::path::Path>,
    default: &std::path::Path,
) -> Result<Engine> {
    let path = match file {
        Some(path) => path,
        None if default.exists() => default,
        None => return Ok(engine.clone()),
    };
    Ok(engine.for_spec(&super::load_path(path)?))
}

/// Stops and removes machines berth manages.
pub fn run(engine: &Engine, args: &DestroyArgs) -> Result<ExitCode> {
    check_names(&args.names)?;
    if let Some(spec) = crate::fleet::destroy_spec(args)? {
        let file = args
            .file
            .clone()
            .unwrap_or_else(|| std::path::PathBuf::from("machines.yaml"));
        return crate::fleet::destroy(engine, args, &spec, &file);
    }
    let engine = &with_spec(
        engine,
        args.file.as_deref(),
        std::path::Path::new("machines.yaml"),
    )?;
    engine.check_destroyable(&args.names).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("{}", lines.join("\n"))
    })?;
    let _lock = super::lock_state(
        engine,
        args.lock_timeout.map(std::time::Duration::from_secs),
    )?;
    // In JSON mode the plan is the report's; the human summary goes to stderr.
    let plan = if args.json {
        Some(
            engine
                .plan_destroy(&args.names)
                .map_err(super::plan_errors)?,
        )
    } else {
        None
    };
    let summary = format!("berth will stop and remove: {}", args.names.join(", "));
    if args.json {
        anstream::eprintln!("{summary}");
    } else {
        anstream::println!("{summary}");
    }
    if !prompt::confirm("Destroy these machines and their roots?", args.yes)? {
        eprintln!("Destroy cancelled; nothing was changed.");
        return Ok(ExitCode::from(1));
    }
    let progress = Progress::new(args.json);
    let mut failed = 0;
    let mut results = Vec::new();
    for (i, name) in args.names.iter().enumerate() {
        let (result, error) = match engine.destroy(name, &progress) {
            Ok(true) => ("destroyed", None),
            Ok(false) => ("absent", None),
            Err(e) => {
                failed += 1;
                ("failed", Some(e.to_string()))
            }
        };
        progress.finish();
        if !args.json {
            match &error {
                None if result == "destroyed" => anstream::println!("{name}: destroyed"),
                None => anstream::println!("{name}: absent, nothing to do"),
                Some(e) => render::error(&anyhow::anyhow!("{e}")),
            }
        }
        let actions = plan
            .as_ref()
            .map_or(&[][..], |p| p.machines[i].actions.as_slice());
        results.push(MachineResult {
            name,
            actions,
            result,
            error,
        });
    }
    if let Some(plan) = &plan {
        let report = DestroyReport {
            changes: plan.changes,
            destroyed: failed == 0,
            machines: results,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
