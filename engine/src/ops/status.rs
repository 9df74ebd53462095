//! `berth status`: whether each machine runs, how, and what its guest says.

use berth_schema::Machine;
use serde::Serialize;

use crate::drivers::launcher;
use crate::engine::Engine;
use crate::error::EngineError;
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
        let launch = observed
            .record
            .as_ref()
            .and_then(|r| r.launch.as_ref())
            .filter(|_| matches!(observed.run, RunState::Running { .. }))
            .and_then(|launch| launcher::refresh(self.host(), &machine.name, launch));
        let launch = launch.as_ref();
        let (state, launcher, pid, started_by) = match (&observed.root, &observed.run) {
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
        let leader = match (&observed.run, launch) {
            (_, Some(launch)) => launcher::leader(self.host(), launch),
            (RunState::Foreign { pid, .. }, None) => {
                crate::host::process::namespace_init_child(self.host(), *pid)
            }
            _ => None,
        };
        let system_state = match (launch, leader) {
            (Some(launch), _) => launcher::system_state(self.host(), &machine.name, launch),
            (None, Some(leader)) => self
                .host
                .guest_output(leader, &["systemctl", "is-system-running"]),
            _ => None,
        };
        let addresses = leader
            .map(|l| addresses_of(self.host(), l))
            .unwrap_or_default();
        let autostart = match launcher::resolve(machine.launcher, self.host.facts()) {
            Ok(kind) => launcher::launcher_for(kind).autostart(self.host(), &machine.name)?,
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
                .paths()
                .machine_root(&machine.name)
                .display()
                .to_string(),
        })
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
