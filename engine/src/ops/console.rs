//! `berth shell` and `berth login`: the command that hands the terminal to a
//! running machine.

use berth_schema::Machine;

use crate::engine::Engine;
use crate::error::EngineError;
use crate::host::Cmd;
use crate::observe::{self, RunState};

/// What `berth shell` and `berth login` hand over to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// A root shell in the machine.
    Shell,
    /// A login prompt in the machine.
    Login,
}

/// The only variable of berth's environment a console passes on: the
/// terminal type, which the shell or login prompt needs to drive the
/// terminal. Everything else (a secret read from `root_password: {env:
/// VAR}` included) stays behind, as for every other command berth runs.
const CONSOLE_ENV: &[&str] = &["TERM"];

impl Engine {
    /// The command that opens a shell or login prompt in running machine
    /// `machine`: `machinectl shell|login` under the launchers machined
    /// knows, nsenter into the guest's init under the plain nspawn launcher.
    /// Its environment is the host's minimal one plus `TERM` (see
    /// [`Host::run`](crate::host::Host::run)), never berth's own.
    pub fn console_command(&self, machine: &Machine, console: Console) -> Result<Cmd, EngineError> {
        let argv = self.console_argv(machine, console)?;
        let mut cmd = Cmd::new(argv).inherit_output();
        for key in CONSOLE_ENV {
            if let Ok(value) = std::env::var(key) {
                cmd = cmd.env(*key, value);
            }
        }
        Ok(cmd)
    }

    /// Replaces berth with [`Engine::console_command`]: returns only if it
    /// cannot be run.
    pub fn exec_console(&self, machine: &Machine, console: Console) -> EngineError {
        match self.console_command(machine, console) {
            Ok(cmd) => self.host.exec(&cmd),
            Err(e) => e,
        }
    }

    fn console_argv(
        &self,
        machine: &Machine,
        console: Console,
    ) -> Result<Vec<String>, EngineError> {
        let observed = observe::observe(self.host(), machine)?;
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
        let machined = self.host.booted_with_systemd()
            && launcher != Some(berth_schema::Launcher::Nspawn.as_str());
        if machined {
            return Ok(vec!["machinectl".into(), verb.into(), machine.name.clone()]);
        }
        let leader =
            crate::host::process::namespace_init_child(self.host(), pid).ok_or_else(not_running)?;
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
