//! Units inside a machine root: whether a unit file exists (read natively,
//! confined to the root) and its enablement as `systemctl --root` reports it.

use std::path::Path;

use crate::confined::{FileKind, Root};
use crate::error::EngineError;
use crate::host::{Cmd, Host};

/// Directories systemd loads unit files from, in a root.
pub(crate) const UNIT_DIRS: &[&str] = &[
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

/// The enablement of `unit`, read natively from the root's unit files and
/// links (no subprocess), the way `systemctl --root is-enabled` decides it
/// for the states berth manages: `masked` (a link to /dev/null in
/// /etc/systemd/system), `enabled` (a link to it, or to its template, in a
/// `.wants`/`.requires`/`.upholds` dir of /etc/systemd/system, or an alias
/// link), `static` (no `[Install]` section), `indirect` (only `Also=`),
/// `disabled` otherwise; `not-found` without a unit file. Runtime states
/// under /run are not persistent and so not reported.
pub fn native_state(root: &Root, unit: &str) -> Result<UnitState, EngineError> {
    let config = "/etc/systemd/system";
    let template = template_of(unit);
    let mut fragment = None;
    'search: for dir in UNIT_DIRS {
        for name in std::iter::once(unit).chain(template.as_deref()) {
            let path = format!("{dir}/{name}");
            // The first file of that name decides: a link to /dev/null (or
            // an empty file) there is a mask, wherever it is (vendors mask
            // units in /usr/lib/systemd/system too).
            if let Some(target) = root.read_link(&path)?
                && target == Path::new("/dev/null")
            {
                return Ok(if *dir == "/run/systemd/system" {
                    UnitState::Other("masked-runtime".into())
                } else {
                    UnitState::Masked
                });
            }
            if let Some(text) = read_unit_file(root, &path)? {
                fragment = Some(text);
                break 'search;
            }
        }
    }
    let Some(text) = fragment else {
        return Ok(UnitState::NotFound);
    };
    let install = InstallSection::parse(&text);
    let is_template = unit.contains("@.");
    let wanted_names: Vec<String> = if is_template {
        Vec::new()
    } else {
        vec![unit.to_owned()]
    };
    // Links in any .wants/.requires/.upholds directory of the config dir.
    for dir in root.list_dir(config)?.unwrap_or_default() {
        if ![".wants", ".requires", ".upholds"]
            .iter()
            .any(|s| dir.ends_with(s))
        {
            continue;
        }
        for link in root
            .list_dir(&format!("{config}/{dir}"))?
            .unwrap_or_default()
        {
            let matches = wanted_names.contains(&link)
                || (is_template && template_of(&link).as_deref() == Some(unit));
            if matches {
                return Ok(UnitState::Enabled);
            }
        }
    }
    for alias in &install.alias {
        if root.kind(&format!("{config}/{alias}"))? == Some(FileKind::Symlink) {
            return Ok(UnitState::Enabled);
        }
    }
    Ok(if install.is_empty() {
        UnitState::Other("static".into())
    } else if install.wanted_by.is_empty() && install.alias.is_empty() && !install.also.is_empty() {
        UnitState::Other("indirect".into())
    } else {
        UnitState::Disabled
    })
}

