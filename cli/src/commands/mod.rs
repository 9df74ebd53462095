//! One module per subcommand; `run` dispatches.

mod apply;
mod cache;
mod completions;
mod console;
mod destroy;
mod guest;
mod import;
mod man;
mod plan;
mod snapshot;
mod status;

use std::process::ExitCode;

use anyhow::{Result, anyhow};
use berth_engine::{Console, Engine, EngineError, Paths};
use berth_schema::Spec;

use crate::cli::{Cli, Command, InputArgs, SpecArgs};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let paths = Paths {
        machines_dir: cli.machines_dir,
        state_dir: cli.state_dir,
        nspawn_dir: cli.nspawn_dir,
        cache_dir: cli.cache_dir,
    };
    match cli.command {
        Command::Validate(args) => {
            let spec = load(&args.spec)?;
            let policy = input_policy(&args.inputs)?;
            // The files the spec reads: where they lie, and templates render.
            let problems: Vec<String> = spec
                .machines
                .values()
                .flat_map(|m| {
                    berth_engine::inputs::check(m, &policy)
                        .into_iter()
                        .map(move |p| format!("machine {}: {p}", m.name))
                })
                .collect();
            if !problems.is_empty() {
                return Err(anyhow!("{}", problems.join("\n")));
            }
            anstream::println!(
                "{}: valid ({} machine{})",
                args.spec.file.display(),
                spec.machines.len(),
                if spec.machines.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan(args) => plan::run(
            &Engine::new(paths).with_inputs(input_policy(&args.inputs)?),
            &args,
        ),
        Command::Apply(args) => apply::run(
            &Engine::new(paths).with_inputs(input_policy(&args.inputs)?),
            &args,
        ),
        Command::Status(args) => status::run(&Engine::new(paths), &args),
        Command::Destroy(args) => destroy::run(&Engine::new(paths), &args),
        Command::Exec(args) => guest::exec(&Engine::new(paths), &args),
        Command::Logs(args) => guest::logs(&Engine::new(paths), &args),
        Command::Adopt(args) => adopt(&Engine::new(paths), &args),
        Command::Shell(args) => console::run(&Engine::new(paths), &args, Console::Shell),
        Command::Login(args) => console::run(&Engine::new(paths), &args, Console::Login),
        Command::Snapshot(args) => snapshot::take_or_delete(&Engine::new(paths), &args),
        Command::Snapshots(args) => snapshot::list(&Engine::new(paths), &args),
        Command::Rollback(args) => snapshot::rollback(&Engine::new(paths), &args),
        Command::Cache(command) => cache::run(&Engine::new(paths), &command),
        Command::Import(args) => import::run(&Engine::new(paths), &args),
        Command::Completions(args) => completions::run(&args),
        Command::Man(args) => man::run(&args),
        Command::Agent(args) => Ok(crate::fleet::agent::run(paths, &args)),
        Command::HostKeys => {
            println!(
                "{}",
                berth_engine::remote::hostkeys::digest(std::path::Path::new(
                    berth_engine::remote::hostkeys::SSH_CONFIG_DIR
                ))
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema => {
            let schema = berth_schema::json_schema();
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Takes the state lock (waiting at most `timeout`, None: forever), saying
/// on stderr whom it waits for.
pub(crate) fn lock_state(
    engine: &Engine,
    timeout: Option<std::time::Duration>,
) -> Result<berth_engine::StateLock> {
    Ok(berth_engine::StateLock::acquire_within(
        engine.host().paths(),
        timeout,
        |holder| {
            let who = holder.map(|p| format!(" (pid {p})")).unwrap_or_default();
            eprintln!("waiting for another berth{who} to release the state lock...");
        },
    )?)
}

/// `berth adopt`: records existing roots as managed, under the state lock.
fn adopt(engine: &Engine, args: &crate::cli::AdoptArgs) -> Result<ExitCode> {
    let spec = load(&args.spec)?;
    let machines = select(&spec, &args.names)?;
    let _lock = lock_state(engine, None)?;
    // Adopted machines are applied from this spec from now on (prune).
    let engine = &engine.with_spec_path(&args.spec.file)?;
    for machine in &machines {
        engine.adopt(machine)?;
        anstream::println!(
            "{}: adopted; `berth plan` shows what apply would change",
            machine.name
        );
    }
    engine.record_spec(&machines)?;
    Ok(ExitCode::SUCCESS)
}

/// Where specs may read files from (`--allow-files-from`).
pub(crate) fn input_policy(args: &InputArgs) -> Result<berth_engine::inputs::InputPolicy> {
    berth_engine::inputs::InputPolicy::allowing(&args.allow_files_from).map_err(|e| anyhow!(e))
}

/// Loads and validates the spec.
pub(crate) fn load(args: &SpecArgs) -> Result<Spec> {
    load_path(&args.file)
}

/// Loads and validates the spec at `path`.
pub(crate) fn load_path(path: &std::path::Path) -> Result<Spec> {
    crate::render::verbose(format_args!("reading the spec {}", path.display()));
    berth_schema::load(path).map_err(|e| anyhow!("{}", e.to_string().trim_end()))
}

/// The machines named on the command line (all when none): names or glob
/// patterns.
pub(crate) fn select<'a>(
    spec: &'a Spec,
    names: &[String],
) -> Result<Vec<&'a berth_schema::Machine>> {
    select_excluding(spec, names, &[])
}

/// Like [`select`], leaving out machines matching `excludes`.
pub(crate) fn select_excluding<'a>(
    spec: &'a Spec,
    names: &[String],
    excludes: &[String],
) -> Result<Vec<&'a berth_schema::Machine>> {
    let machines = crate::select::select(spec, names, excludes)?;
    crate::render::verbose(format_args!(
        "machines: {}",
        machines
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(machines)
}

/// One error out of the engine's plan errors.
pub(crate) fn plan_errors(errors: Vec<EngineError>) -> anyhow::Error {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    anyhow!("planning failed:\n  {}", lines.join("\n  "))
}

/// One machine's outcome in `apply --json` and `destroy --json`.
#[derive(serde::Serialize)]
pub(crate) struct MachineResult<'a> {
    /// The machine.
    pub(crate) name: &'a str,
    /// The actions it was planned.
    pub(crate) actions: &'a [berth_engine::Action],
    /// `applied`, `unchanged`, `destroyed`, `absent` or `failed`.
    pub(crate) result: &'static str,
    /// The error, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}
