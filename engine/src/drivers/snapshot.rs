//! Snapshot storage: copies of a machine root kept beside it, made with
//! the base cache's machinery ([`cache::clone_tree`]: a btrfs snapshot when the
//! root is a subvolume, else a reflink copy, else a full copy).
//!
//! Layout, on the machines dir's filesystem (so a rollback swaps roots by
//! rename), hidden from machined and from berth's own listings by the
//! leading dot:
//!
//! ```text
//! MACHINES_DIR/.NAME.snapshots/TAG/root            the copy of the root
//! MACHINES_DIR/.NAME.snapshots/TAG/snapshot.json   origin, time, method, size, berth's record
//! MACHINES_DIR/.NAME.snapshots/.take-TAG/          a snapshot being made (never listed)
//! MACHINES_DIR/.NAME.snapshots/.rollback-TIME/     a rollback under way (see [`restore`])
//! MACHINES_DIR/.NAME.snapshots/.delete-TAG/        a snapshot being removed
//! ```
//!
//! A snapshot appears by one rename of its complete directory, so a
//! listing never sees half of one. Every function here expects the caller
//! to hold berth's state lock, except [`list`] and [`read`].

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
use serde::{Deserialize, Serialize};

use crate::drivers::cache::{self, CloneMethod};
use crate::drivers::staging::discard_staging;
use crate::error::EngineError;
use crate::host::Host;
use crate::host::paths::Paths;
use crate::host::state::{MachineRecord, write_file_atomic};

/// How a snapshot came to be (`berth snapshots`' ORIGIN column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotOrigin {
    /// `berth snapshot NAME`.
    Manual,
    /// `snapshots: {before_apply: true}`: taken by apply before it changed the root.
    BeforeApply,
    /// Taken by `apply --upgrade` before upgrading.
    BeforeUpgrade,
    /// The root a rollback replaced.
    PreRollback,
}

impl SnapshotOrigin {
    /// The kebab-case name (`before-apply`), also the prefix of generated tags.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotOrigin::Manual => "manual",
            SnapshotOrigin::BeforeApply => "before-apply",
            SnapshotOrigin::BeforeUpgrade => "before-upgrade",
            SnapshotOrigin::PreRollback => "pre-rollback",
        }
    }
}

impl std::fmt::Display for SnapshotOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One snapshot of one machine's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// The machine.
    pub machine: String,
    /// The user's tag, or a generated one (`before-apply-20261201T130501Z`).
    pub tag: String,
    /// Seconds since the epoch when it was taken.
    pub created_at: u64,
    /// Bytes its files occupy (du-like: blocks of each file once, shared
    /// extents of reflinks and btrfs snapshots counted in full); None when
    /// not measured.
    pub size: Option<u64>,
    /// How it was made: `btrfs-snapshot`, `reflink` or `copy`.
    pub method: String,
    /// Why it was taken.
    pub origin: SnapshotOrigin,
}

/// What `snapshot.json` holds: the info and berth's record of the machine
/// as it was when the root was copied (the record describes the root:
/// the packages berth added, the securetty entries it wrote, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The snapshot.
    #[serde(flatten)]
    pub info: SnapshotInfo,
    /// berth's record of the machine when the snapshot was taken.
    #[serde(default)]
    pub record: Option<MachineRecord>,
}

/// The name of the metadata file in a snapshot's directory.
const META: &str = "snapshot.json";
/// The name of the rollback journal in a `.rollback-TIME` directory.
const JOURNAL: &str = "rollback.json";

/// The directory of machine `name`'s snapshots.
pub fn snapshots_dir(paths: &Paths, name: &str) -> PathBuf {
    paths.machines_dir.join(format!(".{name}.snapshots"))
}

/// The directory of snapshot `tag` of machine `name`.
pub fn snapshot_dir(paths: &Paths, name: &str, tag: &str) -> PathBuf {
    snapshots_dir(paths, name).join(tag)
}

/// Why `tag` cannot name a snapshot, if it cannot: 1 to 64 characters of
/// `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
pub fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("a snapshot tag cannot be empty".into());
    }
    if tag.len() > 64 {
        return Err(format!(
            "snapshot tag {tag:?} is too long ({} characters; at most 64)",
            tag.len()
        ));
    }
    if !tag.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "snapshot tag {tag:?} must start with a letter or a digit"
        ));
    }
    if let Some(bad) = tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "snapshot tag {tag:?} contains {bad:?}; use letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `secs` as a compact UTC time, `20261201T130501Z`.
