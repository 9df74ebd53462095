//! `berth exec` and `berth logs`: a command run in a running guest, and the
//! guest's journal, each handed the terminal (berth is replaced by it, so
//! its exit code is berth's).

use std::path::PathBuf;

use berth_schema::Launcher;

use crate::drivers::guest;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::host::Cmd;
use crate::observe::{self, RunState};

/// The guest's environment for `berth exec`, besides PATH and `TERM` (when
/// berth has it): nothing of berth's own environment reaches the command.
const EXEC_ENV: &[(&str, &str)] = &[("HOME", "/root"), ("LANG", "C.UTF-8")];

/// What `berth logs` shows of the guest's journal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogsOptions {
    /// Keep printing new entries (`journalctl -f`).
    pub follow: bool,
    /// Only the last N entries (`journalctl -n N`).
    pub lines: Option<u64>,
    /// Only this unit's entries (`journalctl -u UNIT`).
    pub unit: Option<String>,
}

/// A running guest: the launcher berth recorded (None: started outside
/// berth) and its init process.
struct Running {
    launcher: Option<Launcher>,
    leader: i32,
}

impl Engine {
    /// Whether machine `name` runs, and its init process; `known` says
    /// whether a spec declares it (otherwise berth must have a record).
    fn running_guest(&self, name: &str, known: bool) -> Result<Option<Running>, EngineError> {
        let host = self.host();
        let record = host.state().load(name)?;
        if record.is_none() && !known {
            return Err(EngineError::Launch {
                machine: name.to_owned(),
                message: format!(
                    "berth manages no such machine (no record in {}; give the spec with -f)",
                    host.paths().records_dir().display()
                ),
            });
        }
        let run = observe::run_state(host, name, record.as_ref());
        let (launcher, pid) = match run {
            RunState::Stopped => return Ok(None),
            RunState::Running { launcher, pid, .. } => (Some(launcher), pid),
            RunState::Foreign { pid, .. } => (None, pid),
        };
        Ok(crate::host::process::namespace_init_child(host, pid)
            .map(|leader| Running { launcher, leader }))
    }

    /// The command `berth exec NAME -- ARGV` becomes: `argv` run in every
    /// namespace of the running guest through nsenter, in the guest's root,
    /// with PATH, HOME=/root, LANG=C.UTF-8 and berth's TERM only. `known`:
    /// a spec declares the machine (else berth must have its record).
    pub fn exec_command(
        &self,
        name: &str,
        known: bool,
        argv: &[String],
    ) -> Result<Cmd, EngineError> {
        if argv.is_empty() {
            return Err(EngineError::Launch {
                machine: name.to_owned(),
                message: "no command to run (berth exec NAME -- COMMAND...)".into(),
            });
        }
        let running = self
            .running_guest(name, known)?
            .ok_or_else(|| EngineError::Launch {
                machine: name.to_owned(),
                message: "is not running (berth apply starts it)".into(),
            })?;
        let mut env: Vec<(String, String)> = Vec::new();
        if let Ok(term) = std::env::var("TERM") {
            env.push(("TERM".into(), term));
        }
        env.extend(
            EXEC_ENV
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let mut cmd = guest::command(self.host(), name, Some(running.leader), argv, &env);
        cmd.output = crate::host::Output::Inherit;
        Ok(cmd)
    }

    /// Replaces berth with [`Engine::exec_command`]: returns only if it
    /// cannot be run.
    pub fn exec_in_guest(&self, name: &str, known: bool, argv: &[String]) -> EngineError {
        match self.exec_command(name, known, argv) {
            Ok(cmd) => self.host.exec(&cmd),
            Err(e) => e,
        }
    }

    /// The `journalctl` command that shows machine `name`'s journal:
    /// `journalctl -M NAME` where machined knows the running machine (a
    /// unit launcher on a host booted with systemd), else the journal files
    /// themselves: the root's persistent `/var/log/journal`, or, for a
    /// running guest without one, its volatile `/run/log/journal`.
    pub fn logs_command(
        &self,
        name: &str,
        known: bool,
        options: &LogsOptions,
    ) -> Result<Cmd, EngineError> {
        let running = self.running_guest(name, known)?;
        let machined = self.host.booted_with_systemd()
            && running
                .as_ref()
                .and_then(|r| r.launcher)
                .is_some_and(|l| l != Launcher::Nspawn);
        let mut argv: Vec<String> = vec!["journalctl".into()];
        if machined {
            argv.extend(["-M".into(), name.to_owned()]);
        } else {
            let persistent = self.host.paths().machine_root(name).join("var/log/journal");
            let dir = if holds_journal(&persistent) {
                persistent
            } else if let Some(running) = &running {
                let volatile =
                    PathBuf::from(format!("/proc/{}/root/run/log/journal", running.leader));
                if !holds_journal(&volatile) {
                    return Err(no_journal(name, &persistent, Some(&volatile)));
                }
                volatile
            } else {
                return Err(no_journal(name, &persistent, None));
            };
            argv.push(format!("--directory={}", dir.display()));
        }
        if options.follow {
            argv.push("--follow".into());
        }
        if let Some(n) = options.lines {
            argv.push(format!("--lines={n}"));
        }
        if let Some(unit) = &options.unit {
            argv.push(format!("--unit={unit}"));
        }
        let mut cmd = Cmd::new(argv).inherit_output();
        if let Ok(term) = std::env::var("TERM") {
            cmd = cmd.env("TERM", term);
        }
        Ok(cmd)
    }

    /// Replaces berth with [`Engine::logs_command`]: returns only if it
    /// cannot be run.
    pub fn exec_logs(&self, name: &str, known: bool, options: &LogsOptions) -> EngineError {
        match self.logs_command(name, known, options) {
            Ok(cmd) => self.host.exec(&cmd),
            Err(e) => e,
        }
    }
}

/// Whether `dir` is a journal directory with anything in it (the guest's
/// tmpfiles make an empty `/var/log/journal` even when journald keeps its
/// journal volatile).
fn holds_journal(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

/// The machine has no journal berth can read: say where it looked and how
/// to get a persistent one.
fn no_journal(name: &str, persistent: &std::path::Path, volatile: Option<&PathBuf>) -> EngineError {
    let looked = match volatile {
        Some(v) => format!(
            "no journal in {} nor in {} (the running guest's volatile one)",
            persistent.display(),
            v.display()
        ),
        None => format!(
            "no persistent journal in {}, and the machine is not running (its volatile \
             journal in /run/log/journal went when it stopped)",
            persistent.display()
        ),
    };
    EngineError::Launch {
        machine: name.to_owned(),
        message: format!(
            "{looked}. The guest journals to /run/log/journal, lost when it stops, unless \
             /var/log/journal exists (and journald's Storage= is auto or persistent): create it in the machine (`berth exec {name} -- mkdir -p \
             /var/log/journal`, or a `files:` entry `/var/log/journal: {{type: directory}}`) \
             for a persistent journal"
        ),
    }
}
