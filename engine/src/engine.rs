//! The engine's front door: plan, apply (in `apply.rs`), status and destroy
//! for the machines of a spec.

use std::fs;

use berth_schema::{Machine, Spec};
use serde::Serialize;

use crate::error::EngineError;
use crate::launcher::{self, HostFacts};
use crate::mounts;
use crate::observe::{self, RootPresence, RunState};
use crate::paths::Paths;
use crate::plan::{self, MachinePlan, Plan};
use crate::remove;
use crate::report::{Event, Reporter};
use crate::secret::{self, Secret};
use crate::state::StateStore;

/// Observes, plans and applies machines on this host.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) host: HostFacts,
}

/// A machine's live status, for `berth status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineStatus {
    /// The machine name.
    pub name: String,
    /// `running`, `stopped` or `absent`.
    pub state: String,
    /// The launcher in use (the recorded one while running, else the spec's resolved one).
    pub launcher: String,
    /// Whether berth manages the machine.
    pub managed: bool,
    /// The supervising process, while running.
    pub pid: Option<i32>,
    /// The guest's `systemctl is-system-running`, while running.
    pub system_state: Option<String>,
    /// The guest's init process (PID 1 inside the machine), while running.
    pub leader: Option<i32>,
    /// Whether it starts at host boot (None: the launcher has no boot integration).
    pub autostart: Option<bool>,
    /// The guest's IP addresses, while running.
    pub addresses: Vec<String>,
    /// Who started it, while running: `berth`, or how it was started outside berth.
    pub started_by: Option<String>,
    /// The machine root on the host.
    pub root: String,
}

impl Engine {
    /// An engine working in `paths` on this host.
    pub fn new(paths: Paths) -> Self {
        Engine {
            host: HostFacts::detect(paths),
        }
    }

    /// An engine with explicit host facts (tests).
    pub fn with_host(host: HostFacts) -> Self {
        Engine { host }
    }

    /// The host facts in use.
    pub fn host(&self) -> &HostFacts {
        &self.host
    }

