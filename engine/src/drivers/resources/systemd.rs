//! Limits and device access through systemd: `systemctl set-property` on
//! the machine's unit, the drop-ins it persists them in, and berth's own
//! `DeviceAllow=` drop-in.
//!
//! `systemctl set-property UNIT MemoryMax=...` (without `--runtime`)
//! changes the running unit's cgroup at once and writes
//! `/etc/systemd/system.control/UNIT.d/50-MemoryMax.conf`, one drop-in per
//! property, which also holds for every later start. A limit the spec no
//! longer sets is reset by removing berth's drop-in of it and reloading
//! systemd: on `daemon-reload` systemd applies every unit's cgroup settings
//! again, so the unit's own value returns, live too.
//!
//! `DeviceAllow=` is different: `set-property` writes the unit's whole list
//! (its own entries from `systemd-nspawn@.service` included) after a
//! `DeviceAllow=` reset, so an entry could never be taken out again without
//! freezing the unit's own list. berth writes its own drop-in instead,
//! [`DEVICE_DROPIN`], holding the spec's entries only (they add to the
//! unit's), and reloads systemd.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{DeviceRule, Knob, Value, property};
use crate::drivers::launcher::unit_name;
use crate::error::EngineError;
use crate::host::{Cmd, Host};

/// The file name of berth's `DeviceAllow=` drop-in.
pub const DEVICE_DROPIN: &str = "50-berth-DeviceAllow.conf";

/// How berth's own drop-ins begin (destroy removes only those, and the
/// drop-ins of the properties berth's record says it set).
pub const HEADER: &str = "# Written by berth";

/// The unit the unit launchers run machine `name` as.
pub fn unit(name: &str) -> String {
    unit_name(name)
}

/// The persistent drop-in directory of `unit` (`set-property`'s).
pub fn dropin_dir(host: &dyn Host, unit: &str) -> PathBuf {
    host.systemd_control_dir().join(format!("{unit}.d"))
}

/// The drop-in `systemctl set-property` writes for `knob`.
pub fn dropin_file(host: &dyn Host, unit: &str, knob: Knob) -> PathBuf {
    dropin_dir(host, unit).join(format!("50-{}.conf", knob.property()))
}

/// The value `knob` has in its `set-property` drop-in (the last
/// `Property=` line), if the drop-in exists.
pub fn read_dropin(host: &dyn Host, unit: &str, knob: Knob) -> Result<Option<String>, EngineError> {
    let path = dropin_file(host, unit, knob);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EngineError::io(format!("reading {}", path.display()), e)),
    };
    let key = format!("{}=", knob.property());
    Ok(text
        .lines()
        .filter_map(|l| l.trim().strip_prefix(&key))
        .next_back()
        .map(|v| v.trim().to_owned()))
}

/// berth's `DeviceAllow=` drop-in of `unit`, if present.
pub fn read_device_dropin(host: &dyn Host, unit: &str) -> Result<Option<String>, EngineError> {
    let path = dropin_dir(host, unit).join(DEVICE_DROPIN);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EngineError::io(format!("reading {}", path.display()), e)),
    }
}

/// berth's `DeviceAllow=` drop-in for machine `name` allowing `rules`.
pub fn render_device_dropin(name: &str, rules: &[DeviceRule]) -> String {
    let mut out = format!(
        "{HEADER} for machine {name:?}: the devices of its spec. `berth apply` rewrites this \
         file and `berth destroy` removes it.\n[Service]\n"
    );
    for rule in rules {
        let _ = writeln!(out, "DeviceAllow={rule}");
    }
    out
}

/// The entries of a `DeviceAllow=` drop-in.
pub fn parse_device_dropin(text: &str) -> Vec<DeviceRule> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("DeviceAllow="))
        .filter_map(|v| {
            let (path, access) = v.trim().rsplit_once(' ')?;
            Some(DeviceRule {
                path: path.trim().trim_matches('"').to_owned(),
                access: access.trim().to_owned(),
            })
        })
        .collect()
}

/// Runs `cmd`, an error with its output unless it succeeds.
fn run_ok(host: &dyn Host, cmd: Cmd) -> Result<String, EngineError> {
    let out = host.run(&cmd)?;
    if out.success() {
        Ok(out.stdout_text())
    } else {
        Err(EngineError::Command {
            what: cmd.display(),
            output: out.stderr_text(),
            status: out.status,
        })
    }
}

