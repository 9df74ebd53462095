//! Health checks of a running guest (`health:`), run inside it through
//! nsenter with a clean environment (see [`guest::command`]):
//!
//! - `systemctl is-system-running` must say `running` or `degraded` (a
//!   failed unit the spec does not name is the guest's business); while it
//!   says `initializing` or `starting` the guest is still booting;
//! - `systemctl is-active UNIT` must say `active`, for each listed unit;
//! - the command must exit 0.
//!
//! All of them are retried, in that order, until they pass together or the
//! timeout ends; the failure then names the check that failed last
//! (`unit nginx.service is failed`). The loop is [`wait_with`], which takes
//! the runner as a closure so it is unit-tested without a guest.

use std::time::{Duration, Instant};

use berth_schema::Health;

use crate::drivers::guest;
use crate::error::EngineError;
use crate::host::{Finished, Host};

/// The guest environment of the checks' commands, besides PATH.
const CHECK_ENV: &[(&str, &str)] = &[("HOME", "/root"), ("LANG", "C.UTF-8")];

/// The longest one check's command may run.
const MAX_TRY: Duration = Duration::from_secs(30);

/// How long to wait between two rounds of checks.
const PAUSE: Duration = Duration::from_secs(1);

/// One health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `systemctl is-system-running` is not failed, nor still starting.
    System,
    /// `systemctl is-active UNIT` is `active`.
    Unit(String),
    /// The command exits 0.
    Command(Vec<String>),
}

impl Check {
    /// The command that runs the check in the guest.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Check::System => vec!["systemctl".into(), "is-system-running".into()],
            Check::Unit(unit) => vec![
                "systemctl".into(),
                "is-active".into(),
                "--".into(),
                unit.clone(),
            ],
            Check::Command(argv) => argv.clone(),
        }
    }

    /// Whether the check passed, from how its command ended; else what is
    /// wrong, for the failure message.
    pub fn judge(&self, out: &Finished) -> Result<(), String> {
        let said = out.stdout_text();
        let said = said.lines().last().unwrap_or("").trim();
        match self {
            Check::System => match said {
                "running" | "degraded" => Ok(()),
                "" => Err(format!(
                    "the system's state is unknown (systemctl is-system-running: {})",
                    out.status
                )),
                "initializing" | "starting" => Err(format!(
                    "the system is still {said} (systemctl is-system-running)"
                )),
                other => Err(format!(
                    "the system is {other} (systemctl is-system-running)"
                )),
            },
            Check::Unit(unit) => match said {
                "active" => Ok(()),
                "" => Err(format!(
                    "unit {unit} is in an unknown state ({})",
                    out.status
                )),
                other => Err(format!("unit {unit} is {other}")),
            },
            Check::Command(argv) => {
                if out.success() {
                    return Ok(());
                }
                let how = match out.code {
                    Some(code) => format!("exited with status {code}"),
                    None => "was killed or timed out".to_owned(),
                };
                let output = last_lines(&out.stderr, &out.stdout);
                Err(format!(
                    "command `{}` {how}{}",
                    argv.join(" "),
                    if output.is_empty() {
                        String::new()
                    } else {
                        format!(": {output}")
                    }
                ))
            }
        }
    }
}

/// The last lines of a failed command's output (stderr first), short.
fn last_lines(stderr: &[u8], stdout: &[u8]) -> String {
    let text = String::from_utf8_lossy(if stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        stderr
    } else {
        stdout
    })
    .into_owned();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = lines[lines.len().saturating_sub(3)..].join(" / ");
    if out.len() > 300 {
        let mut cut = 300;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("...");
    }
    out
}

/// The checks of `health`, in the order they run.
pub fn checks(health: &Health) -> Vec<Check> {
    let mut out = vec![Check::System];
    out.extend(health.units.iter().cloned().map(Check::Unit));
    if let Some(argv) = &health.command {
        out.push(Check::Command(argv.clone()));
    }
    out
}

/// Runs `checks` round after round until all pass in one round or
/// `timeout` ends; `run` runs one check's command with a time limit.
/// Returns the last failure, prefixed `health check failed: `.
pub fn wait_with(
    checks: &[Check],
    timeout: Duration,
    pause: Duration,
    mut run: impl FnMut(&Check, Duration) -> Result<Finished, EngineError>,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut failure = None;
        for check in checks {
            let left = deadline.saturating_duration_since(Instant::now());
            let limit = left.clamp(Duration::from_secs(1), MAX_TRY);
            let verdict = match run(check, limit) {
                Ok(out) => check.judge(&out),
                Err(e) => Err(format!("{} could not run: {e}", check.argv().join(" "))),
            };
            if let Err(why) = verdict {
                failure = Some(why);
                break;
            }
        }
        let Some(why) = failure else {
            return Ok(());
        };
        if Instant::now() + pause >= deadline {
            return Err(format!(
                "health check failed: {why} (checked for {})",
                show_duration(timeout)
            ));
        }
        std::thread::sleep(pause);
    }
}

