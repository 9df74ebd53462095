//! `berth exec` and `berth logs`: berth is replaced by the command (nsenter
//! into the guest, or journalctl), so its exit code is berth's.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use berth_engine::{Engine, LogsOptions};

use crate::cli::{ExecArgs, LogsArgs};

/// The spec read when none is given.
const DEFAULT_SPEC: &str = "machines.yaml";

/// Whether a spec declares `name`: the given spec (or ./machines.yaml)
/// must; without either, false (berth's records decide).
fn declared(file: Option<&PathBuf>, name: &str) -> Result<bool> {
    super::destroy::check_names(std::slice::from_ref(&name.to_owned()))?;
    let default = Path::new(DEFAULT_SPEC);
    let path = match file {
        Some(path) => path.as_path(),
        None if default.exists() => default,
        None => {
            crate::render::verbose(format_args!(
                "no {DEFAULT_SPEC} and no spec given: machine {name} from berth's records"
            ));
            return Ok(false);
        }
    };
    let spec = super::load_path(path)?;
    if !spec.machines.contains_key(name) {
        anyhow::bail!(
            "machine {name} is not in the spec {} (machines: {})",
            path.display(),
            spec.machines
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(true)
}

/// `berth exec NAME -- COMMAND...`: returns only if it cannot run.
pub fn exec(engine: &Engine, args: &ExecArgs) -> Result<ExitCode> {
    let mut remote = vec!["exec".to_owned(), args.name.clone(), "--".to_owned()];
    remote.extend(args.command.iter().cloned());
    if let Some(code) = crate::fleet::guest(args.spec.file.as_ref(), &args.name, &remote)? {
        return Ok(code);
    }
    let known = declared(args.spec.file.as_ref(), &args.name)?;
    Err(engine
        .exec_in_guest(&args.name, known, &args.command)
        .into())
}

/// `berth logs NAME`: returns only if journalctl cannot run.
pub fn logs(engine: &Engine, args: &LogsArgs) -> Result<ExitCode> {
    let mut remote = vec!["logs".to_owned()];
    if args.follow {
        remote.push("--follow".to_owned());
    }
    if let Some(n) = args.lines {
        remote.extend(["--lines".to_owned(), n.to_string()]);
    }
    if let Some(u) = &args.unit {
        remote.extend(["--unit".to_owned(), u.clone()]);
    }
    remote.push(args.name.clone());
    if let Some(code) = crate::fleet::guest(args.file.as_ref(), &args.name, &remote)? {
        return Ok(code);
    }
    let known = declared(args.file.as_ref(), &args.name)?;
    let options = LogsOptions {
        follow: args.follow,
        lines: args.lines,
        unit: args.unit.clone(),
    };
    Err(engine.exec_logs(&args.name, known, &options).into())
}
