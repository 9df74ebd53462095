//! The real host: commands run with an explicit environment, `/proc` read
//! directly, cgroups under `/sys/fs/cgroup`.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::command::{Cmd, Finished, INHERITED_ENV, Output};
use super::{Detached, Host, HostFacts};
use crate::drivers::launcher::cgroup;
use crate::error::EngineError;
use crate::host::paths::Paths;

/// The host berth runs on.
#[derive(Debug)]
pub struct LocalHost {
    facts: HostFacts,
    /// `which` answers, looked up once per program (a plan over many
    /// machines asks for the same tools again and again).
    found: Mutex<HashMap<String, Option<PathBuf>>>,
}

impl LocalHost {
    /// This host, with berth's directories at `paths`.
    pub fn new(paths: Paths) -> Self {
        LocalHost {
            facts: HostFacts::detect(paths),
            found: Mutex::new(HashMap::new()),
        }
    }

    /// This host with explicit facts (tests that pin systemd or tool checks).
    pub fn with_facts(facts: HostFacts) -> Self {
        LocalHost {
            facts,
            found: Mutex::new(HashMap::new()),
        }
    }
}

/// A `Command` for `cmd` with exactly its environment: the few inherited
/// variables of [`INHERITED_ENV`] and the ones it sets.
fn command(cmd: &Cmd) -> Result<Command, EngineError> {
    let Some((program, args)) = cmd.argv.split_first() else {
        return Err(EngineError::State("an empty command line".into()));
    };
    let mut c = Command::new(program);
    c.args(args).env_clear();
    for key in INHERITED_ENV {
        if let Some(value) = std::env::var_os(key) {
            c.env(key, value);
        }
    }
    if std::env::var_os("PATH").is_none() {
        c.env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        );
    }
    for (k, v) in &cmd.env {
        c.env(k, v);
    }
    let procs = match &cmd.cgroup {
        Some(name) => cgroup::procs_files(&cgroup::create(name)),
        None => Vec::new(),
    };
    let die = cmd.die_with_berth;
    if die || !procs.is_empty() {
        // SAFETY: prctl(PR_SET_PDEATHSIG) and the cgroup join
        // (open/write/close) are async-signal-safe.
        unsafe {
            c.pre_exec(move || {
                if die {
                    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                        .map_err(std::io::Error::from)?;
                }
                cgroup::join(&procs)
            });
        }
    }
    Ok(c)
}

fn open_log(path: &Path) -> Result<(std::fs::File, std::fs::File), EngineError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
    }
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| EngineError::io(format!("opening {}", path.display()), e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| EngineError::io("duplicating the log file", e))?;
    Ok((log, log2))
}

fn read_all(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut out);
        }
        out
    })
}

impl Host for LocalHost {
    fn ensure_tmpfs(&self, dir: &Path) -> Result<(), EngineError> {
        crate::drivers::credentials::ensure_tmpfs(self, dir)
    }

    fn facts(&self) -> &HostFacts {
        &self.facts
    }

