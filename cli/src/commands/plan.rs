//! `berth plan`.

use std::process::ExitCode;

use anyhow::Result;
use berth_engine::Engine;

use crate::cli::PlanArgs;
use crate::render;

/// Shows what apply would change. Takes no lock.
pub fn run(engine: &Engine, args: &PlanArgs) -> Result<ExitCode> {
    let spec = super::load(&args.spec)?;
    let machines = super::select(&spec, &args.names)?;
    let plan = engine.plan(machines).map_err(super::plan_errors)?;
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
