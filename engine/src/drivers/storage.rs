//! Overlay storage (`storage: overlay`): a machine's root is an overlayfs
//! with its cached base read-only as the lower layer and
//! `MACHINES_DIR/.NAME.overlay/{upper,work}` as its own layer, mounted at
//! `MACHINES_DIR/NAME`, where machinectl and `systemd-nspawn@NAME.service`
//! look for the machine. Unmounted, `MACHINES_DIR/NAME` is an empty
//! directory: nothing may be written there, so every write path mounts first.
//!
//! - berth mounts the overlay before it works on the root (apply) and
//!   before every start, and unmounts it when apply leaves the machine
//!   stopped and on destroy or replacement.
//! - On hosts booted with systemd a mount unit for the root and a
//!   `RequiresMountsFor=` drop-in for `systemd-nspawn@NAME.service` make an
//!   autostarted machine's root mounted at boot, before the machine starts.
//! - Observation of a stopped, unmounted overlay machine mounts a read-only
//!   overlay of both layers (`lowerdir=UPPER:BASE`, no upper: nothing can be
//!   written) at the root path inside a private mount namespace of one
//!   thread, so no other process ever sees it and it vanishes with the
//!   thread, even if berth is killed; plan stays lock-free and concurrent
//!   plans and applies never unmount each other's mounts.
//!
//! Mounts go through the [`Host`] (`mount(2)` and `umount2(2)`, no
//! subprocess: observation stays free of them), and whether a root is
//! mounted is read from the host's `/proc/self/mountinfo`, so the fake host
//! of the unit tests can play the mounts.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use berth_schema::Storage;

use crate::drivers::cache::Cache;
use crate::error::EngineError;
use crate::host::paths::Paths;
use crate::host::state::MachineRecord;
use crate::host::{Cmd, Host};

/// The directories of one overlay machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layers {
    /// The cached base's root: the read-only lower layer.
    pub lower: PathBuf,
    /// The machine's own directory, `MACHINES_DIR/.NAME.overlay`.
    pub dir: PathBuf,
    /// Its upper layer (what the machine changed).
    pub upper: PathBuf,
    /// overlayfs's work directory (same filesystem as `upper`).
    pub work: PathBuf,
    /// Where the overlay is mounted: the machine root.
    pub root: PathBuf,
}

impl Layers {
    /// The layers of machine `name` over cached base `base`, under the
    /// machines and cache dirs with symlinks resolved: mountinfo and
    /// systemd's `Where=` name mount points by their real paths.
    pub fn of(paths: &Paths, name: &str, base: &str) -> Layers {
        let machines = real(&paths.machines_dir);
        let dir = machines.join(format!(".{name}.overlay"));
        Layers {
            lower: Cache::new(&real(&paths.cache_dir)).entry_root(base),
            upper: dir.join("upper"),
            work: dir.join("work"),
            root: machines.join(name),
            dir,
        }
    }

    /// The layers of the overlay machine `record` describes; None for a
    /// copied machine. An overlay record without a base is an error.
    pub fn of_record(paths: &Paths, record: &MachineRecord) -> Result<Option<Layers>, EngineError> {
        if record.storage != Storage::Overlay {
            return Ok(None);
        }
        let base = record.base.as_deref().ok_or_else(|| {
            EngineError::State(format!(
                "berth's record of {} says storage: overlay but names no base",
                record.name
            ))
        })?;
        Ok(Some(Layers::of(paths, &record.name, base)))
    }

    /// `lowerdir=...,upperdir=...,workdir=...` (read-write) for `mount -o`.
    fn options(&self) -> Result<String, EngineError> {
        Ok(format!(
            "lowerdir={},upperdir={},workdir={}",
            option_path(&self.lower)?,
            option_path(&self.upper)?,
            option_path(&self.work)?
        ))
    }