pub fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// A generated tag for a snapshot of `origin` taken at `secs` that no
/// snapshot of `name` has yet (`before-apply-20261201T130501Z`, then `-2`, ...).
pub fn generated_tag(paths: &Paths, name: &str, origin: SnapshotOrigin, secs: u64) -> String {
    let base = format!("{}-{}", origin.as_str(), utc_stamp(secs));
    let dir = snapshots_dir(paths, name);
    let mut tag = base.clone();
    let mut n = 2;
    while fs::symlink_metadata(dir.join(&tag)).is_ok() {
        tag = format!("{base}-{n}");
        n += 1;
    }
    tag
}

/// The snapshots of machine `name`, oldest first (unreadable ones skipped).
pub fn list(paths: &Paths, name: &str) -> Result<Vec<Meta>, EngineError> {
    let dir = snapshots_dir(paths, name);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EngineError::io(format!("reading {}", dir.display()), e)),
    };
    let mut out: Vec<Meta> = entries
        .flatten()
        .filter_map(|entry| {
            let tag = entry.file_name().to_string_lossy().into_owned();
            if tag.starts_with('.') {
                return None;
            }
            read(paths, name, &tag).ok().flatten()
        })
        .collect();
    out.sort_by(|a, b| (a.info.created_at, &a.info.tag).cmp(&(b.info.created_at, &b.info.tag)));
    Ok(out)
}

/// Snapshot `tag` of machine `name`, if it exists and is complete.
pub fn read(paths: &Paths, name: &str, tag: &str) -> Result<Option<Meta>, EngineError> {
    if check_tag(tag).is_err() {
        return Ok(None);
    }
    let dir = snapshot_dir(paths, name, tag);
    let path = dir.join(META);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EngineError::io(format!("reading {}", path.display()), e)),
    };
    let meta: Meta = serde_json::from_str(&text).map_err(|e| {
        EngineError::State(format!("{} is not a valid snapshot: {e}", path.display()))
    })?;
    if meta.info.tag != tag || meta.info.machine != name || !dir.join("root").is_dir() {
        return Ok(None);
    }
    Ok(Some(meta))
}

/// The snapshots dir, made if missing (mode 0700: roots hold secrets).
fn ensure_dir(paths: &Paths, name: &str) -> Result<PathBuf, EngineError> {
    let dir = snapshots_dir(paths, name);
    match fs::symlink_metadata(&dir) {
        Ok(meta) if meta.is_dir() => Ok(dir),
        Ok(_) => Err(EngineError::State(format!(
            "{} is not a directory",
            dir.display()
        ))),
        Err(_) => {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
            Ok(dir)
        }
    }
}

/// The `method` text of a clone.
fn method_name(method: CloneMethod) -> &'static str {
    match method {
        CloneMethod::Snapshot => "btrfs-snapshot",
        CloneMethod::Reflink => "reflink",
        CloneMethod::Copy => "copy",
    }
}

/// [`cache::clone_tree`], accepting a copy whose only errors are files
/// that vanished while `cp` walked the tree (a running machine's root
/// changes under it; the copy is what a power cut would have left).
fn copy_tree(host: &dyn Host, from: &Path, to: &Path) -> Result<CloneMethod, EngineError> {
    match cache::clone_tree(host, from, to) {
        Err(EngineError::Command { output, .. }) if vanished_only(&output) && to.is_dir() => {
            Ok(if cache::supports_reflink(to) {
                CloneMethod::Reflink
            } else {
                CloneMethod::Copy
            })
        }
        other => other,
    }
}

/// Whether every line of `cp`'s stderr says a file vanished.
fn vanished_only(stderr: &str) -> bool {
    let mut lines = stderr.lines().filter(|l| !l.trim().is_empty()).peekable();
    lines.peek().is_some()
        && lines.all(|l| l.starts_with("cp: ") && l.ends_with("No such file or directory"))
}

/// Writes `meta` as `dir/snapshot.json`.
fn write_meta(dir: &Path, meta: &Meta) -> Result<(), EngineError> {
    let mut json = serde_json::to_vec_pretty(meta)
        .map_err(|e| EngineError::State(format!("serialising a snapshot: {e}")))?;
    json.push(b'\n');
    let path = dir.join(META);
    write_file_atomic(&path, &json)
        .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))
}

