//! `berth apply`.

use std::process::ExitCode;

use anyhow::Result;
use berth_engine::{Engine, StateLock};
use serde::Serialize;

use crate::cli::ApplyArgs;
use crate::progress::Progress;
use crate::{prompt, render};

#[derive(Serialize)]
struct MachineResult<'a> {
    name: &'a str,
    actions: &'a [berth_engine::Action],
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct ApplyReport<'a> {
    changes: usize,
    applied: bool,
    machines: Vec<MachineResult<'a>>,
}

/// Plans under the state lock, shows the plan, asks, applies.
pub fn run(engine: &Engine, args: &ApplyArgs) -> Result<ExitCode> {
    let spec = super::load(&args.spec)?;
    let machines = super::select(&spec, &args.names)?;
    let _lock = StateLock::acquire(&engine.host().paths, |holder| {
        let who = holder.map(|p| format!(" (pid {p})")).unwrap_or_default();
        eprintln!("waiting for another berth{who} to release the state lock...");
    })?;
    let plan = engine
        .plan(machines.iter().copied())
        .map_err(super::plan_errors)?;
    if !args.json {
        render::plan(&plan);
    }
    if plan.is_empty() {
        if args.json {
            let report = ApplyReport {
                changes: 0,
                applied: true,
                machines: plan
                    .machines
                    .iter()
                    .map(|m| MachineResult {
                        name: &m.name,
                        actions: &m.actions,
                        result: "unchanged",
                        error: None,
                    })
                    .collect(),
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !prompt::confirm("Apply these changes?", args.yes)? {
        eprintln!("Apply cancelled; nothing was changed.");
        return Ok(ExitCode::from(1));
    }

    let progress = Progress::new(args.json);
    let mut results = Vec::new();
    let mut failed = 0;
    for (machine, machine_plan) in machines.iter().zip(&plan.machines) {
        if machine_plan.actions.is_empty() {
            results.push(MachineResult {
                name: &machine_plan.name,
                actions: &machine_plan.actions,
                result: "unchanged",
                error: None,
            });
            continue;
        }
        let allow_replace = args.replace.iter().any(|n| n == &machine.name);
        let outcome = engine.apply_machine(machine, machine_plan, allow_replace, &progress);
        let error = outcome.err().map(|e| e.to_string());
        if let Some(e) = &error {
            failed += 1;
            progress.finish();
            if !args.json {
                render::error(&anyhow::anyhow!("{e}"));
            }
        }
        results.push(MachineResult {
            name: &machine_plan.name,
            actions: &machine_plan.actions,
            result: if error.is_some() { "failed" } else { "applied" },
            error,
        });
    }
    progress.finish();
    if args.json {
        let report = ApplyReport {
            changes: plan.changes,
            applied: failed == 0,
            machines: results,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let applied = results.iter().filter(|r| r.result == "applied").count();
        anstream::eprintln!(
            "Apply {}: {applied} machine{} changed, {failed} failed.",
            if failed == 0 {
                "complete"
            } else {
                "finished with errors"
            },
            if applied == 1 { "" } else { "s" }
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