    /// A view of both layers (`lowerdir=UPPER:BASE`, mounted read-only): no
    /// upper and no work directory, so nothing can be written through it.
    fn view_options(&self) -> Result<String, EngineError> {
        Ok(format!(
            "lowerdir={}:{}",
            option_path(&self.upper)?,
            option_path(&self.lower)?
        ))
    }

    /// Why the layers cannot be mounted, if they cannot: a layer is missing.
    pub fn missing(&self) -> Option<String> {
        if !self.lower.is_dir() {
            return Some(format!(
                "its base {} (the overlay's lower layer) is missing",
                self.lower.display()
            ));
        }
        for dir in [&self.upper, &self.work] {
            if !fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
                return Some(format!(
                    "its overlay layer {} is missing or not a directory",
                    dir.display()
                ));
            }
        }
        None
    }
}

/// `MACHINES_DIR/.NAME.overlay`: hidden, so machinectl lists no image for it.
pub fn overlay_dir(paths: &Paths, name: &str) -> PathBuf {
    real(&paths.machines_dir).join(format!(".{name}.overlay"))
}

/// `dir` with symlinks resolved, when it exists.
fn real(dir: &Path) -> PathBuf {
    fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned())
}

/// `path` with symlinks in its parent resolved.
fn real_parent(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => real(parent).join(name),
        _ => path.to_owned(),
    }
}

/// A path for overlayfs options, which separate with `,` and `:`.
fn option_path(path: &Path) -> Result<String, EngineError> {
    let text = path
        .to_str()
        .ok_or_else(|| EngineError::State(format!("{} is not UTF-8", path.display())))?;
    if text.contains([',', ':', '\\']) || text.chars().any(char::is_whitespace) {
        return Err(EngineError::State(format!(
            "{text}: overlay storage needs paths without `,`, `:`, `\\` or spaces \
             (mount options cannot carry them); use storage: copy or other directories"
        )));
    }
    Ok(text.to_owned())
}

/// What is mounted at a machine root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mounted {
    /// Nothing.
    No,
    /// The machine's own overlay (read-write, its upper layer).
    Ours,
    /// Something else: berth leaves it alone.
    Other(String),
}

/// What is mounted at `layers.root`.
pub fn mounted(host: &dyn Host, layers: &Layers) -> Result<Mounted, EngineError> {
    let upper = format!("upperdir={}", layers.upper.display());
    Ok(match mount_on(host, &layers.root)? {
        None => Mounted::No,
        Some((fstype, options))
            if fstype == "overlay" && options.split(',').any(|o| o == upper) =>
        {
            Mounted::Ours
        }
        Some((fstype, _)) => Mounted::Other(fstype),
    })
}

/// The type and super options of the visible mount on `path` (the last one
/// in the host's mountinfo), if anything is mounted there.
fn mount_on(host: &dyn Host, path: &Path) -> Result<Option<(String, String)>, EngineError> {
    let info_path = host.proc_dir().join("self/mountinfo");
    let info = match fs::read(&info_path) {
        Ok(info) => info,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(EngineError::io(
                format!("reading {}", info_path.display()),
                e,
            ));
        }
    };
    let mut found = None;
    for line in info.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(point) = fields.get(4) else {
            continue;
        };
        let point = crate::confined::mounts::unescape(point.as_bytes());
        if Path::new(std::ffi::OsStr::from_bytes(&point)) != path {
            continue;
        }
        // After the optional fields: `-`, the type, the source, the super options.
        let mut rest = fields.iter().skip_while(|f| **f != "-").skip(1);
        let fstype = rest.next().copied().unwrap_or("").to_owned();
        let options = rest.nth(1).copied().unwrap_or("").to_owned();
        found = Some((fstype, options));
    }
    Ok(found)
}

/// Unmounts whatever an interrupted creation left mounted on `path`.
fn unmount_leftover(host: &dyn Host, path: &Path) -> Result<(), EngineError> {
    if mount_on(host, path)?.is_some() {
        host.unmount(path)?;
    }
    Ok(())
}

