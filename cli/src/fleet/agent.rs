//! `berth agent`: runs one controller's request on this host, and the
//! same work in-process for the controller's own (`local`) host.
//!
//! [`serve`] does a command (plan, apply, status, destroy, rollback) for
//! some machines of a spec and reports [`WireEvent`]s. [`run`] is the
//! hidden subcommand a controller starts over ssh: it checks the host's
//! ssh host keys when asked to, reads one [`Request`] line on stdin (at
//! most [`MAX_REQUEST`] bytes) and then watches stdin for the
//! controller's stop, keeps the secrets in memory
//! (`berth_engine::secret::preset_env`), writes the spec part and the
//! files it references into a private directory (0700, removed at the
//! end), and streams the events on stdout, one JSON line each.

use std::collections::HashMap;
use std::io::{BufRead as _, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use berth_engine::remote::ssh::HOST_KEYS_EXIT;
use berth_engine::remote::wire::{
    MAX_REQUEST, Options, PROTOCOL, Request, STOP_LINE, WireEvent, base64_decode,
};
use berth_engine::{Engine, Event, Paths, Reporter};
use berth_schema::Machine;
use serde_json::json;

/// Where an agent keeps a request's spec and files while it runs.
const RUN_DIR: &str = "/run/berth";

/// The exit code of an apply stopped at a safe point (as a local one's).
pub const INTERRUPTED_EXIT: u8 = 130;

/// Turns engine progress into step events.
struct WireReporter<'a> {
    emit: &'a (dyn Fn(WireEvent) + Sync),
    started: Mutex<HashMap<String, Instant>>,
}

impl Reporter for WireReporter<'_> {
    fn report(&self, event: Event<'_>) {
        match event {
            Event::Started { machine, action } => {
                if let Ok(mut s) = self.started.lock() {
                    s.insert(machine.to_owned(), Instant::now());
                }
                (self.emit)(WireEvent::StepStarted {
                    machine: machine.to_owned(),
                    step: action.describe(),
                });
            }
            Event::Finished { machine, action } => {
                let seconds = self
                    .started
                    .lock()
                    .ok()
                    .and_then(|s| s.get(machine).map(|t| t.elapsed().as_secs_f64()))
                    .unwrap_or_default();
                (self.emit)(WireEvent::StepDone {
                    machine: machine.to_owned(),
                    step: action.describe(),
                    seconds,
                });
            }
            Event::Command { machine, argv } => (self.emit)(WireEvent::Output {
                machine: Some(machine.to_owned()),
                text: format!("$ {}", argv.join(" ")),
            }),
            Event::Note { machine, message } => (self.emit)(WireEvent::Output {
                machine: Some(machine.to_owned()),
                text: message.to_owned(),
            }),
        }
    }
}

/// What a command needs beyond its machines: the spec file it was loaded
/// from (for a plan to save) and, for `apply_saved`, the saved plan.
pub struct Job<'a> {
    /// The command.
    pub command: &'a str,
    /// Its options.
    pub options: &'a Options,
    /// The spec file the machines were loaded from.
    pub spec_path: &'a Path,
    /// This host's saved plan (`apply_saved`).
    pub saved: Option<&'a serde_json::Value>,
}

/// Runs `job` for `machines` with `engine` (already given the whole
/// host's spec), reporting through `emit`; ends with a `result` event.
pub fn serve(
    engine: &Engine,
    job: &Job<'_>,
    machines: &[&Machine],
    emit: &(dyn Fn(WireEvent) + Sync),
) {
    let options = job.options;
    let result = match job.command {
        "plan" => plan(engine, options, machines, emit),
        "plan_out" => plan_out(engine, options, job.spec_path, machines, emit),
        "status" => status(engine, machines, emit),
        "apply" => apply(engine, options, machines, None, emit),
        "apply_saved" => match job.saved {
            Some(saved) => apply(engine, options, machines, Some(saved), emit),
            None => Err("apply_saved without a saved plan".to_owned()),
        },
        "destroy" => destroy(engine, options, emit),
        "rollback" => rollback(engine, options, emit),
        other => Err(format!("unknown agent command {other:?}")),
    };
    match result {
        Ok((exit, report)) => emit(WireEvent::Result {
            exit,
            error: None,
            report,
        }),
        Err(error) => emit(WireEvent::Result {
            exit: 1,
            error: Some(error),
            report: None,
        }),
    }
}

