//! Rendering plans, statuses and errors for people. Colour goes through
//! anstream, which drops it when the output is not a terminal or NO_COLOR is set.

use std::fmt::Write as _;

use anstream::{eprintln, println};
use anstyle::{AnsiColor, Style};
use berth_engine::{Action, Effect, MachinePlan, MachineStatus, Plan};

const GREEN: Style = AnsiColor::Green.on_default();
const YELLOW: Style = AnsiColor::Yellow.on_default();
const RED: Style = AnsiColor::Red.on_default();
const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

/// How much berth prints: set once from `--quiet`/`--verbose`.
static VERBOSITY: std::sync::OnceLock<Verbosity> = std::sync::OnceLock::new();

/// How much berth prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// `--quiet`: errors and what a command exists to print.
    Quiet,
    /// The default.
    #[default]
    Normal,
    /// `--verbose`: also what berth reads and the commands it will run.
    Verbose,
}

/// Sets the verbosity for the rest of the run (first call wins).
pub fn set_verbosity(quiet: bool, verbose: bool) {
    let _ = VERBOSITY.set(if quiet {
        Verbosity::Quiet
    } else if verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    });
}

/// The verbosity in effect.
pub fn verbosity() -> Verbosity {
    VERBOSITY.get().copied().unwrap_or_default()
}

/// Whether `--quiet` is in effect.
pub fn quiet() -> bool {
    verbosity() == Verbosity::Quiet
}

/// Prints `message` to stderr under `--verbose` (dimmed on a terminal).
pub fn verbose(message: impl std::fmt::Display) {
    if verbosity() == Verbosity::Verbose {
        eprintln!("{DIM}berth: {message}{DIM:#}");
    }
}

/// Prints an error chain to stderr.
pub fn error(e: &anyhow::Error) {
    let mut text = format!("{e}");
    for cause in e.chain().skip(1) {
        let _ = write!(text, ": {cause}");
    }
    eprintln!("{RED}error{RED:#}: {text}");
}

fn symbol(effect: Effect) -> (Style, &'static str) {
    match effect {
        Effect::Create => (GREEN, "+"),
        Effect::Change => (YELLOW, "~"),
        Effect::Remove => (RED, "-"),
        Effect::Replace => (RED, "-/+"),
    }
}

/// The human plan: Terraform-like, one line per action, diffs for files.
pub fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    for machine in &plan.machines {
        machine_text(machine, &mut out);
    }
    let touched = plan
        .machines
        .iter()
        .filter(|m| !m.actions.is_empty())
        .count();
    let foreign = plan
        .machines
        .iter()
        .flat_map(|m| &m.warnings)
        .any(|w| w.is_foreign());
    if plan.is_empty() && foreign {
        let _ = writeln!(
            out,
            "{BOLD}No changes{BOLD:#} berth would make, but a machine runs outside berth's control (see above)."
        );
    } else if plan.is_empty() {
        let _ = writeln!(
            out,
            "{BOLD}No changes.{BOLD:#} The machines match the spec."
        );
    } else {
        let count = |e: Effect| {
            plan.machines
                .iter()
                .flat_map(|m| &m.actions)
                .filter(|a| a.effect() == e)
                .count()
        };
        let _ = writeln!(
            out,
            "{BOLD}Plan:{BOLD:#} {} to add, {} to change, {} to remove, on {touched} machine{}.",
            count(Effect::Create),
            count(Effect::Change),
            count(Effect::Remove) + count(Effect::Replace),
            if touched == 1 { "" } else { "s" }
        );
    }
    out
}

