//! A command berth runs on a host, described as data: its argv, exactly the
//! environment it gets, its stdin bytes, its timeout and where its output
//! goes. The fake host records these; [`LocalHost`](super::LocalHost) runs them.

use std::path::PathBuf;
use std::time::Duration;

/// Environment variables a child may inherit from berth: none that could
/// hold a secret a spec names (`root_password: {env: VAR}` reads VAR, which
/// is never one of these). Everything else a child gets is set explicitly.
pub const INHERITED_ENV: &[&str] = &["PATH", "HOME", "TMPDIR", "LANG", "LC_ALL"];

/// Where a command's output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// stdout and stderr captured into [`Finished`].
    Capture,
    /// stdout captured, stderr discarded.
    Quiet,
    /// Both appended to this log file.
    Append(PathBuf),
    /// Both passed through to berth's own (interactive commands).
    Inherit,
}

/// A command to run on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Variables set for the child, on top of the few inherited ones (`PATH`, `HOME`, ...); nothing else
    /// of berth's environment reaches it.
    pub env: Vec<(String, String)>,
    /// Bytes written to its stdin (None: /dev/null).
    pub stdin: Option<Vec<u8>>,
    /// Killed after this long (None: no limit).
    pub timeout: Option<Duration>,
    /// Where its output goes.
    pub output: Output,
    /// Killed (SIGKILL) if berth dies first.
    pub die_with_berth: bool,
    /// Joins the cgroup `berth-NAME` of this name before exec (hosts without systemd).
    pub cgroup: Option<String>,
}

impl Cmd {
    /// `argv` with no extra environment, no stdin, output captured.
    pub fn new<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Self {
        Cmd {
            argv: argv.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            stdin: None,
            timeout: None,
            output: Output::Capture,
            die_with_berth: false,
            cgroup: None,
        }
    }

    /// Sets a variable for the child.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets several variables for the child.
    pub fn envs<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Captures stdout, discards stderr.
    pub fn quiet(mut self) -> Self {
        self.output = Output::Quiet;
        self
    }

    /// Appends stdout and stderr to `log`.
    pub fn append_to(mut self, log: PathBuf) -> Self {
        self.output = Output::Append(log);
        self
    }

    /// Passes the terminal through (shell, login).
    pub fn inherit_output(mut self) -> Self {
        self.output = Output::Inherit;
        self
    }

    /// Kills the command when berth dies.
    pub fn die_with_berth(mut self) -> Self {
        self.die_with_berth = true;
        self
    }

    /// Joins the cgroup `berth-NAME` before exec.
    pub fn in_cgroup(mut self, name: impl Into<String>) -> Self {
        self.cgroup = Some(name.into());
        self
    }

    /// The command line as a user would type it.
    pub fn display(&self) -> String {
        self.argv.join(" ")
    }
}

/// How a command ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finished {
    /// Its exit code (None: killed by a signal or the timeout).
    pub code: Option<i32>,
    /// Its exit status as text (`exit status: 1`), for errors.
    pub status: String,
    /// Its stdout, when captured.
    pub stdout: Vec<u8>,
    /// Its stderr, when captured.
    pub stderr: Vec<u8>,
}

impl Finished {
    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// stdout as trimmed text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim().to_owned()
    }

    /// stderr as trimmed text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_owned()
    }
}
