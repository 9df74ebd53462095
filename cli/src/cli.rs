//! The command line: one definition per flag, driving `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Terraform for systemd-nspawn machines: describe machines in YAML, see the
/// plan, apply it.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Where machine roots live.
    #[arg(
        long,
        global = true,
        env = "BERTH_MACHINES_DIR",
        default_value = "/var/lib/machines",
        value_name = "DIR"
    )]
    pub machines_dir: PathBuf,

    /// berth's own state: records of managed machines, logs, the lock.
    #[arg(
        long,
        global = true,
        env = "BERTH_STATE_DIR",
        default_value = "/var/lib/berth",
        value_name = "DIR"
    )]
    pub state_dir: PathBuf,

    /// Where machines' .nspawn settings files are written.
    #[arg(
        long,
        global = true,
        env = "BERTH_NSPAWN_DIR",
        default_value = "/etc/systemd/nspawn",
        value_name = "DIR"
    )]
    pub nspawn_dir: PathBuf,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// berth's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a spec without touching any machine.
    #[command(after_help = "Examples:\n  berth validate\n  berth validate -f machines/")]
    Validate(SpecArgs),
    /// Show what apply would change.
    #[command(
        after_help = "Exit codes: 0 success, 1 error, 2 success with changes (with --detailed-exitcode).\n\nExamples:\n  berth plan\n  berth plan --detailed-exitcode web\n  berth plan --json | jq .changes"
    )]
    Plan(PlanArgs),
    /// Make the machines match the spec.
    #[command(
        after_help = "Examples:\n  berth apply\n  berth apply --yes web\n  berth apply --replace web   # the spec changed web's release: rebuild its root"
    )]
    Apply(ApplyArgs),
    /// Show whether each machine runs, and how.
    #[command(after_help = "Examples:\n  berth status\n  berth status --json")]
    Status(StatusArgs),
    /// Open a root shell in a running machine (machinectl shell, or nsenter).
    #[command(after_help = "Example:\n  berth shell web")]
    Shell(ConsoleArgs),
    /// Open a login prompt in a running machine (machinectl login, or nsenter + login).
    #[command(after_help = "Example:\n  berth login web")]
    Login(ConsoleArgs),
    /// Take existing roots under berth's management (nothing inside changes).
    #[command(
        after_help = "The root must already be at MACHINES_DIR/NAME and match the spec's distro and\nrelease (/etc/os-release). Afterwards `berth plan` shows what apply would change.\n\nExample:\n  berth adopt archcontainer"
    )]
    Adopt(AdoptArgs),
    /// Stop and remove machines berth manages.
    #[command(after_help = "Examples:\n  berth destroy web\n  berth destroy --yes web db")]
    Destroy(DestroyArgs),
    /// Print the JSON Schema of the spec (for editors and yaml-language-server).
    #[command(after_help = "Example:\n  berth schema > berth.schema.json")]
    Schema,
}

/// Where the spec is.
#[derive(Debug, Args)]
pub struct SpecArgs {
    /// The spec: a YAML file, or a directory of *.yaml files.
    #[arg(
        short = 'f',
        long = "file",
        default_value = "machines.yaml",
        value_name = "PATH"
    )]
    pub file: PathBuf,
}

/// `berth plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit 2 when there are changes (0: none, 1: error).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Only these machines (default: all).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

/// `berth apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Apply without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the plan and the results as JSON.
    #[arg(long)]
    pub json: bool,
    /// Allow replacing (destroying and bootstrapping again) the root of NAME,
    /// when its distro, release or bootstrapper changed. Repeatable.
    #[arg(long, value_name = "NAME")]
    pub replace: Vec<String>,
    /// Only these machines (default: all).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

/// `berth status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Print a JSON list.
    #[arg(long)]
    pub json: bool,
    /// Only these machines (default: all).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

/// `berth shell` and `berth login`.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// The machine.
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// `berth adopt`.
#[derive(Debug, Args)]
pub struct AdoptArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// The machines to adopt.
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

/// `berth destroy`.
#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Destroy without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// The machines to destroy.
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}
