//! Many hosts from one spec (issue 15): the controller.
//!
//! When the spec has `hosts:` reached over ssh (or `--hosts` is given),
//! `plan`, `apply`, `status` and `destroy` run per host, in parallel (one
//! thread per host, at most `--jobs`): the local host in-process, every
//! other through `berth agent` on it over one ssh connection
//! (`berth_engine::remote`). One failing or unreachable host never stops
//! the others. Human output is grouped per host under a header
//! (`== host alpha (root@192.0.2.10) ==`), in the spec's order, while
//! apply's and destroy's steps show on stderr as they happen; JSON adds
//! `"host"` to every machine. Any failed host makes the exit code 1 and is
//! listed at the end (`host gamma: ssh: connect to host ...`).
//!
//! `plan --out` saves every host's plan in one file (`berth-fleet-plan`);
//! `apply FILE` sends each host its part, which refuses when something
//! changed there (`plan is stale: host beta: ...`). `exec` and `logs` on
//! a machine placed on another host run `berth exec`/`berth logs` there.

pub mod agent;

use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::sync::Mutex;

use anyhow::{Result, anyhow, bail};
use berth_engine::Engine;
use berth_engine::inputs::InputPolicy;
use berth_engine::remote::ssh::{Connection, LocalBinary, ssh_failure};
use berth_engine::remote::wire::{Options, STOP_LINE, WireEvent};
use berth_engine::remote::{RemoteError, bundle};
use berth_schema::hosts::{Host, LOCAL_HOST, Node};
use berth_schema::{Machine, Spec};
use serde_json::Value;

use crate::render;

/// What `--version` prints; agents must print the same.
pub fn version() -> String {
    format!("berth {}", env!("CARGO_PKG_VERSION"))
}

/// Whether a command on `spec` goes through the fleet path.
pub fn applies(spec: &Spec, hosts: &[String]) -> bool {
    spec.fleet.has_remote() || !hosts.is_empty()
}

/// One host's part of a command.
struct HostJob<'a> {
    host: Host,
    machines: Vec<&'a Machine>,
}

/// What one host did.
struct HostRun {
    host: Host,
    events: Vec<WireEvent>,
    /// Why the host failed (unreachable, lost, its command failed).
    error: Option<String>,
    /// The command's exit code there.
    exit: u8,
}

impl HostRun {
    fn header(&self) -> String {
        match &self.host.ssh {
            Some(t) => format!("== host {} ({t}) ==", self.host.name),
            None => format!("== host {} ==", self.host.name),
        }
    }

    fn plan(&self) -> Option<(&Value, &str)> {
        self.events.iter().find_map(|e| match e {
            WireEvent::Plan { plan, text } => Some((plan, text.as_str())),
            _ => None,
        })
    }

    fn report(&self) -> Option<&Value> {
        self.events.iter().find_map(|e| match e {
            WireEvent::Result { report, .. } => report.as_ref(),
            _ => None,
        })
    }
}

/// The spec's machines selected by NAME/--exclude and `--hosts`, grouped
/// per host in the spec's host order. With `every_host` (plan and apply
/// without NAME), a host of `hosts:` with no machine left in the spec is
/// still one (its machines applied from the spec are pruned there).
fn jobs<'a>(
    spec: &'a Spec,
    names: &[String],
    excludes: &[String],
    hosts: &[String],
    every_host: bool,
) -> Result<Vec<HostJob<'a>>> {
    let machines = crate::select::select(spec, names, excludes)?;
    let picked: Vec<String> = if hosts.is_empty() {
        let mut all: Vec<String> = spec.fleet.hosts.keys().cloned().collect();
        if !all.iter().any(|h| h == LOCAL_HOST) {
            all.push(LOCAL_HOST.to_owned());
        }
        all
    } else {
        spec.fleet.select(hosts).map_err(|e| anyhow!(e))?
    };
    let mut out = Vec::new();
    for name in &picked {
        let on: Vec<&Machine> = machines
            .iter()
            .copied()
            .filter(|m| spec.fleet.host_of(&m.name) == name)
            .collect();
        let declared = every_host && names.is_empty() && spec.fleet.hosts.contains_key(name);
        if on.is_empty() && !declared {
            continue;
        }
        let host = spec
            .fleet
            .host(name)
            .ok_or_else(|| anyhow!("no such host {name}"))?;
        out.push(HostJob { host, machines: on });
    }
    if out.is_empty() {
        bail!(
            "no machine of the spec is on the selected hosts ({})",
            picked.join(", ")
        );
    }
    Ok(out)
}

/// Everything a host run needs from the command line.
struct Ctx<'a> {
    engine: &'a Engine,
    spec: &'a Spec,
    spec_file: &'a Path,
    policy: &'a InputPolicy,
    binary: Option<LocalBinary>,
    /// Print each host's steps on stderr as they happen (apply, destroy).
    live: bool,
    /// Each host's part of a saved plan (`apply FILE`).
    saved: std::collections::BTreeMap<String, Value>,
    /// The spec's files, parsed once for every host's request (by the
    /// first host that needs them).
    sources: std::sync::OnceLock<Result<Vec<(std::path::PathBuf, Node)>, RemoteError>>,
}

