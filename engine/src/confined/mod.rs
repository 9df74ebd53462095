//! Confined file operations inside a (possibly hostile) machine root.
//!
//! berth runs as root and reads and writes files below `/var/lib/machines/NAME`,
//! whose contents are controlled by the guest. Any path component may be a
//! symlink (absolute or relative, pointing anywhere), a dangling link, a FIFO,
//! a device node, or a directory where a file is expected. Every operation in
//! this module resolves paths with `openat2(2)` and
//! `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV`, so symlinks
//! are interpreted as if the machine root were `/` and no lookup can leave the
//! root, jump through `/proc` magic links, or cross into another mount.
//!
//! Paths given to [`Root`] methods are relative to the machine root; a leading
//! `/` is allowed and means the root (`"/etc/hostname"` and `"etc/hostname"`
//! are the same). Empty and `.` components are ignored; `..` components are
//! rejected, so the final component of a path is always a real name.

mod entries;
pub mod mounts;
pub mod owned;
pub mod remove;

pub use entries::EntryStat;

use std::fmt;
use std::hash::BuildHasher;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::unistd::UnlinkatFlags;

/// Largest file [`Root::read`] will return (16 MiB).
pub const MAX_READ_SIZE: u64 = 16 * 1024 * 1024;

/// How often a lookup is retried when the kernel reports `EAGAIN` (a
/// concurrent rename or mount made a `RESOLVE_IN_ROOT` lookup unsafe).
const EAGAIN_RETRIES: usize = 32;

/// How often [`Root::write_atomic`] retries when a random temp name is taken.
const TEMP_NAME_RETRIES: usize = 16;

/// The kind of a directory entry, as seen without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (not followed).
    Symlink,
    /// Anything else: FIFO, socket, character or block device.
    Other,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::File => "regular file",
            FileKind::Dir => "directory",
            FileKind::Symlink => "symlink",
            FileKind::Other => "special file",
        })
    }
}

/// Errors from confined file operations.
///
/// Every variant names the path as it appears inside the machine root (for
/// example `/etc/shadow`) and the machine root on the host.
#[derive(thiserror::Error, Debug)]
pub enum ConfinedError {
    /// The machine root itself could not be opened.
    #[error("cannot open machine root {root}: {source}")]
    OpenRoot {
        /// The machine root on the host.
        root: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The machine root exists but is not a real directory.
    #[error("machine root {root} is {found}, not a directory")]
    RootNotDirectory {
        /// The machine root on the host.
        root: PathBuf,
        /// What was found instead, e.g. "a symlink".
        found: &'static str,
    },
    /// The path given by the caller is not acceptable.
    #[error("invalid path {path:?} for machine root {root}: {reason}")]
    InvalidPath {
        /// The path as given by the caller.
        path: String,
        /// The machine root on the host.
        root: PathBuf,
        /// Why the path was rejected.
        reason: &'static str,
    },
    /// The path exists but is not a regular file (directory, FIFO, socket, device).
    #[error("{path} in {root} is {found}, not a regular file")]
    NotAFile {
        /// The path inside the machine root.
        path: String,
        /// The machine root on the host.
        root: PathBuf,
        /// What was found instead, e.g. "a FIFO".
        found: &'static str,
    },
    /// The parent directory of a file to be written does not exist.
    #[error(
        "cannot write {path} in {root}: its parent directory {parent} does not exist \
         (berth does not create parent directories)"
    )]
    ParentMissing {
        /// The path inside the machine root.
        path: String,
        /// The parent directory inside the machine root.
        parent: String,
        /// The machine root on the host.
        root: PathBuf,
    },
    /// Some component of the path (other than the last) is not a directory.
    #[error("{path} in {root}: a leading component of the path is not a directory")]
    NotADirectory {
        /// The path inside the machine root.
        path: String,
        /// The machine root on the host.
        root: PathBuf,
    },
    /// Resolving the path would cross a mount point inside the machine root.
    #[error(
        "{path} in {root}: resolving it crosses a mount point inside the machine root; \
         refusing (unmount it first)"
    )]
    CrossesMount {
        /// The path inside the machine root.
        path: String,
        /// The machine root on the host.
        root: PathBuf,
    },
    /// The file is larger than [`MAX_READ_SIZE`].
    #[error("{path} in {root} is too large to read ({size} bytes, limit {limit})")]
    TooLarge {
        /// The path inside the machine root.
        path: String,
        /// The machine root on the host.
        root: PathBuf,
        /// The size found (at least).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file's contents are not valid UTF-8.
    #[error("{path} in {root} is not valid UTF-8")]
    InvalidUtf8 {
        /// The path inside the machine root.
        path: String,
        /// The machine root on the host.
        root: PathBuf,
    },
    /// The file changed while it was being opened (a concurrent rename).
    #[error("{path} in {root} changed while it was being opened; try again")]
    Changed {
        /// The path inside the machine root.
        path: String,
        /// The machine root on the host.
        root: PathBuf,
    },
    /// Any other I/O error, with the operation that failed.
    #[error("cannot {op} {path} in {root}: {source}")]
    Io {
        /// What was being done, e.g. "read" or "rename temp file over".
        op: &'static str,
        /// The path inside the machine root.
        path: String,
        /// The machine root on the host.
        root: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// A path inside the root, split into its normalised components.
struct RelPath {
    /// Display form: always absolute, e.g. `/etc/hostname` (`/` for the root).
    display: String,
    /// The normalised components, none empty, `.` or `..`.
    parts: Vec<String>,
}

impl RelPath {
    /// The path to the parent directory, relative to the root (`.` for the root).
    fn parent_rel(&self) -> String {
        match self.parts.split_last() {
            Some((_, parents)) if !parents.is_empty() => parents.join("/"),
            _ => ".".to_owned(),
        }
    }

    /// Display form of the parent directory.
    fn parent_display(&self) -> String {
        match self.parts.split_last() {
            Some((_, parents)) => format!("/{}", parents.join("/")),
            None => "/".to_owned(),
        }
    }

    /// The whole path relative to the root (`.` for the root).
    fn full_rel(&self) -> String {
        if self.parts.is_empty() {
            ".".to_owned()
        } else {
            self.parts.join("/")
        }
    }

    /// The final component, if any.
    fn name(&self) -> Option<&str> {
        self.parts.last().map(String::as_str)
    }
}

/// Describes a file type for messages ("a FIFO", "a directory", ...).
fn describe_mode(mode: libc::mode_t) -> &'static str {
    match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => "a regular file",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFLNK => "a symlink",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        _ => "a file of unknown type",
    }
}