    /// Plans every machine of `spec` that `select` accepts. All machines are
    /// planned; every error is returned, not just the first.
    pub fn plan<'a>(
        &self,
        machines: impl IntoIterator<Item = &'a Machine>,
    ) -> Result<Plan, Vec<EngineError>> {
        let mut plans = Vec::new();
        let mut errors = Vec::new();
        let procs = launcher::NspawnProcesses::scan();
        for machine in machines {
            match self.plan_full(machine, &procs) {
                Ok((plan, _, _)) => plans.push(plan),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(Plan::new(plans))
        } else {
            Err(errors)
        }
    }

    /// Plans one machine, returning the resolved secret for apply.
    pub(crate) fn plan_with_secret(
        &self,
        machine: &Machine,
    ) -> Result<(MachinePlan, Option<Secret>), EngineError> {
        self.plan_full(machine, &launcher::NspawnProcesses::scan())
            .map(|(plan, secret, _)| (plan, secret))
    }

    /// Plans one machine, returning the resolved secret and what was
    /// observed (saved plans fingerprint it).
    pub(crate) fn plan_observed(
        &self,
        machine: &Machine,
    ) -> Result<(MachinePlan, Option<Secret>, observe::Observed), EngineError> {
        self.plan_full(machine, &launcher::NspawnProcesses::scan())
    }

    /// Plans one machine against a snapshot of the host's nspawn processes
    /// (taken once when planning many machines).
    fn plan_full(
        &self,
        machine: &Machine,
        procs: &launcher::NspawnProcesses,
    ) -> Result<(MachinePlan, Option<Secret>, observe::Observed), EngineError> {
        let mut warnings = Vec::new();
        let secret = match &machine.root_password {
            Some(source) => {
                let resolved = secret::resolve(source).map_err(|message| EngineError::Secret {
                    machine: machine.name.clone(),
                    message,
                })?;
                warnings.extend(resolved.warnings);
                Some(resolved.secret)
            }
            None => None,
        };
        let observed = observe::observe_with(&self.host, machine, procs)?;
        let mut plan = plan::plan_machine(machine, &observed, secret.as_ref(), &self.host)?;
        plan.warnings.extend(warnings);
        Ok((plan, secret, observed))
    }

    /// The live status of `machine`.
    pub fn status(&self, machine: &Machine) -> Result<MachineStatus, EngineError> {
        let observed = observe::observe(&self.host, machine)?;
        let spec_launcher = launcher::resolve(machine.launcher, &self.host)
            .map(|l| l.as_str().to_owned())
            .unwrap_or_else(|_| machine.launcher.as_str().to_owned());
        let launch = observed
            .record
            .as_ref()
            .and_then(|r| r.launch.as_ref())
            .filter(|_| matches!(observed.run, RunState::Running { .. }))
            .and_then(|launch| launcher::refresh(&machine.name, launch));
        let launch = launch.as_ref();
        let (state, launcher, pid, started_by) = match (&observed.root, &observed.run) {
            (RootPresence::Absent, _) => ("absent", spec_launcher, None, None),
            (_, RunState::Running { launcher, pid, .. }) => (
                "running",
                launcher.clone(),
                Some(*pid),
                Some("berth".to_owned()),
            ),
            (_, RunState::Foreign { pid, how }) => {
                ("running", spec_launcher, Some(*pid), Some(how.clone()))
            }
            (_, RunState::Stopped) => ("stopped", spec_launcher, None, None),
        };
        let leader = match (&observed.run, launch) {
            (_, Some(launch)) => launcher::leader(launch),
            (RunState::Foreign { pid, .. }, None) => crate::process::namespace_init_child(*pid),
            _ => None,
        };
        let system_state = match (launch, leader) {
            (Some(launch), _) => launcher::system_state(&machine.name, launch, &self.host),
            (None, Some(leader)) => {
                crate::host::guest_command(leader, &["systemctl", "is-system-running"])
            }
            _ => None,
        };
        let addresses = leader.map(addresses_of).unwrap_or_default();
        let autostart = match launcher::resolve(machine.launcher, &self.host) {
            Ok(kind) => launcher::launcher_for(kind).autostart(&machine.name)?,
            Err(_) => None,
        };
        Ok(MachineStatus {
            name: machine.name.clone(),
            state: state.to_owned(),
            launcher,
            managed: observed.record.is_some(),
            pid,
            system_state,
            leader,
            autostart,
            addresses,
            started_by,
            root: self
                .host
                .paths
                .machine_root(&machine.name)
                .display()
                .to_string(),
        })
    }

    /// Stops and removes a machine berth manages. Refuses machines berth did
    /// not create, a machine dir that is a symlink, and a root with anything
    /// mounted inside; never crosses into another filesystem.
    pub fn destroy(&self, name: &str, reporter: &dyn Reporter) -> Result<bool, EngineError> {
        let paths = &self.host.paths;
        let refuse = |message: String| EngineError::Refused {
            machine: name.to_owned(),
            message,
        };
        let store = StateStore::new(paths);
        let root = paths.machine_root(name);
        let record = store.load(name)?;
        let meta = fs::symlink_metadata(&root);
        if record.is_none() {
            return match meta {
                Ok(_) => Err(refuse(format!(
                    "{} was not created by berth (no record in {}); berth never removes a machine it does not manage",
                    root.display(),
                    paths.records_dir().display()
                ))),
                Err(_) => Ok(false),
            };
        }
        if let Ok(meta) = &meta
            && meta.file_type().is_symlink()
        {
            return Err(refuse(format!("{} is a symlink", root.display())));
        }
        if record
            .as_ref()
            .and_then(|r| r.launch.as_ref())
            .and_then(|launch| launcher::refresh(name, launch))
            .is_some()
        {
            reporter.report(Event::Note {
                machine: name,
                message: "stopping",
            });
            self.stop(name)?;
        }
        if meta.is_ok() {
            let inside = mounts::mounts_under(&root)
                .map_err(|e| EngineError::io("reading /proc/self/mountinfo", e))?;
            if !inside.is_empty() {
                let list: Vec<String> = inside.iter().map(|p| p.display().to_string()).collect();
                return Err(refuse(format!(
                    "something is mounted inside the root: {}; unmount it first",
                    list.join(", ")
                )));
            }
            reporter.report(Event::Note {
                machine: name,
                message: "removing the root",
            });
            remove::remove_tree(&root)
                .map_err(|e| EngineError::State(format!("removing {}: {e}", root.display())))?;
        }
        // Boot integration and the settings file berth wrote go with the machine.
        if self.host.booted_with_systemd
            && launcher::launcher_for(berth_schema::Launcher::NspawnUnit)
                .autostart(name)?
                .unwrap_or(false)
        {
            launcher::launcher_for(berth_schema::Launcher::NspawnUnit)
                .set_autostart(name, false)?;
        }
        let settings = paths.settings_file(name);
        if fs::read_to_string(&settings).is_ok_and(|text| text.starts_with(crate::settings::HEADER))
        {
            fs::remove_file(&settings)
                .map_err(|e| EngineError::io(format!("removing {}", settings.display()), e))?;
        }
        store.remove(name)?;
        for log in [
            paths.console_log(name),
            paths.bootstrap_log(name),
            paths.machine_log(name),
        ] {
            let _ = fs::remove_file(log);
        }
        Ok(true)
    }
}