/// `60s`, `2m`, `90s`.
fn show_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else if secs == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{secs}s")
    }
}

/// Runs `health`'s checks in machine `name`, the running guest whose init
/// is `leader`, until they pass or its timeout ends (see [`wait_with`]).
pub fn wait_healthy(
    host: &dyn Host,
    name: &str,
    leader: i32,
    health: &Health,
) -> Result<(), String> {
    let env: Vec<(String, String)> = CHECK_ENV
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    wait_with(&checks(health), health.timeout, PAUSE, |check, limit| {
        let mut cmd = guest::command(host, name, Some(leader), &check.argv(), &env);
        cmd.timeout = Some(limit);
        cmd.die_with_berth = true;
        host.run(&cmd)
    })
}

/// The health checks `apply --upgrade` runs for a machine without
/// `health:`: only the system's state, with the default timeout.
pub fn default_health() -> Health {
    Health {
        units: Vec::new(),
        command: None,
        timeout: Health::DEFAULT_TIMEOUT,
        source: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(code: i32, stdout: &str) -> Finished {
        Finished {
            code: Some(code),
            status: format!("exit status: {code}"),
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
        }
    }

    #[test]
    fn judges_each_kind_of_check() {
        assert_eq!(Check::System.judge(&said(0, "running\n")), Ok(()));
        assert_eq!(Check::System.judge(&said(1, "degraded\n")), Ok(()));
        assert!(
            Check::System
                .judge(&said(1, "starting\n"))
                .unwrap_err()
                .contains("still starting")
        );
        assert_eq!(
            Check::System.judge(&said(1, "maintenance\n")),
            Err("the system is maintenance (systemctl is-system-running)".into())
        );
        let unit = Check::Unit("nginx.service".into());
        assert_eq!(unit.judge(&said(0, "active\n")), Ok(()));
        assert_eq!(
            unit.judge(&said(3, "failed\n")),
            Err("unit nginx.service is failed".into())
        );
        assert_eq!(
            unit.judge(&said(3, "inactive\n")),
            Err("unit nginx.service is inactive".into())
        );
        let command = Check::Command(vec!["curl".into(), "-fsS".into(), "http://x/".into()]);
        assert_eq!(command.judge(&said(0, "")), Ok(()));
        let mut out = said(7, "");
        out.stderr = b"curl: (7) Failed to connect\n".to_vec();
        assert_eq!(
            command.judge(&out),
            Err(
                "command `curl -fsS http://x/` exited with status 7: curl: (7) Failed to connect"
                    .into()
            )
        );
        let killed = Finished {
            code: None,
            ..said(0, "")
        };
        assert!(
            command
                .judge(&killed)
                .unwrap_err()
                .contains("was killed or timed out")
        );
    }

    #[test]
    fn checks_run_in_order() {
        let health = Health {
            units: vec!["a.service".into()],
            command: Some(vec!["true".into()]),
            timeout: Duration::from_secs(1),
            source: Default::default(),
        };
        assert_eq!(
            checks(&health),
            [
                Check::System,
                Check::Unit("a.service".into()),
                Check::Command(vec!["true".into()])
            ]
        );
        assert_eq!(
            Check::Unit("a.service".into()).argv(),
            ["systemctl", "is-active", "--", "a.service"]
        );
    }

    #[test]
    fn retries_until_all_pass() {
        let checks = [Check::System, Check::Unit("a.service".into())];
        let mut calls = 0;
        let result = wait_with(
            &checks,
            Duration::from_secs(5),
            Duration::from_millis(1),
            |check, _| {
                calls += 1;
                Ok(match check {
                    // Booting for two rounds, then up.
                    Check::System if calls < 3 => said(1, "starting"),
                    Check::System => said(0, "running"),
                    _ => said(0, "active"),
                })
            },
        );
        assert_eq!(result, Ok(()));
        assert_eq!(calls, 4);
    }

    #[test]
    fn times_out_naming_the_failing_check() {
        let checks = [Check::System, Check::Unit("berth-hello.service".into())];
        let result = wait_with(
            &checks,
            Duration::from_millis(30),
            Duration::from_millis(1),
            |check, limit| {
                assert!(limit >= Duration::from_secs(1));
                Ok(match check {
                    Check::System => said(1, "degraded"),
                    _ => said(3, "failed"),
                })
            },
        );
        let err = result.unwrap_err();
        assert!(
            err.starts_with("health check failed: unit berth-hello.service is failed"),
            "{err}"
        );
        let err = wait_with(
            &[Check::Command(vec!["false".into()])],
            Duration::from_millis(10),
            Duration::from_millis(1),
            |_, _| Err(EngineError::State("no such pid".into())),
        )
        .unwrap_err();
        assert!(err.contains("false could not run"), "{err}");
    }
}