/// The [`FileKind`] of an `st_mode`.
fn kind_of(mode: libc::mode_t) -> FileKind {
    match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => FileKind::File,
        SFlag::S_IFDIR => FileKind::Dir,
        SFlag::S_IFLNK => FileKind::Symlink,
        _ => FileKind::Other,
    }
}

/// `fstat` that also works on `O_PATH` descriptors.
fn fd_stat(fd: impl AsFd) -> nix::Result<FileStat> {
    nix::sys::stat::fstatat(fd, "", AtFlags::AT_EMPTY_PATH)
}

/// A random-ish 64-bit value for temp file names (uniqueness is enforced by `O_EXCL`).
fn random_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::collections::hash_map::RandomState::new().hash_one((n, std::process::id()))
}

/// The name of a temp file next to `name`: `.NAME.berth-tmp-<random>`, kept
/// within `NAME_MAX` (255 bytes).
fn temp_name(name: &str) -> String {
    let mut base = name;
    // ".", ".berth-tmp-" and 16 hex digits take 29 bytes.
    let max = 255 - 29;
    if base.len() > max {
        let mut end = max;
        while !base.is_char_boundary(end) {
            end -= 1;
        }
        base = &base[..end];
    }
    format!(".{base}.berth-tmp-{:016x}", random_u64())
}