/// Runs `command` on every job's host in parallel (at most `jobs` at once).
fn run_all(
    ctx: &Ctx<'_>,
    jobs: &[HostJob<'_>],
    command: &str,
    options: &Options,
    parallel: usize,
) -> Vec<HostRun> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let results: Mutex<Vec<Option<HostRun>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..parallel.max(1).min(jobs.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(job) = jobs.get(i) else { break };
                    let run = run_host(ctx, job, command, options);
                    if let Ok(mut r) = results.lock()
                        && let Some(slot) = r.get_mut(i)
                    {
                        *slot = Some(run);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

/// One host: in-process for the local one, over ssh for the others.
fn run_host(ctx: &Ctx<'_>, job: &HostJob<'_>, command: &str, options: &Options) -> HostRun {
    let mut options = options.clone();
    if options.names.is_empty() {
        options.names = job.machines.iter().map(|m| m.name.clone()).collect();
    }
    if job.host.is_local() {
        let events = Mutex::new(Vec::new());
        // The local host's own part of the spec: its machines only.
        let mut local = ctx.spec.clone();
        local
            .machines
            .retain(|name, _| ctx.spec.fleet.host_of(name) == job.host.name);
        local
            .moved
            .retain(|m| ctx.spec.fleet.host_of(&m.to) == job.host.name);
        // Records name the spec file, as a plain local apply's do.
        let engine = match ctx.engine.with_spec_path(ctx.spec_file) {
            Ok(engine) => engine.for_spec(&local),
            Err(e) => {
                return HostRun {
                    host: job.host.clone(),
                    events: Vec::new(),
                    error: Some(e.to_string()),
                    exit: 1,
                };
            }
        };
        let emit = |e: WireEvent| {
            if let Ok(mut ev) = events.lock() {
                if ctx.live {
                    live_line(&job.host.name, &e);
                }
                ev.push(e);
            }
        };
        let names = options.names.clone();
        let machines: Vec<&Machine> = names.iter().filter_map(|n| local.machines.get(n)).collect();
        let work = agent::Job {
            command,
            options: &options,
            spec_path: ctx.spec_file,
            saved: ctx.saved.get(&job.host.name),
        };
        agent::serve(&engine, &work, &machines, &emit);
        return finish(
            job.host.clone(),
            events.into_inner().unwrap_or_default(),
            None,
        );
    }
    match run_remote(ctx, job, command, &options) {
        Ok((events, lost)) => finish(job.host.clone(), events, lost),
        Err(e) => HostRun {
            host: job.host.clone(),
            events: Vec::new(),
            error: Some(e.0),
            exit: 1,
        },
    }
}

/// A run from its events: its exit code and error from the `result`.
fn finish(host: Host, events: Vec<WireEvent>, lost: Option<String>) -> HostRun {
    let (exit, error) = events
        .iter()
        .find_map(|e| match e {
            WireEvent::Result { exit, error, .. } => Some((*exit, error.clone())),
            _ => None,
        })
        .unwrap_or((1, None));
    let error = lost.or(error).or_else(|| match exit {
        1 => Some("failed".to_owned()),
        agent::INTERRUPTED_EXIT => Some("interrupted: stopped at a safe point".to_owned()),
        _ => None,
    });
    HostRun {
        host,
        events,
        error,
        exit,
    }
}

/// The spec's files and their text: the file, or a directory's `*.yaml`
/// files (sorted, hidden ones skipped, as loading reads them).
fn spec_sources(spec: &Path) -> Result<Vec<(std::path::PathBuf, String)>, RemoteError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .map_err(|e| RemoteError::new(format!("cannot read {}: {e}", p.display())))
    };
    if !spec.is_dir() {
        return Ok(vec![(spec.to_path_buf(), read(spec)?)]);
    }
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(spec)
        .map_err(|e| RemoteError::new(format!("cannot read {}: {e}", spec.display())))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .is_some_and(|n| n.ends_with(".yaml") && !n.starts_with('.'))
        })
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    files
        .into_iter()
        .map(|f| read(&f).map(|t| (f, t)))
        .collect()
}