fn machine_text(machine: &MachinePlan, out: &mut String) {
    let kind = match machine.change {
        berth_engine::ChangeKind::Create => "will be created",
        berth_engine::ChangeKind::Update => "will be updated in place",
        berth_engine::ChangeKind::Replace => "must be replaced",
        berth_engine::ChangeKind::Destroy => "will be destroyed",
        berth_engine::ChangeKind::Absent => "does not exist: nothing to destroy",
        berth_engine::ChangeKind::None => "is up to date",
    };
    let _ = writeln!(
        out,
        "{BOLD}machine {:?}{BOLD:#} {kind} {DIM}(launcher: {}{}){DIM:#}",
        machine.name,
        machine.launcher,
        machine
            .network
            .as_deref()
            .map(|n| format!(", network: {n}"))
            .unwrap_or_default()
    );
    for action in &machine.actions {
        let (style, sym) = symbol(action.effect());
        // An upgrade of several packages: one line per package.
        if let Action::UpgradePackages { via, packages, .. } = action
            && packages.len() > 1
        {
            let _ = writeln!(out, "  {style}{sym}{style:#} upgrade packages ({via}):");
            for package in packages {
                let _ = writeln!(out, "      {package}");
            }
            continue;
        }
        let _ = writeln!(out, "  {style}{sym}{style:#} {}", action.describe());
        if let Action::Bootstrap { command, .. } = action {
            let _ = writeln!(out, "      {DIM}$ {}{DIM:#}", command.join(" "));
        }
        if verbosity() == Verbosity::Verbose {
            for command in commands_of(action) {
                let _ = writeln!(out, "      {DIM}$ {command}{DIM:#}");
            }
        }
        if let Some((path, old, new)) = action.file_change() {
            diff_text(&path, &old, &new, out);
        }
    }
    for warning in &machine.warnings {
        let _ = writeln!(out, "  {YELLOW}!{YELLOW:#} {warning}");
    }
    out.push('\n');
}

/// The commands an action runs, for `--verbose` (bootstraps show theirs always).
fn commands_of(action: &Action) -> Vec<String> {
    action.commands()
}

fn diff_text(path: &str, old: &str, new: &str, out: &mut String) {
    let diff = similar::TextDiff::from_lines(old, new);
    let _ = writeln!(out, "      {DIM}--- {path}{DIM:#}");
    let _ = writeln!(out, "      {DIM}+++ {path}{DIM:#}");
    for hunk in diff.unified_diff().context_radius(2).iter_hunks() {
        let _ = writeln!(out, "      {DIM}{}{DIM:#}", hunk.header());
        for change in hunk.iter_changes() {
            let (style, sign) = match change.tag() {
                similar::ChangeTag::Delete => (RED, "-"),
                similar::ChangeTag::Insert => (GREEN, "+"),
                similar::ChangeTag::Equal => (Style::new(), " "),
            };
            let line = change.value();
            let line = line.strip_suffix('\n').unwrap_or(line);
            let _ = writeln!(out, "      {style}{sign}{line}{style:#}");
        }
    }
}

/// Prints the human plan to stdout.
pub fn plan(plan: &Plan) {
    anstream::print!("{}", plan_text(plan));
}

/// Prints a status table.
pub fn status(statuses: &[MachineStatus]) {
    let width = statuses
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{BOLD}{:<width$}  {:<8}  {:<11}  {:<9}  {:<9}  {:<8}  {:<9}  ADDRESSES{BOLD:#}",
        "NAME", "STATE", "LAUNCHER", "NETWORK", "AUTOSTART", "PID", "SYSTEM"
    );
    for s in statuses {
        let style = match s.state.as_str() {
            "running" => GREEN,
            "stopped" => YELLOW,
            _ => DIM,
        };
        let autostart = match s.autostart {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        let addresses = if s.addresses.is_empty() {
            "-".to_owned()
        } else {
            s.addresses.join(" ")
        };
        println!(
            "{:<width$}  {style}{:<8}{style:#}  {:<11}  {:<9}  {:<9}  {:<8}  {:<9}  {addresses}",
            s.name,
            s.state,
            s.launcher,
            s.network.as_deref().unwrap_or("-"),
            autostart,
            s.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            s.system_state.as_deref().unwrap_or("-"),
        );
        if let Some(how) = s.started_by.as_deref().filter(|h| *h != "berth") {
            println!(
                "{:<width$}  {YELLOW}started outside berth: {how}{YELLOW:#}",
                ""
            );
        }
    }
}