/// A unit file's contents, None if absent, a /dev/null link or empty (a mask).
fn read_unit_file(root: &Root, path: &str) -> Result<Option<String>, EngineError> {
    if let Some(target) = root.read_link(path)?
        && target == Path::new("/dev/null")
    {
        return Ok(None);
    }
    match root.read_string(path) {
        Ok(Some(text)) if !text.trim().is_empty() => Ok(Some(text)),
        Ok(_) => Ok(None),
        // A directory or a device where a unit file would be: not a unit.
        Err(crate::confined::ConfinedError::NotAFile { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The `[Install]` section of a unit file.
#[derive(Debug, Default, PartialEq, Eq)]
struct InstallSection {
    wanted_by: Vec<String>,
    alias: Vec<String>,
    also: Vec<String>,
}

impl InstallSection {
    fn parse(text: &str) -> Self {
        let mut out = InstallSection::default();
        let mut in_install = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_install = line == "[Install]";
                continue;
            }
            if !in_install || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let list = match key.trim() {
                "WantedBy" | "RequiredBy" | "UpheldBy" => &mut out.wanted_by,
                "Alias" => &mut out.alias,
                "Also" => &mut out.also,
                _ => continue,
            };
            list.extend(value.split_whitespace().map(str::to_owned));
        }
        out
    }

    fn is_empty(&self) -> bool {
        self.wanted_by.is_empty() && self.alias.is_empty() && self.also.is_empty()
    }
}

/// The enablement of each of `units` (which must exist) in the root at
/// `root_path`, read natively (see [`native_state`]).
pub fn states(root_path: &Path, units: &[&str]) -> Result<Vec<UnitState>, EngineError> {
    let root = Root::open(root_path)?;
    units.iter().map(|u| native_state(&root, u)).collect()
}

/// The same as [`states`], asked of `systemctl --root is-enabled` (the
/// reference the native reader is tested against).
pub fn systemctl_states(
    host: &dyn Host,
    root_path: &Path,
    units: &[&str],
) -> Result<Vec<UnitState>, EngineError> {
    if units.is_empty() {
        return Ok(Vec::new());
    }
    let output = host.run(&systemctl(root_path, ["is-enabled", "--"], units))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    if lines.len() == units.len() {
        return Ok(lines.into_iter().map(UnitState::parse).collect());
    }
    // systemctl stops at the first unit it cannot resolve; ask one by one.
    units
        .iter()
        .map(|unit| {
            let output = host.run(&systemctl(root_path, ["is-enabled", "--"], &[*unit]))?;
            let word = output.stdout_text();
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
pub fn change(
    host: &dyn Host,
    root_path: &Path,
    verb: &str,
    unit: &str,
) -> Result<(), EngineError> {
    refuse_links_systemctl_would_follow(&host.open_root(root_path)?)?;
    let output = host.run(&systemctl(root_path, [verb, "--"], &[unit]))?;
    if output.success() {
        Ok(())
    } else {
        Err(EngineError::Command {
            what: format!("systemctl --root={} {verb} {unit}", root_path.display()),
            output: output.stderr_text(),
            status: output.status,
        })
    }
}

/// `systemctl --root` resolves unit files inside the root, but creates and
/// removes links by plain host paths: a symlinked `/etc`, `/etc/systemd`,
/// `/etc/systemd/system` or `*.wants`/`*.requires`/`*.upholds`/`*.d` dir there
/// would make it write outside the root (proved in tests/hostile.rs). Such a
/// root is refused before systemctl runs.
fn refuse_links_systemctl_would_follow(root: &Root) -> Result<(), EngineError> {
    let refuse = |path: &str| EngineError::Command {
        what: format!("systemctl --root={}", root.path().display()),
        status: "not run".into(),
        output: format!(
            "{path} in the root is a symlink (or not a directory); systemctl would follow it \
             outside the root, so berth refuses to change units here"
        ),
    };
    for dir in ["/etc", "/etc/systemd", "/etc/systemd/system"] {
        match root.kind(dir)? {
            None | Some(crate::confined::FileKind::Dir) => {}
            Some(_) => return Err(refuse(dir)),
        }
    }
    for name in root.list_dir("/etc/systemd/system")?.unwrap_or_default() {
        let path = format!("/etc/systemd/system/{name}");
        let dir_like = [".wants", ".requires", ".upholds", ".d"]
            .iter()
            .any(|suffix| name.ends_with(suffix));
        if dir_like && root.kind(&path)? == Some(crate::confined::FileKind::Symlink) {
            return Err(refuse(&path));
        }
    }
    Ok(())
}

/// `systemctl --root=ROOT --no-pager ARGS... UNITS...`, with colour off.
fn systemctl(root_path: &Path, args: [&str; 2], units: &[&str]) -> Cmd {
    let mut argv = vec![
        "systemctl".to_owned(),
        format!("--root={}", root_path.display()),
        "--no-pager".to_owned(),
    ];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    argv.extend(units.iter().map(|u| (*u).to_owned()));
    Cmd::new(argv).env("SYSTEMD_LOG_COLOR", "0")
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