/// Over ssh: connect, push, send the request, read the events. Returns the
/// events and, when the stream ended without a result, why.
fn run_remote(
    ctx: &Ctx<'_>,
    job: &HostJob<'_>,
    command: &str,
    options: &Options,
) -> Result<(Vec<WireEvent>, Option<String>), RemoteError> {
    let binary = ctx
        .binary
        .as_ref()
        .ok_or_else(|| RemoteError::new("berth's own binary is unknown"))?;
    let conn = Connection::new(&job.host, &ctx.spec.fleet)?;
    // A kept master is trusted with the host keys' digest recorded when it
    // was made (see berth_engine::remote::hostkeys).
    let mut expect = conn.kept_keys();
    // The usual case in one round trip: this berth is on the host already
    // (its file is named by its hash), run its agent. It is started before
    // the request is made, so the host starts it meanwhile.
    let early = start_agent(&conn, binary, expect.as_deref())?;
    let sources = ctx
        .sources
        .get_or_init(|| spec_sources(ctx.spec_file).and_then(|s| bundle::parse_sources(&s)))
        .as_ref()
        .map_err(Clone::clone)?;
    let mut request = bundle::request(
        command,
        options.clone(),
        ctx.spec_file,
        sources,
        &ctx.spec.fleet,
        &job.host.name,
        &job.machines,
        ctx.policy,
        &binary.version,
    )?;
    request.saved = ctx.saved.get(&job.host.name).cloned();
    let payload = serde_json::to_vec(&request)
        .map_err(|e| RemoteError::new(format!("cannot encode the request: {e}")))?;
    drop(request);
    let mut tried = run_agent(ctx, job, &conn, early, expect.as_deref(), &payload)?;
    if expect.is_some()
        && tried.events.is_empty()
        && tried.status == Some(berth_engine::remote::ssh::HOST_KEYS_EXIT)
    {
        // The host's keys changed since the kept master was made: end it
        // and connect anew, so ssh checks the key against known_hosts.
        conn.end_master();
        expect = None;
        let early = start_agent(&conn, binary, None)?;
        tried = run_agent(ctx, job, &conn, early, None, &payload)?;
    }
    if expect.is_none()
        && let Some(digest) = tried.events.iter().find_map(|e| match e {
            WireEvent::HostKeys { digest } => Some(digest),
            _ => None,
        })
    {
        conn.record_keys(digest);
    }
    let AgentAttempt {
        events,
        current,
        status,
        stderr,
    } = tried;
    let ended = events.iter().any(|e| matches!(e, WireEvent::Result { .. }));
    let lost = if ended {
        None
    } else if let Some(step) = current {
        // The step as the issue names it: `start machine`, without the
        // launcher or a note in parentheses.
        let step = match step.rsplit_once(" (") {
            Some((head, tail)) if tail.ends_with(')') => head.to_owned(),
            _ => step,
        };
        Some(format!("connection lost during '{step}'"))
    } else if status == Some(255) {
        Some(ssh_failure(&stderr))
    } else {
        Some(format!(
            "the agent ended without a result: {}",
            stderr
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("no message")
        ))
    };
    Ok((events, lost))
}

/// What one run of an agent over ssh gave.
struct AgentAttempt {
    /// Its events.
    events: Vec<WireEvent>,
    /// The step started and not done when the stream ended.
    current: Option<String>,
    /// ssh's exit code.
    status: Option<i32>,
    /// ssh's and the remote command's stderr.
    stderr: String,
}

/// Starts this berth's agent on the host when it is there already (see
/// [`Connection::agent_if_present`]); `None` when it is not known to be.
fn start_agent(
    conn: &Connection,
    binary: &LocalBinary,
    expect: Option<&str>,
) -> Result<Option<berth_engine::remote::ssh::Started>, RemoteError> {
    conn.agent_if_present(binary, expect)
        .map(|remote| conn.start(&remote))
        .transpose()
}

/// Runs the agent: the one `early` started when berth was there already,
/// else (it was missing, or the host names its own `berth:`) after
/// [`Connection::prepare`].
fn run_agent(
    ctx: &Ctx<'_>,
    job: &HostJob<'_>,
    conn: &Connection,
    early: Option<berth_engine::remote::ssh::Started>,
    expect: Option<&str>,
    payload: &[u8],
) -> Result<AgentAttempt, RemoteError> {
    if let Some(started) = early {
        let tried = agent_attempt(ctx, job, started, payload);
        let missing = tried.events.is_empty()
            && tried.status == Some(berth_engine::remote::ssh::MISSING_EXIT);
        if !missing {
            return Ok(tried);
        }
    }
    let binary = ctx
        .binary
        .as_ref()
        .ok_or_else(|| RemoteError::new("berth's own binary is unknown"))?;
    let bin = conn.prepare(binary)?;
    let remote = berth_engine::remote::ssh::agent_command(&bin, expect);
    Ok(agent_attempt(ctx, job, conn.start(&remote)?, payload))
}

/// Sends `payload` to an agent `started` on the host, reads its events.
fn agent_attempt(
    ctx: &Ctx<'_>,
    job: &HostJob<'_>,
    mut started: berth_engine::remote::ssh::Started,
    payload: &[u8],
) -> AgentAttempt {
    let mut payload = payload.to_vec();
    payload.push(b'\n');
    // The request, then stdin stays open while the agent runs: closing it
    // (or STOP_LINE, on Ctrl-C here) stops an apply at a safe point.
    let (ended, wait_end) = std::sync::mpsc::channel::<()>();
    let writer = started.stdin.take().map(|mut pipe| {
        std::thread::spawn(move || {
            if pipe
                .write_all(&payload)
                .and_then(|()| pipe.flush())
                .is_err()
            {
                return;
            }
            loop {
                match wait_end.recv_timeout(std::time::Duration::from_millis(100)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        if berth_engine::interrupt::requested() {
                            let _ = pipe.write_all(format!("{STOP_LINE}\n").as_bytes());
                            let _ = pipe.flush();
                            // Kept open: the agent stops by itself.
                            let _ = wait_end.recv();
                            return;
                        }
                    }
                    _ => return,
                }
            }
        })
    });
    let stderr = started.stderr.take().map(|pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(pipe), &mut text);
            text
        })
    });
    let mut events = Vec::new();
    let mut current: Option<String> = None;
    if let Some(out) = started.stdout.take() {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            match serde_json::from_str::<WireEvent>(&line) {
                Ok(event) => {
                    match &event {
                        WireEvent::StepStarted { step, .. } => current = Some(step.clone()),
                        WireEvent::StepDone { .. } => current = None,
                        _ => {}
                    }
                    if ctx.live {
                        live_line(&job.host.name, &event);
                    }
                    events.push(event);
                }
                Err(_) => events.push(WireEvent::Output {
                    machine: None,
                    text: line,
                }),
            }
        }
    }
    drop(ended);
    if let Some(w) = writer {
        let _ = w.join();
    }
    let status = started.wait();
    let stderr = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    AgentAttempt {
        events,
        current,
        status,
        stderr,
    }
}