type Served = Result<(u8, Option<serde_json::Value>), String>;

fn plan_errors(errors: Vec<berth_engine::EngineError>) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!("planning failed:\n  {}", lines.join("\n  "))
}

fn emit_plan(plan: &berth_engine::Plan, emit: &(dyn Fn(WireEvent) + Sync)) -> Result<(), String> {
    emit(WireEvent::Plan {
        plan: serde_json::to_value(plan).map_err(|e| e.to_string())?,
        text: crate::render::plan_text(plan),
    });
    Ok(())
}

/// The machines applied from this host's spec and gone from it that the
/// command line's patterns select (as `crate::prune::select` does locally).
fn prune_names(engine: &Engine, options: &Options) -> Result<Vec<String>, String> {
    let prunable = engine.prunable().map_err(|e| e.to_string())?;
    Ok(crate::prune::filter(
        prunable,
        &options.patterns,
        &options.excludes,
    ))
}

fn plan_exit(plan: &berth_engine::Plan) -> u8 {
    if plan.is_empty() { 0 } else { 2 }
}

fn plan(
    engine: &Engine,
    options: &Options,
    machines: &[&Machine],
    emit: &(dyn Fn(WireEvent) + Sync),
) -> Served {
    let prune = prune_names(engine, options)?;
    let mode = if options.upgrade {
        crate::flow::Mode::Upgrade
    } else {
        crate::flow::Mode::Plan
    };
    let planned =
        crate::flow::plan(engine, machines, &prune, mode).map_err(|e| format!("{e:#}"))?;
    let shown = planned.shown();
    emit_plan(&shown, emit)?;
    Ok((plan_exit(&shown), None))
}

fn plan_out(
    engine: &Engine,
    options: &Options,
    spec_path: &Path,
    machines: &[&Machine],
    emit: &(dyn Fn(WireEvent) + Sync),
) -> Served {
    let prune = prune_names(engine, options)?;
    let planned = crate::flow::plan(engine, machines, &prune, crate::flow::Mode::Save(spec_path))
        .map_err(|e| format!("{e:#}"))?;
    let shown = planned.shown();
    emit_plan(&shown, emit)?;
    emit(WireEvent::Saved {
        saved: serde_json::to_value(&planned.saved).map_err(|e| e.to_string())?,
    });
    Ok((plan_exit(&shown), None))
}

fn status(engine: &Engine, machines: &[&Machine], emit: &(dyn Fn(WireEvent) + Sync)) -> Served {
    let rows = machines
        .iter()
        .map(|m| engine.status(m))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    emit(WireEvent::Status {
        rows: serde_json::to_value(&rows).map_err(|e| e.to_string())?,
    });
    Ok((0, None))
}

fn lock(engine: &Engine, options: &Options) -> Result<berth_engine::StateLock, String> {
    berth_engine::StateLock::acquire_within(
        engine.host().paths(),
        options.lock_timeout.map(std::time::Duration::from_secs),
        |_| {},
    )
    .map_err(|e| e.to_string())
}

fn apply(
    engine: &Engine,
    options: &Options,
    machines: &[&Machine],
    saved: Option<&serde_json::Value>,
    emit: &(dyn Fn(WireEvent) + Sync),
) -> Served {
    let _lock = lock(engine, options)?;
    match saved {
        Some(saved) => {
            let saved: berth_engine::saved_plan::SavedPlan = serde_json::from_value(saved.clone())
                .map_err(|e| format!("a bad saved plan: {e}"))?;
            let targets: Vec<&Machine> = saved
                .targets
                .iter()
                .filter_map(|t| machines.iter().copied().find(|m| &m.name == t))
                .collect();
            if targets.len() != saved.targets.len() {
                return Err(
                    "plan is stale: the spec no longer has the same machines here; plan again"
                        .to_owned(),
                );
            }
            let planned =
                crate::flow::check_saved(engine, &targets, &saved).map_err(|e| e.to_string())?;
            apply_plan(engine, options, &targets, &planned, emit)
        }
        None => {
            let prune = prune_names(engine, options)?;
            let planned = crate::flow::apply_plan(engine, machines, &prune, options.upgrade)
                .map_err(|e| format!("{e:#}"))?;
            apply_plan(engine, options, machines, &planned, emit)
        }
    }
}