/// Makes the layers of a new overlay machine `name` over the base at
/// `lower`, in `staging` (`MACHINES_DIR/.NAME.berth-staging`, which must
/// not exist): an upper layer with the base root's mode and owner and a
/// fresh `/etc/machine-id` (written through the overlay, confined), and a
/// work dir; then renames it to `MACHINES_DIR/.NAME.overlay`. The caller
/// records the machine, then makes the mount point and mounts.
pub fn create_layers(
    host: &dyn Host,
    name: &str,
    lower: &Path,
    staging: &Path,
) -> Result<(), EngineError> {
    use std::os::unix::fs::MetadataExt;
    let paths = host.paths();
    let io_err =
        |what: &Path, e: io::Error| EngineError::io(format!("creating {}", what.display()), e);
    let staging = &real_parent(staging);
    // The machine has no root: a `.NAME.overlay` is a leftover of an
    // interrupted creation or replacement.
    discard_leftover(paths, name)?;
    let layers = Layers {
        lower: lower.to_owned(),
        dir: staging.to_owned(),
        upper: staging.join("upper"),
        work: staging.join("work"),
        root: staging.join("mnt"),
    };
    let made = (|| {
        fs::create_dir(staging).map_err(|e| io_err(staging, e))?;
        for dir in [&layers.upper, &layers.work, &layers.root] {
            fs::create_dir(dir).map_err(|e| io_err(dir, e))?;
        }
        let meta = fs::metadata(lower)
            .map_err(|e| EngineError::io(format!("inspecting {}", lower.display()), e))?;
        fs::set_permissions(&layers.upper, meta.permissions())
            .map_err(|e| io_err(&layers.upper, e))?;
        std::os::unix::fs::chown(&layers.upper, Some(meta.uid()), Some(meta.gid()))
            .map_err(|e| io_err(&layers.upper, e))?;
        ensure_mounted(host, &layers)?;
        let id = crate::drivers::staging::fresh_machine_id(&layers.root);
        let unmounted = unmount(host, &layers);
        id?;
        unmounted?;
        fs::remove_dir(&layers.root).map_err(|e| io_err(&layers.root, e))?;
        nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            staging,
            nix::fcntl::AT_FDCWD,
            &overlay_dir(paths, name),
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        )
        .map_err(|e| EngineError::io(format!("moving {} into place", staging.display()), e.into()))
    })();
    if made.is_err() {
        let _ = unmount_leftover(host, &layers.root);
        let _ = crate::drivers::staging::discard_staging(staging);
    }
    made
}

/// Unmounts what an interrupted overlay creation left mounted in the
/// staging dir `staging`, so it can be discarded.
pub fn release_staging(host: &dyn Host, staging: &Path) -> Result<(), EngineError> {
    unmount_leftover(host, &real_parent(staging).join("mnt"))
}

/// Mounts the machine's overlay at its root unless it is mounted already;
/// refuses when something else is mounted there or a layer is missing.
pub fn ensure_mounted(host: &dyn Host, layers: &Layers) -> Result<(), EngineError> {
    match mounted(host, layers)? {
        Mounted::Ours => return Ok(()),
        Mounted::Other(fstype) => {
            return Err(EngineError::State(format!(
                "{} has a {fstype} mount on it that is not this machine's overlay; unmount it first",
                layers.root.display()
            )));
        }
        Mounted::No => {}
    }
    if let Some(why) = layers.missing() {
        return Err(EngineError::State(format!(
            "cannot mount the overlay root {}: {why}",
            layers.root.display()
        )));
    }
    host.mount_overlay(&layers.options()?, false, &layers.root)
}

