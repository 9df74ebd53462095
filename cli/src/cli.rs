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

    /// The base cache: bootstrapped bases later machines are cloned from.
    #[arg(
        long,
        global = true,
        env = "BERTH_CACHE_DIR",
        default_value = "/var/cache/berth",
        value_name = "DIR"
    )]
    pub cache_dir: PathBuf,

    /// Print only errors (and what a command exists to print: a plan, a
    /// status, JSON); no progress, no plan echo on apply.
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Also print what berth reads and the commands it will run.
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// berth's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a spec without touching any machine.
    #[command(after_help = "Examples:\n  berth validate\n  berth validate -f machines/")]
    Validate(ValidateArgs),
    /// Show what apply would change.
    #[command(
        after_help = "NAME is a machine name or a glob pattern (`web-*`, `db?`); a pattern matching no\nmachine is an error. --out saves the plan (JSON, no secrets) for `berth apply FILE`,\nwhich refuses it once the spec or the machines changed (\"plan is stale: ...\").\n\nExit codes: 0 success, 1 error, 2 success with changes (with --detailed-exitcode).\n\nExamples:\n  berth plan\n  berth plan --detailed-exitcode web\n  berth plan 'web-*' --exclude web-3\n  berth plan --out web.plan web\n  berth plan --upgrade web\n  berth plan --json | jq .changes"
    )]
    Plan(PlanArgs),
    /// Make the machines match the spec.
    #[command(
        after_help = "NAME is a machine name or a glob pattern (`web-*`, `db?`). Given a plan file saved by\n`berth plan --out FILE` instead (a path with a `/`, or an existing file holding a berth\nplan), apply runs exactly that plan without asking (it was reviewed), after checking that\nneither the spec nor the machines changed since; otherwise it fails with \"plan is stale\".\n\nExamples:\n  berth apply\n  berth apply --yes web\n  berth apply --yes 'ci-*' --exclude ci-0\n  berth apply ./web.plan\n  berth apply --upgrade --yes web   # upgrade packages; roll back if unhealthy\n  berth apply --replace web   # the spec changed web's release: rebuild its root"
    )]
    Apply(ApplyArgs),
    /// Show whether each machine runs, and how.
    #[command(
        after_help = "Examples:\n  berth status\n  berth status 'web-*' --exclude web-test\n  berth status --json"
    )]
    Status(StatusArgs),
    /// Open a root shell in a running machine (machinectl shell, or nsenter).
    #[command(after_help = "Example:\n  berth shell web")]
    Shell(ConsoleArgs),
    /// Open a login prompt in a running machine (machinectl login, or nsenter + login).
    #[command(after_help = "Example:\n  berth login web")]
    Login(ConsoleArgs),
    /// Run a command in a running machine (nsenter), passing its exit code through.
    #[command(
        after_help = "The command runs as root in every namespace of the guest, in its root, with a clean\nenvironment (PATH, TERM, HOME=/root, LANG=C.UTF-8); stdin, stdout and stderr are\npassed through and its exit code is berth's. `--` is required before the command.\n\nExamples:\n  berth exec web -- cat /etc/hostname\n  berth exec web -- sh -c 'systemctl is-system-running'\n  echo hi | berth exec -f machines/ web -- cat"
    )]
    Exec(ExecArgs),
    /// Show a machine's journal (journalctl -M, or its journal files).
    #[command(
        after_help = "Through `journalctl -M NAME` where machined knows the running machine (unit\nlaunchers on a host booted with systemd); otherwise from the root's persistent\njournal (ROOT/var/log/journal) or, for a running machine without one, from its\nvolatile journal (/run/log/journal). journalctl's exit code is berth's. -f follows (the spec is --file).\n\nExamples:\n  berth logs web -n 50\n  berth logs web -f -u nginx\n  berth logs --file machines/ web -u systemd-journald.service"
    )]
    Logs(LogsArgs),
    /// Take existing roots under berth's management (nothing inside changes).
    #[command(
        after_help = "The root must already be at MACHINES_DIR/NAME and match the spec's distro and\nrelease (/etc/os-release). Afterwards `berth plan` shows what apply would change.\n\nExample:\n  berth adopt archcontainer"
    )]
    Adopt(AdoptArgs),
    /// Stop and remove machines berth manages.
    #[command(
        after_help = "A machine with `prevent_destroy: true` is refused: in the spec (-f, or ./machines.yaml)\nwhen it declares the machine, else as recorded at the last apply.\n\nExamples:\n  berth destroy web\n  berth destroy --yes web db"
    )]
    Destroy(DestroyArgs),
    /// Take a snapshot of a machine's root (or --delete one).
    #[command(
        after_help = "A btrfs snapshot when the root is a subvolume, else a reflink copy where the\nfilesystem shares extents, else a full copy, kept in MACHINES_DIR/.NAME.snapshots/TAG.\nA running machine is copied as it runs. Without --tag the tag is manual-TIME.\n\nExamples:\n  berth snapshot web --tag before-migration\n  berth snapshot --delete web before-migration"
    )]
    Snapshot(SnapshotArgs),
    /// List the snapshots of one machine, or of all.
    #[command(after_help = "Examples:\n  berth snapshots\n  berth snapshots web --json")]
    Snapshots(SnapshotsArgs),
    /// Roll a machine's root back to a snapshot.
    #[command(
        after_help = "Stops the machine if it runs, swaps its root with a copy of the snapshot (the\nreplaced root is kept as snapshot pre-rollback-TIME, the snapshot stays), and\nstarts it again: as its spec says (-f, or ./machines.yaml), else the way it ran (a\nmachine on a veth, zone or bridge link needs its spec). TAG defaults to the newest\nsnapshot that is not a pre-rollback one.\n\nExamples:\n  berth rollback web\n  berth rollback web before-migration"
    )]
    Rollback(RollbackArgs),
    /// List or prune the base cache.
    #[command(
        subcommand,
        after_help = "Examples:\n  berth cache list\n  berth cache prune        # entries no managed machine was made from\n  berth cache prune --all"
    )]
    Cache(CacheCommand),
    /// Print a spec for machines made by hand (to adopt them).
    #[command(
        after_help = "Reads MACHINES_DIR/NAME (os-release, explicitly installed packages, units that\ndiffer from the distribution's presets, hostname, securetty, root's password hash)\nand NSPAWN_DIR/NAME.nspawn, and prints a spec on stdout. Then adopt the machine:\nplan on that spec changes nothing.\n\nExample:\n  berth import archcontainer > machines.yaml\n  berth validate && berth adopt archcontainer && berth plan"
    )]
    Import(ImportArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  berth completions bash > /etc/bash_completion.d/berth\n  berth completions zsh > \"${fpath[1]}/_berth\"\n  berth completions fish > ~/.config/fish/completions/berth.fish"
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff), of berth or of one subcommand.
    #[command(after_help = "Examples:\n  berth man | man -l -\n  berth man plan > berth-plan.1")]
    Man(ManArgs),
    /// Print the JSON Schema of the spec (for editors and yaml-language-server).
    #[command(after_help = "Example:\n  berth schema > berth.schema.json")]
    Schema,
    /// Run one request of a controller on this host (over ssh; reads JSON
    /// on stdin, writes JSON events on stdout).
    #[command(hide = true)]
    Agent(AgentArgs),
    /// Print the digest of this host's ssh host keys (what a controller
    /// checks before it reuses a connection).
    #[command(hide = true)]
    HostKeys,
}