/// Applies `planned` as `berth apply` does locally (machines, records,
/// then the machines to prune with `--prune`, or kept with a warning).
fn apply_plan(
    engine: &Engine,
    options: &Options,
    machines: &[&Machine],
    planned: &crate::flow::Planned,
    emit: &(dyn Fn(WireEvent) + Sync),
) -> Served {
    let (plan, prune) = (&planned.plan, &planned.prune);
    let shown = planned.shown();
    emit_plan(&shown, emit)?;
    if options.prune {
        crate::flow::check_prune(engine, prune).map_err(|e| format!("{e:#}"))?;
    }
    let pruning = options.prune && !prune.is_empty();
    if (!plan.is_empty() || pruning) && !options.yes {
        return Err("apply needs --yes on a fleet (the controller asks first)".into());
    }
    let reporter = WireReporter {
        emit,
        started: Mutex::new(HashMap::new()),
    };
    let mut failed = 0;
    let mut results = Vec::new();
    let mut done: Vec<&Machine> = Vec::new();
    for (machine, machine_plan) in machines.iter().zip(&plan.machines) {
        // Stopped (the controller's Ctrl-C): the machines not started stay
        // as they are, as in a local apply.
        if berth_engine::interrupt::requested() && !machine_plan.actions.is_empty() {
            results.push(machine_result(
                &machine.name,
                &machine_plan.actions,
                "not started",
                None,
            ));
            continue;
        }
        let (result, error) = if machine_plan.actions.is_empty() {
            ("unchanged", None)
        } else {
            let allow = options.replace.iter().any(|n| n == &machine.name);
            match engine.apply_machine(machine, machine_plan, allow, &reporter) {
                Ok(()) => ("applied", None),
                Err(e) => {
                    failed += 1;
                    emit(WireEvent::StepFailed {
                        machine: machine.name.clone(),
                        error: e.to_string(),
                    });
                    ("failed", Some(e.to_string()))
                }
            }
        };
        if error.is_none() {
            done.push(machine);
        }
        results.push(machine_result(
            &machine.name,
            &machine_plan.actions,
            result,
            error,
        ));
    }
    // After the apply: a record changed before it would make the plan stale.
    crate::flow::record(engine, machines, &done).map_err(|e| format!("{e:#}"))?;
    for p in prune {
        if options.prune && berth_engine::interrupt::requested() {
            break;
        }
        if !options.prune {
            emit(WireEvent::Warning {
                text: crate::prune::kept_line(&p.name),
            });
            results.push(machine_result(&p.name, &p.actions, "kept", None));
            continue;
        }
        let (result, error) = crate::flow::prune_one(engine, p, &reporter);
        if let Some(e) = &error {
            failed += 1;
            emit(WireEvent::StepFailed {
                machine: p.name.clone(),
                error: e.clone(),
            });
        }
        results.push(machine_result(&p.name, &p.actions, result, error));
    }
    let report = json!({
        "changes": shown.changes,
        "applied": failed == 0,
        "machines": results,
    });
    let exit = if berth_engine::interrupt::requested() {
        INTERRUPTED_EXIT
    } else if failed > 0 {
        1
    } else if options.detailed_exitcode && !shown.is_empty() {
        2
    } else {
        0
    };
    Ok((exit, Some(report)))
}

/// One machine's entry in an apply report.
fn machine_result(
    name: &str,
    actions: &[berth_engine::Action],
    result: &str,
    error: Option<String>,
) -> serde_json::Value {
    json!({"name": name, "actions": actions, "result": result, "error": error})
}

