//! systemd credentials handed to a machine (`credentials:`).
//!
//! systemd-nspawn passes credentials to the container's init
//! (`--load-credential=ID:PATH`); the guest's systemd exposes them under
//! `/run/credentials/@system/` and hands them to services that ask with
//! `LoadCredential=ID` (`$CREDENTIALS_DIRECTORY`). systemd-nspawn reads the
//! file once, when it parses its command line: a credential changed later
//! reaches the guest only at its next start (checked against systemd 252,
//! `src/nspawn/nspawn.c`, and on this host: the file changed or removed after
//! the start leaves the guest's copy as it was).
//!
//! Where the values live: `CREDENTIALS_DIR/NAME/ID` (default
//! `/run/berth/credentials`), a directory of mode 0700 holding files of
//! mode 0400, on a tmpfs (berth mounts one there when `/run` is not one):
//! outside the machine's root, outside berth's state dir, never on a disk.
//! - The nspawn launcher passes `--load-credential=ID:CREDENTIALS_DIR/NAME/ID`.
//! - The unit launchers get a runtime drop-in for `systemd-nspawn@NAME.service`
//!   ([`DROPIN`] in `/run/systemd/system/UNIT.d/`): `LoadCredential=ID:PATH`
//!   for each (the service manager reads them into the service's own
//!   `$CREDENTIALS_DIRECTORY`) and the unit's own `ExecStart=`, read from
//!   this host's unit files, with `--load-credential=ID:ID` appended (a
//!   relative path is taken from that directory). It is a runtime drop-in
//!   because the values are runtime files: after a host reboot both are gone
//!   together, an autostarted machine boots without its credentials, and the
//!   next plan says so and restarts it.
//!
//! No value is ever in the plan, berth's records or logs, a command line or
//! an environment: observation keeps only a digest keyed with a random key
//! that lives in this process's memory ([`Digest`]), compared with the
//! digest of the value resolved from the spec's source.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use berth_schema::{Launcher, Machine, SecretSource};
use sha2::{Digest as _, Sha256};

use crate::confined::owned::GuestView;
use crate::drivers::launcher::unit_name;
use crate::error::EngineError;
use crate::host::{Cmd, Host, process};
use crate::model::observed::RunState;

/// Where a running guest's systemd exposes its system credentials.
pub const SYSTEM_DIR: &str = "/run/credentials/@system";
/// The largest credential systemd takes (`CREDENTIAL_SIZE_MAX`, 1 MiB).
pub const MAX_SIZE: u64 = 1024 * 1024;
/// The file name of berth's drop-in for `systemd-nspawn@NAME.service`:
/// after `override.conf` and the `50-*.conf` of `set-property`, so its
/// `ExecStart=` is the one that counts.
pub const DROPIN: &str = "zz-berth-credentials.conf";
/// How berth's drop-ins begin.
pub const HEADER: &str = "# Written by berth";

/// A credential's value, read from its source. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Value(Vec<u8>);

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Value(<sensitive>)")
    }
}

impl Value {
    /// A value of these bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Value(bytes)
    }

    /// Its keyed digest.
    pub fn digest(&self) -> Digest {
        digest(&self.0)
    }
}

/// SHA-256 of a value under a random key made once per berth process and
/// never stored: equal values have equal digests within one run, and a
/// digest says nothing outside it. `Debug` shows none of it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest([u8; 32]);

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<sensitive>")
    }
}

/// The process's digest key: 32 bytes from the kernel's random source.
fn key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        let mut filled = 0;
        while filled < key.len() {
            // SAFETY: the pointer and length describe the unfilled tail of `key`.
            let n = unsafe {
                libc::getrandom(key[filled..].as_mut_ptr().cast(), key.len() - filled, 0)
            };
            if n > 0 {
                filled += n as usize;
            } else if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                // No random source: a key from what this process has (still
                // never stored; only the comparison needs it).
                let fallback = std::collections::hash_map::RandomState::new();
                use std::hash::BuildHasher;
                for (i, chunk) in key.chunks_mut(8).enumerate() {
                    chunk.copy_from_slice(&fallback.hash_one(i).to_le_bytes());
                }
                break;
            }
        }
        key
    })
}

fn digest(bytes: &[u8]) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(key());
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
    Digest(hasher.finalize().into())
}