/// `berth agent`'s options (set by the controller).
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Exit 96 before reading the request unless this host's ssh host
    /// keys still have this digest (the controller's connection was made
    /// when they did).
    #[arg(long, value_name = "DIGEST")]
    pub expect_host_keys: Option<String>,
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

/// Where a spec may read `source:`, `template:` and secret files from.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Let the spec read `source:`, `template:`, `secret: {file:}` and
    /// `root_password: {file:}` files from DIR too (by default only from
    /// the git work tree holding the spec, or its directory). Repeatable.
    #[arg(long, value_name = "DIR")]
    pub allow_files_from: Vec<PathBuf>,
}

/// Which hosts of the spec a command acts on (issue 15).
#[derive(Debug, Args)]
pub struct HostsArgs {
    /// Only machines on hosts matching PATTERN: a host name, a glob
    /// (`edge-*`) or `label:NAME`. Repeatable; a pattern matching no host
    /// is an error.
    #[arg(long = "hosts", value_name = "PATTERN")]
    pub hosts: Vec<String>,
}

/// `berth validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    #[command(flatten)]
    pub inputs: InputArgs,
}

/// `berth plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit 2 when there are changes (0: none, 1: error).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan to FILE (JSON, no secrets), for `berth apply FILE`.
    #[arg(long, value_name = "FILE", conflicts_with = "destroy")]
    pub out: Option<PathBuf>,
    /// Show what `berth destroy NAME...` would do (no spec needed).
    #[arg(long, requires = "names")]
    pub destroy: bool,
    /// Also list, per machine, the package upgrades its own package
    /// manager would make (`name old -> new`), asked in the machine in
    /// simulation mode (apt-get -s dist-upgrade, pacman -Qu, dnf
    /// check-update).
    #[arg(long, conflicts_with_all = ["out", "destroy"])]
    pub upgrade: bool,
    /// Leave out machines matching PATTERN (a name or glob). Repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Only these machines: names or glob patterns (default: all).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    #[command(flatten)]
    pub fleet: HostsArgs,
}