fn context<'a>(
    engine: &'a Engine,
    spec: &'a Spec,
    spec_file: &'a Path,
    policy: &'a InputPolicy,
    jobs: &[HostJob<'_>],
) -> Result<Ctx<'a>> {
    let binary = if jobs.iter().any(|j| !j.host.is_local()) {
        Some(LocalBinary::current(&version()).map_err(|e| anyhow!(e))?)
    } else {
        None
    };
    Ok(Ctx {
        engine,
        spec,
        spec_file,
        policy,
        binary,
        saved: std::collections::BTreeMap::new(),
        live: false,
        sources: std::sync::OnceLock::new(),
    })
}

/// A step of a host as it happens, on stderr (one whole line each).
fn live_line(host: &str, event: &WireEvent) {
    match event {
        WireEvent::StepStarted { machine, step } => {
            anstream::eprintln!("{host}: {machine}: {step}...");
        }
        WireEvent::StepDone {
            machine,
            step,
            seconds,
        } => anstream::eprintln!("{host}: {machine}: done: {step} ({seconds:.1}s)"),
        WireEvent::StepFailed { machine, error } => {
            let first = error.lines().next().unwrap_or(error);
            anstream::eprintln!("{host}: {machine}: failed: {first}");
        }
        _ => {}
    }
}

/// Prints what each host did, grouped, and lists failures last.
fn render_groups(runs: &[HostRun], command: &str) {
    for run in runs {
        anstream::println!("{}", run.header());
        for event in &run.events {
            match event {
                WireEvent::Plan { text, .. } if command != "apply" || !render::quiet() => {
                    anstream::print!("{text}");
                }
                WireEvent::Status { rows } => print_status(rows),
                WireEvent::Warning { text } if !render::quiet() => {
                    anstream::eprintln!("{text}");
                }
                WireEvent::StepFailed { machine, error } => {
                    anstream::println!("{machine}: failed: {error}");
                }
                WireEvent::Output {
                    machine: Some(m),
                    text,
                } if command == "destroy" || render::verbosity() == render::Verbosity::Verbose => {
                    anstream::println!("{m}: {text}");
                }
                _ => {}
            }
        }
        if let Some(e) = &run.error {
            anstream::println!("host {}: {e}", run.host.name);
        }
        anstream::println!();
    }
}

/// The failure summary and exit code 1 when a host failed.
fn summary(runs: &[HostRun]) -> bool {
    let failed: Vec<&HostRun> = runs.iter().filter(|r| r.error.is_some()).collect();
    for run in &failed {
        let e = run.error.as_deref().unwrap_or("failed");
        let first = e.lines().next().unwrap_or(e);
        match first.strip_prefix("plan is stale: ") {
            Some(rest) => anstream::eprintln!("plan is stale: host {}: {rest}", run.host.name),
            None => anstream::eprintln!("host {}: {first}", run.host.name),
        }
    }
    if !failed.is_empty() {
        anstream::eprintln!("{} of {} hosts failed.", failed.len(), runs.len());
    }
    !failed.is_empty()
}

/// A status table from `status --json` rows.
fn print_status(rows: &Value) {
    let rows = rows.as_array().cloned().unwrap_or_default();
    let s = |r: &Value, k: &str| -> String {
        match r.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.to_owned(),
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            _ => "-".to_owned(),
        }
    };
    let width = rows
        .iter()
        .map(|r| s(r, "name").len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<width$}  {:<8}  {:<11}  {:<9}  {:<9}  {:<8}  {:<9}  ADDRESSES",
        "NAME", "STATE", "LAUNCHER", "NETWORK", "AUTOSTART", "PID", "SYSTEM"
    );
    for r in &rows {
        println!(
            "{:<width$}  {:<8}  {:<11}  {:<9}  {:<9}  {:<8}  {:<9}  {}",
            s(r, "name"),
            s(r, "state"),
            s(r, "launcher"),
            s(r, "network"),
            s(r, "autostart"),
            s(r, "pid"),
            s(r, "system_state"),
            s(r, "addresses"),
        );
    }
}

