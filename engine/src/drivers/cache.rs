//! The base cache: the first bootstrap of a base (same distro, release,
//! tool, mirror, architecture, package set and tool options) is kept under
//! the cache dir; every later machine of that base is a clone of it, with a
//! fresh machine-id and its own configuration applied after.
//!
//! An entry is never half-written: it is bootstrapped into a hidden staging
//! directory beside it and renamed into place when complete, under a
//! per-base lock, so concurrent applies of the same base bootstrap once.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use berth_schema::Machine;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::drivers::bootstrap::{self, Bootstrapper};
use crate::error::EngineError;
use crate::host::{Cmd, Host};

/// Bumped when the way entries are made changes, so old entries are not reused.
const FORMAT: u32 = 1;

/// Everything that changes what a bootstrap produces: the cache key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseKey {
    /// Cache format version.
    pub format: u32,
    /// The host architecture (the tools bootstrap for it).
    pub arch: String,
    /// The distribution.
    pub distro: String,
    /// The release.
    pub release: Option<String>,
    /// The bootstrap tool.
    pub bootstrapper: String,
    /// The mirror (None: the tool's default).
    pub mirror: Option<String>,
    /// The package set, sorted.
    pub packages: Vec<String>,
    /// debootstrap/mmdebstrap variant.
    pub variant: Option<String>,
    /// Components, in order.
    pub components: Vec<String>,
    /// dnf weak dependencies.
    pub install_weak_deps: bool,
    /// dnf repositories (id, url, gpgcheck).
    pub repos: Vec<(String, String, bool)>,
    /// SHA-256 of the pacman.conf given to pacstrap, if any.
    pub pacman_conf: Option<String>,
}

impl BaseKey {
    /// The key of `machine`'s base with `bootstrapper`.
    pub fn of(machine: &Machine, bootstrapper: &dyn Bootstrapper) -> Result<BaseKey, EngineError> {
        let mut packages = machine.packages.clone();
        packages.sort();
        packages.dedup();
        let pacman_conf = match &machine.pacman_conf {
            Some(path) => {
                let bytes = fs::read(path)
                    .map_err(|e| EngineError::io(format!("reading {}", path.display()), e))?;
                Some(hex(&Sha256::digest(&bytes)))
            }
            None => None,
        };
        Ok(BaseKey {
            format: FORMAT,
            arch: std::env::consts::ARCH.to_owned(),
            distro: machine.distro.to_string(),
            release: machine.release.clone(),
            bootstrapper: bootstrapper.name().to_owned(),
            mirror: machine.mirror.clone(),
            packages,
            variant: machine.bootstrap_options.variant.clone(),
            components: bootstrap::components(machine),
            install_weak_deps: machine.bootstrap_options.install_weak_deps,
            repos: machine
                .repos
                .iter()
                .map(|r| (r.id.clone(), r.url.clone(), r.gpgcheck))
                .collect(),
            pacman_conf,
        })
    }