/// `berth apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Apply without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the plan and the results as JSON.
    #[arg(long)]
    pub json: bool,
    /// How many machines to apply at once (default: the number of CPUs).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Allow replacing (destroying and bootstrapping again) the root of NAME,
    /// when its distro, release or bootstrapper changed. Repeatable.
    #[arg(long, value_name = "NAME")]
    pub replace: Vec<String>,
    /// Destroy the machines applied from this spec that are gone from it
    /// (the plan's `destroy NAME (no longer in the spec)`); without it they
    /// are kept, with a warning.
    #[arg(long)]
    pub prune: bool,
    /// Exit 2 when the apply succeeded and the plan had changes (machines
    /// kept without --prune count), 0 when there were none, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Also upgrade each machine's packages (as `berth plan --upgrade`
    /// shows): a snapshot first, then the upgrade, then the health check;
    /// when that fails, berth rolls back to the snapshot and exits 1.
    #[arg(long)]
    pub upgrade: bool,
    /// Wait at most SECONDS for another berth to release the state lock
    /// (default: wait as long as it takes; 0: fail at once, naming the holder).
    #[arg(long, value_name = "SECONDS")]
    pub lock_timeout: Option<u64>,
    /// Leave out machines matching PATTERN (a name or glob). Repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Only these machines: names or glob patterns (default: all); or one
    /// plan file saved by `berth plan --out`.
    #[arg(value_name = "NAME|PLAN")]
    pub names: Vec<String>,
    #[command(flatten)]
    pub fleet: HostsArgs,
}

/// `berth status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The spec: a YAML file, or a directory of *.yaml files (default
    /// machines.yaml; without it and without -f, every machine berth manages,
    /// from its records).
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Print a JSON list.
    #[arg(long)]
    pub json: bool,
    /// Leave out machines matching PATTERN (a name or glob). Repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Only these machines: names or glob patterns (default: all).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    #[command(flatten)]
    pub fleet: HostsArgs,
}

/// `berth import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The machines to import (directories under the machines dir).
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

/// `berth completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `berth man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// A subcommand (default: berth itself).
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
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

/// The spec of `berth exec` and `berth logs`, which also work from berth's
/// records alone.
#[derive(Debug, Args)]
pub struct OptionalSpecArgs {
    /// The spec: a YAML file, or a directory of *.yaml files (default
    /// machines.yaml; without it and without -f, berth's records).
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,
}

/// `berth exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub spec: OptionalSpecArgs,
    /// The machine.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `berth logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The spec: a YAML file, or a directory of *.yaml files (default
    /// machines.yaml; without it and without --file, berth's records).
    /// Only the long form: `-f` follows, as with journalctl.
    #[arg(long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Keep printing new entries.
    #[arg(long = "follow", short = 'f')]
    pub follow: bool,
    /// Only the last N entries.
    #[arg(long = "lines", short = 'n', value_name = "N")]
    pub lines: Option<u64>,
    /// Only the entries of UNIT.
    #[arg(long = "unit", short = 'u', value_name = "UNIT")]
    pub unit: Option<String>,
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

/// `berth cache`.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List cached bases.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove cached bases no managed machine was made from (and leftovers
    /// of interrupted bootstraps).
    Prune {
        /// Remove every entry.
        #[arg(long)]
        all: bool,
    },
}

/// `berth snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The spec, to find the machine's host over ssh (default machines.yaml
    /// when it exists; without one, the machine is this host's).
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<std::path::PathBuf>,
    /// The snapshot's tag (default: manual-TIME).
    #[arg(long, value_name = "TAG", conflicts_with = "delete")]
    pub tag: Option<String>,
    /// Delete snapshot TAG of NAME instead of taking one.
    #[arg(long, requires = "delete_tag")]
    pub delete: bool,
    /// Print the snapshot as JSON.
    #[arg(long)]
    pub json: bool,
    /// Wait at most SECONDS for another berth to release the state lock
    /// (default: wait as long as it takes; 0: fail at once, naming the holder).
    #[arg(long, value_name = "SECONDS")]
    pub lock_timeout: Option<u64>,
    /// The machine.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// With --delete: the snapshot to delete.
    #[arg(value_name = "TAG", requires = "delete")]
    pub delete_tag: Option<String>,
}

/// `berth snapshots`.
#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// The spec, to find the machine's host over ssh (default machines.yaml
    /// when it exists; without one, or without NAME, this host's).
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<std::path::PathBuf>,
    /// Print the snapshots as JSON.
    #[arg(long)]
    pub json: bool,
    /// The machine (default: every machine berth manages).
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
}

/// `berth rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The spec, read to start the machine again (default machines.yaml
    /// when it exists; without one, it starts the way it ran).
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<std::path::PathBuf>,
    /// Print what was done as JSON.
    #[arg(long)]
    pub json: bool,
    /// Wait at most SECONDS for another berth to release the state lock
    /// (default: wait as long as it takes; 0: fail at once, naming the holder).
    #[arg(long, value_name = "SECONDS")]
    pub lock_timeout: Option<u64>,
    /// The machine.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The snapshot (default: the newest that is not pre-rollback).
    #[arg(value_name = "TAG")]
    pub tag: Option<String>,
}

/// `berth destroy`.
#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// The spec, read only for `prevent_destroy` (default machines.yaml
    /// when it exists; without one, berth's records decide).
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<std::path::PathBuf>,
    /// Destroy without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the destroy plan and the results as JSON.
    #[arg(long)]
    pub json: bool,
    /// Wait at most SECONDS for another berth to release the state lock
    /// (default: wait as long as it takes; 0: fail at once, naming the holder).
    #[arg(long, value_name = "SECONDS")]
    pub lock_timeout: Option<u64>,
    /// The machines to destroy.
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
    #[command(flatten)]
    pub fleet: HostsArgs,
}
