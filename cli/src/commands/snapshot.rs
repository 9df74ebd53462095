//! `berth snapshot`, `berth snapshots` and `berth rollback`. They work
//! without a spec (the machines come from berth's records), like `berth
//! destroy NAME`; rollback reads the spec when there is one, to start the
//! machine again. A machine the spec places on another host is handled
//! there: the same command runs over ssh (as `exec` and `logs` do), and
//! rollback through the host's agent, with the host's part of the spec.

use std::process::ExitCode;

use anyhow::Result;
use berth_engine::{Engine, SnapshotInfo, SnapshotOrigin};

use crate::cli::{RollbackArgs, SnapshotArgs, SnapshotsArgs};
use crate::progress::Progress;

/// `berth snapshot NAME [--tag T]` and `berth snapshot --delete NAME TAG`.
pub fn take_or_delete(engine: &Engine, args: &SnapshotArgs) -> Result<ExitCode> {
    super::destroy::check_names(std::slice::from_ref(&args.name))?;
    // A machine on another host (by the spec): the same command there.
    let mut remote = vec!["snapshot".to_owned()];
    if args.delete {
        remote.push("--delete".to_owned());
    }
    if let Some(tag) = &args.tag {
        remote.extend(["--tag".to_owned(), tag.clone()]);
    }
    remote.extend(common(args.json, args.lock_timeout));
    remote.push(args.name.clone());
    remote.extend(args.delete_tag.clone());
    if let Some(code) = crate::fleet::guest(args.file.as_ref(), &args.name, &remote)? {
        return Ok(code);
    }
    let _lock = super::lock_state(
        engine,
        args.lock_timeout.map(std::time::Duration::from_secs),
    )?;
    let name = &args.name;
    if args.delete {
        let tag = args.delete_tag.as_deref().unwrap_or_default();
        engine.delete_snapshot(name, tag)?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"machine": name, "deleted": tag})
                )?
            );
        } else {
            anstream::println!("{name}: snapshot {tag} deleted");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let info = engine.snapshot(name, args.tag.as_deref(), SnapshotOrigin::Manual)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        anstream::println!(
            "{name}: snapshot {} taken ({}, {})",
            info.tag,
            info.method,
            size(info.size)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `berth snapshots [NAME]`: a table (MACHINE TAG TIME SIZE METHOD ORIGIN) or JSON.
pub fn list(engine: &Engine, args: &SnapshotsArgs) -> Result<ExitCode> {
    if let Some(name) = &args.name {
        super::destroy::check_names(std::slice::from_ref(name))?;
        let mut remote = vec!["snapshots".to_owned()];
        remote.extend(common(args.json, None));
        remote.push(name.clone());
        if let Some(code) = crate::fleet::guest(args.file.as_ref(), name, &remote)? {
            return Ok(code);
        }
    }
    let all = engine.snapshots(args.name.as_deref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        match &args.name {
            Some(name) => anstream::eprintln!("{name} has no snapshots"),
            None => anstream::eprintln!("no snapshots"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    table(&all);
    Ok(ExitCode::SUCCESS)
}

/// `berth rollback NAME [TAG]`.
pub fn rollback(engine: &Engine, args: &RollbackArgs) -> Result<ExitCode> {
    super::destroy::check_names(std::slice::from_ref(&args.name))?;
    // A machine on another host (by the spec): its agent rolls it back.
    if let Some(code) = crate::fleet::rollback(engine, args)? {
        return Ok(code);
    }
    let engine = &super::destroy::with_spec(
        engine,
        args.file.as_deref(),
        std::path::Path::new("machines.yaml"),
    )?;
    let _lock = super::lock_state(
        engine,
        args.lock_timeout.map(std::time::Duration::from_secs),
    )?;
    let progress = Progress::new(args.json);
    let report = engine.rollback(&args.name, args.tag.as_deref(), &progress);
    progress.finish();
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        anstream::println!(
            "{}: rolled back to {}; the replaced root is kept as snapshot {}",
            report.machine,
            report.restored,
            report.kept_as
        );
        if report.restarted {
            anstream::println!("{}: started again", report.machine);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--json` and `--lock-timeout S` for the same command on another host.
fn common(json: bool, lock_timeout: Option<u64>) -> Vec<String> {
    let mut args = Vec::new();
    if json {
        args.push("--json".to_owned());
    }
    if let Some(seconds) = lock_timeout {
        args.extend(["--lock-timeout".to_owned(), seconds.to_string()]);
    }
    args
}

/// Prints the snapshots table.
fn table(all: &[SnapshotInfo]) {
    let width = |f: &dyn Fn(&SnapshotInfo) -> usize, min: usize| {
        all.iter().map(f).max().unwrap_or(min).max(min)
    };
    let machine = width(&|s| s.machine.len(), 7);
    let tag = width(&|s| s.tag.len(), 3);
    println!(
        "{:<machine$}  {:<tag$}  {:<20}  {:>9}  {:<14}  ORIGIN",
        "MACHINE", "TAG", "TIME", "SIZE", "METHOD"
    );
    for s in all {
        println!(
            "{:<machine$}  {:<tag$}  {:<20}  {:>9}  {:<14}  {}",
            s.machine,
            s.tag,
            time(s.created_at),
            size(s.size),
            s.method,
            s.origin
        );
    }
}

/// `2026-12-01T13:05:01Z`.
fn time(secs: u64) -> String {
    let stamp = berth_engine::drivers::snapshot::utc_stamp(secs);
    // 20261201T130501Z
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    )
}

/// A size in binary units, `-` when unknown.
fn size(bytes: Option<u64>) -> String {
    let Some(bytes) = bytes else {
        return "-".into();
    };
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