/// Copies machine `name`'s root into snapshot `tag` (which must not exist)
/// and stores `record` with it. The copy is made in a hidden directory and
/// renamed into place when complete.
pub fn take(
    host: &dyn Host,
    name: &str,
    tag: &str,
    origin: SnapshotOrigin,
    record: Option<&MachineRecord>,
) -> Result<SnapshotInfo, EngineError> {
    check_tag(tag).map_err(|message| EngineError::Plan {
        machine: name.to_owned(),
        message,
    })?;
    let paths = host.paths();
    let root = paths.machine_root(name);
    if !fs::symlink_metadata(&root).is_ok_and(|m| m.is_dir()) {
        return Err(EngineError::Refused {
            machine: name.to_owned(),
            message: format!("its root {} is not a directory", root.display()),
        });
    }
    let dir = ensure_dir(paths, name)?;
    let target = dir.join(tag);
    if fs::symlink_metadata(&target).is_ok() {
        return Err(EngineError::Plan {
            machine: name.to_owned(),
            message: format!("a snapshot tagged {tag:?} exists already; pick another tag"),
        });
    }
    let work = dir.join(format!(".take-{tag}"));
    discard_dir(&work)?;
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&work)
        .map_err(|e| EngineError::io(format!("creating {}", work.display()), e))?;
    let made = (|| {
        let method = copy_tree(host, &root, &work.join("root"))?;
        let info = SnapshotInfo {
            machine: name.to_owned(),
            tag: tag.to_owned(),
            created_at: now(),
            size: measure(&work.join("root")),
            method: method_name(method).to_owned(),
            origin,
        };
        let record = record.cloned().map(|mut r| {
            r.launch = None;
            r
        });
        write_meta(
            &work,
            &Meta {
                info: info.clone(),
                record,
            },
        )?;
        renameat2(
            AT_FDCWD,
            &work,
            AT_FDCWD,
            &target,
            RenameFlags::RENAME_NOREPLACE,
        )
        .map_err(|e| {
            EngineError::io(
                format!("moving {} to {}", work.display(), target.display()),
                e.into(),
            )
        })?;
        Ok(info)
    })();
    if made.is_err() {
        let _ = discard_dir(&work);
    }
    made
}

/// Removes snapshot `tag` of machine `name`: renamed out of the listing
/// first, then removed.
pub fn delete(paths: &Paths, name: &str, tag: &str) -> Result<(), EngineError> {
    let dir = snapshots_dir(paths, name);
    let from = dir.join(tag);
    let doomed = dir.join(format!(".delete-{tag}"));
    discard_dir(&doomed)?;
    fs::rename(&from, &doomed).map_err(|e| {
        EngineError::io(
            format!("moving {} out of the way to remove it", from.display()),
            e,
        )
    })?;
    discard_dir(&doomed)
}

/// Removes every snapshot of machine `name` (and leftovers of unfinished
/// ones) and their directory (destroy); returns how many there were.
pub fn delete_all(paths: &Paths, name: &str) -> Result<usize, EngineError> {
    let dir = snapshots_dir(paths, name);
    let Ok(meta) = fs::symlink_metadata(&dir) else {
        return Ok(0);
    };
    if !meta.is_dir() {
        return Err(EngineError::State(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let count = list(paths, name)?.len();
    let entries =
        fs::read_dir(&dir).map_err(|e| EngineError::io(format!("reading {}", dir.display()), e))?;
    for entry in entries.flatten() {
        discard_dir(&entry.path())?;
    }
    fs::remove_dir(&dir).map_err(|e| EngineError::io(format!("removing {}", dir.display()), e))?;
    Ok(count)
}

/// Removes a snapshot directory (or a leftover work directory): its `root`
/// first, which may be a btrfs subvolume, then the rest.
fn discard_dir(dir: &Path) -> Result<(), EngineError> {
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return Ok(());
    };
    if !meta.is_dir() {
        return fs::remove_file(dir)
            .map_err(|e| EngineError::io(format!("removing {}", dir.display()), e));
    }
    let root = dir.join("root");
    if fs::symlink_metadata(&root).is_ok() {
        discard_staging(&root)?;
    }
    discard_staging(dir)
}

/// The journal of a rollback under way, in `.rollback-TIME/rollback.json`:
/// enough to finish or undo it after a crash ([`recover`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Journal {
    /// The snapshot being restored.
    restoring: String,
    /// Device and inode of the root being replaced: once
    /// `.rollback-TIME/root` is that directory, the swap happened.
    old_root: (u64, u64),
    /// The snapshot the replaced root becomes.
    kept_as: Meta,
}

/// What [`restore`] did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The tag the replaced root was kept as (`pre-rollback-TIME`).
    pub kept_as: String,
    /// The snapshot restored, with its record.
    pub restored: Meta,
}

