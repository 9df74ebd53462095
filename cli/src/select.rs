//! Targeting: which machines of the spec a command acts on. NAME arguments
//! are machine names or shell-style glob patterns (`web-*`, `db?`,
//! `[ab]x`); `--exclude PATTERN` leaves machines out. A pattern (included
//! or excluded) that matches no machine is an error naming it, so a typo
//! never silently plans nothing. For `apply`, a NAME may instead be a plan
//! file saved by `berth plan --out`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use berth_engine::import::glob_match;
use berth_engine::saved_plan::{self, SavedPlan};
use berth_schema::{Machine, Spec};

/// The machines of `spec` matching any of `patterns` (all when empty) and
/// none of `excludes`, in spec order.
pub fn select<'a>(
    spec: &'a Spec,
    patterns: &[String],
    excludes: &[String],
) -> Result<Vec<&'a Machine>> {
    let names = || spec.machines.keys().cloned().collect::<Vec<_>>().join(", ");
    let unmatched = |list: &[String]| -> Vec<String> {
        list.iter()
            .filter(|p| !spec.machines.keys().any(|name| glob_match(p, name)))
            .cloned()
            .collect()
    };
    let missing = unmatched(patterns);
    if !missing.is_empty() {
        bail!(
            "no machine matches {} in the spec (machines: {})",
            missing
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", "),
            names()
        );
    }
    let missing = unmatched(excludes);
    if !missing.is_empty() {
        bail!(
            "--exclude {}: no machine matches it in the spec (machines: {})",
            missing
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", "),
            names()
        );
    }
    let selected: Vec<&Machine> = spec
        .machines
        .values()
        .filter(|m| patterns.is_empty() || patterns.iter().any(|p| glob_match(p, &m.name)))
        .filter(|m| !excludes.iter().any(|p| glob_match(p, &m.name)))
        .collect();
    if selected.is_empty() && !excludes.is_empty() {
        bail!("--exclude left no machine to act on");
    }
    Ok(selected)
}

/// The machines named exactly by `names` (a saved plan's targets), in that
/// order; a name no longer in the spec makes the plan stale.
pub fn exact<'a>(spec: &'a Spec, names: &[String], spec_path: &Path) -> Result<Vec<&'a Machine>> {
    names
        .iter()
        .map(|name| {
            spec.machines.get(name).ok_or_else(|| {
                anyhow!(
                    "plan is stale: machine {name} is no longer in the spec at {}",
                    spec_path.display()
                )
            })
        })
        .collect()
}

/// For `berth apply NAME...`: the saved plan, when the arguments name one.
/// An argument is a plan file when it contains a `/` (machine names never
/// do) or is an existing file holding a berth plan; a plan must then be the
/// only argument.
pub fn saved_plan_arg(names: &[String]) -> Result<Option<(PathBuf, SavedPlan)>> {
    let mut found = None;
    for arg in names {
        let path = Path::new(arg);
        let plan = if arg.contains('/') {
            let plan = saved_plan::read(path)
                .with_context(|| format!("reading the saved plan {arg}"))?
                .ok_or_else(|| {
                    anyhow!(
                        "{arg} is not a plan saved by `berth plan --out` (and not a machine name)"
                    )
                })?;
            Some(plan)
        } else if path.is_file() && !has_glob(arg) {
            saved_plan::read(path)?
        } else {
            None
        };
        if let Some(plan) = plan {
            if found.is_some() || names.len() > 1 {
                bail!(
                    "a saved plan ({arg}) must be apply's only argument: it names its machines itself"
                );
            }
            found = Some((path.to_owned(), plan));
        }
    }
    Ok(found)
}

fn has_glob(arg: &str) -> bool {
    arg.contains(['*', '?', '['])
}
