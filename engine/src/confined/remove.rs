//! Removing a machine root without ever following a symlink or leaving its mount.
#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FchmodatFlags, FileStat, Mode};
use nix::unistd::UnlinkatFlags;

use crate::confined::mounts::mounts_under;

/// How many times one directory is (re)read before giving up because entries
/// keep appearing in it (a guest still running and writing).
const MAX_SCANS_PER_DIR: u32 = 16;

/// Errors from [`remove_tree`]. Paths are host paths.
#[derive(thiserror::Error, Debug)]
pub enum RemoveError {
    /// The path to remove is a symlink; it is never followed.
    #[error("refusing to remove {path}: it is a symlink, not a directory")]
    Symlink {
        /// The path given to [`remove_tree`].
        path: PathBuf,
    },
    /// The path to remove is not a directory.
    #[error("refusing to remove {path}: it is {found}, not a directory")]
    NotADirectory {
        /// The path given to [`remove_tree`].
        path: PathBuf,
        /// What was found instead, e.g. "a regular file".
        found: &'static str,
    },
    /// Something is mounted at or below the path; nothing was removed.
    #[error(
        "refusing to remove {path}: {} mounted at or below it ({}); unmount first",
        if mounts.len() == 1 { "something is" } else { "filesystems are" },
        mounts.iter().map(|m| m.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    Mounted {
        /// The path given to [`remove_tree`].
        path: PathBuf,
        /// The mount points found.
        mounts: Vec<PathBuf>,
    },
    /// A directory inside the tree is on another mount or filesystem (a bind
    /// mount that appeared during removal, or a nested btrfs subvolume).
    /// Removal stopped; part of the tree may already be gone.
    #[error(
        "stopped removing {root}: {path} is on a different mount or filesystem \
         (a bind mount, or a nested btrfs subvolume); refusing to descend into it"
    )]
    CrossesMount {
        /// The path given to [`remove_tree`].
        root: PathBuf,
        /// The directory that was not entered.
        path: PathBuf,
    },
    /// The tree changed under us in a way that makes continuing unsafe.
    #[error("stopped removing {root}: {path} {what} (is the machine still running?)")]
    Changed {
        /// The path given to [`remove_tree`].
        root: PathBuf,
        /// The path that changed.
        path: PathBuf,
        /// What happened.
        what: &'static str,
    },
    /// Any other I/O error.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The host path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Removes a machine root directory and everything below it.
///
/// Refuses (error, nothing removed) if `dir` is a symlink or not a directory,
/// or if anything is mounted at or below it (see [`mounts_under`]; the error
/// names the mount points).
///
/// The tree is then deleted using directory file descriptors only (`openat`
/// with `O_DIRECTORY | O_NOFOLLOW`, `fdopendir`, `unlinkat`), so symlinks are
/// removed, never followed. As defence in depth, it refuses to descend into
/// any directory whose mount id (`statx(STATX_MNT_ID)`) or `st_dev` differs
/// from the root's, and stops with an error (a bind mount that appeared in the
/// meantime, or a nested btrfs subvolume).
///
/// The walk is iterative with an explicit stack of names, holding only one
/// directory descriptor (plus one for reading) at a time, so arbitrarily deep
/// trees neither overflow the stack nor exhaust descriptors. Going back up
/// uses `..` and checks that it is the directory we came from (device and
/// inode), stopping otherwise. Directories whose permissions prevent removal
/// (only possible when not running as root) get `u+rwx` added. Immutable or
/// append-only files (`chattr +i`/`+a`) are reported as errors.
pub fn remove_tree(dir: &Path) -> Result<(), RemoveError> {
    let md = std::fs::symlink_metadata(dir).map_err(|e| RemoveError::Io {
        op: "inspect",
        path: dir.to_path_buf(),
        source: e,
    })?;
    if md.file_type().is_symlink() {
        return Err(RemoveError::Symlink {
            path: dir.to_path_buf(),
        });
    }
    if !md.is_dir() {
        return Err(RemoveError::NotADirectory {
            path: dir.to_path_buf(),
            found: describe_mode(md.mode()),
        });
    }
    let mounts = mounts_under(dir).map_err(|e| RemoveError::Io {
        op: "list mount points below",
        path: dir.to_path_buf(),
        source: e,
    })?;
    if !mounts.is_empty() {
        return Err(RemoveError::Mounted {
            path: dir.to_path_buf(),
            mounts,
        });
    }

    remove_checked_tree(dir, &md)
}