/// Makes snapshot `tag` machine `name`'s root again; the replaced root
/// becomes snapshot `pre-rollback-TIME` with `record` (berth's record of
/// it). The machine must be stopped and nothing mounted in its root.
///
/// The order, so that a crash never leaves the machine without a root and
/// nothing is lost:
///
/// 1. a journal (`.rollback-TIME/rollback.json`) names the snapshot and the
///    root's inode;
/// 2. the snapshot is cloned to `.rollback-TIME/root` (the snapshot stays);
/// 3. `renameat2(RENAME_EXCHANGE)` swaps that clone and the root in one
///    step: the machine's root is the restored tree, `.rollback-TIME/root`
///    the replaced one;
/// 4. `snapshot.json` is written there and `.rollback-TIME` is renamed to
///    `pre-rollback-TIME`, then the journal is removed.
///
/// A crash before 3 leaves the root as it was and a hidden clone that
/// [`recover`] removes; after 3, [`recover`] finishes 4 (it tells the two
/// apart by the inode in the journal). `finish` runs between 3 and 4 (the
/// caller restores berth's record there).
pub fn restore(
    host: &dyn Host,
    name: &str,
    tag: &str,
    record: Option<&MachineRecord>,
    finish: impl FnOnce(&Meta) -> Result<(), EngineError>,
) -> Result<Restored, EngineError> {
    let paths = host.paths();
    let restored = read(paths, name, tag)?.ok_or_else(|| EngineError::Plan {
        machine: name.to_owned(),
        message: format!("it has no snapshot tagged {tag:?}; `berth snapshots {name}` lists them"),
    })?;
    let root = paths.machine_root(name);
    let root_meta = fs::symlink_metadata(&root)
        .map_err(|e| EngineError::io(format!("reading {}", root.display()), e))?;
    if !root_meta.is_dir() {
        return Err(EngineError::Refused {
            machine: name.to_owned(),
            message: format!("its root {} is not a directory", root.display()),
        });
    }
    let dir = ensure_dir(paths, name)?;
    let secs = now();
    let kept_tag = generated_tag(paths, name, SnapshotOrigin::PreRollback, secs);
    let work = dir.join(format!(".rollback-{}", utc_stamp(secs)));
    discard_dir(&work)?;
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&work)
        .map_err(|e| EngineError::io(format!("creating {}", work.display()), e))?;
    let clone = work.join("root");
    let method = match copy_tree(host, &snapshot_dir(paths, name, tag).join("root"), &clone) {
        Ok(method) => method,
        Err(e) => {
            let _ = discard_dir(&work);
            return Err(e);
        }
    };
    let journal = Journal {
        restoring: tag.to_owned(),
        old_root: (root_meta.dev(), root_meta.ino()),
        kept_as: Meta {
            info: SnapshotInfo {
                machine: name.to_owned(),
                tag: kept_tag.clone(),
                created_at: secs,
                size: None,
                method: method_name(method).to_owned(),
                origin: SnapshotOrigin::PreRollback,
            },
            record: record.cloned().map(|mut r| {
                r.launch = None;
                r
            }),
        },
    };
    let json = serde_json::to_vec_pretty(&journal)
        .map_err(|e| EngineError::State(format!("serialising a rollback journal: {e}")))?;
    if let Err(e) = write_file_atomic(&work.join(JOURNAL), &json) {
        let _ = discard_dir(&work);
        return Err(EngineError::io("writing the rollback journal", e));
    }
    renameat2(
        AT_FDCWD,
        &clone,
        AT_FDCWD,
        &root,
        RenameFlags::RENAME_EXCHANGE,
    )
    .map_err(|e| {
        let _ = discard_dir(&work);
        EngineError::io(
            format!("swapping {} and {}", clone.display(), root.display()),
            e.into(),
        )
    })?;
    finish(&restored)?;
    let kept_as = complete(paths, name, &work, journal)?;
    Ok(Restored { kept_as, restored })
}