/// `berth rollback NAME [TAG]` of one machine here, with the host's part
/// of the spec (a running machine is started again as the spec says).
fn rollback(engine: &Engine, options: &Options, emit: &(dyn Fn(WireEvent) + Sync)) -> Served {
    let [name] = options.names.as_slice() else {
        return Err("rollback takes one machine".into());
    };
    let _lock = lock(engine, options)?;
    let reporter = WireReporter {
        emit,
        started: Mutex::new(HashMap::new()),
    };
    let report = engine
        .rollback(name, options.tag.as_deref(), &reporter)
        .map_err(|e| e.to_string())?;
    let report = serde_json::to_value(&report).map_err(|e| e.to_string())?;
    Ok((0, Some(report)))
}

fn destroy(engine: &Engine, options: &Options, emit: &(dyn Fn(WireEvent) + Sync)) -> Served {
    if !options.yes {
        return Err("destroy needs --yes on a fleet (the controller asks first)".into());
    }
    engine.check_destroyable(&options.names).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let _lock = lock(engine, options)?;
    let plan = engine.plan_destroy(&options.names).map_err(plan_errors)?;
    emit_plan(&plan, emit)?;
    let reporter = WireReporter {
        emit,
        started: Mutex::new(HashMap::new()),
    };
    let mut failed = 0;
    let mut results = Vec::new();
    for (i, name) in options.names.iter().enumerate() {
        let (result, error) = match engine.destroy(name, &reporter) {
            Ok(true) => ("destroyed", None),
            Ok(false) => ("absent", None),
            Err(e) => {
                failed += 1;
                ("failed", Some(e.to_string()))
            }
        };
        emit(WireEvent::Output {
            machine: Some(name.clone()),
            text: match &error {
                None if result == "destroyed" => "destroyed".to_owned(),
                None => "absent, nothing to do".to_owned(),
                Some(e) => format!("failed: {e}"),
            },
        });
        let actions = plan
            .machines
            .get(i)
            .map(|m| m.actions.as_slice())
            .unwrap_or_default();
        results.push(machine_result(name, actions, result, error));
    }
    let report = json!({
        "changes": plan.changes,
        "destroyed": failed == 0,
        "machines": results,
    });
    Ok((u8::from(failed > 0), Some(report)))
}

/// Writes one event line to stdout, flushed.
fn emit_stdout(event: WireEvent) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(event.to_line().as_bytes());
    let _ = out.flush();
}

/// Stops an apply at the next safe point when the controller asks
/// ([`STOP_LINE`] on stdin, its Ctrl-C) or goes away (the end of stdin).
fn watch_controller() {
    std::thread::spawn(|| {
        let mut line = String::new();
        loop {
            line.clear();
            match std::io::stdin().lock().take(4096).read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) if line.trim() == STOP_LINE => break,
                Ok(_) => {}
            }
        }
        berth_engine::interrupt::request();
    });
}

/// A private directory, removed on drop.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `berth agent`: one request from stdin, events on stdout. First of
/// all, the digest of this host's ssh host keys: a controller that
/// reused a connection made when they had another digest gets exit
/// [`HOST_KEYS_EXIT`] and nothing else (not even the request is read);
/// one that made its connection now records the digest.
pub fn run(paths: Paths, args: &crate::cli::AgentArgs) -> ExitCode {
    use berth_engine::remote::hostkeys;
    let digest = hostkeys::digest(std::path::Path::new(hostkeys::SSH_CONFIG_DIR));
    if let Some(expected) = &args.expect_host_keys
        && *expected != digest
    {
        eprintln!(
            "berth agent: this host's ssh host keys changed since the controller's connection was made"
        );
        return ExitCode::from(HOST_KEYS_EXIT as u8);
    }
    emit_stdout(WireEvent::HostKeys { digest });
    let exit = match run_request(paths) {
        Ok(code) => code,
        Err(error) => {
            emit_stdout(WireEvent::Result {
                exit: 1,
                error: Some(error),
                report: None,
            });
            1
        }
    };
    ExitCode::from(exit)
}

