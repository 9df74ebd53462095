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
        berth_engine::ChangeKind::Destroy if machine.reason.is_some() => {
            "is no longer in the spec: apply --prune destroys it"
        }
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
        match action {
            // An upgrade of several packages: one line per package.
            Action::UpgradePackages { via, packages, .. } if packages.len() > 1 => {
                let _ = writeln!(out, "  {style}{sym}{style:#} upgrade packages ({via}):");
                for package in packages {
                    let _ = writeln!(out, "      {package}");
                }
            }
            _ => {
                let _ = writeln!(out, "  {style}{sym}{style:#} {}", action.describe());
            }
        }
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

/// Tells (on stderr, unless quiet) where `plan --out` saved the plan and
/// how to apply it: `berth apply ./FILE` for a bare name, so apply takes it
/// as a plan file and not as a machine.
pub fn saved_plan_hint(out: &std::path::Path) {
    if quiet() {
        return;
    }
    let shown = out.display().to_string();
    let arg = if shown.contains('/') {
        shown.clone()
    } else {
        format!("./{shown}")
    };
    anstream::eprintln!("Saved the plan to {shown}; run it with `berth apply {arg}`.");
}
#[cfg(test)]
mod upgrade_tests {
    use berth_engine::drivers::upgrade::{PackageUpgrade, UpgradeManager};
    use berth_engine::{ChangeKind, MachinePlan};

    use super::*;

    fn package(name: &str, from: Option<&str>, to: Option<&str>) -> PackageUpgrade {
        PackageUpgrade {
            name: name.into(),
            from: from.map(Into::into),
            to: to.map(Into::into),
        }
    }

    fn text(packages: Vec<PackageUpgrade>) -> String {
        let machine = MachinePlan {
            name: "web".into(),
            change: ChangeKind::Update,
            launcher: berth_schema::Launcher::Nspawn,
            network: None,
            reason: None,
            actions: vec![Action::UpgradePackages {
                via: "apt-get dist-upgrade".into(),
                packages,
                manager: UpgradeManager::Apt,
            }],
            warnings: Vec::new(),
            observed: Default::default(),
        };
        strip(&plan_text(&Plan::new(vec![machine])))
    }

    /// The text without colour codes.
    fn strip(text: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn one_package_on_the_action_line_several_one_per_line() {
        let one = text(vec![package("hello", Some("1.0"), Some("2.0"))]);
        assert!(
            one.contains("  ~ upgrade packages (apt-get dist-upgrade): hello 1.0 -> 2.0\n"),
            "{one}"
        );
        let many = text(vec![
            package("libc6", Some("2.36-9"), Some("2.36-10")),
            package("linux-image", None, Some("6.1.76-1")),
            package("oldlib1", Some("1.2-3"), None),
        ]);
        assert!(
            many.contains(
                "  ~ upgrade packages (apt-get dist-upgrade):\n      libc6 2.36-9 -> 2.36-10\n      \
                 linux-image (new) -> 6.1.76-1\n      oldlib1 1.2-3 -> (removed)\n"
            ),
            "{many}"
        );
        assert!(many.contains("Plan: 0 to add, 1 to change, 0 to remove, on 1 machine."));
    }
}