/// `systemctl set-property [--runtime] UNIT PROPERTY=VALUE...`.
pub fn set_property(
    host: &dyn Host,
    unit: &str,
    properties: &[String],
    runtime: bool,
) -> Result<(), EngineError> {
    let mut argv = vec!["systemctl".to_owned(), "set-property".to_owned()];
    if runtime {
        argv.push("--runtime".to_owned());
    }
    argv.push("--".to_owned());
    argv.push(unit.to_owned());
    argv.extend(properties.iter().cloned());
    run_ok(host, Cmd::new(argv)).map(|_| ())
}

/// `systemctl daemon-reload`: systemd reads the drop-ins again and applies
/// every unit's cgroup settings again, running units' included.
pub fn daemon_reload(host: &dyn Host) -> Result<(), EngineError> {
    run_ok(host, Cmd::new(["systemctl", "daemon-reload"])).map(|_| ())
}

/// `systemctl set-property` arguments for limits.
pub fn properties<'a>(limits: impl IntoIterator<Item = (&'a Knob, &'a Value)>) -> Vec<String> {
    limits
        .into_iter()
        .map(|(knob, value)| property(*knob, value))
        .collect()
}

/// The cgroup of a running unit (`ControlGroup=`), if it has one.
pub fn control_group(host: &dyn Host, unit: &str) -> Option<String> {
    let out = host
        .run(
            &Cmd::new([
                "systemctl",
                "show",
                "--property=ControlGroup",
                "--value",
                "--",
                unit,
            ])
            .quiet(),
        )
        .ok()?;
    let path = out.stdout_text();
    (out.success() && path.starts_with('/')).then_some(path)
}

/// The unit machined runs machine `name` in (`machine-NAME.scope` for a
/// plain systemd-nspawn), while it is registered.
pub fn machine_unit(host: &dyn Host, name: &str) -> Option<String> {
    let out = host
        .run(
            &Cmd::new([
                "machinectl",
                "show",
                "--property=Unit",
                "--value",
                "--",
                name,
            ])
            .quiet(),
        )
        .ok()?;
    let unit = out.stdout_text();
    (out.success() && !unit.is_empty()).then_some(unit)
}

/// Removes the drop-ins of `unit` that berth wrote: those of the
/// properties of `knobs` (berth's record says it set them) and berth's
/// `DeviceAllow=` drop-in; then the directory if it is empty. Returns
/// whether anything was removed (systemd then needs a reload).
pub fn remove_dropins(
    host: &dyn Host,
    unit: &str,
    knobs: impl IntoIterator<Item = Knob>,
) -> Result<bool, EngineError> {
    let dir = dropin_dir(host, unit);
    let mut files: Vec<PathBuf> = knobs
        .into_iter()
        .map(|k| dropin_file(host, unit, k))
        .collect();
    let devices = dir.join(DEVICE_DROPIN);
    if fs::read_to_string(&devices).is_ok_and(|t| t.starts_with(HEADER)) {
        files.push(devices);
    }
    let mut removed = false;
    for file in files {
        match fs::remove_file(&file) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(EngineError::io(format!("removing {}", file.display()), e)),
        }
    }
    remove_if_empty(&dir);
    Ok(removed)
}

/// Removes `dir` if it exists and is empty (best effort).
pub fn remove_if_empty(dir: &Path) {
    if fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none()) {
        let _ = fs::remove_dir(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_dropin_round_trips() {
        let rules = vec![
            DeviceRule {
                path: "/dev/fuse".into(),
                access: "rwm".into(),
            },
            DeviceRule {
                path: "/dev/kvm".into(),
                access: "rw".into(),
            },
        ];
        let text = render_device_dropin("web", &rules);
        assert!(text.starts_with(HEADER), "{text}");
        assert!(
            text.ends_with("[Service]\nDeviceAllow=/dev/fuse rwm\nDeviceAllow=/dev/kvm rw\n"),
            "{text}"
        );
        assert_eq!(parse_device_dropin(&text), rules);
    }
}