/// Whether `name` is a credential name berth passes on: 1–255 of
/// letters, digits, `.`, `_` and `-`, not `.` or `..` (no `:`, `/`, `%`
/// or space, which the command line and the drop-in would take apart).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Reads every credential's value from its source now (never stored).
/// Errors name the credential and its source, never the value.
pub fn resolve(machine: &Machine) -> Result<BTreeMap<String, Value>, EngineError> {
    let mut values = BTreeMap::new();
    for credential in &machine.credentials {
        let fail = |what: String| EngineError::Plan {
            machine: machine.name.clone(),
            message: format!("credentials.{}: {what}", credential.name),
        };
        let bytes = match &credential.source {
            SecretSource::Env(var) => match crate::secret::env_value(var) {
                Some(value) => std::os::unix::ffi::OsStringExt::into_vec(value),
                None => return Err(fail(format!("environment variable {var} is not set"))),
            },
            SecretSource::File(path) => {
                let meta = fs::metadata(path)
                    .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
                if !meta.is_file() {
                    return Err(fail(format!("{} is not a regular file", path.display())));
                }
                if meta.len() > MAX_SIZE {
                    return Err(fail(format!(
                        "{} is larger than systemd's limit for a credential ({MAX_SIZE} bytes)",
                        path.display()
                    )));
                }
                fs::read(path).map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?
            }
        };
        if bytes.is_empty() {
            return Err(fail(format!(
                "{} is empty",
                describe_source(&credential.source)
            )));
        }
        if bytes.len() as u64 > MAX_SIZE {
            return Err(fail(format!(
                "{} is larger than systemd's limit for a credential ({MAX_SIZE} bytes)",
                describe_source(&credential.source)
            )));
        }
        values.insert(credential.name.clone(), Value(bytes));
    }
    Ok(values)
}

fn describe_source(source: &SecretSource) -> String {
    match source {
        SecretSource::Env(var) => format!("environment variable {var}"),
        SecretSource::File(path) => format!("file {}", path.display()),
    }
}

/// What berth found of a machine's credentials.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CredentialsObservation {
    /// The machine's directory of values on the host (`/run/berth/credentials/NAME`).
    pub dir: String,
    /// The values there, by credential name (digests only).
    pub host: BTreeMap<String, Digest>,
    /// The running guest's system credentials that the spec names or that
    /// berth wrote before, by name (digests only); None when the machine
    /// does not run as berth started it or its credentials cannot be read.
    pub guest: Option<BTreeMap<String, Digest>>,
    /// berth's drop-in for the unit launchers (None: the machine's
    /// launcher is the plain nspawn one, or the host has no systemd).
    pub dropin: Option<DropInObservation>,
}

/// berth's drop-in for `systemd-nspawn@NAME.service` and what it builds on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropInObservation {
    /// The drop-in file.
    pub path: String,
    /// Its contents (None: absent).
    pub current: Option<String>,
    /// The unit's own `ExecStart=` command line on this host (its unit file
    /// and drop-ins, berth's left out), or why it cannot be read.
    pub exec_start: Result<String, String>,
}

/// The directory of machine `name`'s credential values on the host.
pub fn machine_dir(host: &dyn Host, name: &str) -> PathBuf {
    host.credentials_dir().join(name)
}

/// The path of berth's drop-in for machine `name`.
pub fn dropin_path(host: &dyn Host, name: &str) -> PathBuf {
    host.runtime_unit_dir()
        .join(format!("{}.d", unit_name(name)))
        .join(DROPIN)
}

/// Observes machine `name`'s credentials: the values berth keeps on the
/// host, what the running guest has, and (unit launchers) berth's drop-in.
/// Reads nothing for a machine without credentials that berth never gave any.
pub fn observe(
    host: &dyn Host,
    machine: &Machine,
    run: &RunState,
    launcher: Option<Launcher>,
) -> Result<CredentialsObservation, EngineError> {
    let name = &machine.name;
    let dir = machine_dir(host, name);
    let dropin = dropin_path(host, name);
    let unit_launcher = matches!(launcher, Some(Launcher::Machinectl | Launcher::NspawnUnit))
        && host.booted_with_systemd();
    let mut seen = CredentialsObservation {
        dir: dir.display().to_string(),
        ..Default::default()
    };
    if machine.credentials.is_empty() && !dir.exists() && !dropin.exists() {
        return Ok(seen);
    }
    let read_err =
        |path: &Path, e: io::Error| EngineError::io(format!("reading {}", path.display()), e);
    match fs::read_dir(&dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.map_err(|e| read_err(&dir, e))?;
                let file = entry.path();
                let Some(id) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if !valid_name(&id) || !entry.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                let bytes = fs::read(&file).map_err(|e| read_err(&file, e))?;
                seen.host.insert(id, digest(&bytes));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(read_err(&dir, e)),
    }
    if let RunState::Running { pid, .. } = run
        && let Some(leader) = process::namespace_init_child(host, *pid)
    {
        seen.guest = read_guest(host, leader, machine, &seen.host);
    }
    if unit_launcher {
        let current = match fs::read_to_string(&dropin) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(read_err(&dropin, e)),
        };
        let exec_start = if machine.credentials.is_empty() {
            Err("not needed".to_owned())
        } else {
            unit_exec_start(host, name)
        };
        seen.dropin = Some(DropInObservation {
            path: dropin.display().to_string(),
            current,
            exec_start,
        });
    }
    Ok(seen)
}

