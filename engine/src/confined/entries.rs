//! Entries the spec manages in a root (`files:`): what is at a path, and
//! writing files, directories and links with exact attributes, and removing
//! them. Same rules as the rest of [`Root`]: parents are resolved inside the
//! root (`openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)`),
//! the final component is never followed, parents are never created, and a
//! file or link replaces what is there by `rename` from a temp file in the
//! same directory, so the old inode (possibly a hard link shared with a host
//! file) is never written to.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FchmodatFlags, Mode};
use nix::unistd::{Gid, Uid, UnlinkatFlags};

use super::{
    ConfinedError, FileKind, RelPath, Root, TEMP_NAME_RETRIES, kind_of, remove, remove_stale_temps,
    temp_name,
};

/// What is at a path, seen without following it (`lstat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryStat {
    /// The kind of entry.
    pub kind: FileKind,
    /// The permission bits, setuid/setgid/sticky included (`0o7777`).
    pub mode: u32,
    /// The owner, as stored on the host (shifted roots: the shifted id).
    pub uid: u32,
    /// The group, as stored on the host.
    pub gid: u32,
    /// The size in bytes.
    pub size: u64,
    /// How many hard links the inode has.
    pub nlink: u64,
}

impl Root {
    /// What is at `rel` (its final component not followed, the parents
    /// resolved inside the root); `Ok(None)` if nothing is, or a parent is
    /// missing. A parent that is not a directory is an error.
    pub fn lstat(&self, rel: &str) -> Result<Option<EntryStat>, ConfinedError> {
        let p = self.parse(rel)?;
        let Some(name) = p.name() else {
            let st = super::fd_stat(&self.fd).map_err(|e| self.io("stat", &p, e))?;
            return Ok(Some(entry_stat(&st)));
        };
        let parent = match self.open_parent(&p, OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(ConfinedError::ParentMissing { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        match nix::sys::stat::fstatat(&parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(entry_stat(&st))),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(self.io("stat", &p, e)),
        }
    }

    /// Writes the regular file `rel` with exactly `contents`, `mode`, `uid`
    /// and `gid`: a temp file in the same directory (created `0600`, then
    /// `fchown`, `fchmod`, `fsync`) renamed over the target, then the
    /// directory `fsync`ed. A file, a link or a special file at `rel` is
    /// replaced (never written through); a directory is an error (the
    /// caller removes it first when the spec says `replace: true`).
    pub fn write_file_as(
        &self,
        rel: &str,
        contents: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(), ConfinedError> {
        let (p, parent, name) = self.parent_for_replace(rel)?;
        self.replace_with_file(&p, &parent, &name, contents, mode, uid, gid)
    }

    /// The temp-file-and-rename write of [`Self::write_file_as`] into the
    /// open `parent`, whose entry `name` the caller has checked is no
    /// directory: shared with [`Self::write_atomic`].
    #[allow(clippy::too_many_arguments)]
    pub(super) fn replace_with_file(
        &self,
        p: &RelPath,
        parent: &OwnedFd,
        name: &str,
        contents: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(), ConfinedError> {
        let (tmp_name, tmp_fd) = loop_create(name, |candidate| {
            nix::fcntl::openat(
                parent,
                candidate,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
        })
        .map_err(|e| self.io("create temp file for", p, e))?;
        let result = (|| {
            let mut file = std::fs::File::from(tmp_fd);
            file.write_all(contents).map_err(|e| ConfinedError::Io {
                op: "write temp file for",
                path: p.display.clone(),
                root: self.path.clone(),
                source: e,
            })?;
            nix::unistd::fchown(&file, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
                .map_err(|e| self.io("set owner of temp file for", p, e))?;
            nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(mode & 0o7777))
                .map_err(|e| self.io("set mode of temp file for", p, e))?;
            nix::unistd::fsync(&file).map_err(|e| self.io("fsync temp file for", p, e))?;
            drop(file);
            self.rename_into_place(p, parent, &tmp_name, name)
        })();
        self.finish_replace(p, parent, &tmp_name, name, result)
    }

    /// Makes `rel` a symbolic link to `target` (stored verbatim), owned by
    /// `uid`/`gid`: a temp link renamed over what is there (a file, a link
    /// or a special file; a directory is an error).
    pub fn make_link(
        &self,
        rel: &str,
        target: &Path,
        uid: u32,
        gid: u32,
    ) -> Result<(), ConfinedError> {
        let (p, parent, name) = self.parent_for_replace(rel)?;
        let (tmp_name, ()) = loop_create(&name, |candidate| {
            nix::unistd::symlinkat(target, &parent, candidate)
        })
        .map_err(|e| self.io("create temp link for", &p, e))?;
        let result = (|| {
            nix::unistd::fchownat(
                &parent,
                tmp_name.as_str(),
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.io("set owner of temp link for", &p, e))?;
            self.rename_into_place(&p, &parent, &tmp_name, &name)
        })();
        self.finish_replace(&p, &parent, &tmp_name, &name, result)
    }

    /// Makes `rel` a directory with `mode`, `uid` and `gid`: created (mode
    /// `0700` until its owner and mode are set) when absent, its owner and
    /// mode set when it is a directory already. Anything else there is an
    /// error.
    pub fn make_dir_as(
        &self,
        rel: &str,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(), ConfinedError> {
        let p = self.parse(rel)?;
        let Some(name) = p.name() else {
            return Err(self.invalid(rel, "cannot create the machine root itself"));
        };
        let parent = self.open_parent(&p, OFlag::O_RDONLY)?;
        match nix::sys::stat::mkdirat(&parent, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(self.io("create directory", &p, e)),
        }
        self.set_attributes_of(&p, &parent, name, FileKind::Dir, mode, uid, gid)?;
        nix::unistd::fsync(&parent).map_err(|e| self.io("fsync parent directory of", &p, e))
    }

    /// Sets the owner and mode of the regular file or directory `rel`
    /// (never of a link, nor through one).
    pub fn set_attributes(
        &self,
        rel: &str,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(), ConfinedError> {
        let p = self.parse(rel)?;
        let Some(name) = p.name() else {
            return Err(self.invalid(rel, "cannot change the machine root itself"));
        };
        let parent = self.open_parent(&p, OFlag::O_PATH)?;
        let kind = match nix::sys::stat::fstatat(&parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => kind_of(st.st_mode),
            Err(e) => return Err(self.io("stat", &p, e)),
        };
        self.set_attributes_of(&p, &parent, name, kind, mode, uid, gid)
    }

    /// Removes the entry at `rel`, never following it: a file, a link or a
    /// special file is unlinked; a directory is removed when empty, and with
    /// everything in it when `recursive` (the walk never follows a link nor
    /// enters another mount). `Ok(false)` when nothing was there.
    pub fn remove_entry(&self, rel: &str, recursive: bool) -> Result<bool, ConfinedError> {
        let p = self.parse(rel)?;
        let Some(name) = p.name() else {
            return Err(self.invalid(rel, "cannot remove the machine root itself"));
        };
        let parent = match self.open_parent(&p, OFlag::O_RDONLY) {
            Ok(fd) => fd,
            Err(ConfinedError::ParentMissing { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let kind = match nix::sys::stat::fstatat(&parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => kind_of(st.st_mode),
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(self.io("stat", &p, e)),
        };
        if kind == FileKind::Dir {
            if recursive {
                // One component, no link followed, no mount crossed.
                let how = OpenHow::new()
                    .flags(
                        OFlag::O_RDONLY
                            | OFlag::O_DIRECTORY
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC
                            | OFlag::O_NOCTTY,
                    )
                    .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_XDEV);
                let dir = nix::fcntl::openat2(&parent, name, how)
                    .map_err(|e| self.lookup_err(&p, e, "open directory"))?;
                let shown = self.path.join(p.full_rel());
                remove::empty_dir_at(dir, &shown).map_err(|e| ConfinedError::Io {
                    op: "empty directory",
                    path: p.display.clone(),
                    root: self.path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?;
            }
            match nix::unistd::unlinkat(&parent, name, UnlinkatFlags::RemoveDir) {
                Ok(()) => {}
                Err(Errno::ENOENT) => return Ok(false),
                Err(e @ (Errno::ENOTEMPTY | Errno::EEXIST)) => {
                    return Err(self.io("remove directory (it is not empty)", &p, e));
                }
                Err(e) => return Err(self.io("remove directory", &p, e)),
            }
        } else {
            match nix::unistd::unlinkat(&parent, name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) => {}
                Err(Errno::ENOENT) => return Ok(false),
                Err(e) => return Err(self.io("remove", &p, e)),
            }
        }
        nix::unistd::fsync(&parent).map_err(|e| self.io("fsync parent directory of", &p, e))?;
        Ok(true)
    }

    // ---- helpers ----

    /// The parsed path, its parent directory (opened for `fsync`) and its
    /// final name, for a write that replaces what is there: refused when a
    /// directory is there.
    fn parent_for_replace(&self, rel: &str) -> Result<(RelPath, OwnedFd, String), ConfinedError> {
        let p = self.parse(rel)?;
        let Some(name) = p.name().map(str::to_owned) else {
            return Err(self.invalid(rel, "cannot write to the machine root itself"));
        };
        let parent = self.open_parent(&p, OFlag::O_RDONLY)?;
        match nix::sys::stat::fstatat(&parent, name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if kind_of(st.st_mode) == FileKind::Dir => {
                return Err(self.not_a_file(&p, st.st_mode));
            }
            Ok(_) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(self.io("stat", &p, e)),
        }
        Ok((p, parent, name))
    }

    /// `renameat` of the temp entry over the target.
    fn rename_into_place(
        &self,
        p: &RelPath,
        parent: &OwnedFd,
        tmp_name: &str,
        name: &str,
    ) -> Result<(), ConfinedError> {
        nix::fcntl::renameat(parent, tmp_name, parent, name).map_err(|e| {
            if e == Errno::EISDIR || e == Errno::ENOTEMPTY {
                ConfinedError::NotAFile {
                    path: p.display.clone(),
                    root: self.path.clone(),
                    found: "a directory",
                }
            } else {
                self.io("rename temp file over", p, e)
            }
        })
    }

    /// After a replacing write: the temp entry removed on failure, stale
    /// temps of earlier runs removed, the directory `fsync`ed on success.
    fn finish_replace(
        &self,
        p: &RelPath,
        parent: &OwnedFd,
        tmp_name: &str,
        name: &str,
        result: Result<(), ConfinedError>,
    ) -> Result<(), ConfinedError> {
        if let Err(e) = result {
            let _ = nix::unistd::unlinkat(parent, tmp_name, UnlinkatFlags::NoRemoveDir);
            return Err(e);
        }
        remove_stale_temps(parent, name);
        nix::unistd::fsync(parent).map_err(|e| self.io("fsync parent directory of", p, e))
    }

    /// `fchownat` then `fchmodat` (chown clears setuid bits, so it goes
    /// first) of `name` in `parent`, neither following a link; only a
    /// regular file or a directory.
    #[allow(clippy::too_many_arguments)]
    fn set_attributes_of(
        &self,
        p: &RelPath,
        parent: &OwnedFd,
        name: &str,
        expected: FileKind,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(), ConfinedError> {
        let st = nix::sys::stat::fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| self.io("stat", p, e))?;
        let kind = kind_of(st.st_mode);
        if kind != expected || !matches!(kind, FileKind::File | FileKind::Dir) {
            return Err(ConfinedError::NotAFile {
                path: p.display.clone(),
                root: self.path.clone(),
                found: super::describe_mode(st.st_mode),
            });
        }
        nix::unistd::fchownat(
            parent,
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.io("set owner of", p, e))?;
        nix::sys::stat::fchmodat(
            parent,
            name,
            Mode::from_bits_truncate(mode & 0o7777),
            FchmodatFlags::NoFollowSymlink,
        )
        .map_err(|e| self.io("set mode of", p, e))
    }
}

/// Creates a temp entry next to `name` with `create`, retrying when the
/// random name is taken; returns its name and what `create` returned.
fn loop_create<T>(
    name: &str,
    mut create: impl FnMut(&str) -> nix::Result<T>,
) -> nix::Result<(String, T)> {
    let mut attempt = 0;
    loop {
        let candidate = temp_name(name);
        match create(candidate.as_str()) {
            Ok(value) => return Ok((candidate, value)),
            Err(Errno::EEXIST) if attempt < TEMP_NAME_RETRIES => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

fn entry_stat(st: &nix::sys::stat::FileStat) -> EntryStat {
    EntryStat {
        kind: kind_of(st.st_mode),
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        size: u64::try_from(st.st_size).unwrap_or(0),
        #[allow(clippy::useless_conversion)]
        nlink: u64::from(st.st_nlink),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        let root = Root::open(dir.path()).unwrap();
        (dir, root)
    }

    fn me() -> (u32, u32) {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    }

    #[test]
    fn a_file_is_written_with_exact_mode_and_replaces_a_link_without_following_it() {
        let (dir, root) = root();
        let outside = tempfile::tempdir().unwrap();
        let host = outside.path().join("host");
        std::fs::write(&host, "host\n").unwrap();
        std::os::unix::fs::symlink(&host, dir.path().join("etc/app.conf")).unwrap();
        let (uid, gid) = me();
        root.write_file_as("/etc/app.conf", b"new\n", 0o640, uid, gid)
            .unwrap();
        assert_eq!(std::fs::read_to_string(&host).unwrap(), "host\n");
        let st = root.lstat("/etc/app.conf").unwrap().unwrap();
        assert_eq!((st.kind, st.mode, st.size), (FileKind::File, 0o640, 4));
        root.set_attributes("/etc/app.conf", 0o600, uid, gid)
            .unwrap();
        assert_eq!(root.lstat("/etc/app.conf").unwrap().unwrap().mode, 0o600);
        // A directory is not replaced by a file.
        root.make_dir_as("/etc/app.d", 0o750, uid, gid).unwrap();
        let st = root.lstat("/etc/app.d").unwrap().unwrap();
        assert_eq!((st.kind, st.mode), (FileKind::Dir, 0o750));
        assert!(
            root.write_file_as("/etc/app.d", b"x", 0o644, uid, gid)
                .is_err()
        );
        assert!(
            root.make_link("/etc/app.d", Path::new("/x"), uid, gid)
                .is_err()
        );
    }

    #[test]
    fn links_are_made_and_replaced_and_entries_removed_confined() {
        let (dir, root) = root();
        let (uid, gid) = me();
        root.make_link("/etc/current", Path::new("/srv/v1"), uid, gid)
            .unwrap();
        root.make_link("/etc/current", Path::new("/srv/v2"), uid, gid)
            .unwrap();
        assert_eq!(
            root.read_link("/etc/current").unwrap().unwrap(),
            Path::new("/srv/v2")
        );
        // A parent that is a link out of the root resolves inside it.
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("etc/out")).unwrap();
        assert!(matches!(
            root.write_file_as("/etc/out/f", b"x", 0o644, uid, gid),
            Err(ConfinedError::ParentMissing { .. })
        ));
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        // Removal: a link (not its target), an empty directory, a tree.
        assert!(root.remove_entry("/etc/out", false).unwrap());
        assert!(outside.path().exists());
        root.make_dir_as("/etc/tree", 0o755, uid, gid).unwrap();
        root.make_dir_as("/etc/tree/sub", 0o755, uid, gid).unwrap();
        root.write_file_as("/etc/tree/sub/f", b"x", 0o644, uid, gid)
            .unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("etc/tree/link")).unwrap();
        assert!(root.remove_entry("/etc/tree", false).is_err());
        assert!(root.remove_entry("/etc/tree", true).unwrap());
        assert!(root.lstat("/etc/tree").unwrap().is_none());
        assert!(outside.path().exists());
        assert!(!root.remove_entry("/etc/tree", true).unwrap());
        assert!(!root.remove_entry("/nope/x", false).unwrap());
    }
}