/// Step 4 of [`restore`]: the replaced root in `work` becomes its snapshot.
fn complete(
    paths: &Paths,
    name: &str,
    work: &Path,
    mut journal: Journal,
) -> Result<String, EngineError> {
    journal.kept_as.info.size = measure(&work.join("root"));
    write_meta(work, &journal.kept_as)?;
    let dir = snapshots_dir(paths, name);
    let mut tag = journal.kept_as.info.tag.clone();
    if fs::symlink_metadata(dir.join(&tag)).is_ok() {
        tag = generated_tag(
            paths,
            name,
            SnapshotOrigin::PreRollback,
            journal.kept_as.info.created_at,
        );
        journal.kept_as.info.tag = tag.clone();
        write_meta(work, &journal.kept_as)?;
    }
    let target = dir.join(&tag);
    fs::rename(work, &target).map_err(|e| {
        EngineError::io(
            format!("moving {} to {}", work.display(), target.display()),
            e,
        )
    })?;
    let _ = fs::remove_file(target.join(JOURNAL));
    Ok(tag)
}

/// Finishes or undoes what a crashed rollback of machine `name` left (see
/// [`restore`]); `finish` is called for a rollback whose swap happened, with
/// the snapshot it restored, if that still exists. Returns the tags of the
/// snapshots it completed. Leftovers of snapshots being made or deleted go.
pub fn recover(
    paths: &Paths,
    name: &str,
    mut finish: impl FnMut(&Meta) -> Result<(), EngineError>,
) -> Result<Vec<String>, EngineError> {
    let dir = snapshots_dir(paths, name);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut completed = Vec::new();
    let mut leftovers: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    leftovers.sort();
    for path in leftovers {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if file.starts_with(".rollback-") {
            let journal: Option<Journal> = fs::read_to_string(path.join(JOURNAL))
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok());
            let swapped = journal.as_ref().is_some_and(|j| {
                fs::symlink_metadata(path.join("root"))
                    .is_ok_and(|m| (m.dev(), m.ino()) == j.old_root)
            });
            match journal {
                Some(journal) if swapped => {
                    if let Some(meta) = read(paths, name, &journal.restoring)? {
                        finish(&meta)?;
                    }
                    completed.push(complete(paths, name, &path, journal)?);
                }
                // Before the swap: a clone of a snapshot, nothing else.
                _ => discard_dir(&path)?,
            }
        } else if file.starts_with(".take-") || file.starts_with(".delete-") {
            discard_dir(&path)?;
        }
    }
    Ok(completed)
}

/// Bytes the files under `root` occupy (blocks, each inode once), without
/// leaving its filesystem; None if it cannot be read.
pub fn measure(root: &Path) -> Option<u64> {
    let top = fs::symlink_metadata(root).ok()?;
    let dev = top.dev();
    let mut seen = HashSet::new();
    let mut total = top.blocks() * 512;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.dev() != dev {
                continue;
            }
            if meta.nlink() > 1 && !meta.is_dir() && !seen.insert(meta.ino()) {
                continue;
            }
            total += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(1_796_130_301), "20261201T130501Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
    }

    #[test]
    fn only_vanished_files_are_forgiven() {
        assert!(vanished_only(
            "cp: cannot stat '/m/web/tmp/x': No such file or directory\n"
        ));
        assert!(!vanished_only(""));
        assert!(!vanished_only(
            "cp: cannot stat '/m/web/tmp/x': No such file or directory\ncp: error writing '/m/.web.snapshots/a/root/big': No space left on device"
        ));
    }

    #[test]
    fn tags() {
        assert!(check_tag("before-upgrade").is_ok());
        assert!(check_tag("v1.2_3").is_ok());
        for bad in ["", ".x", "-x", "a/b", "a b", "ä", &"x".repeat(65)] {
            assert!(check_tag(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn origins_are_kebab_case() {
        assert_eq!(
            serde_json::to_string(&SnapshotOrigin::BeforeApply).unwrap(),
            "\"before-apply\""
        );
        assert_eq!(SnapshotOrigin::PreRollback.to_string(), "pre-rollback");
    }
}
