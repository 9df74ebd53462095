//! Prune on the command line: which machines gone from the spec a plan or
//! apply lists (NAME patterns may name them too), and the plan that shows
//! them after the spec's machines.

use anyhow::Result;
use berth_engine::import::glob_match;
use berth_engine::{Engine, MachinePlan, Plan};
use berth_schema::{Machine, Spec};

/// The machines of `spec` that `patterns` and `excludes` select (see
/// [`crate::select::select`]), and the prunable machines they select
/// (all when `patterns` is empty). A pattern may match prunable machines
/// only: then it selects none of the spec's.
pub fn select<'a>(
    engine: &Engine,
    spec: &'a Spec,
    patterns: &[String],
    excludes: &[String],
) -> Result<(Vec<&'a Machine>, Vec<String>)> {
    let prunable = engine.prunable()?;
    let in_spec = |p: &String| spec.machines.keys().any(|name| glob_match(p, name));
    let in_prune = |p: &String| prunable.iter().any(|name| glob_match(p, name));
    // Patterns naming only machines to prune are not the spec's business.
    let spec_patterns: Vec<String> = patterns
        .iter()
        .filter(|p| in_spec(p) || !in_prune(p))
        .cloned()
        .collect();
    let spec_excludes: Vec<String> = excludes
        .iter()
        .filter(|p| in_spec(p) || !in_prune(p))
        .cloned()
        .collect();
    let machines = if !patterns.is_empty() && spec_patterns.is_empty() {
        // Only machines to prune were named.
        if !spec_excludes.is_empty() {
            crate::select::select(spec, &[], &spec_excludes)?;
        }
        Vec::new()
    } else {
        crate::select::select(spec, &spec_patterns, &spec_excludes)?
    };
    Ok((machines, filter(prunable, patterns, excludes)))
}

/// The machines of `prunable` that `patterns` (all when empty) and
/// `excludes` select.
pub fn filter(prunable: Vec<String>, patterns: &[String], excludes: &[String]) -> Vec<String> {
    prunable
        .into_iter()
        .filter(|name| patterns.is_empty() || patterns.iter().any(|p| glob_match(p, name)))
        .filter(|name| !excludes.iter().any(|p| glob_match(p, name)))
        .collect()
}

/// `plan` with the prune plans `prune` after its machines.
pub fn with_prune(plan: &Plan, prune: &[MachinePlan]) -> Plan {
    let mut machines = plan.machines.clone();
    machines.extend(prune.iter().cloned());
    Plan::new(machines)
}

/// The line apply prints for a machine it keeps (no `--prune`).
pub fn kept_line(name: &str) -> String {
    format!("! {name}: kept: pass --prune to destroy")
}