/// Unmounts the machine's overlay if it is mounted (retrying for a few
/// seconds while a stopping machine still holds it).
pub fn unmount(host: &dyn Host, layers: &Layers) -> Result<(), EngineError> {
    let mut last = Ok(());
    for _ in 0..20 {
        if mounted(host, layers)? != Mounted::Ours {
            return Ok(());
        }
        last = host.unmount(&layers.root);
        if last.is_ok() {
            continue;
        }
        thread::sleep(Duration::from_millis(250));
    }
    last
}

/// Runs `work` with the stopped machine's root readable at its path: a
/// read-only overlay of both layers, mounted in a private mount namespace
/// of one thread (see the module documentation). When the overlay is
/// mounted already, `work` reads that.
pub fn with_view<T: Send>(
    host: &dyn Host,
    layers: &Layers,
    work: impl FnOnce() -> Result<T, EngineError> + Send,
) -> Result<T, EngineError> {
    if mounted(host, layers)? != Mounted::No {
        return work();
    }
    if let Some(why) = layers.missing() {
        return Err(EngineError::State(format!(
            "cannot read the overlay root {}: {why}",
            layers.root.display()
        )));
    }
    let options = layers.view_options()?;
    let mut work = Some(work);
    let mut result = None;
    host.in_private_mount_namespace(&mut || {
        let Some(work) = work.take() else {
            return;
        };
        result = Some((|| {
            host.mount_overlay(&options, true, &layers.root)?;
            let out = work();
            // The namespace goes with the thread; the fake host needs this.
            let unmounted = host.unmount(&layers.root);
            let out = out?;
            unmounted.map(|()| out)
        })());
    })?;
    result.unwrap_or_else(|| {
        Err(EngineError::State(
            "reading the overlay root did not run".into(),
        ))
    })
}

/// Unmounts and removes the machine's overlay layers and boot units (a
/// destroy or a replacement); the root's empty mount point stays for the caller.
pub fn discard(host: &dyn Host, name: &str, layers: &Layers) -> Result<(), EngineError> {
    unmount(host, layers)?;
    if let Mounted::Other(fstype) = mounted(host, layers)? {
        return Err(EngineError::Refused {
            machine: name.to_owned(),
            message: format!(
                "{} has a {fstype} mount on it that is not this machine's overlay; unmount it first",
                layers.root.display()
            ),
        });
    }
    remove_boot_units(host, name)?;
    if fs::symlink_metadata(&layers.dir).is_ok() {
        crate::confined::remove::remove_tree(&layers.dir)
            .map_err(|e| EngineError::State(format!("removing {}: {e}", layers.dir.display())))?;
    }
    Ok(())
}

/// Removes a leftover `.NAME.overlay` of an interrupted creation (only
/// called when the machine has no root: nothing uses it).
pub fn discard_leftover(paths: &Paths, name: &str) -> Result<(), EngineError> {
    let dir = overlay_dir(paths, name);
    if fs::symlink_metadata(&dir).is_ok() {
        crate::drivers::staging::discard_staging(&dir)?;
    }
    Ok(())
}

