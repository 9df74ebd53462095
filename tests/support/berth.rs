//! A fluent way to run the real `berth` binary in a [`Sandbox`] and check
//! what it did:
//!
//! ```ignore
//! sandbox.berth_cmd().spec(YAML).args(["plan", "--json"]).run().success().json();
//! ```
//!
//! Every assertion of [`Run`] panics with the exit code and the whole
//! stdout and stderr ([`describe`]), and returns the run for chaining.

use std::ffi::OsString;
use std::fs;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;

use super::{Sandbox, describe};

/// A `berth` command line to run in a sandbox: its machines, state,
/// settings and cache dirs, its directory as the working directory, no
/// terminal, no colour (the environment of [`Sandbox::berth`]).
#[must_use = "a Berth does nothing until .run()"]
pub struct Berth {
    dir: PathBuf,
    spec: Option<String>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    removed: Vec<OsString>,
    stdin: Option<Vec<u8>>,
}

impl Sandbox {
    /// `berth` with this sandbox's dirs; see [`Berth`].
    pub fn berth_cmd(&self) -> Berth {
        Berth {
            dir: self.dir.path().to_path_buf(),
            spec: None,
            args: Vec::new(),
            env: vec![
                ("BERTH_MACHINES_DIR".into(), self.machines().into()),
                ("BERTH_STATE_DIR".into(), self.state().into()),
                ("BERTH_NSPAWN_DIR".into(), self.nspawn().into()),
                ("BERTH_CACHE_DIR".into(), self.cache().into()),
                ("NO_COLOR".into(), "1".into()),
            ],
            removed: Vec::new(),
            stdin: None,
        }
    }
}

impl Berth {
    /// Writes `yaml` as the sandbox's `machines.yaml` (berth's default
    /// `-f`, the working directory being the sandbox) before running.
    pub fn spec(mut self, yaml: &str) -> Self {
        self.spec = Some(yaml.to_owned());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable (after the sandbox's, so it can override them).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        let key = key.into();
        self.removed.retain(|k| *k != key);
        self.env.push((key, value.into()));
        self
    }

    /// Removes an environment variable (one of the sandbox's too, e.g. NO_COLOR).
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        let key = key.into();
        self.env.retain(|(k, _)| *k != key);
        self.removed.push(key);
        self
    }

    /// Feeds `input` on stdin (otherwise stdin is empty).
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Runs berth (killed after 600 s) and returns what it did.
    pub fn run(self) -> Run {
        if let Some(yaml) = &self.spec {
            fs::write(self.dir.join("machines.yaml"), yaml).expect("writing the spec");
        }
        let mut cmd = Command::cargo_bin("berth").expect("the berth binary");
        for key in &self.removed {
            cmd.env_remove(key);
        }
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd.current_dir(&self.dir)
            .args(&self.args)
            .timeout(Duration::from_secs(600));
        if let Some(input) = self.stdin {
            cmd.write_stdin(input);
        }
        let output = cmd.output().expect("running berth");
        Run {
            args: self.args,
            output,
        }
    }
}

/// A finished berth run: assertions that panic with its whole output.
pub struct Run {
    args: Vec<OsString>,
    output: Output,
}

impl Run {
    /// Panics with `what`, the command line and the whole output.
    #[track_caller]
    fn fail(&self, what: &str) -> ! {
        panic!("berth {:?}: {what}\n{}", self.args, describe(&self.output))
    }

    /// The exit code, if berth exited (not killed by a signal).
    pub fn exit_code(&self) -> Option<i32> {
        self.output.status.code()
    }

    /// Asserts exit code 0.
    #[track_caller]
    pub fn success(&self) -> &Self {
        self.code(0)
    }

    /// Asserts that berth exited, with a non-zero code.
    #[track_caller]
    pub fn failure(&self) -> &Self {
        match self.exit_code() {
            Some(0) => self.fail("expected a failure, it succeeded"),
            Some(_) => self,
            None => self.fail("expected a failure, berth died by a signal"),
        }
    }

    /// Asserts exit code `n`.
    #[track_caller]
    pub fn code(&self, n: i32) -> &Self {
        if self.exit_code() != Some(n) {
            self.fail(&format!("expected exit code {n}"));
        }
        self
    }

    /// Asserts that stdout contains `s`.
    #[track_caller]
    pub fn stdout_has(&self, s: &str) -> &Self {
        if !self.stdout().contains(s) {
            self.fail(&format!("stdout lacks {s:?}"));
        }
        self
    }

    /// Asserts that stdout does not contain `s`.
    #[track_caller]
    pub fn stdout_lacks(&self, s: &str) -> &Self {
        if self.stdout().contains(s) {
            self.fail(&format!("stdout has {s:?}"));
        }
        self
    }

    /// Asserts that stderr contains `s`.
    #[track_caller]
    pub fn stderr_has(&self, s: &str) -> &Self {
        if !self.stderr().contains(s) {
            self.fail(&format!("stderr lacks {s:?}"));
        }
        self
    }

    /// Asserts that stderr does not contain `s`.
    #[track_caller]
    pub fn stderr_lacks(&self, s: &str) -> &Self {
        if self.stderr().contains(s) {
            self.fail(&format!("stderr has {s:?}"));
        }
        self
    }

    /// stdout, lossily decoded.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// stderr, lossily decoded.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// stdout parsed as JSON (panics, with the output, if it is not).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.output.stdout)
            .unwrap_or_else(|e| self.fail(&format!("stdout is not JSON: {e}")))
    }

    /// The raw output.
    pub fn output(&self) -> &Output {
        &self.output
    }

    /// The raw output, taken.
    pub fn into_output(self) -> Output {
        self.output
    }
}