/// What `berth shell` and `berth login` hand over to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// A root shell in the machine.
    Shell,
    /// A login prompt in the machine.
    Login,
}

impl Engine {
    /// The command that opens a shell or login prompt in running machine
    /// `machine`: `machinectl shell|login` under the launchers machined
    /// knows, nsenter into the guest's init under the plain nspawn launcher.
    pub fn console_command(
        &self,
        machine: &Machine,
        console: Console,
    ) -> Result<Vec<String>, EngineError> {
        let observed = observe::observe(&self.host, machine)?;
        let not_running = || EngineError::Launch {
            machine: machine.name.clone(),
            message: "is not running (berth apply starts it)".into(),
        };
        let verb = match console {
            Console::Shell => "shell",
            Console::Login => "login",
        };
        let (launcher, pid) = match &observed.run {
            RunState::Stopped => return Err(not_running()),
            RunState::Running { launcher, pid, .. } => (Some(launcher.as_str()), *pid),
            RunState::Foreign { pid, .. } => (None, *pid),
        };
        let machined = self.host.booted_with_systemd
            && launcher != Some(berth_schema::Launcher::Nspawn.as_str());
        if machined {
            return Ok(vec!["machinectl".into(), verb.into(), machine.name.clone()]);
        }
        let leader = crate::process::namespace_init_child(pid).ok_or_else(not_running)?;
        let mut argv: Vec<String> = [
            "nsenter".to_owned(),
            format!("--target={leader}"),
            // Every namespace, the user namespace of private users included.
            "--all".into(),
            "--root".into(),
            "--wd".into(),
            "--".into(),
        ]
        .to_vec();
        match console {
            Console::Shell => argv.extend([
                "/bin/sh".into(),
                "-c".into(),
                "exec \"$(getent passwd root | cut -d: -f7)\" -l || exec /bin/sh -l".into(),
            ]),
            Console::Login => argv.extend(["/bin/login".into()]),
        }
        Ok(argv)
    }
}

/// The global addresses of the network namespace of `leader`, read with
/// the host's `ip` inside that namespace (the guest need not have iproute2).
fn addresses_of(leader: i32) -> Vec<String> {
    let Ok(out) = std::process::Command::new("nsenter")
        .arg(format!("--target={leader}"))
        .args(["--net", "--", "ip", "-o", "addr", "show", "scope", "global"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet" || *w == "inet6")?;
            words.next().map(str::to_owned)
        })
        .collect()
}