/// Empties the directory open at `dir` (a descriptor opened without
/// following a symlink, inside a machine root), by the same walk as
/// [`remove_tree`]: nothing is followed, no other mount or filesystem is
/// entered. The directory itself stays (its parent removes it). `display`
/// names it in errors.
pub(crate) fn empty_dir_at(dir: OwnedFd, display: &Path) -> Result<(), RemoveError> {
    let st = fstat(&dir).map_err(|e| RemoveError::Io {
        op: "stat",
        path: display.to_path_buf(),
        source: e.into(),
    })?;
    let root_mnt = mount_id(&dir).map_err(|e| RemoveError::Io {
        op: "statx",
        path: display.to_path_buf(),
        source: e,
    })?;
    let mut walker = Walker {
        root: display,
        root_dev: st.st_dev,
        root_mnt,
        stack: vec![Frame {
            name: OsString::new(),
            dev: st.st_dev,
            ino: st.st_ino,
            pending: Vec::new(),
            scans: 0,
        }],
    };
    walker.run(dir)
}

/// The part of [`remove_tree`] after the symlink, type and mount checks:
/// `md` is the `lstat` of `dir`.
fn remove_checked_tree(dir: &Path, md: &std::fs::Metadata) -> Result<(), RemoveError> {
    let root_fd = nix::fcntl::open(dir, DIR_FLAGS, Mode::empty()).map_err(|e| RemoveError::Io {
        op: "open",
        path: dir.to_path_buf(),
        source: e.into(),
    })?;
    let st = fstat(&root_fd).map_err(|e| RemoveError::Io {
        op: "stat",
        path: dir.to_path_buf(),
        source: e.into(),
    })?;
    if st.st_dev != md.dev() || st.st_ino != md.ino() {
        return Err(RemoveError::Changed {
            root: dir.to_path_buf(),
            path: dir.to_path_buf(),
            what: "was replaced while being opened",
        });
    }
    let root_mnt = mount_id(&root_fd).map_err(|e| RemoveError::Io {
        op: "statx",
        path: dir.to_path_buf(),
        source: e,
    })?;

    let mut walker = Walker {
        root: dir,
        root_dev: st.st_dev,
        root_mnt,
        stack: vec![Frame {
            name: OsString::new(),
            dev: st.st_dev,
            ino: st.st_ino,
            pending: Vec::new(),
            scans: 0,
        }],
    };
    walker.run(root_fd)?;

    std::fs::remove_dir(dir).map_err(|e| RemoveError::Io {
        op: "remove directory",
        path: dir.to_path_buf(),
        source: e,
    })
}

/// One directory on the path from the root to the current directory.
struct Frame {
    /// Name in the parent directory (empty for the root).
    name: OsString,
    /// Device and inode, to check `..` when coming back up.
    dev: libc::dev_t,
    ino: libc::ino_t,
    /// Subdirectories still to remove.
    pending: Vec<OsString>,
    /// How often this directory has been read.
    scans: u32,
}

struct Walker<'a> {
    root: &'a Path,
    root_dev: libc::dev_t,
    root_mnt: Option<u64>,
    stack: Vec<Frame>,
}