/// The digests of the running guest's credentials the spec names or berth
/// wrote before; None if its credentials directory cannot be read.
fn read_guest(
    host: &dyn Host,
    leader: i32,
    machine: &Machine,
    written: &BTreeMap<String, Digest>,
) -> Option<BTreeMap<String, Digest>> {
    let view = GuestView::open(&host.proc_dir().join(leader.to_string()).join("root")).ok()?;
    let names = view.list_dir(SYSTEM_DIR).ok()?.unwrap_or_default();
    let wanted: Vec<&str> = machine
        .credentials
        .iter()
        .map(|c| c.name.as_str())
        .chain(written.keys().map(String::as_str))
        .collect();
    let mut found = BTreeMap::new();
    for id in names.iter().filter(|n| wanted.contains(&n.as_str())) {
        if let Ok(Some(bytes)) = view.read(&format!("{SYSTEM_DIR}/{id}"), MAX_SIZE) {
            found.insert(id.clone(), digest(&bytes));
        }
    }
    Some(found)
}

/// The `ExecStart=` command line of `systemd-nspawn@NAME.service` on this
/// host without berth's drop-in: its unit file, then its drop-ins in the
/// order systemd applies them (an empty `ExecStart=` resets).
fn unit_exec_start(host: &dyn Host, name: &str) -> Result<String, String> {
    let unit = unit_name(name);
    let out = host
        .run(&Cmd::new([
            "systemctl".to_owned(),
            "show".into(),
            "--property=FragmentPath".into(),
            "--property=DropInPaths".into(),
            "--".into(),
            unit.clone(),
        ]))
        .map_err(|e| format!("systemctl show {unit}: {e}"))?;
    if !out.success() {
        return Err(format!("systemctl show {unit}: {}", out.stderr_text()));
    }
    let text = out.stdout_text();
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    let fragment = value("FragmentPath=");
    if fragment.is_empty() {
        return Err(format!(
            "{unit} has no unit file on this host (is systemd-container installed?)"
        ));
    }
    let mut files = vec![fragment];
    files.extend(
        value("DropInPaths=")
            .split_whitespace()
            .filter(|p| !p.ends_with(&format!("/{DROPIN}")))
            .map(str::to_owned),
    );
    let mut texts = Vec::new();
    for file in &files {
        texts.push(fs::read_to_string(file).map_err(|e| format!("reading {file}: {e}"))?);
    }
    exec_start_of(texts.iter().map(String::as_str))
        .ok_or_else(|| format!("{unit} has no ExecStart= in {}", files.join(", ")))
}

/// The `ExecStart=` that counts in unit files applied in order: the last
/// one set after the last reset, continuation lines joined.
pub fn exec_start_of<'a>(files: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut exec = None;
    for text in files {
        let mut section = String::new();
        let mut pending = String::new();
        for raw in text.lines() {
            let line = raw.trim();
            if pending.is_empty() && (line.starts_with('#') || line.starts_with(';')) {
                continue;
            }
            if let Some(body) = line.strip_suffix('\\') {
                pending.push_str(body.trim_end());
                pending.push(' ');
                continue;
            }
            let line = format!("{pending}{line}");
            pending.clear();
            if line.starts_with('[') {
                section = line.trim().to_owned();
                continue;
            }
            if section != "[Service]" {
                continue;
            }
            if let Some((key, value)) = line.split_once('=')
                && key.trim() == "ExecStart"
            {
                let value = value.trim();
                exec = (!value.is_empty()).then(|| value.to_owned());
            }
        }
    }
    exec
}