    /// The entry's name: the first 16 bytes of SHA-256 of the key's JSON, in hex.
    pub fn id(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex(&Sha256::digest(&json)[..16])
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One cached base, as `berth cache list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The entry id.
    pub id: String,
    /// What it was made from.
    pub key: BaseKey,
    /// Seconds since the epoch when it was made.
    pub created_at: u64,
    /// Its root directory.
    #[serde(skip)]
    pub root: PathBuf,
}

/// The cache under a directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache at `dir` (`/var/cache/berth`).
    pub fn new(dir: &Path) -> Self {
        Cache {
            dir: dir.join("bases"),
        }
    }

    /// Where a bootstrap of `key` runs before the entry is renamed into
    /// place (the target in the bootstrap command line).
    pub fn staging_root(&self, key: &BaseKey) -> PathBuf {
        self.dir.join(format!(".{}.staging", key.id())).join("root")
    }

    /// The root of entry `id`.
    fn root(&self, id: &str) -> PathBuf {
        self.dir.join(id).join("root")
    }

    /// The root of entry `id`, whether or not it exists (an overlay
    /// machine's lower layer).
    pub fn entry_root(&self, id: &str) -> PathBuf {
        self.root(id)
    }

    /// The entry for `key`, if it exists and is complete.
    pub fn get(&self, key: &BaseKey) -> Option<Entry> {
        let id = key.id();
        let meta = fs::read_to_string(self.dir.join(&id).join("entry.json")).ok()?;
        let mut entry: Entry = serde_json::from_str(&meta).ok()?;
        if entry.key != *key || !self.root(&id).is_dir() {
            return None;
        }
        entry.root = self.root(&id);
        Some(entry)
    }

    /// The entry for `key`, made with `make(target)` if missing. Concurrent
    /// callers for the same key wait for one `make`.
    pub fn get_or_make(
        &self,
        host: &dyn Host,
        key: &BaseKey,
        make: impl FnOnce(&Path) -> Result<(), EngineError>,
    ) -> Result<Entry, EngineError> {
        fs::create_dir_all(&self.dir)
            .map_err(|e| EngineError::io(format!("creating {}", self.dir.display()), e))?;
        let id = key.id();
        let _lock = self.lock(&id)?;
        if let Some(entry) = self.get(key) {
            return Ok(entry);
        }
        let staging = self.dir.join(format!(".{id}.staging"));
        debug_assert_eq!(staging.join("root"), self.staging_root(key));
        if fs::symlink_metadata(&staging).is_ok() {
            discard_entry_dir(&staging)?;
        }
        fs::create_dir(&staging)
            .map_err(|e| EngineError::io(format!("creating {}", staging.display()), e))?;
        let result = (|| {
            // On btrfs the base is a subvolume, so machines are snapshots of it.
            if snapshots_possible(host, &self.dir) {
                btrfs(host, &["subvolume", "create"], &[&staging.join("root")])?;
            }
            make(&staging.join("root"))?;
            let created_at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let entry = Entry {
                id: id.clone(),
                key: key.clone(),
                created_at,
                root: PathBuf::new(),
            };
            let json = serde_json::to_vec_pretty(&entry)
                .map_err(|e| EngineError::State(format!("serialising a cache entry: {e}")))?;
            crate::host::state::write_file_atomic(&staging.join("entry.json"), &json)
                .map_err(|e| EngineError::io("writing a cache entry", e))?;
            let final_dir = self.dir.join(&id);
            if fs::symlink_metadata(&final_dir).is_ok() {
                // An incomplete entry (no entry.json): replace it.
                discard_entry_dir(&final_dir)?;
            }
            fs::rename(&staging, &final_dir)
                .map_err(|e| EngineError::io(format!("moving {} into place", staging.display()), e))
        })();
        if let Err(e) = result {
            let _ = discard_entry_dir(&staging);
            return Err(e);
        }
        self.get(key).ok_or_else(|| {
            EngineError::State(format!("cache entry {id} vanished after it was made"))
        })
    }

    /// Every complete entry.
    pub fn list(&self) -> Result<Vec<Entry>, EngineError> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => {
                return Err(EngineError::io(
                    format!("reading {}", self.dir.display()),
                    e,
                ));
            }
        };
        for dirent in entries.flatten() {
            let name = dirent.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name.ends_with(".lock") {
                continue;
            }
            let meta = fs::read_to_string(dirent.path().join("entry.json"));
            if let Ok(Ok(mut entry)) = meta.map(|m| serde_json::from_str::<Entry>(&m)) {
                entry.root = self.root(&entry.id);
                out.push(entry);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Removes the entries `keep` does not want, and leftovers of
    /// interrupted bootstraps; returns the ids removed.
    pub fn prune(&self, keep: impl Fn(&Entry) -> bool) -> Result<Vec<String>, EngineError> {
        let mut removed = Vec::new();
        for entry in self.list()? {
            if keep(&entry) {
                continue;
            }
            let _lock = self.lock(&entry.id)?;
            discard_entry_dir(&self.dir.join(&entry.id))?;
            let _ = fs::remove_file(self.dir.join(format!("{}.lock", entry.id)));
            removed.push(entry.id);
        }
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for dirent in entries.flatten() {
                let name = dirent.file_name().to_string_lossy().into_owned();
                if let Some(id) = name
                    .strip_prefix('.')
                    .and_then(|n| n.strip_suffix(".staging"))
                {
                    // Only when nobody is making it right now.
                    if let Ok(Some(_lock)) = self.try_lock(id) {
                        discard_entry_dir(&dirent.path())?;
                        removed.push(format!("{id} (incomplete)"));
                    }
                }
            }
        }
        Ok(removed)
    }

    fn lock_file(&self, id: &str) -> Result<File, EngineError> {
        let path = self.dir.join(format!("{id}.lock"));
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| EngineError::io(format!("opening {}", path.display()), e))
    }

    fn lock(&self, id: &str) -> Result<Flock<File>, EngineError> {
        Flock::lock(self.lock_file(id)?, FlockArg::LockExclusive)
            .map_err(|(_, e)| EngineError::io("locking a cache entry", e.into()))
    }

    fn try_lock(&self, id: &str) -> Result<Option<Flock<File>>, EngineError> {
        match Flock::lock(self.lock_file(id)?, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(lock)),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(EngineError::io("locking a cache entry", e.into())),
        }
    }
}

/// How a root is cloned from a cache entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CloneMethod {
    /// A btrfs snapshot of the base's subvolume.
    Snapshot,
    /// Copy-on-write extents (FICLONE), where the filesystem supports it.
    Reflink,
    /// A plain copy.
    Copy,
}

/// Clones `from` to `to` (which must not exist): a btrfs snapshot when
/// `from` is a subvolume on the same btrfs filesystem as `to`'s parent;
/// else `cp -a --reflink=auto`, which shares extents (FICLONE) where the
/// filesystem supports it and copies otherwise, keeping owners, modes,
/// links, times and xattrs.
pub fn clone_tree(host: &dyn Host, from: &Path, to: &Path) -> Result<CloneMethod, EngineError> {
    if let Some(parent) = to.parent()
        && is_subvolume(from)
        && on_btrfs(parent)
        && host.which("btrfs").is_some()
        // Another btrfs filesystem than the base's: fall back to a copy.
        && btrfs(host, &["subvolume", "snapshot"], &[from, to]).is_ok()
    {
        return Ok(CloneMethod::Snapshot);
    }
    let output = host.run(&Cmd::new([
        "cp".to_owned(),
        "-a".into(),
        "--reflink=auto".into(),
        "--no-target-directory".into(),
        "--".into(),
        from.display().to_string(),
        to.display().to_string(),
    ]))?;
    if !output.success() {
        return Err(EngineError::Command {
            what: format!("cp -a --reflink=auto {} {}", from.display(), to.display()),
            output: output.stderr_text(),
            status: output.status,
        });
    }
    Ok(if supports_reflink(to) {
        CloneMethod::Reflink
    } else {
        CloneMethod::Copy
    })
}

const BTRFS_MAGIC: i64 = 0x9123_683E;

/// Whether bases under `dir` can be subvolumes (btrfs, with btrfs-progs).
fn snapshots_possible(host: &dyn Host, dir: &Path) -> bool {
    on_btrfs(dir) && host.which("btrfs").is_some()
}

/// Whether `path` is a btrfs subvolume (its root directory has inode 256).
pub fn is_subvolume(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    on_btrfs(path) && fs::symlink_metadata(path).is_ok_and(|m| m.is_dir() && m.ino() == 256)
}

/// Whether `path` is on btrfs.
fn on_btrfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type().0 == BTRFS_MAGIC)
}

/// Runs `btrfs ARGS PATHS...`.
fn btrfs(host: &dyn Host, args: &[&str], paths: &[&Path]) -> Result<(), EngineError> {
    let mut argv = vec!["btrfs".to_owned()];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    argv.extend(paths.iter().map(|p| p.display().to_string()));
    let output = host.run(&Cmd::new(argv))?;
    if output.success() {
        Ok(())
    } else {
        Err(EngineError::Command {
            what: format!(
                "btrfs {} {}",
                args.join(" "),
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            output: output.stderr_text(),
            status: output.status,
        })
    }
}

/// Removes a cache entry (or its staging) dir: its `root` first, which may
/// be a subvolume (removal never crosses into another subvolume).
fn discard_entry_dir(dir: &Path) -> Result<(), EngineError> {
    let root = dir.join("root");
    if fs::symlink_metadata(&root).is_ok() {
        crate::drivers::staging::discard_staging(&root)?;
    }
    crate::drivers::staging::discard_staging(dir)
}

/// Whether the filesystem at `path` shares extents on copy (btrfs, xfs, bcachefs).
pub(crate) fn supports_reflink(path: &Path) -> bool {
    const XFS: i64 = 0x5846_5342;
    const BCACHEFS: i64 = 0xCA45_1A4E;
    nix::sys::statfs::statfs(path)
        .map(|s| {
            let t = s.filesystem_type().0;
            t == BTRFS_MAGIC || t == XFS || t == BCACHEFS
        })
        .unwrap_or(false)
}