/// `machines` of a JSON value, each with `"host"` added.
fn with_host(value: Option<&Value>, host: &str) -> Vec<Value> {
    value
        .and_then(|v| v.get("machines"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut m| {
            if let Value::Object(o) = &mut m {
                o.insert("host".into(), Value::String(host.to_owned()));
            }
            m
        })
        .collect()
}

/// Each host's result for JSON output.
fn host_results(runs: &[HostRun]) -> Vec<Value> {
    runs.iter()
        .map(|r| {
            serde_json::json!({
                "name": r.host.name,
                "ssh": r.host.ssh.as_ref().map(ToString::to_string),
                "result": if r.error.is_some() { "failed" } else { "ok" },
                "error": r.error,
            })
        })
        .collect()
}

/// `berth plan` over hosts.
pub fn plan(engine: &Engine, args: &crate::cli::PlanArgs, spec: &Spec) -> Result<ExitCode> {
    let policy = crate::commands::input_policy(&args.inputs)?;
    let jobs = jobs(spec, &args.names, &args.exclude, &args.fleet.hosts, true)?;
    // A saved plan names its spec by absolute path (as plan.rs loads it).
    let spec_file = match &args.out {
        Some(_) => std::path::absolute(&args.spec.file)?,
        None => args.spec.file.clone(),
    };
    let ctx = context(engine, spec, &spec_file, &policy, &jobs)?;
    let command = if args.out.is_some() {
        "plan_out"
    } else {
        "plan"
    };
    let options = Options {
        upgrade: args.upgrade,
        patterns: args.names.clone(),
        excludes: args.exclude.clone(),
        ..Options::default()
    };
    let runs = run_all(&ctx, &jobs, command, &options, jobs.len());
    if let Some(out) = &args.out {
        if runs.iter().any(|r| r.error.is_some()) {
            render_groups(&runs, "plan");
            summary(&runs);
            bail!("planning failed on some hosts; the plan was not saved");
        }
        write_fleet_plan(out, &spec_file, &runs)?;
        render::saved_plan_hint(out);
    }
    let changes: u64 = runs
        .iter()
        .filter_map(|r| r.plan())
        .filter_map(|(p, _)| p.get("changes").and_then(Value::as_u64))
        .sum();
    if args.json {
        let machines: Vec<Value> = runs
            .iter()
            .flat_map(|r| with_host(r.plan().map(|(p, _)| p), &r.host.name))
            .collect();
        let out = serde_json::json!({
            "changes": changes,
            "machines": machines,
            "hosts": host_results(&runs),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        let failed = runs.iter().any(|r| r.error.is_some());
        for r in runs.iter().filter(|r| r.error.is_some()) {
            anstream::eprintln!("host {}: {}", r.host.name, r.error.as_deref().unwrap_or(""));
        }
        return Ok(exit_for(failed, args.detailed_exitcode && changes > 0));
    }
    render_groups(&runs, "plan");
    let failed = summary(&runs);
    Ok(exit_for(failed, args.detailed_exitcode && changes > 0))
}

fn exit_for(failed: bool, changes: bool) -> ExitCode {
    if failed {
        ExitCode::from(1)
    } else if changes {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// The `format` of a saved plan over hosts.
const FLEET_FORMAT: &str = "berth-fleet-plan";

/// Writes every host's saved plan into one file (JSON, no secrets).
fn write_fleet_plan(out: &Path, spec_file: &Path, runs: &[HostRun]) -> Result<()> {
    let mut hosts = serde_json::Map::new();
    let mut machines = Vec::new();
    let mut changes = 0;
    for r in runs {
        let saved = r
            .events
            .iter()
            .find_map(|e| match e {
                WireEvent::Saved { saved } => Some(saved.clone()),
                _ => None,
            })
            .ok_or_else(|| anyhow!("host {}: no saved plan came back", r.host.name))?;
        hosts.insert(r.host.name.clone(), saved);
        if let Some((plan, _)) = r.plan() {
            changes += plan.get("changes").and_then(Value::as_u64).unwrap_or(0);
        }
        machines.extend(with_host(r.plan().map(|(p, _)| p), &r.host.name));
    }
    let file = serde_json::json!({
        "format": FLEET_FORMAT,
        "version": 1,
        "berth_version": env!("CARGO_PKG_VERSION"),
        "spec": spec_file,
        "hosts": hosts,
        "plan": {"changes": changes, "machines": machines},
    });
    let mut text = serde_json::to_vec_pretty(&file)?;
    text.push(b'\n');
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let mut tmp = tempfile_in(&dir)?;
    tmp.1.write_all(&text)?;
    tmp.1.sync_all()?;
    std::fs::rename(&tmp.0, out)
        .map_err(|e| anyhow!("writing the plan to {}: {e}", out.display()))?;
    Ok(())
}

/// A new file next to where the plan goes (renamed over it once written).
fn tempfile_in(dir: &Path) -> Result<(std::path::PathBuf, std::fs::File)> {
    for i in 0..100 {
        let path = dir.join(format!(".berth-plan.{}.{i}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => bail!("writing the plan in {}: {e}", dir.display()),
        }
    }
    bail!(
        "writing the plan in {}: no free temporary name",
        dir.display()
    )
}

/// `berth apply FILE` for a plan saved over hosts: `Some` when the only
/// argument is such a file. Each host gets its part and applies it when
/// nothing changed there since; otherwise that host refuses with
/// `plan is stale: host beta: ...` (the others go on).
pub fn apply_saved_arg(engine: &Engine, args: &crate::cli::ApplyArgs) -> Result<Option<ExitCode>> {
    let [arg] = args.names.as_slice() else {
        return Ok(None);
    };
    let path = Path::new(arg);
    if !(arg.contains('/') || path.is_file()) || !path.is_file() {
        return Ok(None);
    }
    let Ok(text) = std::fs::read(path) else {
        return Ok(None);
    };
    let Ok(file) = serde_json::from_slice::<Value>(&text) else {
        return Ok(None);
    };
    if file.get("format").and_then(Value::as_str) != Some(FLEET_FORMAT) {
        return Ok(None);
    }
    if args.upgrade {
        bail!("--upgrade does not go with a saved plan: run `berth apply --upgrade` on the spec");
    }
    if file.get("version").and_then(Value::as_u64) != Some(1) {
        bail!("{arg}: plan is stale: it was written in another format version; plan again");
    }
    let spec_path = file
        .get("spec")
        .and_then(Value::as_str)
        .map(std::path::PathBuf::from)
        .ok_or_else(|| anyhow!("{arg}: no spec in the plan file"))?;
    let spec = crate::commands::load_path(&spec_path)?;
    let hosts = file
        .get("hosts")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut jobs = Vec::new();
    for (name, saved) in &hosts {
        let host = spec.fleet.host(name).ok_or_else(|| {
            anyhow!(
                "plan is stale: host {name}: no longer in the spec at {}",
                spec_path.display()
            )
        })?;
        let mut machines = Vec::new();
        for target in saved
            .get("targets")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let target = target.as_str().unwrap_or_default();
            match spec.machines.get(target) {
                Some(m) if spec.fleet.host_of(target) == name => machines.push(m),
                _ => bail!(
                    "plan is stale: host {name}: machine {target} is no longer there in the spec at {}",
                    spec_path.display()
                ),
            }
        }
        jobs.push(HostJob { host, machines });
    }
    let policy = crate::commands::input_policy(&args.inputs)?;
    let mut ctx = context(engine, &spec, &spec_path, &policy, &jobs)?;
    ctx.saved = hosts.into_iter().collect();
    ctx.live = !args.json && !render::quiet();
    let options = Options {
        names: Vec::new(),
        yes: true,
        replace: args.replace.clone(),
        lock_timeout: args.lock_timeout,
        prune: args.prune,
        detailed_exitcode: args.detailed_exitcode,
        ..Options::default()
    };
    let parallel = args.jobs.unwrap_or(jobs.len()).max(1);
    berth_engine::interrupt::install()?;
    let runs = run_all(&ctx, &jobs, "apply_saved", &options, parallel);
    Ok(Some(finish_apply(&runs, args.json)?))
}

/// `berth apply` over hosts: without `--yes`, every host's plan first and
/// one question; then every host applies its part, in parallel.
pub fn apply(engine: &Engine, args: &crate::cli::ApplyArgs, spec: &Spec) -> Result<ExitCode> {
    let policy = crate::commands::input_policy(&args.inputs)?;
    let jobs = jobs(spec, &args.names, &args.exclude, &args.fleet.hosts, true)?;
    let ctx = context(engine, spec, &args.spec.file, &policy, &jobs)?;
    let parallel = args.jobs.unwrap_or(jobs.len()).max(1);
    let options = Options {
        names: Vec::new(),
        yes: true,
        replace: args.replace.clone(),
        lock_timeout: args.lock_timeout,
        prune: args.prune,
        upgrade: args.upgrade,
        detailed_exitcode: args.detailed_exitcode,
        patterns: args.names.clone(),
        excludes: args.exclude.clone(),
        tag: None,
    };
    if !args.yes {
        let preview = Options {
            yes: false,
            ..options.clone()
        };
        let runs = run_all(&ctx, &jobs, "plan", &preview, parallel);
        render_groups(&runs, "plan");
        if summary(&runs) {
            bail!("planning failed on some hosts; nothing was applied");
        }
        let changes: u64 = runs
            .iter()
            .filter_map(|r| r.plan())
            .filter_map(|(p, _)| p.get("changes").and_then(Value::as_u64))
            .sum();
        if changes == 0 {
            return Ok(ExitCode::SUCCESS);
        }
        if !crate::prompt::confirm("Apply these changes?", false)? {
            eprintln!("Apply cancelled; nothing was changed.");
            return Ok(ExitCode::from(1));
        }
    }
    let mut ctx = ctx;
    ctx.live = !args.json && !render::quiet();
    // Ctrl-C or SIGTERM from here on: every host stops at its next safe
    // point (the agents are told), as a local apply does.
    berth_engine::interrupt::install()?;
    let runs = run_all(&ctx, &jobs, "apply", &options, parallel);
    finish_apply(&runs, args.json)
}

/// Prints what every host applied (or JSON) and the exit code.
fn finish_apply(runs: &[HostRun], json: bool) -> Result<ExitCode> {
    let failed = runs
        .iter()
        .any(|r| r.error.is_some() || !matches!(r.exit, 0 | 2));
    let changed = runs.iter().any(|r| r.exit == 2);
    if json {
        let machines: Vec<Value> = runs
            .iter()
            .flat_map(|r| with_host(r.report(), &r.host.name))
            .collect();
        let changes: u64 = runs
            .iter()
            .filter_map(|r| r.report())
            .filter_map(|p| p.get("changes").and_then(Value::as_u64))
            .sum();
        let out = serde_json::json!({
            "changes": changes,
            "applied": !failed,
            "machines": machines,
            "hosts": host_results(runs),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        for r in runs.iter().filter(|r| r.error.is_some()) {
            anstream::eprintln!("host {}: {}", r.host.name, r.error.as_deref().unwrap_or(""));
        }
    } else {
        render_groups(runs, "apply");
        summary(runs);
        let ok = runs.iter().filter(|r| r.error.is_none()).count();
        anstream::eprintln!(
            "Apply {}: {ok} of {} hosts applied.",
            if failed {
                "finished with errors"
            } else {
                "complete"
            },
            runs.len()
        );
    }
    if berth_engine::interrupt::requested() {
        eprintln!("Apply interrupted: stopped at a safe point; run apply again to finish.");
        return Ok(ExitCode::from(agent::INTERRUPTED_EXIT));
    }
    Ok(exit_for(failed, changed))
}

/// `berth status` over hosts.
pub fn status(
    engine: &Engine,
    args: &crate::cli::StatusArgs,
    spec: &Spec,
    file: &Path,
) -> Result<ExitCode> {
    let policy = InputPolicy::default();
    let jobs = jobs(spec, &args.names, &args.exclude, &args.fleet.hosts, false)?;
    let ctx = context(engine, spec, file, &policy, &jobs)?;
    let runs = run_all(&ctx, &jobs, "status", &Options::default(), jobs.len());
    if args.json {
        let rows: Vec<Value> = runs
            .iter()
            .flat_map(|r| {
                let rows = r.events.iter().find_map(|e| match e {
                    WireEvent::Status { rows } => rows.as_array().cloned(),
                    _ => None,
                });
                rows.unwrap_or_default().into_iter().map(|mut row| {
                    if let Value::Object(o) = &mut row {
                        o.insert("host".into(), Value::String(r.host.name.clone()));
                    }
                    row
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        for r in runs.iter().filter(|r| r.error.is_some()) {
            anstream::eprintln!("host {}: {}", r.host.name, r.error.as_deref().unwrap_or(""));
        }
        return Ok(exit_for(runs.iter().any(|r| r.error.is_some()), false));
    }
    render_groups(&runs, "status");
    Ok(exit_for(summary(&runs), false))
}

/// The spec `destroy` reads when it goes through the fleet path: `-f`
/// or `machines.yaml`, when it has hosts over ssh or `--hosts` is given.
pub fn destroy_spec(args: &crate::cli::DestroyArgs) -> Result<Option<Spec>> {
    let default = Path::new("machines.yaml");
    let path = match &args.file {
        Some(p) => p.as_path(),
        None if default.exists() => default,
        None if args.fleet.hosts.is_empty() => return Ok(None),
        None => bail!("--hosts needs a spec (-f, or machines.yaml here)"),
    };
    let spec = crate::commands::load_path(path)?;
    Ok(applies(&spec, &args.fleet.hosts).then_some(spec))
}

/// `berth destroy` over hosts: the names are the spec's machines, each
/// destroyed on its host.
pub fn destroy(
    engine: &Engine,
    args: &crate::cli::DestroyArgs,
    spec: &Spec,
    file: &Path,
) -> Result<ExitCode> {
    let policy = InputPolicy::default();
    for name in &args.names {
        if !spec.machines.contains_key(name) {
            bail!(
                "machine {name} is not in the spec {}: on a fleet, destroy needs the spec to know its host",
                file.display()
            );
        }
    }
    let jobs = jobs(spec, &args.names, &[], &args.fleet.hosts, false)?;
    anstream::println!(
        "berth will stop and remove: {}",
        jobs.iter()
            .flat_map(|j| j
                .machines
                .iter()
                .map(|m| format!("{} (host {})", m.name, j.host.name)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !crate::prompt::confirm("Destroy these machines and their roots?", args.yes)? {
        eprintln!("Destroy cancelled; nothing was changed.");
        return Ok(ExitCode::from(1));
    }
    let ctx = context(engine, spec, file, &policy, &jobs)?;
    let options = Options {
        yes: true,
        lock_timeout: args.lock_timeout,
        ..Options::default()
    };
    let mut ctx = ctx;
    ctx.live = !args.json && !render::quiet();
    let runs = run_all(&ctx, &jobs, "destroy", &options, jobs.len());
    let failed = runs.iter().any(|r| r.error.is_some() || r.exit != 0);
    if args.json {
        let machines: Vec<Value> = runs
            .iter()
            .flat_map(|r| with_host(r.report(), &r.host.name))
            .collect();
        let out = serde_json::json!({
            "destroyed": !failed,
            "machines": machines,
            "hosts": host_results(&runs),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        render_groups(&runs, "destroy");
        summary(&runs);
    }
    Ok(exit_for(failed, false))
}

/// `berth rollback NAME [TAG]` of a machine the spec (`file`, or
/// `machines.yaml` here) places on a host over ssh: its agent rolls back
/// with the host's part of the spec, so a running machine starts again as
/// the spec says. `None` when the machine is local (or there is no spec,
/// or `machines.yaml` here does not load).
pub fn rollback(engine: &Engine, args: &crate::cli::RollbackArgs) -> Result<Option<ExitCode>> {
    let Some((spec, file)) = remote_spec(args.file.as_ref(), &args.name)? else {
        return Ok(None);
    };
    let policy = InputPolicy::default();
    let jobs = jobs(&spec, std::slice::from_ref(&args.name), &[], &[], false)?;
    let ctx = context(engine, &spec, &file, &policy, &jobs)?;
    let options = Options {
        names: vec![args.name.clone()],
        lock_timeout: args.lock_timeout,
        tag: args.tag.clone(),
        ..Options::default()
    };
    let runs = run_all(&ctx, &jobs, "rollback", &options, 1);
    let failed = runs.iter().any(|r| r.error.is_some() || r.exit != 0);
    let report = runs.iter().find_map(HostRun::report);
    if args.json {
        if let Some(report) = report {
            println!("{}", serde_json::to_string_pretty(report)?);
        }
    } else if let Some(r) = report {
        let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("?");
        anstream::println!(
            "{}: rolled back to {}; the replaced root is kept as snapshot {}",
            field("machine"),
            field("restored"),
            field("kept_as")
        );
        if r.get("restarted").and_then(Value::as_bool) == Some(true) {
            anstream::println!("{}: started again", field("machine"));
        }
    }
    summary(&runs);
    Ok(Some(exit_for(failed, false)))
}

/// The spec (`file`, or `machines.yaml` here) and its path when it places
/// machine `name` on a host over ssh. A `machines.yaml` here that does
/// not load is only a hint (`None`); `-f` must load.
fn remote_spec(
    file: Option<&std::path::PathBuf>,
    name: &str,
) -> Result<Option<(Spec, std::path::PathBuf)>> {
    let default = Path::new("machines.yaml");
    let path = match file {
        Some(p) => p.as_path(),
        None if default.exists() => default,
        None => return Ok(None),
    };
    let spec = match crate::commands::load_path(path) {
        Ok(spec) => spec,
        Err(_) if file.is_none() => return Ok(None),
        Err(e) => return Err(e),
    };
    if !spec.machines.contains_key(name) {
        return Ok(None);
    }
    let remote = spec
        .fleet
        .host(spec.fleet.host_of(name))
        .is_some_and(|h| !h.is_local());
    Ok(remote.then(|| (spec, path.to_path_buf())))
}

/// `berth exec`, `logs`, `snapshot` and `snapshots` for a
/// machine the spec (`file`, or `machines.yaml` here) places on a host
/// over ssh: runs `berth ARGS` there through the host's connection, stdin,
/// stdout and stderr passed through; its exit code is berth's. `None`
/// when the machine is local (or there is no spec, or `machines.yaml`
/// here does not load: only `-f` must).
pub fn guest(
    file: Option<&std::path::PathBuf>,
    name: &str,
    args: &[String],
) -> Result<Option<ExitCode>> {
    let Some((spec, _)) = remote_spec(file, name)? else {
        return Ok(None);
    };
    let Some(host) = spec.fleet.host(spec.fleet.host_of(name)) else {
        return Ok(None);
    };
    let binary = LocalBinary::current(&version()).map_err(|e| anyhow!(e))?;
    let conn = Connection::new(&host, &spec.fleet).map_err(|e| anyhow!(e))?;
    let bin = conn
        .prepare(&binary)
        .map_err(|e| anyhow!("host {}: {e}", host.name))?;
    // A kept master stands for the host only while its keys are those it
    // was made with (berth_engine::remote::hostkeys); else a new
    // connection, which ssh checks.
    if let Some(expect) = conn.kept_keys() {
        let seen = conn
            .run(
                &format!("{} host-keys", berth_engine::remote::ssh::shell_quote(&bin)),
                None,
            )
            .map_err(|e| anyhow!("host {}: {e}", host.name))?;
        if seen.code != Some(0) || String::from_utf8_lossy(&seen.stdout).trim() != expect {
            conn.end_master();
        }
    }
    let mut remote = berth_engine::remote::ssh::shell_quote(&bin);
    for a in args {
        remote.push(' ');
        remote.push_str(&berth_engine::remote::ssh::shell_quote(a));
    }
    let status = conn
        .command(&remote)
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| anyhow!("cannot run ssh: {e}"))?;
    Ok(Some(match status.code() {
        Some(255) => {
            bail!("host {}: ssh failed (exit 255)", host.name)
        }
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::from(1),
    }))
}