    fn run(&self, cmd: &Cmd) -> Result<Finished, EngineError> {
        let mut c = command(cmd)?;
        c.stdin(if cmd.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        match &cmd.output {
            Output::Capture => {
                c.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
            Output::Quiet => {
                c.stdout(Stdio::piped()).stderr(Stdio::null());
            }
            Output::Append(path) => {
                let (log, log2) = open_log(path)?;
                c.stdout(log).stderr(log2);
            }
            Output::Inherit => {
                c.stdin(if cmd.stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::inherit()
                });
            }
        }
        let mut child = c
            .spawn()
            .map_err(|e| EngineError::io(format!("running {}", cmd.argv[0]), e))?;
        if let (Some(bytes), Some(mut stdin)) = (cmd.stdin.clone(), child.stdin.take()) {
            std::thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            });
        }
        let stdout = read_all(child.stdout.take());
        let stderr = read_all(child.stderr.take());
        let status = match cmd.timeout {
            None => child
                .wait()
                .map_err(|e| EngineError::io(format!("waiting for {}", cmd.argv[0]), e))?,
            Some(limit) => {
                let deadline = Instant::now() + limit;
                loop {
                    if let Some(status) = child
                        .try_wait()
                        .map_err(|e| EngineError::io(format!("waiting for {}", cmd.argv[0]), e))?
                    {
                        break status;
                    }
                    if Instant::now() >= deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(EngineError::Command {
                            what: cmd.display(),
                            status: format!("timed out after {}s", limit.as_secs()),
                            output: String::new(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        Ok(Finished {
            code: status.code(),
            status: status.to_string(),
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        })
    }

    fn exec(&self, cmd: &Cmd) -> EngineError {
        match command(cmd) {
            Ok(mut c) => EngineError::io(format!("running {}", cmd.display()), c.exec()),
            Err(e) => e,
        }
    }

    fn spawn_detached(&self, request: &Detached) -> Result<i32, EngineError> {
        if let Some(name) = &request.cgroup
            && !request.limits.is_empty()
        {
            // The limits are in place before the process joins the cgroup.
            cgroup::create(name);
            cgroup::apply_limits(name, &request.limits).map_err(|message| EngineError::Launch {
                machine: name.clone(),
                message: format!("setting its resource limits: {message}"),
            })?;
        }
        let mut cmd = request.cmd.clone();
        cmd.cgroup = request.cgroup.clone();
        let mut c = command(&Cmd {
            die_with_berth: false,
            ..cmd
        })?;
        let (log, log2) = open_log(&request.log)?;
        c.stdin(Stdio::null()).stdout(log).stderr(log2);
        // SAFETY: setsid is async-signal-safe. It detaches the machine from
        // berth's session so a terminal hangup or Ctrl-C does not kill it.
        unsafe {
            c.pre_exec(|| {
                nix::unistd::setsid()
                    .map(|_| ())
                    .map_err(std::io::Error::from)
            });
        }
        let child = c
            .spawn()
            .map_err(|e| EngineError::io(format!("starting {}", request.cmd.argv[0]), e))?;
        let pid =
            i32::try_from(child.id()).map_err(|_| EngineError::State("pid out of range".into()))?;
        // The Child handle is dropped without waiting: the machine outlives berth.
        drop(child);
        Ok(pid)
    }

    fn which(&self, program: &str) -> Option<PathBuf> {
        let look = || {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .find(|p| p.is_file())
        };
        match self.found.lock() {
            Ok(mut found) => found.entry(program.to_owned()).or_insert_with(look).clone(),
            Err(_) => look(),
        }
    }

    fn proc_dir(&self) -> &Path {
        Path::new("/proc")
    }

    fn kill_cgroup(&self, name: &str) -> usize {
        cgroup::kill_all(name)
    }

    fn remove_cgroup(&self, name: &str) {
        cgroup::remove(name);
    }

    fn reap(&self, pid: i32) {
        use nix::sys::wait::{WaitPidFlag, waitpid};
        let _ = waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
    }

    fn signal(&self, pid: i32, signal: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }

    fn mount_overlay(
        &self,
        options: &str,
        read_only: bool,
        target: &Path,
    ) -> Result<(), EngineError> {
        use nix::mount::{MsFlags, mount};
        let flags = if read_only {
            MsFlags::MS_RDONLY
        } else {
            MsFlags::empty()
        };
        mount(
            Some("overlay"),
            target,
            Some("overlay"),
            flags,
            Some(options),
        )
        .map_err(|e| {
            EngineError::io(
                format!(
                    "mounting an overlay at {} ({}{options})",
                    target.display(),
                    if read_only { "ro," } else { "" }
                ),
                e.into(),
            )
        })
    }

    fn unmount(&self, target: &Path) -> Result<(), EngineError> {
        nix::mount::umount2(target, nix::mount::MntFlags::UMOUNT_NOFOLLOW)
            .map_err(|e| EngineError::io(format!("unmounting {}", target.display()), e.into()))
    }

    fn in_private_mount_namespace(
        &self,
        work: &mut (dyn FnMut() + Send),
    ) -> Result<(), EngineError> {
        use nix::mount::{MsFlags, mount};
        use nix::sched::{CloneFlags, unshare};
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    // This thread only (CLONE_NEWNS unshares its fs struct too);
                    // children it starts inherit the namespace.
                    unshare(CloneFlags::CLONE_NEWNS)
                        .map_err(|e| EngineError::io("unsharing a mount namespace", e.into()))?;
                    // Nothing mounted here may propagate back to the host's
                    // shared mounts (systemd makes / shared).
                    mount(
                        None::<&str>,
                        "/",
                        None::<&str>,
                        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                        None::<&str>,
                    )
                    .map_err(|e| EngineError::io("making mounts private", e.into()))?;
                    work();
                    Ok(())
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(EngineError::State(
                        "a thread in a private mount namespace panicked".into(),
                    ))
                })
        })
    }
}