fn run_request(paths: Paths) -> Result<u8, String> {
    let mut text = String::new();
    std::io::stdin()
        .lock()
        .take(MAX_REQUEST)
        .read_line(&mut text)
        .map_err(|e| format!("cannot read the request: {e}"))?;
    let request: Request = serde_json::from_str(&text).map_err(|e| format!("bad request: {e}"))?;
    drop(text);
    watch_controller();
    if request.version != PROTOCOL {
        return Err(format!(
            "the controller speaks protocol {}, this agent {PROTOCOL}",
            request.version
        ));
    }
    let ours = super::version();
    if request.berth != ours {
        return Err(format!(
            "the controller is {:?}, this agent {ours:?}: versions must match exactly",
            request.berth
        ));
    }
    let mut secrets = HashMap::new();
    for (name, value) in &request.secrets {
        let bytes = base64_decode(value).ok_or_else(|| format!("secret {name}: bad base64"))?;
        secrets.insert(name.clone(), bytes);
    }
    berth_engine::secret::preset_env(secrets)?;

    // One work directory per spec and host, the same every time (a saved
    // plan's fingerprints hold its paths), held under a lock meanwhile.
    std::fs::create_dir_all(RUN_DIR).map_err(|e| format!("cannot make {RUN_DIR}: {e}"))?;
    let key = {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(
            format!(
                "{}\0{}\0{}",
                request.controller, request.spec_label, request.host
            )
            .as_bytes(),
        );
        digest
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let dir = Path::new(RUN_DIR).join(format!("agent-{key}"));
    let lock = std::fs::File::create(Path::new(RUN_DIR).join(format!("agent-{key}.lock")))
        .map_err(|e| format!("cannot make the agent's lock in {RUN_DIR}: {e}"))?;
    lock.lock()
        .map_err(|e| format!("cannot lock the agent's work directory: {e}"))?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    let work = WorkDir(dir);
    for (rel, data) in &request.files {
        let path = Path::new(rel);
        if !path.components().all(|c| matches!(c, Component::Normal(_)))
            || !rel.starts_with("inputs/")
        {
            return Err(format!("bad file name in the request: {rel:?}"));
        }
        let bytes = base64_decode(data).ok_or_else(|| format!("{rel}: bad base64"))?;
        let full = work.0.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&full, bytes).map_err(|e| format!("{rel}: {e}"))?;
    }
    // A spec file, or the files of a spec directory (then the work
    // directory is the spec: loading reads its `*.yaml` files only).
    let spec_path = if request.spec_files.is_empty() {
        let path = work.0.join("spec.yaml");
        std::fs::write(&path, &request.spec_yaml).map_err(|e| e.to_string())?;
        path
    } else {
        for (name, text) in &request.spec_files {
            let plain = Path::new(name)
                .file_name()
                .is_some_and(|n| n == name.as_str());
            if !plain || !name.ends_with(".yaml") || name.starts_with('.') {
                return Err(format!("bad spec file name in the request: {name:?}"));
            }
            std::fs::write(work.0.join(name), text).map_err(|e| format!("{name}: {e}"))?;
        }
        work.0.clone()
    };
    let spec = berth_schema::load(&spec_path).map_err(|e| {
        format!(
            "the spec part for this host does not load (from {}):\n{}",
            request.spec_label,
            e.to_string().trim_end()
        )
    })?;
    let machines: Vec<&Machine> = if request.options.names.is_empty() {
        spec.machines.values().collect()
    } else {
        request
            .options
            .names
            .iter()
            .filter_map(|n| spec.machines.get(n))
            .collect()
    };
    let policy = berth_engine::inputs::InputPolicy::allowing(&[])?;
    // The records of what is applied here name this spec path: the same
    // for this spec, controller and host every time, so prune finds them.
    let engine = Engine::new(paths)
        .with_inputs(policy)
        .with_spec_path(&spec_path)
        .map_err(|e| e.to_string())?
        .for_spec(&spec);
    let last = Mutex::new(0u8);
    let emit = |event: WireEvent| {
        if let WireEvent::Result { exit, .. } = &event
            && let Ok(mut l) = last.lock()
        {
            *l = *exit;
        }
        emit_stdout(event);
    };
    let job = Job {
        command: &request.command,
        options: &request.options,
        spec_path: &spec_path,
        saved: request.saved.as_ref(),
    };
    serve(&engine, &job, &machines, &emit);
    drop(work);
    drop(lock);
    let code = last.lock().map(|l| *l).unwrap_or(1);
    Ok(code)
}