/// Machines of `spec` selected by `names` (all when empty), or the names that match none.
pub fn select<'a>(spec: &'a Spec, names: &[String]) -> Result<Vec<&'a Machine>, Vec<String>> {
    if names.is_empty() {
        return Ok(spec.machines.values().collect());
    }
    let unknown: Vec<String> = names
        .iter()
        .filter(|n| !spec.machines.contains_key(n.as_str()))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    Ok(spec
        .machines
        .values()
        .filter(|m| names.contains(&m.name))
        .collect())
}

impl Engine {
    /// Takes an existing root (made by hand, as in the article) under
    /// berth's management, without changing anything inside it. The root's
    /// `/etc/os-release` must match the spec's distro and release; the
    /// spec's packages already installed count as its base (never removed).
    pub fn adopt(&self, machine: &Machine) -> Result<(), EngineError> {
        let name = &machine.name;
        let refuse = |message: String| EngineError::Refused {
            machine: name.clone(),
            message,
        };
        let paths = &self.host.paths;
        let store = StateStore::new(paths);
        if store.load(name)?.is_some() {
            return Err(refuse("berth already manages it".into()));
        }
        let root = crate::existing::open(paths, name)?;
        let os_release = crate::existing::OsRelease::read(&root)?;
        let field = |key: &str| os_release.field(key);
        let id = field("ID").unwrap_or_default();
        if id != machine.distro.as_str() {
            return Err(refuse(format!(
                "its /etc/os-release says ID={id:?}, the spec says distro: {}",
                machine.distro
            )));
        }
        if let Some(release) = &machine.release {
            let found = [field("VERSION_CODENAME"), field("VERSION_ID")];
            if !found.iter().flatten().any(|v| v == release) {
                return Err(refuse(format!(
                    "its /etc/os-release says release {}, the spec says release: {release}",
                    found
                        .iter()
                        .flatten()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("/")
                )));
            }
        }
        let bootstrapper =
            crate::bootstrap::for_machine(machine).map_err(|message| EngineError::Plan {
                machine: name.clone(),
                message,
            })?;
        let installed = bootstrapper.package_manager().installed(&root)?;
        let created_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        store.save(&crate::state::MachineRecord {
            name: name.clone(),
            distro: machine.distro.to_string(),
            release: machine.release.clone(),
            bootstrapper: bootstrapper.name().to_owned(),
            created_at,
            launch: None,
            bootstrap_packages: machine
                .packages
                .iter()
                .filter(|p| installed.contains(*p))
                .cloned()
                .collect(),
            base: None,
            added_packages: Vec::new(),
        })?;
        // A hand-written .nspawn file that says what the spec says becomes
        // berth's own, so the first plan has nothing to rewrite.
        crate::import::adopt_settings(&self.host, machine)?;
        Ok(())
    }
}

impl Engine {
    /// The cached bases, each with the managed machines made from it.
    pub fn cache_entries(&self) -> Result<Vec<(crate::cache::Entry, Vec<String>)>, EngineError> {
        let records = StateStore::new(&self.host.paths).all()?;
        let cache = crate::cache::Cache::new(&self.host.paths.cache_dir);
        Ok(cache
            .list()?
            .into_iter()
            .map(|entry| {
                let users = records
                    .iter()
                    .filter(|r| r.base.as_deref() == Some(entry.id.as_str()))
                    .map(|r| r.name.clone())
                    .collect();
                (entry, users)
            })
            .collect())
    }

    /// Removes cached bases no managed machine was made from (every one
    /// with `all`); returns the ids removed.
    pub fn prune_cache(&self, all: bool) -> Result<Vec<String>, EngineError> {
        let records = StateStore::new(&self.host.paths).all()?;
        crate::cache::Cache::new(&self.host.paths.cache_dir).prune(|entry| {
            !all && records
                .iter()
                .any(|r| r.base.as_deref() == Some(entry.id.as_str()))
        })
    }
}
