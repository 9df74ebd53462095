//! Units inside a machine root: whether a unit file exists (read natively,
//! confined to the root) and its enablement as `systemctl --root` reports it.

use std::path::Path;
use std::process::Command;

use crate::confined::Root;
use crate::error::EngineError;

/// Directories systemd loads unit files from, in a root.
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// The enablement state of a unit, as `systemctl is-enabled` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitState {
    /// No unit file of that name in the root.
    NotFound,
    /// `enabled` (or an equivalent that starts it at boot: `enabled-runtime` excluded).
    Enabled,
    /// `disabled`.
    Disabled,
    /// `masked`.
    Masked,
    /// `static`, `indirect`, `generated`, `alias`, ...: not switchable by enable/disable.
    Other(String),
}

impl UnitState {
    /// Parses one line of `systemctl is-enabled` output.
    pub fn parse(word: &str) -> UnitState {
        match word {
            "enabled" => UnitState::Enabled,
            "disabled" => UnitState::Disabled,
            "masked" => UnitState::Masked,
            "not-found" => UnitState::NotFound,
            other => UnitState::Other(other.to_owned()),
        }
    }

    /// The word `systemctl is-enabled` would print.
    pub fn as_str(&self) -> &str {
        match self {
            UnitState::NotFound => "not-found",
            UnitState::Enabled => "enabled",
            UnitState::Disabled => "disabled",
            UnitState::Masked => "masked",
            UnitState::Other(s) => s,
        }
    }
}

/// Whether a unit file for `unit` exists in the root (for an instance
/// `foo@bar.service`, its template `foo@.service` counts).
pub fn unit_file_exists(root: &Root, unit: &str) -> Result<bool, EngineError> {
    let template = template_of(unit);
    for dir in UNIT_DIRS {
        for name in std::iter::once(unit).chain(template.as_deref()) {
            // lstat-like: a mask (a link to /dev/null) or an alias link counts.
            if root.kind(&format!("{dir}/{name}"))?.is_some() {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// `foo@.service` for `foo@bar.service`; None for non-instances.
fn template_of(unit: &str) -> Option<String> {
    let (prefix, rest) = unit.split_once('@')?;
    let (_, suffix) = rest.rsplit_once('.')?;
    (!rest.starts_with('.')).then(|| format!("{prefix}@.{suffix}"))
}

/// The enablement of each of `units` (which must exist) in the root at `root_path`.
/// One `systemctl --root` call for all of them.
pub fn states(root_path: &Path, units: &[&str]) -> Result<Vec<UnitState>, EngineError> {
    if units.is_empty() {
        return Ok(Vec::new());
    }
    let output = systemctl(root_path)
        .arg("is-enabled")
        .arg("--")
        .args(units)
        .output()
        .map_err(|e| EngineError::io("running systemctl is-enabled", e))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    if lines.len() == units.len() {
        return Ok(lines.into_iter().map(UnitState::parse).collect());
    }
    // systemctl stops at the first unit it cannot resolve; ask one by one.
    units
        .iter()
        .map(|unit| {
            let output = systemctl(root_path)
                .args(["is-enabled", "--", unit])
                .output()
                .map_err(|e| EngineError::io("running systemctl is-enabled", e))?;
            let word = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            Ok(if word.is_empty() {
                UnitState::NotFound
            } else {
                UnitState::parse(&word)
            })
        })
        .collect()
}

/// `systemctl --root=ROOT VERB UNIT`, one verb and one unit per call (so one
/// missing unit never silently cancels the others).
pub fn change(root_path: &Path, verb: &str, unit: &str) -> Result<(), EngineError> {
    let output = systemctl(root_path)
        .args([verb, "--", unit])
        .output()
        .map_err(|e| EngineError::io(format!("running systemctl {verb} {unit}"), e))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(EngineError::Command {
            what: format!("systemctl --root={} {verb} {unit}", root_path.display()),
            status: output.status.to_string(),
            output: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

fn systemctl(root_path: &Path) -> Command {
    let mut cmd = Command::new("systemctl");
    cmd.arg(format!("--root={}", root_path.display()))
        .arg("--no-pager")
        .env("SYSTEMD_LOG_COLOR", "0")
        .env_remove("SYSTEMD_OFFLINE");
    cmd
}

/// A hint naming the package that ships `unit`, for "unit not found" errors.
pub fn package_hint(unit: &str) -> String {
    let base = unit.split(['@', '.']).next().unwrap_or(unit);
    let package = match base {
        "systemd-resolved" => Some("systemd-resolved"),
        "systemd-timesyncd" => Some("systemd-timesyncd"),
        "systemd-networkd" | "systemd-journald" | "systemd-logind" => Some("systemd"),
        "systemd-homed" | "systemd-userdbd" => Some("systemd-homed"),
        "ssh" | "sshd" => Some("openssh-server"),
        "dbus" => Some("dbus"),
        "cron" => Some("cron"),
        "nginx" => Some("nginx"),
        "apache2" => Some("apache2"),
        "fstrim" => Some("util-linux"),
        "apt-daily" | "apt-daily-upgrade" => Some("apt"),
        _ => None,
    };
    match package {
        Some(p) => format!("add the package `{p}` to packages: (it ships {unit})"),
        None => format!("add the package that ships {unit} to packages:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert_eq!(
            template_of("getty@tty1.service").as_deref(),
            Some("getty@.service")
        );
        assert_eq!(template_of("foo.service"), None);
    }

    #[test]
    fn hints_name_the_package() {
        assert!(package_hint("systemd-resolved.service").contains("`systemd-resolved`"));
        assert!(package_hint("weird.service").contains("ships weird.service"));
    }
}