/// berth's drop-in for machine `name` with credentials `ids`, on top of
/// the unit's own `exec_start`.
pub fn render_dropin(name: &str, dir: &str, ids: &[String], exec_start: &str) -> String {
    let mut out = format!(
        "{HEADER}: the credentials of machine {name}, read from {dir} at every start.\n\
         # No value is in this file. Removed by `berth destroy {name}`.\n[Service]\n"
    );
    for id in ids {
        out.push_str(&format!("LoadCredential={id}:{dir}/{id}\n"));
    }
    out.push_str("ExecStart=\nExecStart=");
    out.push_str(exec_start);
    for id in ids {
        out.push_str(&format!(" --load-credential={id}:{id}"));
    }
    out.push('\n');
    out
}

/// The systemd-nspawn options that pass machine `name`'s credentials
/// (the nspawn launcher): `--load-credential=ID:CREDENTIALS_DIR/NAME/ID`.
pub fn nspawn_options(host: &dyn Host, machine: &Machine) -> Vec<String> {
    let dir = machine_dir(host, &machine.name);
    machine
        .credentials
        .iter()
        .map(|c| {
            format!(
                "--load-credential={}:{}",
                c.name,
                dir.join(&c.name).display()
            )
        })
        .collect()
}

/// Writes the values of credentials `write` (resolved from the spec now)
/// into the machine's directory and removes `remove` from it.
pub fn write_values(
    host: &dyn Host,
    machine: &Machine,
    write: &[String],
    remove: &[String],
) -> Result<(), EngineError> {
    let top = host.credentials_dir();
    let dir = machine_dir(host, &machine.name);
    let io_err = |what: &str, path: &Path, e: io::Error| {
        EngineError::io(format!("{what} {}", path.display()), e)
    };
    if !write.is_empty() {
        let values = resolve(machine)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&top)
            .map_err(|e| io_err("creating", &top, e))?;
        host.ensure_tmpfs(&top)?;
        make_private_dir(&dir).map_err(|e| io_err("creating", &dir, e))?;
        for id in write {
            let value = values.get(id).ok_or_else(|| EngineError::Plan {
                machine: machine.name.clone(),
                message: format!("credentials.{id}: not in the spec"),
            })?;
            let path = dir.join(id);
            // `~` is in no credential name: a temp file is never one.
            let tmp = dir.join(format!("{id}~berth-tmp"));
            let _ = fs::remove_file(&tmp);
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o400)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)
                .map_err(|e| io_err("creating", &tmp, e))?;
            file.write_all(&value.0)
                .and_then(|()| file.sync_all())
                .map_err(|e| io_err("writing", &tmp, e))?;
            drop(file);
            fs::rename(&tmp, &path).map_err(|e| io_err("renaming into", &path, e))?;
        }
    }
    for id in remove {
        let path = dir.join(id);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("removing", &path, e)),
        }
    }
    if machine.credentials.is_empty() {
        let _ = fs::remove_dir(&dir);
    }
    Ok(())
}

/// `dir` as a directory of mode 0700 (made, or a real one found; a
/// symlink there is refused).
fn make_private_dir(dir: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "it exists and is not a directory",
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new().mode(0o700).create(dir)?;
        }
        Err(e) => return Err(e),
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Writes (or, `after` None, removes) berth's drop-in, then reloads systemd.
pub fn write_dropin(host: &dyn Host, name: &str, after: Option<&str>) -> Result<(), EngineError> {
    let path = dropin_path(host, name);
    match after {
        Some(text) => {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)
                    .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
            }
            crate::host::state::write_file_atomic(&path, text.as_bytes())
                .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))?;
        }
        None => {
            remove_dropin_file(&path)?;
        }
    }
    crate::drivers::resources::systemd::daemon_reload(host)
}

fn remove_dropin_file(path: &Path) -> Result<bool, EngineError> {
    match fs::read_to_string(path) {
        Ok(text) if text.starts_with(HEADER) => {
            fs::remove_file(path)
                .map_err(|e| EngineError::io(format!("removing {}", path.display()), e))?;
            if let Some(dir) = path.parent() {
                let _ = fs::remove_dir(dir);
            }
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(EngineError::io(format!("reading {}", path.display()), e)),
    }
}

/// On destroy: the machine's values and berth's drop-in go (systemd is
/// reloaded when the drop-in was there).
pub fn teardown(host: &dyn Host, name: &str) -> Result<(), EngineError> {
    let dir = machine_dir(host, name);
    match fs::symlink_metadata(&dir) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(&dir)
            .map_err(|e| EngineError::io(format!("removing {}", dir.display()), e))?,
        Ok(_) => {}
        Err(_) => {}
    }
    if remove_dropin_file(&dropin_path(host, name))? && host.booted_with_systemd() {
        crate::drivers::resources::systemd::daemon_reload(host)?;
    }
    release_tmpfs(host, &host.credentials_dir())
}

