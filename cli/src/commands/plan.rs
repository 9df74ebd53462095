//! `berth plan`.

use std::process::ExitCode;

use anyhow::Result;
use berth_engine::Engine;

use crate::cli::PlanArgs;
use crate::render;

/// Shows what apply would change. Takes no lock.
pub fn run(engine: &Engine, args: &PlanArgs) -> Result<ExitCode> {
    if args.destroy {
        return destroy(engine, args);
    }
    // A saved plan is checked against the spec loaded from its absolute
    // path: load it that way now, so both see the same resolved paths.
    let spec = match &args.out {
        Some(_) => super::load_path(&std::path::absolute(&args.spec.file)?)?,
        None => super::load(&args.spec)?,
    };
    if crate::fleet::applies(&spec, &args.fleet.hosts) {
        return crate::fleet::plan(engine, args, &spec);
    }
    // Machines are planned as part of the whole spec (addresses, /etc/hosts).
    let engine = &engine.with_spec_path(&args.spec.file)?.for_spec(&spec);
    // The spec's machines, then those applied from it and gone from it.
    let (machines, prune) = crate::prune::select(engine, &spec, &args.names, &args.exclude)?;
    let mode = match &args.out {
        Some(_) => crate::flow::Mode::Save(&args.spec.file),
        None if args.upgrade => crate::flow::Mode::Upgrade,
        None => crate::flow::Mode::Plan,
    };
    let planned = crate::flow::plan(engine, &machines, &prune, mode)?;
    let plan = planned.shown();
    if let (Some(out), Some(saved)) = (&args.out, &planned.saved) {
        berth_engine::saved_plan::write(out, saved)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        render::plan(&plan);
    }
    if let Some(out) = &args.out {
        render::saved_plan_hint(out);
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `berth plan --destroy NAME...`: what destroy would do, from berth's
/// records (no spec needed).
fn destroy(engine: &Engine, args: &PlanArgs) -> Result<ExitCode> {
    super::destroy::check_names(&args.names)?;
    let engine = &super::destroy::with_spec(engine, None, &args.spec.file)?;
    let plan = engine
        .plan_destroy(&args.names)
        .map_err(super::plan_errors)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        render::plan(&plan);
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