impl Walker<'_> {
    /// Empties the directory of the last frame (`cur` is its descriptor).
    fn run(&mut self, mut cur: OwnedFd) -> Result<(), RemoveError> {
        loop {
            let Some(top) = self.stack.last_mut() else {
                return Ok(());
            };
            if top.pending.is_empty() {
                if top.scans >= MAX_SCANS_PER_DIR {
                    return Err(self.changed(None, "keeps getting new entries"));
                }
                top.scans += 1;
                let subdirs = self.scan(&cur)?;
                if let Some(top) = self.stack.last_mut() {
                    top.pending = subdirs;
                }
            }
            let next = self.stack.last_mut().and_then(|t| t.pending.pop());
            match next {
                Some(name) => {
                    if let Some(child) = self.enter(&cur, &name)? {
                        cur = child;
                    }
                }
                None => {
                    // The directory is empty: go up and remove it.
                    let Some(done) = self.stack.pop() else {
                        return Ok(());
                    };
                    if self.stack.is_empty() {
                        return Ok(());
                    }
                    cur = self.leave(&cur, &done)?;
                }
            }
        }
    }

    /// Reads `cur`, unlinks every non-directory, returns the subdirectories.
    fn scan(&self, cur: &OwnedFd) -> Result<Vec<OsString>, RemoveError> {
        let here = || self.host_path(None);
        let read_fd = nix::fcntl::openat(
            cur,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.io("open", here(), e))?;
        let mut dir = Dir::from_fd(read_fd).map_err(|e| self.io("read directory", here(), e))?;
        let mut subdirs = Vec::new();
        let mut fixed_perms = false;
        for entry in dir.iter() {
            let entry = entry.map_err(|e| self.io("read directory", here(), e))?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let is_dir = match entry.file_type() {
                Some(t) => t == Type::Directory,
                None => match nix::sys::stat::fstatat(cur, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(st) => st.st_mode & libc::S_IFMT == libc::S_IFDIR,
                    Err(Errno::ENOENT) => continue,
                    Err(e) => return Err(self.io("stat", self.host_path(Some(name)), e)),
                },
            };
            if is_dir {
                subdirs.push(name.to_os_string());
                continue;
            }
            loop {
                match nix::unistd::unlinkat(cur, name, UnlinkatFlags::NoRemoveDir) {
                    Ok(()) | Err(Errno::ENOENT) => break,
                    Err(Errno::EISDIR) => {
                        subdirs.push(name.to_os_string());
                        break;
                    }
                    Err(Errno::EACCES) if !fixed_perms => {
                        fixed_perms = true;
                        self.make_writable(cur)?;
                    }
                    Err(e) => return Err(self.io("remove", self.host_path(Some(name)), e)),
                }
            }
        }
        Ok(subdirs)
    }

    /// Opens subdirectory `name` of `cur` and pushes its frame. `Ok(None)` if
    /// it vanished or stopped being a directory (then it was unlinked).
    fn enter(&mut self, cur: &OwnedFd, name: &OsStr) -> Result<Option<OwnedFd>, RemoveError> {
        let mut opened = open_dir_at(cur, name);
        if matches!(opened, Err(Errno::EACCES)) {
            // Only possible without CAP_DAC_OVERRIDE: make it enterable.
            // AT_SYMLINK_NOFOLLOW: if it was swapped for a symlink, this fails.
            let _ = nix::sys::stat::fchmodat(
                cur,
                name,
                Mode::from_bits_truncate(0o700),
                FchmodatFlags::NoFollowSymlink,
            );
            opened = open_dir_at(cur, name);
        }
        let child = match opened {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ENOTDIR | Errno::ELOOP) => {
                // Replaced by a non-directory since the scan: just unlink it.
                return match nix::unistd::unlinkat(cur, name, UnlinkatFlags::NoRemoveDir) {
                    Ok(()) | Err(Errno::ENOENT) => Ok(None),
                    Err(e) => Err(self.io("remove", self.host_path(Some(name)), e)),
                };
            }
            Err(e) => return Err(self.io("open directory", self.host_path(Some(name)), e)),
        };
        let st = fstat(&child).map_err(|e| self.io("stat", self.host_path(Some(name)), e))?;
        let mnt = mount_id(&child).map_err(|e| RemoveError::Io {
            op: "statx",
            path: self.host_path(Some(name)),
            source: e,
        })?;
        let other_mount = match (self.root_mnt, mnt) {
            (Some(a), Some(b)) => a != b,
            _ => false,
        };
        if st.st_dev != self.root_dev || other_mount {
            return Err(RemoveError::CrossesMount {
                root: self.root.to_path_buf(),
                path: self.host_path(Some(name)),
            });
        }
        self.stack.push(Frame {
            name: name.to_os_string(),
            dev: st.st_dev,
            ino: st.st_ino,
            pending: Vec::new(),
            scans: 0,
        });
        Ok(Some(child))
    }

    /// Goes from the (now empty) directory `cur` of frame `done` up to its
    /// parent (the new last frame), checks it is the same parent, and removes
    /// `done`. Returns the parent's descriptor.
    fn leave(&self, cur: &OwnedFd, done: &Frame) -> Result<OwnedFd, RemoveError> {
        let Some(parent_frame) = self.stack.last() else {
            return Err(self.changed(None, "lost track of its parent directory"));
        };
        let parent = open_dir_at(cur, OsStr::new(".."))
            .map_err(|e| self.io("open", self.host_path(None), e))?;
        let st = fstat(&parent).map_err(|e| self.io("stat", self.host_path(None), e))?;
        if st.st_dev != parent_frame.dev || st.st_ino != parent_frame.ino {
            return Err(self.changed(Some(&done.name), "was moved during removal"));
        }
        let mut fixed_perms = false;
        loop {
            match nix::unistd::unlinkat(&parent, done.name.as_os_str(), UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => return Ok(parent),
                Err(Errno::EACCES) if !fixed_perms => {
                    fixed_perms = true;
                    self.make_writable(&parent)?;
                }
                Err(Errno::ENOTEMPTY | Errno::EEXIST) => {
                    return Err(self.changed(Some(&done.name), "got new entries during removal"));
                }
                Err(e) => {
                    return Err(self.io("remove directory", self.host_path(Some(&done.name)), e));
                }
            }
        }
    }

    /// Adds `u+rwx` to a directory so its entries can be removed (needed only
    /// without `CAP_DAC_OVERRIDE`).
    fn make_writable(&self, fd: &OwnedFd) -> Result<(), RemoveError> {
        let st = fstat(fd).map_err(|e| self.io("stat", self.host_path(None), e))?;
        let mode = Mode::from_bits_truncate((st.st_mode & 0o7777) | 0o700);
        nix::sys::stat::fchmod(fd, mode)
            .map_err(|e| self.io("make writable", self.host_path(None), e))
    }

    /// The host path of the current directory (the last frame), plus `extra`.
    fn host_path(&self, extra: Option<&OsStr>) -> PathBuf {
        let mut p = self.root.to_path_buf();
        for f in self.stack.iter().skip(1) {
            p.push(&f.name);
        }
        if let Some(e) = extra {
            p.push(e);
        }
        p
    }

    fn io(&self, op: &'static str, path: PathBuf, e: Errno) -> RemoveError {
        RemoveError::Io {
            op,
            path,
            source: e.into(),
        }
    }

    fn changed(&self, extra: Option<&OsStr>, what: &'static str) -> RemoveError {
        RemoveError::Changed {
            root: self.root.to_path_buf(),
            path: self.host_path(extra),
            what,
        }
    }
}