/// The source name of the tmpfs berth mounts for credential values.
const TMPFS_SOURCE: &str = "berth-credentials";

/// Unmounts the tmpfs berth mounted at `top` once no machine's values are
/// left in it (berth leaves no mount behind it does not need), and removes
/// the then empty directory. A tmpfs berth did not mount is left alone.
fn release_tmpfs(host: &dyn Host, top: &Path) -> Result<(), EngineError> {
    let empty = match fs::read_dir(top) {
        Ok(mut entries) => entries.next().is_none(),
        Err(_) => return Ok(()),
    };
    if !empty {
        return Ok(());
    }
    let mountinfo = fs::read_to_string(host.proc_dir().join("self/mountinfo")).unwrap_or_default();
    let ours = mountinfo.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let source = line
            .split(" - ")
            .nth(1)
            .and_then(|rest| rest.split(' ').nth(1));
        fields.get(4).is_some_and(|m| Path::new(m) == top) && source == Some(TMPFS_SOURCE)
    });
    if ours {
        let cmd = Cmd::new(["umount".to_owned(), top.display().to_string()]);
        let out = host.run(&cmd)?;
        if !out.success() {
            return Err(EngineError::Command {
                what: cmd.display(),
                output: out.stderr_text(),
                status: out.status,
            });
        }
    }
    // Empty now: nothing of berth's is left in it.
    let _ = fs::remove_dir(top);
    if let Some(parent) = top.parent() {
        let _ = fs::remove_dir(parent);
    }
    Ok(())
}

