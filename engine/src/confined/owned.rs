//! Confined operations for files a guest's user owns (`~/.ssh` and its
//! `authorized_keys`), metadata reads, and reads inside a *running* guest
//! through `/proc/PID/root`.
//!
//! A user's home is writable by that user: `~/.ssh` may be swapped for a
//! symlink at any time. So the directory is opened with `O_NOFOLLOW` and
//! everything below it happens through its descriptor (`mkdirat`,
//! `fchown`, `fchmod`, a temp file and `renameat` in it): no symlink at
//! `.ssh` or at the file is ever followed, and berth never changes the
//! owner or mode of anything but the directory and file it made or found
//! as a real directory and regular file.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

use super::{ConfinedError, EAGAIN_RETRIES, FileKind, Root, fd_stat, kind_of};

/// What `lstat` says of a path inside a root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Its kind (a symlink is not followed).
    pub kind: FileKind,
    /// Its permission bits (`0o600`).
    pub mode: u32,
    /// Its owner.
    pub uid: u32,
    /// Its group.
    pub gid: u32,
}

impl Root {
    /// The kind, permission bits and owner of the final component of `rel`,
    /// not following it; parents resolve inside the root. `Ok(None)` if it
    /// is absent (or a parent is).
    pub fn meta(&self, rel: &str) -> Result<Option<Meta>, ConfinedError> {
        let p = self.parse(rel)?;
        let Some(name) = p.name() else {
            let st = fd_stat(&self.fd).map_err(|e| self.io("stat", &p, e))?;
            return Ok(Some(meta_of(&st)));
        };
        let parent = match self.open_parent(&p, OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(ConfinedError::ParentMissing { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        match nix::sys::stat::fstatat(&parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(meta_of(&st))),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(self.io("stat", &p, e)),
        }
    }

    /// Writes `contents` to `DIR/FILE` (`dir` a path inside the root, `file`
    /// a plain name), both owned by `uid`:`gid`, the directory with
    /// `dir_mode` and the file with `file_mode`, whatever they had before.
    ///
    /// The parent of `dir` resolves inside the root (it is the user's home,
    /// which must exist). `dir` itself is created if absent and must
    /// otherwise be a real directory: a symlink there is refused, never
    /// followed. The file is replaced atomically (a temp file in `dir`,
    /// `fsync`, `renameat`); a directory or special file at its place is
    /// refused.
    #[allow(clippy::too_many_arguments)]
    pub fn write_owned(
        &self,
        dir: &str,
        dir_mode: u32,
        file: &str,
        contents: &[u8],
        file_mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(), ConfinedError> {
        let d = self.parse(dir)?;
        let Some(dir_name) = d.name() else {
            return Err(self.invalid(dir, "cannot use the machine root itself"));
        };
        if file.is_empty() || file.contains('/') || file == "." || file == ".." {
            return Err(self.invalid(file, "a file name without '/'"));
        }
        let f = self.parse(&format!("{}/{file}", d.display))?;
        let parent = self.open_parent(&d, OFlag::O_PATH)?;
        match nix::sys::stat::fstatat(&parent, dir_name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if kind_of(st.st_mode) == FileKind::Dir => {}
            Ok(st) => return Err(self.not_a_dir(&d, st.st_mode)),
            Err(Errno::ENOENT) => {
                match nix::sys::stat::mkdirat(&parent, dir_name, Mode::from_bits_truncate(0o700)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(self.io("create directory", &d, e)),
                }
            }
            Err(e) => return Err(self.io("stat", &d, e)),
        }
        let dir_fd = nix::fcntl::openat(
            &parent,
            dir_name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::ELOOP | Errno::ENOTDIR => ConfinedError::InvalidPath {
                path: d.display.clone(),
                root: self.path.clone(),
                reason: "it is a symlink, which berth never follows here",
            },
            e => self.io("open directory", &d, e),
        })?;
        nix::unistd::fchown(&dir_fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .map_err(|e| self.io("set owner of", &d, e))?;
        nix::sys::stat::fchmod(&dir_fd, Mode::from_bits_truncate(dir_mode & 0o7777))
            .map_err(|e| self.io("set mode of", &d, e))?;

        match nix::sys::stat::fstatat(&dir_fd, file, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if matches!(kind_of(st.st_mode), FileKind::Dir | FileKind::Other) => {
                return Err(self.not_a_file(&f, st.st_mode));
            }
            Ok(_) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(self.io("stat", &f, e)),
        }
        // The directory is right: the file goes in as every confined file
        // write does (temp file, owner, mode, fsync, rename, directory fsync).
        drop(dir_fd);
        self.write_file_as(&f.display, contents, file_mode, uid, gid)
    }

    fn not_a_dir(&self, p: &super::RelPath, mode: libc::mode_t) -> ConfinedError {
        ConfinedError::InvalidPath {
            path: p.display.clone(),
            root: self.path.clone(),
            reason: if kind_of(mode) == FileKind::Symlink {
                "it is a symlink, which berth never follows here"
            } else {
                "it is not a directory"
            },
        }
    }
}

fn meta_of(st: &nix::sys::stat::FileStat) -> Meta {
    Meta {
        kind: kind_of(st.st_mode),
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
    }
}

/// A running guest's own view of its files: `/proc/PID/root` of its init,
/// with every lookup below it resolved as if that were `/`
/// (`RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`). Unlike [`Root`], lookups
/// cross the guest's mounts (its `/run` and the credential filesystems
/// under it are mounts of their own), but never leave its root: an absolute
/// symlink the guest planted resolves inside the guest, not on the host.
#[derive(Debug)]
pub struct GuestView {
    fd: OwnedFd,
    path: std::path::PathBuf,
}

impl GuestView {
    /// Opens `proc_root` (`/proc/PID/root`): the guest's root directory.
    pub fn open(proc_root: &Path) -> Result<GuestView, ConfinedError> {
        let path = proc_root.to_path_buf();
        let fd = nix::fcntl::open(
            &proc_root.join("."),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ConfinedError::OpenRoot {
            root: path.clone(),
            source: e.into(),
        })?;
        Ok(GuestView { fd, path })
    }

    fn resolve(&self, rel: &str, flags: OFlag) -> nix::Result<OwnedFd> {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let rel = rel.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        let mut tries = 0;
        loop {
            match nix::fcntl::openat2(&self.fd, rel, how) {
                Err(Errno::EAGAIN) if tries < EAGAIN_RETRIES => tries += 1,
                r => return r,
            }
        }
    }

    fn io(&self, op: &'static str, rel: &str, e: Errno) -> ConfinedError {
        ConfinedError::Io {
            op,
            path: rel.to_owned(),
            root: self.path.clone(),
            source: e.into(),
        }
    }

    /// Reads the regular file `rel` (at most `limit` bytes); `Ok(None)` if it
    /// is absent. A FIFO or device is refused without being opened.
    pub fn read(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>, ConfinedError> {
        if rel.contains('\0') || rel.split('/').any(|c| c == "..") {
            return Err(ConfinedError::InvalidPath {
                path: rel.to_owned(),
                root: self.path.clone(),
                reason: "'..' components and NUL bytes are not allowed",
            });
        }
        let pfd = match self.resolve(rel, OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(self.io("open", rel, e)),
        };
        let st = fd_stat(&pfd).map_err(|e| self.io("stat", rel, e))?;
        if kind_of(st.st_mode) != FileKind::File {
            return Err(ConfinedError::NotAFile {
                path: rel.to_owned(),
                root: self.path.clone(),
                found: super::describe_mode(st.st_mode),
            });
        }
        let reopened = nix::fcntl::open(
            format!("/proc/self/fd/{}", pfd.as_raw_fd()).as_str(),
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.io("open", rel, e))?;
        let mut buf = Vec::new();
        std::fs::File::from(reopened)
            .take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| ConfinedError::Io {
                op: "read",
                path: rel.to_owned(),
                root: self.path.clone(),
                source: e,
            })?;
        if buf.len() as u64 > limit {
            return Err(ConfinedError::TooLarge {
                path: rel.to_owned(),
                root: self.path.clone(),
                size: buf.len() as u64,
                limit,
            });
        }
        Ok(Some(buf))
    }

    /// The names in the directory `rel`, sorted; `Ok(None)` if it is absent.
    pub fn list_dir(&self, rel: &str) -> Result<Option<Vec<String>>, ConfinedError> {
        let fd = match self.resolve(
            rel,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NONBLOCK,
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(self.io("open directory", rel, e)),
        };
        let mut dir = nix::dir::Dir::from_fd(fd).map_err(|e| self.io("read directory", rel, e))?;
        let mut names: Vec<String> = dir
            .iter()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "." && n != "..")
            .collect();
        names.sort();
        Ok(Some(names))
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    use super::*;

    fn ids() -> (u32, u32) {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    }

    #[test]
    fn keys_are_written_with_their_modes_and_owner_and_a_drifted_mode_is_reset() {
        let top = tempfile::tempdir().unwrap();
        fs::create_dir_all(top.path().join("home/alice")).unwrap();
        let root = Root::open(top.path()).unwrap();
        let (uid, gid) = ids();
        root.write_owned(
            "/home/alice/.ssh",
            0o700,
            "authorized_keys",
            b"k1\n",
            0o600,
            uid,
            gid,
        )
        .unwrap();
        let dir = top.path().join("home/alice/.ssh");
        let file = dir.join("authorized_keys");
        assert_eq!(fs::read(&file).unwrap(), b"k1\n");
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(fs::metadata(&file).unwrap().uid(), uid);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        root.write_owned(
            "/home/alice/.ssh",
            0o700,
            "authorized_keys",
            b"k2\n",
            0o600,
            uid,
            gid,
        )
        .unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"k2\n");
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let meta = root
            .meta("/home/alice/.ssh/authorized_keys")
            .unwrap()
            .unwrap();
        assert_eq!((meta.kind, meta.mode), (FileKind::File, 0o600));
        assert_eq!(root.meta("/home/nobody/x").unwrap(), None);
    }

    #[test]
    fn a_symlinked_ssh_dir_is_refused_and_a_symlinked_file_replaced_never_followed() {
        let top = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir_all(top.path().join("root/home/alice")).unwrap();
        let root = Root::open(&top.path().join("root")).unwrap();
        let (uid, gid) = ids();
        // ~/.ssh a link to a host directory: refused, nothing written there.
        symlink(outside.path(), top.path().join("root/home/alice/.ssh")).unwrap();
        let err = root
            .write_owned(
                "/home/alice/.ssh",
                0o700,
                "authorized_keys",
                b"k\n",
                0o600,
                uid,
                gid,
            )
            .unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
        // authorized_keys a link to a host file: the link is replaced.
        fs::remove_file(top.path().join("root/home/alice/.ssh")).unwrap();
        fs::create_dir(top.path().join("root/home/alice/.ssh")).unwrap();
        let host_file = outside.path().join("precious");
        fs::write(&host_file, b"host").unwrap();
        symlink(
            &host_file,
            top.path().join("root/home/alice/.ssh/authorized_keys"),
        )
        .unwrap();
        root.write_owned(
            "/home/alice/.ssh",
            0o700,
            "authorized_keys",
            b"k\n",
            0o600,
            uid,
            gid,
        )
        .unwrap();
        assert_eq!(fs::read(&host_file).unwrap(), b"host");
        let written = top.path().join("root/home/alice/.ssh/authorized_keys");
        assert!(fs::symlink_metadata(&written).unwrap().is_file());
    }

    #[test]
    fn a_guest_view_resolves_absolute_links_inside_the_guest() {
        let top = tempfile::tempdir().unwrap();
        let guest = top.path().join("guest");
        fs::create_dir_all(guest.join("run/credentials/@system")).unwrap();
        fs::create_dir_all(guest.join("etc")).unwrap();
        fs::write(guest.join("etc/hostname"), b"inside\n").unwrap();
        // An absolute link: inside the view it means the guest's /etc/hostname.
        symlink("/etc/hostname", guest.join("run/credentials/@system/db")).unwrap();
        fs::write(guest.join("run/credentials/@system/plain"), b"v").unwrap();
        let view = GuestView::open(&guest).unwrap();
        assert_eq!(
            view.read("/run/credentials/@system/db", 64)
                .unwrap()
                .unwrap(),
            b"inside\n"
        );
        assert_eq!(
            view.list_dir("/run/credentials/@system").unwrap().unwrap(),
            ["db", "plain"]
        );
        assert_eq!(
            view.read("/run/credentials/@system/none", 64).unwrap(),
            None
        );
        assert!(view.read("/run/../../etc/passwd", 64).is_err());
        let big = view.read("/etc/hostname", 3).unwrap_err();
        assert!(big.to_string().contains("too large"), "{big}");
    }
}