/// Flags for opening a directory for reading without following a symlink.
const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_NOCTTY);

/// Opens directory `name` relative to `dirfd`, never following a symlink.
fn open_dir_at(dirfd: &OwnedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(dirfd, name, DIR_FLAGS, Mode::empty())
}

fn fstat(fd: &OwnedFd) -> nix::Result<FileStat> {
    nix::sys::stat::fstat(fd)
}

/// The mount id of an open file (`statx(STATX_MNT_ID)`), or `None` if the
/// kernel does not report it (before Linux 5.8).
fn mount_id(fd: &impl AsFd) -> io::Result<Option<u64>> {
    let mut stx = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: the descriptor is valid for the duration of the call (borrowed),
    // the path is a valid NUL-terminated empty string (with AT_EMPTY_PATH it
    // names the descriptor itself), and `stx` points to writable memory of the
    // right type and size.
    let rc = unsafe {
        libc::statx(
            fd.as_fd().as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_MNT_ID,
            stx.as_mut_ptr(),
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return if err.raw_os_error() == Some(libc::ENOSYS) {
            Ok(None)
        } else {
            Err(err)
        };
    }
    // SAFETY: `statx` is plain old data, it was zero-initialised and the
    // kernel filled it in on success.
    let stx = unsafe { stx.assume_init() };
    Ok((stx.stx_mask & libc::STATX_MNT_ID != 0).then_some(stx.stx_mnt_id))
}

/// Describes a file type for messages.
fn describe_mode(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "a regular file",
        libc::S_IFDIR => "a directory",
        libc::S_IFLNK => "a symlink",
        libc::S_IFIFO => "a FIFO",
        libc::S_IFSOCK => "a socket",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        _ => "a file of unknown type",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The per-directory mount check stops the walk even when the up-front
    /// `mounts_under` check is bypassed (a mount appearing mid-way).
    #[test]
    fn walk_refuses_to_enter_a_bind_mount() {
        // Under CI=true a test that cannot run fails instead of passing.
        let ci = std::env::var("CI").as_deref() == Ok("true");
        if !nix::unistd::geteuid().is_root() {
            assert!(!ci, "needs root, and CI=true: refusing to skip");
            eprintln!("skipped: needs root");
            return;
        }
        let tmp = std::env::temp_dir().join(format!("berth-remove-unit-{}", std::process::id()));
        let root = tmp.join("root");
        let src = tmp.join("src");
        std::fs::create_dir_all(root.join("a/mnt")).unwrap();
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("canary"), b"keep").unwrap();
        struct Guard(PathBuf, PathBuf);
        impl Drop for Guard {
            fn drop(&mut self) {
                let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
                let _ = std::fs::remove_dir_all(&self.1);
            }
        }
        let target = root.join("a/mnt");
        if nix::mount::mount(
            Some(&src),
            &target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .is_err()
        {
            let _ = std::fs::remove_dir_all(&tmp);
            assert!(!ci, "mount --bind failed, and CI=true: refusing to skip");
            eprintln!("skipped: mount not permitted");
            return;
        }
        let _guard = Guard(target.clone(), tmp.clone());
        let md = std::fs::symlink_metadata(&root).unwrap();
        let err = remove_checked_tree(&root, &md).unwrap_err();
        match &err {
            RemoveError::CrossesMount { path, .. } => assert_eq!(path, &target),
            other => panic!("unexpected: {other}"),
        }
        assert_eq!(std::fs::read(src.join("canary")).unwrap(), b"keep");
        assert_eq!(std::fs::read(target.join("canary")).unwrap(), b"keep");
    }
}