fn run(host: &dyn Host, argv: Vec<String>) -> Result<(), EngineError> {
    let cmd = Cmd::new(argv);
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

/// The host's unit directory, beside the nspawn dir (`/etc/systemd/system`).
fn unit_dir(paths: &Paths) -> PathBuf {
    paths.nspawn_dir.parent().map_or_else(
        || PathBuf::from("/etc/systemd/system"),
        |p| p.join("system"),
    )
}

/// The mount unit's file name for `path` (`systemd-escape --path --suffix=mount`).
pub fn mount_unit_name(path: &Path) -> String {
    let text = path.to_string_lossy();
    let trimmed: Vec<&str> = text.split('/').filter(|c| !c.is_empty()).collect();
    if trimmed.is_empty() {
        return "-.mount".to_owned();
    }
    let joined = trimmed.join("/");
    let mut out = String::new();
    for (i, byte) in joined.bytes().enumerate() {
        match byte {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || b == b':' || b == b'_' || b == b'.' => {
                out.push(char::from(b));
            }
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push_str(".mount");
    out
}

/// The first line of every unit file berth writes for overlays.
const HEADER: &str = "# Written by berth: the overlay root of a machine; removed by berth destroy.";

/// The mount unit and the drop-in for machine `name`: (path, contents).
fn boot_units(
    paths: &Paths,
    name: &str,
    layers: &Layers,
) -> Result<Vec<(PathBuf, String)>, EngineError> {
    let dir = unit_dir(paths);
    let mount = format!(
        "{HEADER}\n[Unit]\nDescription=berth overlay root of machine {name}\n\
         RequiresMountsFor={} {}\n\n[Mount]\nWhat=overlay\nWhere={}\nType=overlay\nOptions={}\n",
        option_path(&layers.lower)?,
        option_path(&layers.dir)?,
        option_path(&layers.root)?,
        layers.options()?
    );
    let dropin = format!(
        "{HEADER}\n[Unit]\nRequiresMountsFor={}\n",
        option_path(&layers.root)?
    );
    Ok(vec![
        (dir.join(mount_unit_name(&layers.root)), mount),
        (
            dir.join(format!("systemd-nspawn@{name}.service.d"))
                .join("50-berth-overlay.conf"),
            dropin,
        ),
    ])
}

/// On hosts booted with systemd: writes (or rewrites, when they differ) the
/// mount unit and the `systemd-nspawn@NAME.service` drop-in, then reloads systemd.
pub fn write_boot_units(host: &dyn Host, name: &str, layers: &Layers) -> Result<(), EngineError> {
    if !host.booted_with_systemd() {
        return Ok(());
    }
    let mut changed = false;
    for (path, contents) in boot_units(host.paths(), name, layers)? {
        if fs::read_to_string(&path).ok().as_deref() == Some(contents.as_str()) {
            continue;
        }
        crate::host::state::write_file_atomic(&path, contents.as_bytes())
            .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))?;
        changed = true;
    }
    if changed {
        run(host, vec!["systemctl".into(), "daemon-reload".into()])?;
    }
    Ok(())
}

/// Removes the unit files [`write_boot_units`] wrote (only files berth wrote).
pub fn remove_boot_units(host: &dyn Host, name: &str) -> Result<(), EngineError> {
    let paths = host.paths();
    let dir = unit_dir(paths);
    let root = real(&paths.machines_dir).join(name);
    let dropin_dir = dir.join(format!("systemd-nspawn@{name}.service.d"));
    let mut changed = false;
    for path in [
        dir.join(mount_unit_name(&root)),
        dropin_dir.join("50-berth-overlay.conf"),
    ] {
        if fs::read_to_string(&path).is_ok_and(|text| text.starts_with(HEADER)) {
            fs::remove_file(&path)
                .map_err(|e| EngineError::io(format!("removing {}", path.display()), e))?;
            changed = true;
        }
    }
    // The drop-in directory, if berth's file was all it held.
    let _ = fs::remove_dir(&dropin_dir);
    if changed && host.booted_with_systemd() {
        run(host, vec!["systemctl".into(), "daemon-reload".into()])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_unit_names_escape_like_systemd_escape() {
        assert_eq!(
            mount_unit_name(Path::new("/var/lib/machines/web")),
            "var-lib-machines-web.mount"
        );
        assert_eq!(
            mount_unit_name(Path::new("/var/lib/machines/web-1.x_y")),
            "var-lib-machines-web\\x2d1.x_y.mount"
        );
        assert_eq!(mount_unit_name(Path::new("/.a/b/")), "\\x2ea-b.mount");
    }

    #[test]
    fn option_paths_refuse_separators() {
        assert!(option_path(Path::new("/var/lib/machines/a")).is_ok());
        for bad in ["/a,b", "/a:b", "/a b", "/a\\b"] {
            assert!(option_path(Path::new(bad)).is_err(), "{bad}");
        }
    }
}