/// Removes the temp files of earlier writes of `name` in `dir` (a berth
/// killed between creating one and renaming it over `name` left it behind).
/// Best effort; only `.NAME.berth-tmp-` + 16 hex digits, never a directory.
fn remove_stale_temps(dir: &OwnedFd, name: &str) {
    let sample = temp_name(name);
    let prefix = &sample[..sample.len() - 16];
    let Ok(mut listing) = nix::dir::Dir::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return;
    };
    let stale: Vec<String> = listing
        .iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().ok().map(str::to_owned))
        .filter(|n| {
            n.strip_prefix(prefix)
                .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .collect();
    for n in stale {
        let _ = nix::unistd::unlinkat(dir, n.as_str(), UnlinkatFlags::NoRemoveDir);
    }
}

/// An open machine root. Every path given to its methods is relative to the
/// root (a leading `/` is allowed and means the root) and is resolved with
/// `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)`, so no
/// symlink can lead outside and no lookup crosses a mount point.
#[derive(Debug)]
pub struct Root {
    /// `O_PATH | O_DIRECTORY` descriptor of the root directory.
    fd: OwnedFd,
    /// The host path of the root, for messages.
    path: PathBuf,
}

impl Root {
    /// Opens a machine root. The root itself must be a real directory: a
    /// symlink at `path` (its final component) is refused, and a missing root
    /// is an error. Leading components of `path` are host paths and are
    /// trusted.
    pub fn open(path: &Path) -> Result<Root, ConfinedError> {
        let root = path.to_path_buf();
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match nix::fcntl::open(path, flags, Mode::empty()) {
            Ok(fd) => {
                // O_PATH|O_NOFOLLOW|O_DIRECTORY on a symlink fails, but be explicit.
                let st = fd_stat(&fd).map_err(|e| ConfinedError::OpenRoot {
                    root: root.clone(),
                    source: e.into(),
                })?;
                if kind_of(st.st_mode) != FileKind::Dir {
                    return Err(ConfinedError::RootNotDirectory {
                        root,
                        found: describe_mode(st.st_mode),
                    });
                }
                Ok(Root { fd, path: root })
            }
            Err(e @ (Errno::ENOTDIR | Errno::ELOOP)) => {
                // Say what is there instead.
                match std::fs::symlink_metadata(path) {
                    Ok(md) => {
                        use std::os::unix::fs::MetadataExt;
                        Err(ConfinedError::RootNotDirectory {
                            root,
                            found: describe_mode(md.mode()),
                        })
                    }
                    Err(_) => Err(ConfinedError::OpenRoot {
                        root,
                        source: e.into(),
                    }),
                }
            }
            Err(e) => Err(ConfinedError::OpenRoot {
                root,
                source: e.into(),
            }),
        }
    }

    /// The host path of the machine root.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads a regular file, following symlinks inside the root.
    ///
    /// Returns `Ok(None)` if the path does not exist (including a dangling
    /// symlink, or a symlink whose in-root target does not exist). Returns an
    /// error if the path is not a regular file (directory, FIFO, socket,
    /// device) or is larger than [`MAX_READ_SIZE`]. The file is first opened
    /// with `O_PATH` and checked with `fstat`, so a FIFO or device node is never
    /// actually opened (no blocking, no driver side effects).
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, ConfinedError> {
        let p = self.parse(rel)?;
        let flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
        let pfd = match self.resolve(&p.full_rel(), flags) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(self.lookup_err(&p, e, "open")),
        };
        let st = fd_stat(&pfd).map_err(|e| self.io("stat", &p, e))?;
        if kind_of(st.st_mode) != FileKind::File {
            return Err(self.not_a_file(&p, st.st_mode));
        }
        if st.st_size as u64 > MAX_READ_SIZE {
            return Err(self.too_large(&p, st.st_size as u64));
        }
        let file = self.reopen_for_reading(&p, &pfd, &st)?;
        let mut buf = Vec::with_capacity(st.st_size as usize);
        std::fs::File::from(file)
            .take(MAX_READ_SIZE + 1)
            .read_to_end(&mut buf)
            .map_err(|e| ConfinedError::Io {
                op: "read",
                path: p.display.clone(),
                root: self.path.clone(),
                source: e,
            })?;
        if buf.len() as u64 > MAX_READ_SIZE {
            return Err(self.too_large(&p, buf.len() as u64));
        }
        Ok(Some(buf))
    }

    /// Like [`Root::read`], but the contents must be valid UTF-8.
    pub fn read_string(&self, rel: &str) -> Result<Option<String>, ConfinedError> {
        match self.read(rel)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| {
                let p = self.parse(rel);
                ConfinedError::InvalidUtf8 {
                    path: p.map(|p| p.display).unwrap_or_else(|_| rel.to_owned()),
                    root: self.path.clone(),
                }
            }),
        }
    }

    /// The kind of the final component of `rel`, without following it (like
    /// `lstat`); the parent directories are resolved inside the root.
    /// `Ok(None)` if it does not exist.
    pub fn kind(&self, rel: &str) -> Result<Option<FileKind>, ConfinedError> {
        let p = self.parse(rel)?;
        let Some(name) = p.name() else {
            return Ok(Some(FileKind::Dir));
        };
        let parent = match self.open_parent(&p, OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(ConfinedError::ParentMissing { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        match nix::sys::stat::fstatat(&parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(kind_of(st.st_mode))),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(self.io("stat", &p, e)),
        }
    }

    /// The names in the directory at `rel` (symlinks inside the root
    /// followed, never out of it), sorted; `Ok(None)` if it is absent.
    /// Entries are not followed or opened; `.` and `..` are left out.
    pub fn list_dir(&self, rel: &str) -> Result<Option<Vec<String>>, ConfinedError> {
        let p = self.parse(rel)?;
        let fd = match self.resolve(
            &p.full_rel(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NONBLOCK,
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(self.lookup_err(&p, e, "open directory")),
        };
        let mut dir = nix::dir::Dir::from_fd(fd).map_err(|e| self.io("read directory", &p, e))?;
        let mut names = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|e| self.io("read directory", &p, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        names.sort();
        Ok(Some(names))
    }

    /// The owner (uid, gid) of the final component of `rel`, not following
    /// it; `Ok(None)` if it is absent. The root itself for `/`.
    pub fn owner(&self, rel: &str) -> Result<Option<(u32, u32)>, ConfinedError> {
        let p = self.parse(rel)?;
        let Some(name) = p.name() else {
            let st = fd_stat(&self.fd).map_err(|e| self.io("stat", &p, e))?;
            return Ok(Some((st.st_uid, st.st_gid)));
        };
        let parent = match self.open_parent(&p, OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(ConfinedError::ParentMissing { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        match nix::sys::stat::fstatat(&parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some((st.st_uid, st.st_gid))),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(self.io("stat", &p, e)),
        }
    }

    /// Changes the owner of the final component of `rel` without following
    /// it (a symlink's own owner changes, never its target's).
    pub fn lchown(&self, rel: &str, uid: u32, gid: u32) -> Result<(), ConfinedError> {
        let p = self.parse(rel)?;
        let Some(name) = p.name() else {
            return Err(self.invalid(rel, "cannot change the owner of the machine root itself"));
        };
        let parent = self.open_parent(&p, OFlag::O_PATH)?;
        nix::unistd::fchownat(
            &parent,
            name,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.io("chown", &p, e))
    }

    /// Whether the path resolves (following symlinks inside the root) to
    /// anything at all. A dangling symlink does not exist. A path below a
    /// non-directory is an error, not `false`.
    pub fn exists(&self, rel: &str) -> Result<bool, ConfinedError> {
        let p = self.parse(rel)?;
        match self.resolve(&p.full_rel(), OFlag::O_PATH | OFlag::O_CLOEXEC) {
            Ok(_) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(self.lookup_err(&p, e, "look up")),
        }
    }

    /// The target of the symlink at the final component of `rel` (parents
    /// resolved inside the root). `Ok(None)` if it is absent or not a symlink.
    /// The target is returned verbatim; it is not resolved.
    pub fn read_link(&self, rel: &str) -> Result<Option<PathBuf>, ConfinedError> {
        let p = self.parse(rel)?;
        let Some(name) = p.name() else {
            return Ok(None);
        };
        let parent = match self.open_parent(&p, OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(ConfinedError::ParentMissing { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        match nix::fcntl::readlinkat(&parent, name) {
            Ok(target) => Ok(Some(PathBuf::from(target))),
            Err(Errno::ENOENT | Errno::EINVAL) => Ok(None),
            Err(e) => Err(self.io("read link", &p, e)),
        }
    }

    /// Atomically replaces (or creates) the regular file at `rel` with `contents`.
    ///
    /// Security-relevant semantics:
    ///
    /// - The parent directory is opened with `openat2(RESOLVE_IN_ROOT |
    ///   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)` as `O_RDONLY | O_DIRECTORY`
    ///   (not `O_PATH`, because it is `fsync`ed at the end; opening a
    ///   directory has no side effects). Symlinks among the parents are
    ///   followed *inside the root only*. The parent must exist (parents are
    ///   never created) and must be a directory.
    /// - The final component is inspected with `fstatat(AT_SYMLINK_NOFOLLOW)`
    ///   and is never followed or opened:
    ///   - a directory, FIFO, socket or device → error, nothing is written;
    ///   - a regular file → the new file keeps its permission bits (including
    ///     setuid/setgid/sticky), uid and gid;
    ///   - a symlink → the link itself is replaced by a regular file (nothing
    ///     is written through it) with mode `new_mode`, owned by the parent
    ///     directory's uid/gid;
    ///   - absent → a new file with mode `new_mode`, owned by the parent
    ///     directory's uid/gid (so roots shifted by `systemd-nspawn -U` stay
    ///     consistent).
    /// - The data is written to a temp file in the same directory, created with
    ///   `openat(parent, ".NAME.berth-tmp-<random>", O_CREAT | O_EXCL |
    ///   O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600)`; then `fchown`, `fchmod`
    ///   (after `fchown`, which clears setuid), `fsync`, `renameat` over the
    ///   target, and `fsync` of the parent directory. Because the target is
    ///   replaced by `rename` and never opened, a hard link from the target to
    ///   a host file cannot be used to modify that host file.
    /// - If the target is swapped for a directory between the check and the
    ///   rename, `renameat` fails and nothing is replaced.
    /// - On any error the temp file is unlinked (best effort) and the error is
    ///   returned. The file is always rewritten, even if unchanged.
    pub fn write_atomic(
        &self,
        rel: &str,
        contents: &[u8],
        new_mode: u32,
    ) -> Result<(), ConfinedError> {
        let p = self.parse(rel)?;
        let Some(name) = p.name() else {
            return Err(self.invalid(rel, "cannot write to the machine root itself"));
        };
        let parent = self.open_parent(&p, OFlag::O_RDONLY)?;
        let pst = fd_stat(&parent).map_err(|e| self.io("stat parent directory of", &p, e))?;

        let (mode, uid, gid) =
            match nix::sys::stat::fstatat(&parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => match kind_of(st.st_mode) {
                    FileKind::File => (st.st_mode & 0o7777, st.st_uid, st.st_gid),
                    FileKind::Symlink => (new_mode & 0o7777, pst.st_uid, pst.st_gid),
                    FileKind::Dir | FileKind::Other => {
                        return Err(self.not_a_file(&p, st.st_mode));
                    }
                },
                Err(Errno::ENOENT) => (new_mode & 0o7777, pst.st_uid, pst.st_gid),
                Err(e) => return Err(self.io("stat", &p, e)),
            };

        self.replace_with_file(&p, &parent, name, contents, mode, uid, gid)
    }

    /// Removes the final component of `rel` with `unlinkat` (never following
    /// it: a symlink is removed, not its target). Returns `Ok(false)` if it was
    /// absent. A directory is an error.
    pub fn remove_file(&self, rel: &str) -> Result<bool, ConfinedError> {
        let p = self.parse(rel)?;
        let Some(name) = p.name() else {
            return Err(self.invalid(rel, "cannot remove the machine root itself"));
        };
        let parent = match self.open_parent(&p, OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(ConfinedError::ParentMissing { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        match nix::sys::stat::fstatat(&parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if kind_of(st.st_mode) == FileKind::Dir => {
                return Err(ConfinedError::NotAFile {
                    path: p.display.clone(),
                    root: self.path.clone(),
                    found: "a directory",
                });
            }
            Ok(_) => {}
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(self.io("stat", &p, e)),
        }
        match nix::unistd::unlinkat(&parent, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(Errno::EISDIR) => Err(ConfinedError::NotAFile {
                path: p.display.clone(),
                root: self.path.clone(),
                found: "a directory",
            }),
            Err(e) => Err(self.io("remove", &p, e)),
        }
    }

    // ---- helpers ----

    /// Normalises a caller-supplied path.
    fn parse(&self, rel: &str) -> Result<RelPath, ConfinedError> {
        if rel.contains('\0') {
            return Err(self.invalid(rel, "it contains a NUL byte"));
        }
        let mut parts = Vec::new();
        for comp in rel.split('/') {
            match comp {
                "" | "." => {}
                ".." => return Err(self.invalid(rel, "'..' components are not allowed")),
                c => parts.push(c.to_owned()),
            }
        }
        let display = format!("/{}", parts.join("/"));
        Ok(RelPath { display, parts })
    }

    /// `openat2` relative to the root, confined to it, retrying on `EAGAIN`.
    fn resolve(&self, rel: &str, flags: OFlag) -> nix::Result<OwnedFd> {
        let how = OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(
            ResolveFlag::RESOLVE_IN_ROOT
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
                | ResolveFlag::RESOLVE_NO_XDEV,
        );
        let mut tries = 0;
        loop {
            match nix::fcntl::openat2(&self.fd, rel, how) {
                Err(Errno::EAGAIN) if tries < EAGAIN_RETRIES => tries += 1,
                r => return r,
            }
        }
    }

    /// Opens the parent directory of `p` inside the root.
    fn open_parent(&self, p: &RelPath, mode: OFlag) -> Result<OwnedFd, ConfinedError> {
        match self.resolve(&p.parent_rel(), mode | OFlag::O_DIRECTORY) {
            Ok(fd) => Ok(fd),
            Err(Errno::ENOENT) => Err(ConfinedError::ParentMissing {
                path: p.display.clone(),
                parent: p.parent_display(),
                root: self.path.clone(),
            }),
            Err(e) => Err(self.lookup_err(p, e, "open parent directory of")),
        }
    }

    /// Turns an `O_PATH` descriptor of a regular file into a readable one
    /// without re-resolving the path: through `/proc/self/fd` (which reopens
    /// exactly the same inode). If `/proc` is unavailable, the path is
    /// resolved again with `O_NONBLOCK | O_NOCTTY` and the inode compared.
    fn reopen_for_reading(
        &self,
        p: &RelPath,
        pfd: &OwnedFd,
        st: &FileStat,
    ) -> Result<OwnedFd, ConfinedError> {
        let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let proc_path = format!("/proc/self/fd/{}", pfd.as_raw_fd());
        let fd = match nix::fcntl::open(proc_path.as_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ENOTDIR) => self
                .resolve(&p.full_rel(), flags)
                .map_err(|e| self.lookup_err(p, e, "open"))?,
            Err(e) => return Err(self.io("open", p, e)),
        };
        let st2 = fd_stat(&fd).map_err(|e| self.io("stat", p, e))?;
        if st2.st_dev != st.st_dev || st2.st_ino != st.st_ino {
            return Err(ConfinedError::Changed {
                path: p.display.clone(),
                root: self.path.clone(),
            });
        }
        Ok(fd)
    }

    /// Maps an error from a confined lookup to a helpful [`ConfinedError`].
    fn lookup_err(&self, p: &RelPath, e: Errno, op: &'static str) -> ConfinedError {
        match e {
            Errno::ENOTDIR => ConfinedError::NotADirectory {
                path: p.display.clone(),
                root: self.path.clone(),
            },
            Errno::EXDEV => ConfinedError::CrossesMount {
                path: p.display.clone(),
                root: self.path.clone(),
            },
            e => self.io(op, p, e),
        }
    }

    fn io(&self, op: &'static str, p: &RelPath, e: Errno) -> ConfinedError {
        ConfinedError::Io {
            op,
            path: p.display.clone(),
            root: self.path.clone(),
            source: e.into(),
        }
    }

    fn invalid(&self, rel: &str, reason: &'static str) -> ConfinedError {
        ConfinedError::InvalidPath {
            path: rel.to_owned(),
            root: self.path.clone(),
            reason,
        }
    }

    fn not_a_file(&self, p: &RelPath, mode: libc::mode_t) -> ConfinedError {
        ConfinedError::NotAFile {
            path: p.display.clone(),
            root: self.path.clone(),
            found: describe_mode(mode),
        }
    }

    fn too_large(&self, p: &RelPath, size: u64) -> ConfinedError {
        ConfinedError::TooLarge {
            path: p.display.clone(),
            root: self.path.clone(),
            size,
            limit: MAX_READ_SIZE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_name_fits_name_max() {
        let long = "é".repeat(200);
        let t = temp_name(&long);
        assert!(t.len() <= 255, "{}", t.len());
        assert!(t.starts_with(".é"));
        assert!(temp_name("hostname").starts_with(".hostname.berth-tmp-"));
    }

    #[test]
    fn describe() {
        assert_eq!(describe_mode(libc::S_IFIFO | 0o644), "a FIFO");
        assert_eq!(kind_of(libc::S_IFLNK | 0o777), FileKind::Symlink);
        assert_eq!(kind_of(libc::S_IFCHR), FileKind::Other);
    }
}