/// Mounts a tmpfs (mode 0700) at `dir` unless it already is on a tmpfs or
/// ramfs, so credential values never reach a disk.
pub fn ensure_tmpfs(host: &dyn Host, dir: &Path) -> Result<(), EngineError> {
    use nix::sys::statfs::{FsType, TMPFS_MAGIC, statfs};
    /// `RAMFS_MAGIC` (linux/magic.h), which nix does not name.
    const RAMFS_MAGIC: FsType = FsType(0x8584_58f6);
    let fs_type = statfs(dir)
        .map_err(|e| EngineError::io(format!("statfs {}", dir.display()), e.into()))?
        .filesystem_type();
    if fs_type == TMPFS_MAGIC || fs_type == RAMFS_MAGIC {
        return Ok(());
    }
    let cmd = Cmd::new([
        "mount".to_owned(),
        "-t".into(),
        "tmpfs".into(),
        "-o".into(),
        "mode=0700,nosuid,nodev,noexec,size=64m".into(),
        TMPFS_SOURCE.into(),
        dir.display().to_string(),
    ]);
    let out = host.run(&cmd)?;
    if out.success() {
        Ok(())
    } else {
        Err(EngineError::Command {
            what: cmd.display(),
            output: out.stderr_text(),
            status: out.status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_compare_values_without_showing_them() {
        let a = Value(b"s3cret".to_vec());
        assert_eq!(a.digest(), digest(b"s3cret"));
        assert_ne!(a.digest(), digest(b"other"));
        assert_eq!(
            format!("{a:?} {:?}", a.digest()),
            "Value(<sensitive>) <sensitive>"
        );
    }

    #[test]
    fn names_that_would_break_a_command_line_are_refused() {
        for good in ["db-password", "api.token", "a_1", "_x", ".hidden"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", ".", "..", "a:b", "a/b", "a b", "%i", "a\nb", "a~b"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_units_exec_start_is_the_last_after_resets_with_continuations() {
        let unit = "[Unit]\nDescription=x\n[Service]\n# ExecStart=commented\n\
                    ExecStart=systemd-nspawn --quiet --keep-unit --boot \\\n  --machine=%i\nKillMode=mixed\n";
        assert_eq!(
            exec_start_of([unit]).as_deref(),
            Some("systemd-nspawn --quiet --keep-unit --boot --machine=%i")
        );
        let reset = "[Service]\nExecStart=\nExecStart=/usr/bin/systemd-nspawn -b -M %i\n";
        assert_eq!(
            exec_start_of([unit, reset]).as_deref(),
            Some("/usr/bin/systemd-nspawn -b -M %i")
        );
        assert_eq!(exec_start_of([unit, "[Service]\nExecStart=\n"]), None);
        assert_eq!(exec_start_of(["[Unit]\nExecStart=x\n"]), None);
    }

    #[test]
    fn the_dropin_loads_each_credential_and_passes_it_on() {
        let text = render_dropin(
            "web",
            "/run/berth/credentials/web",
            &["db".into(), "api".into()],
            "systemd-nspawn --boot --machine=%i",
        );
        assert!(text.starts_with(HEADER), "{text}");
        assert!(
            text.contains("LoadCredential=db:/run/berth/credentials/web/db\n"),
            "{text}"
        );
        assert!(text.contains(
            "ExecStart=\nExecStart=systemd-nspawn --boot --machine=%i --load-credential=db:db --load-credential=api:api\n"
        ), "{text}");
    }

    /// Apply, a changed value and destroy on the fake host (no root needed).
    #[test]
    fn values_reach_nspawn_by_path_a_changed_one_restarts_and_destroy_removes_them() {
        use std::os::unix::fs::PermissionsExt;
        use std::sync::Arc;

        use crate::engine::Engine;
        use crate::host::fake::FakeHost;
        use crate::model::action::Action;
        use crate::report::Silent;

        let fake = Arc::new(FakeHost::new(false));
        let engine = Engine::on(fake.clone());
        let secret_file = fake.top().join("db.secret");
        fs::write(&secret_file, b"first-value").unwrap();
        let mut m = crate::testing::web();
        // The spec sits next to its secret file (a spec reads files only
        // from its own directory or git work tree).
        m.source.file = fake.top().join("machines.yaml");
        m.credentials = vec![berth_schema::Credential {
            name: "db".into(),
            source: SecretSource::File(secret_file.clone()),
        }];
        let plan = engine.plan([&m]).expect("plan");
        engine
            .apply_machine(&m, &plan.machines[0], false, &Silent)
            .expect("apply");
        let dir = fake.top().join("credentials/web");
        let value = dir.join("db");
        assert_eq!(fs::read(&value).unwrap(), b"first-value");
        assert_eq!(
            fs::metadata(&value).unwrap().permissions().mode() & 0o777,
            0o400
        );
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let lines = fake.lines();
        let start = lines
            .iter()
            .find(|l| l.starts_with("systemd-nspawn --quiet --boot"))
            .expect("a start");
        assert!(
            start.contains(&format!("--load-credential=db:{}", value.display())),
            "{start}"
        );
        assert!(
            !lines.iter().any(|l| l.contains("first-value")),
            "{lines:#?}"
        );

        // The running guest has the first value; the spec's source changes.
        let record = fake.state().load("web").unwrap().unwrap();
        let leader = record.launch.unwrap().pid + 1;
        let creds = fake
            .proc_dir()
            .join(format!("{leader}/root/run/credentials/@system"));
        fs::create_dir_all(&creds).unwrap();
        fs::write(creds.join("db"), b"first-value").unwrap();
        // (The fake's systemctl changes no unit: those actions stay.)
        let ours =
            |a: &&Action| matches!(a, Action::WriteCredentials { .. } | Action::Restart { .. });
        let plan = engine.plan([&m]).expect("plan");
        assert!(
            !plan.machines[0].actions.iter().any(|a| ours(&a)),
            "{:?}",
            plan.machines[0].actions
        );
        fs::write(&secret_file, b"second-value").unwrap();
        let plan = engine.plan([&m]).expect("plan");
        let described: Vec<String> = plan.machines[0]
            .actions
            .iter()
            .filter(ours)
            .map(Action::describe)
            .collect();
        assert_eq!(
            described,
            [
                format!(
                    "hand credential db to the machine (sensitive; values in {})",
                    dir.display()
                ),
                "restart machine: credential db changed; nspawn reads credentials at start (nspawn)"
                    .to_owned(),
            ]
        );
        engine
            .apply_machine(&m, &plan.machines[0], false, &Silent)
            .expect("apply");
        assert_eq!(fs::read(&value).unwrap(), b"second-value");

        engine.destroy("web", &Silent).expect("destroy");
        assert!(!dir.exists());
    }
}
