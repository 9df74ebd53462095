//! `berth apply`.

use std::process::ExitCode;

use anyhow::Result;
use berth_engine::Engine;
use serde::Serialize;

use crate::cli::ApplyArgs;
use crate::progress::Progress;
use crate::{prompt, render};

use super::MachineResult;

#[derive(Serialize)]
struct ApplyReport<'a> {
    changes: usize,
    applied: bool,
    machines: Vec<MachineResult<'a>>,
}

/// Plans under the state lock, shows the plan, asks, applies.
pub fn run(engine: &Engine, args: &ApplyArgs) -> Result<ExitCode> {
    // A plan saved over hosts (`berth plan --out` on a spec with ssh hosts).
    if let Some(code) = crate::fleet::apply_saved_arg(engine, args)? {
        return Ok(code);
    }
    // `berth apply FILE`: a plan saved by `berth plan --out`, from its own spec.
    let saved = crate::select::saved_plan_arg(&args.names)?;
    let spec = match &saved {
        Some((_, saved)) => super::load_path(&saved.spec)?,
        None => super::load(&args.spec)?,
    };
    if saved.is_some() && args.upgrade {
        anyhow::bail!(
            "--upgrade does not go with a saved plan: run `berth apply --upgrade` on the spec"
        );
    }
    if saved.is_none() && crate::fleet::applies(&spec, &args.fleet.hosts) {
        return crate::fleet::apply(engine, args, &spec);
    }
    // Machines are planned as part of the whole spec (addresses, /etc/hosts).
    let spec_path = saved.as_ref().map_or(&args.spec.file, |(_, s)| &s.spec);
    let engine = &engine.with_spec_path(spec_path)?.for_spec(&spec);
    let (machines, prune) = match &saved {
        Some((_, saved)) => (
            crate::select::exact(&spec, &saved.targets, &saved.spec)?,
            Vec::new(),
        ),
        None => crate::prune::select(engine, &spec, &args.names, &args.exclude)?,
    };
    let _lock = super::lock_state(
        engine,
        args.lock_timeout.map(std::time::Duration::from_secs),
    )?;
    let planned = match &saved {
        Some((path, saved)) => crate::flow::check_saved(engine, &machines, saved)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        None => crate::flow::apply_plan(engine, &machines, &prune, args.upgrade)?,
    };
    // Machines applied from this spec and gone from it: destroyed only with --prune.
    let (plan, prune) = (planned.plan, planned.prune);
    let shown = crate::prune::with_prune(&plan, &prune);
    if !args.json && !render::quiet() {
        render::plan(&shown);
    }
    if args.prune {
        crate::flow::check_prune(engine, &prune)?;
    }
    let pruning = args.prune && !prune.is_empty();
    let changed_code = if args.detailed_exitcode && !shown.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    };
    if plan.is_empty() && !pruning {
        crate::flow::record(engine, &machines, &machines)?;
        let mut results: Vec<MachineResult<'_>> = plan
            .machines
            .iter()
            .map(|m| MachineResult {
                name: &m.name,
                actions: &m.actions,
                result: "unchanged",
                error: None,
            })
            .collect();
        kept(&prune, args, &mut results);
        if args.json {
            let report = ApplyReport {
                changes: shown.changes,
                applied: true,
                machines: results,
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        return Ok(changed_code);
    }
    // A saved plan was reviewed when it was made: it runs without asking.
    if !prompt::confirm("Apply these changes?", args.yes || saved.is_some())? {
        eprintln!("Apply cancelled; nothing was changed.");
        return Ok(ExitCode::from(1));
    }

    // Ctrl-C or SIGTERM from here on stops at the next safe point (exit 130).
    berth_engine::interrupt::install()?;
    let progress = Progress::new(args.json || render::quiet());
    let jobs = args.jobs.unwrap_or_else(default_jobs).max(1);
    let outcomes = apply_all(engine, &machines, &plan, jobs, &args.replace, &progress);
    let mut results = Vec::new();
    let mut failed = 0;
    let mut done: Vec<&berth_schema::Machine> = Vec::new();
    for (machine_plan, outcome) in plan.machines.iter().zip(outcomes) {
        if matches!(outcome, None | Some(Ok(()))) {
            done.extend(machines.iter().find(|m| m.name == machine_plan.name));
        }
        let (result, error) = match outcome {
            None => ("unchanged", None),
            Some(Ok(())) => ("applied", None),
            Some(Err(e)) => {
                failed += 1;
                ("failed", Some(e))
            }
        };
        if let (Some(e), false) = (&error, args.json) {
            render::error(&anyhow::anyhow!("{e}"));
        }
        results.push(MachineResult {
            name: &machine_plan.name,
            actions: &machine_plan.actions,
            result,
            error,
        });
    }
    // After the apply: a record changed before it would make the plan stale.
    crate::flow::record(engine, &machines, &done)?;
    // Then the machines gone from the spec: destroyed with --prune.
    for p in prune.iter().filter(|_| args.prune) {
        if berth_engine::interrupt::requested() {
            break;
        }
        let (result, error) = crate::flow::prune_one(engine, p, &progress);
        failed += usize::from(error.is_some());
        if let (Some(e), false) = (&error, args.json) {
            render::error(&anyhow::anyhow!("{e}"));
        }
        progress.machine_done(&p.name, &format!("{}: {result}", p.name));
        results.push(MachineResult {
            name: &p.name,
            actions: &p.actions,
            result,
            error,
        });
    }
    kept(&prune, args, &mut results);
    progress.finish();
    if args.json {
        let report = ApplyReport {
            changes: shown.changes,
            applied: failed == 0,
            machines: results,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !render::quiet() || failed > 0 {
        let applied = results
            .iter()
            .filter(|r| r.result == "applied" || r.result == "destroyed")
            .count();
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
    Ok(if berth_engine::interrupt::requested() {
        eprintln!("Apply interrupted: stopped at a safe point; run apply again to finish.");
        ExitCode::from(130)
    } else if failed == 0 {
        changed_code
    } else {
        ExitCode::from(1)
    })
}

/// Without --prune, each machine to prune is kept, with a warning line.
fn kept<'a>(
    prune: &'a [berth_engine::MachinePlan],
    args: &ApplyArgs,
    results: &mut Vec<MachineResult<'a>>,
) {
    for p in prune.iter().filter(|_| !args.prune) {
        if !args.json {
            anstream::eprintln!("{}", crate::prune::kept_line(&p.name));
        }
        results.push(MachineResult {
            name: &p.name,
            actions: &p.actions,
            result: "kept",
            error: None,
        });
    }
}

/// A sensible parallelism: the host's CPUs (bootstraps and boots are both
/// I/O- and CPU-bound).
fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Applies every machine with changes, up to `jobs` at a time. A failure
/// in one never stops the others. Returns, per machine in plan order, None
/// (nothing to do) or its outcome.
fn apply_all(
    engine: &Engine,
    machines: &[&berth_schema::Machine],
    plan: &berth_engine::Plan,
    jobs: usize,
    replace: &[String],
    progress: &Progress,
) -> Vec<Option<Result<(), String>>> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let work: Vec<usize> = (0..plan.machines.len())
        .filter(|&i| !plan.machines[i].actions.is_empty())
        .collect();
    let outcomes: Mutex<Vec<Option<Result<(), String>>>> =
        Mutex::new(vec![None; plan.machines.len()]);
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(work.len()) {
            scope.spawn(|| {
                while let Some(&i) = work.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let (machine, machine_plan) = (machines[i], &plan.machines[i]);
                    let allow_replace = replace.iter().any(|n| n == &machine.name);
                    let outcome = engine
                        .apply_machine(machine, machine_plan, allow_replace, progress)
                        .map_err(|e| e.to_string());
                    progress.machine_done(
                        &machine.name,
                        &match &outcome {
                            Ok(()) => format!("{}: applied", machine.name),
                            Err(_) => format!("{}: failed", machine.name),
                        },
                    );
                    if let Ok(mut outcomes) = outcomes.lock() {
                        outcomes[i] = Some(outcome);
                    }
                }
            });
        }
    });
    outcomes.into_inner().unwrap_or_default()
}
