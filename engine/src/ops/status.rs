//! `berth status`: whether each machine runs, how, and what its guest says.

use berth_schema::{Launcher, Machine};
use serde::Serialize;

use crate::drivers::{launcher, network};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::host::state::MachineRecord;
use crate::host::{Cmd, Host};
use crate::observe::{self, RootPresence, RunState};

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
    /// The network it gets (`host`, `veth`, `zone lab`, ...); None without a spec.
    pub network: Option<String>,
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
    /// The live status of `machine`.
    pub fn status(&self, machine: &Machine) -> Result<MachineStatus, EngineError> {
        let observed = observe::observe(self.host(), machine)?;
        let spec_launcher = launcher::resolve(machine.launcher, self.host.facts())
            .map(|l| l.as_str().to_owned())
            .unwrap_or_else(|_| machine.launcher.as_str().to_owned());
        let autostart = match launcher::resolve(machine.launcher, self.host.facts()) {
            Ok(kind) => launcher::launcher_for(kind).autostart(self.host(), &machine.name)?,
            Err(_) => None,
        };
        let mut status = self.status_from(
            &machine.name,
            observed.record.as_ref(),
            &observed.root,
            &observed.run,
            spec_launcher,
            autostart,
        );
        status.network = launcher::resolve(machine.launcher, self.host.facts())
            .ok()
            .map(|kind| {
                let mode = network::mode_on(machine, kind, self.host.facts());
                network::describe_mode(&machine.network, mode)
            });
        Ok(status)
    }

    /// The live status of every machine berth manages, from its records
    /// alone (`berth status` without a spec), in name order. A stopped
    /// machine's launcher is not known without a spec: `-`.
    pub fn status_of_records(&self) -> Result<Vec<MachineStatus>, EngineError> {
        let host = self.host();
        let procs = launcher::NspawnProcesses::scan(host);
        let mut out = Vec::new();
        for record in host.state().all()? {
            let name = &record.name;
            let root_path = host.paths().machine_root(name);
            let root = match std::fs::symlink_metadata(&root_path) {
                Ok(meta) if meta.is_dir() => RootPresence::Directory,
                Ok(_) => {
                    RootPresence::Invalid(format!("{} is not a directory", root_path.display()))
                }
                Err(_) => RootPresence::Absent,
            };
            let run = observe::run_state_with(host, name, Some(&record), &procs);
            // Boot integration exists only where machined does; it is the
            // same systemd-nspawn@ unit for machinectl and nspawn-unit.
            let autostart = match launcher::resolve(Launcher::Auto, self.host.facts()) {
                Ok(Launcher::Nspawn) | Err(_) => None,
                Ok(kind) => launcher::launcher_for(kind).autostart(host, name)?,
            };
            out.push(self.status_from(name, Some(&record), &root, &run, "-".to_owned(), autostart));
        }
        Ok(out)
    }

    /// A status out of what was observed of machine `name`.
    fn status_from(
        &self,
        name: &str,
        record: Option<&MachineRecord>,
        root: &RootPresence,
        run: &RunState,
        spec_launcher: String,
        autostart: Option<bool>,
    ) -> MachineStatus {
        let launch = record
            .and_then(|r| r.launch.as_ref())
            .filter(|_| matches!(run, RunState::Running { .. }))
            .and_then(|launch| launcher::refresh(self.host(), name, launch));
        let launch = launch.as_ref();
        let (state, launcher, pid, started_by) = match (root, run) {
            (RootPresence::Absent, _) => ("absent", spec_launcher, None, None),
            (_, RunState::Running { launcher, pid, .. }) => (
                "running",
                launcher.as_str().to_owned(),
                Some(*pid),
                Some("berth".to_owned()),
            ),
            (_, RunState::Foreign { pid, how }) => {
                ("running", spec_launcher, Some(*pid), Some(how.clone()))
            }
            (_, RunState::Stopped) => ("stopped", spec_launcher, None, None),
        };
        let leader = match (run, launch) {
            (_, Some(launch)) => launcher::leader(self.host(), launch),
            (RunState::Foreign { pid, .. }, None) => {
                crate::host::process::namespace_init_child(self.host(), *pid)
            }
            _ => None,
        };
        let system_state = match (launch, leader) {
            (Some(launch), _) => launcher::system_state(self.host(), name, launch),
            (None, Some(leader)) => self
                .host
                .guest_output(leader, &["systemctl", "is-system-running"]),
            _ => None,
        };
        let addresses = leader
            .map(|l| addresses_of(self.host(), l))
            .unwrap_or_default();
        MachineStatus {
            name: name.to_owned(),
            state: state.to_owned(),
            launcher,
            managed: record.is_some(),
            pid,
            system_state,
            leader,
            network: None,
            autostart,
            addresses,
            started_by,
            root: self.host.paths().machine_root(name).display().to_string(),
        }
    }
}

/// The global addresses of the network namespace of `leader`, read with
/// the host's `ip` inside that namespace (the guest need not have iproute2).
fn addresses_of(host: &dyn Host, leader: i32) -> Vec<String> {
    let cmd = Cmd::new([
        "nsenter".to_owned(),
        format!("--target={leader}"),
        "--net".into(),
        "--".into(),
        "ip".into(),
        "-o".into(),
        "addr".into(),
        "show".into(),
        "scope".into(),
        "global".into(),
    ])
    .quiet();
    let Ok(out) = host.run(&cmd) else {
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
