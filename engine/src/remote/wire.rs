//! The agent protocol: one [`Request`] as JSON on the agent's stdin, then
//! newline-delimited [`WireEvent`]s on its stdout. Secrets travel only in
//! [`Request::secrets`], over ssh's stdin; they are never on an argv, in
//! an environment or on the target's disk.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The protocol version; the agent refuses another.
pub const PROTOCOL: u32 = 1;

/// Largest request an agent reads (the spec, its files, its secrets).
pub const MAX_REQUEST: u64 = 512 * 1024 * 1024;

/// What the controller writes on the agent's stdin after the request (one
/// line of JSON) to stop an apply at the next safe point, as Ctrl-C does
/// locally. The end of stdin (the controller gone) stops it too.
pub const STOP_LINE: &str = "stop";

/// What the controller asks one host's agent to do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// [`PROTOCOL`].
    pub version: u32,
    /// The controller's berth version; must equal the agent's.
    pub berth: String,
    /// `plan`, `plan_out` (a plan to save), `apply`, `apply_saved`,
    /// `status` or `destroy`.
    pub command: String,
    /// The host's name in the spec (the agent's work directory and its
    /// lock are per spec and host, so a saved plan's paths match).
    #[serde(default)]
    pub host: String,
    /// For `apply_saved`: this host's part of the saved plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved: Option<serde_json::Value>,
    /// The command's options.
    pub options: Options,
    /// That host's part of the spec, as YAML (a spec file).
    pub spec_yaml: String,
    /// That host's part of a spec directory: its files that place machines
    /// there, by file name, as YAML (then `spec_yaml` is empty).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spec_files: BTreeMap<String, String>,
    /// The controller's spec path (canonical), for messages and records.
    pub spec_label: String,
    /// The controller's host name: with `spec_label` and `host` it names
    /// the agent's work directory, whose spec path the target's records
    /// keep (so prune there finds the machines applied from this spec
    /// by this controller, and no other's).
    #[serde(default)]
    pub controller: String,
    /// Files the spec references, by path relative to the spec: base64.
    pub files: BTreeMap<String, String>,
    /// `env:` secrets resolved on the controller, by variable name: base64.
    pub secrets: BTreeMap<String, String>,
}

/// A command's options, as the controller resolved them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// The machines to act on, exact names (all of the host's when empty).
    pub names: Vec<String>,
    /// Apply or destroy without asking (the controller asked).
    pub yes: bool,
    /// Machines whose root may be replaced.
    pub replace: Vec<String>,
    /// How long to wait for the target's state lock (None: forever).
    pub lock_timeout: Option<u64>,
    /// `--prune`: apply destroys the host's machines applied from this
    /// spec and gone from it (without it they are kept, with a warning).
    #[serde(default)]
    pub prune: bool,
    /// `--upgrade`: plan and apply package upgrades too.
    #[serde(default)]
    pub upgrade: bool,
    /// `--detailed-exitcode`: the result's exit code is 2 when there were changes.
    #[serde(default)]
    pub detailed_exitcode: bool,
    /// The command line's NAME patterns: which machines gone from the spec
    /// are pruned (all when empty; `names` are the spec's machines).
    #[serde(default)]
    pub patterns: Vec<String>,
    /// The command line's `--exclude` patterns, for the same.
    #[serde(default)]
    pub excludes: Vec<String>,
    /// `rollback`'s snapshot (the newest when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// One event of the agent's stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WireEvent {
    /// The digest of the host's ssh host keys (the agent's first event,
    /// see [`super::hostkeys`]).
    HostKeys {
        /// [`super::hostkeys::digest`].
        digest: String,
    },
    /// A step (action) of a machine started.
    StepStarted {
        /// The machine.
        machine: String,
        /// The step, as the plan describes it.
        step: String,
    },
    /// A step finished.
    StepDone {
        /// The machine.
        machine: String,
        /// The step.
        step: String,
        /// How long it took.
        seconds: f64,
    },
    /// A machine failed.
    StepFailed {
        /// The machine.
        machine: String,
        /// Why.
        error: String,
    },
    /// A line of progress (a command about to run, a note).
    Output {
        /// The machine, when the line is about one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        machine: Option<String>,
        /// The line.
        text: String,
    },
    /// A warning the command would print on stderr locally (a machine
    /// gone from the spec kept without `--prune`).
    Warning {
        /// The line.
        text: String,
    },
    /// The plan: its JSON (as `berth plan --json`) and its human text.
    Plan {
        /// `berth plan --json` of this host.
        plan: serde_json::Value,
        /// The human plan.
        text: String,
    },
    /// The saved form of this host's plan (`plan_out`), fingerprints included.
    Saved {
        /// The host's saved plan (`berth plan --out`'s format).
        saved: serde_json::Value,
    },
    /// Status rows (as `berth status --json`).
    Status {
        /// The rows.
        rows: serde_json::Value,
    },
    /// The end: the command's exit code, its error, its JSON report.
    Result {
        /// The exit code the command would have locally.
        exit: u8,
        /// The error that ended it, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// `apply --json`'s or `destroy --json`'s report.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        report: Option<serde_json::Value>,
    },
}

impl WireEvent {
    /// The event as one line of JSON, newline included.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"event":"output","text":"cannot encode an event: {e}"}}"#)
        });
        line.push('\n');
        line
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); `None` on bad input.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "abcd", "hello world\n\0\u{ff}"] {
            let e = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(&e).unwrap(), s.as_bytes(), "{e}");
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert!(base64_decode("!!").is_none());
    }

    #[test]
    fn events_are_one_line_each() {
        let e = WireEvent::StepStarted {
            machine: "web".into(),
            step: "start machine".into(),
        };
        let line = e.to_line();
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.contains(r#""event":"step_started""#), "{line}");
        let back: WireEvent = serde_json::from_str(&line).unwrap();
        assert_eq!(back, e);
    }
}
