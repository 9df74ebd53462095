//! dnf/rpm: the installed set from the root's rpm database.
//!
//! The database is read with the host's `rpm -qa`, but never in place: its
//! files are first copied out of the root into a private temporary
//! directory, each path component opened with `O_NOFOLLOW` (a guest cannot
//! point a database file or directory at a host file by a symlink, and the
//! host's rpm never writes into the root: rpm creates a database where it
//! finds none, and sqlite writes its `-shm`/`-wal` files beside it).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use berth_schema::Machine;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstat};

use super::PackageManager;
use crate::confined::Root;
use crate::drivers::bootstrap::Dnf as DnfBootstrap;
use crate::error::EngineError;
use crate::host::{Cmd, Host};

/// Fedora's dnf over rpm.
#[derive(Debug, Clone, Copy)]
pub struct Dnf;

/// Where rpm databases live, most likely first: Fedora 36 and later, older
/// Fedora, and Debian's rpm default (`~/.rpmdb`, for roots bootstrapped by a
/// Debian dnf without berth's `%_dbpath`).
const DB_DIRS: &[&str] = &["usr/lib/sysimage/rpm", "var/lib/rpm", "root/.rpmdb"];

/// A database directory holds one of these: sqlite (Fedora 33+), ndb, bdb.
const DB_MAIN_FILES: &[&str] = &["rpmdb.sqlite", "Packages.db", "Packages"];

/// The largest database file berth copies out of a root.
const MAX_DB_FILE: u64 = 4 * 1024 * 1024 * 1024;

impl PackageManager for Dnf {
    fn name(&self) -> &'static str {
        "dnf"
    }

    fn installed(&self, host: &dyn Host, root: &Root) -> Result<BTreeSet<String>, EngineError> {
        for dir in DB_DIRS {
            let Some(files) = open_db_dir(root.path(), dir)? else {
                continue;
            };
            let copy = TempDir::new()?;
            for (name, fd) in files {
                copy_out(fd, &copy.0.join(&name)).map_err(|e| {
                    EngineError::io(
                        format!("copying /{dir}/{name} out of {}", root.path().display()),
                        e,
                    )
                })?;
            }
            return query(host, &copy.0, root.path(), dir);
        }
        Ok(BTreeSet::new())
    }

    fn install(&self, packages: &[String]) -> Vec<Vec<String>> {
        vec![dnf_in_guest("install", packages)]
    }

    fn guest_program(&self) -> &'static str {
        "/usr/bin/dnf"
    }

    fn remove(&self, packages: &[String]) -> Vec<Vec<String>> {
        vec![dnf_in_guest("remove", packages)]
    }

    fn host_install(
        &self,
        host: &dyn Host,
        root: &Path,
        machine: &Machine,
        packages: &[String],
    ) -> Option<Vec<Vec<String>>> {
        DnfBootstrap::host_change(host, machine, root, true, packages)
            .ok()
            .map(|cmd| vec![cmd])
    }

    fn host_remove(
        &self,
        host: &dyn Host,
        root: &Path,
        machine: &Machine,
        packages: &[String],
    ) -> Option<Vec<Vec<String>>> {
        DnfBootstrap::host_change(host, machine, root, false, packages)
            .ok()
            .map(|cmd| vec![cmd])
    }
}

/// `dnf VERB -y -- PACKAGES`, run inside the machine with its own dnf and
/// its own repositories.
fn dnf_in_guest(verb: &str, packages: &[String]) -> Vec<String> {
    let mut cmd: Vec<String> = ["dnf", verb, "-y", "--"].map(str::to_owned).to_vec();
    cmd.extend(packages.iter().cloned());
    cmd
}

/// Opens `rel` (a relative path of plain directory names) under the host
/// directory `root`, refusing a symlink at every component.
fn open_dir_nofollow(root: &Path, rel: &str) -> Result<Option<OwnedFd>, io::Error> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut fd = nix::fcntl::open(root, flags, Mode::empty())?;
    for part in rel.split('/') {
        fd = match openat(&fd, part, flags, Mode::empty()) {
            Ok(next) => next,
            // Absent, a symlink (ELOOP) or not a directory: no database here.
            Err(
                nix::errno::Errno::ENOENT | nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR,
            ) => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
    }
    Ok(Some(fd))
}

/// The database files (regular files only, opened for reading) in the
/// directory `rel` of the root, or None when it holds no database.
fn open_db_dir(root: &Path, rel: &str) -> Result<Option<Vec<(String, OwnedFd)>>, EngineError> {
    let context = || format!("reading /{rel} in {}", root.display());
    let Some(dir_fd) = open_dir_nofollow(root, rel).map_err(|e| EngineError::io(context(), e))?
    else {
        return Ok(None);
    };
    let read_fd = openat(
        &dir_fd,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| EngineError::io(context(), e.into()))?;
    let mut dir =
        nix::dir::Dir::from_fd(read_fd).map_err(|e| EngineError::io(context(), e.into()))?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(|e| EngineError::io(context(), e.into()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // bdb's environment files and rpm's lock are not part of the data.
        if name == "." || name == ".." || name.starts_with("__db.") || name == ".rpm.lock" {
            continue;
        }
        names.push(name);
    }
    let mut files = Vec::new();
    for name in names {
        let fd = match openat(
            &dir_fd,
            name.as_str(),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            // A symlink, or gone since the listing: not a database file.
            Err(nix::errno::Errno::ELOOP | nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(EngineError::io(context(), e.into())),
        };
        let st = fstat(&fd).map_err(|e| EngineError::io(context(), e.into()))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            continue;
        }
        if st.st_size as u64 > MAX_DB_FILE {
            return Err(EngineError::io(
                context(),
                io::Error::other(format!("{name} is larger than {MAX_DB_FILE} bytes")),
            ));
        }
        files.push((name, fd));
    }
    if !files
        .iter()
        .any(|(name, _)| DB_MAIN_FILES.contains(&name.as_str()))
    {
        return Ok(None);
    }
    Ok(Some(files))
}

/// Copies the open file `fd` to the new file `to`.
fn copy_out(fd: OwnedFd, to: &Path) -> Result<(), io::Error> {
    let mut from = fs::File::from(fd);
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)?;
    io::copy(&mut io::Read::take(&mut from, MAX_DB_FILE), &mut out)?;
    Ok(())
}

/// `rpm --dbpath COPY -qa`: the installed package names (without rpm's
/// `gpg-pubkey` pseudo-packages).
fn query(
    host: &dyn Host,
    copy: &Path,
    root: &Path,
    dir: &str,
) -> Result<BTreeSet<String>, EngineError> {
    let argv = [
        "rpm".to_owned(),
        format!("--dbpath={}", copy.display()),
        "-qa".to_owned(),
        "--qf".to_owned(),
        "%{NAME}\\n".to_owned(),
    ];
    let output = host.run(&Cmd::new(argv.clone())).map_err(|e| {
        EngineError::State(format!(
            "running rpm to read the installed packages (install the Debian package `rpm`): {e}"
        ))
    })?;
    if !output.success() {
        return Err(EngineError::Command {
            what: format!(
                "rpm -qa on a copy of /{dir} of {} ({})",
                root.display(),
                argv.join(" ")
            ),
            status: output.status.clone(),
            output: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(names_from_query(&String::from_utf8_lossy(&output.stdout)))
}

/// The package names in `rpm -qa --qf '%{NAME}\n'` output.
pub(crate) fn names_from_query(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|name| !name.is_empty() && *name != "gpg-pubkey")
        .map(str::to_owned)
        .collect()
}

/// A private (0700) temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, EngineError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "berth-rpmdb-{}-{nanos:08x}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| EngineError::io(format!("creating {}", path.display()), e))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_commands() {
        let pkgs = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(
            Dnf.install(&pkgs),
            [["dnf", "install", "-y", "--", "a", "b"]]
        );
        assert_eq!(Dnf.remove(&pkgs), [["dnf", "remove", "-y", "--", "a", "b"]]);
        assert_eq!(Dnf.guest_program(), "/usr/bin/dnf");
    }

    #[test]
    fn query_output_without_pubkeys() {
        let set = names_from_query("bash\ngpg-pubkey\n\nsystemd\nbash\n");
        assert_eq!(set.into_iter().collect::<Vec<_>>(), ["bash", "systemd"]);
    }

    #[test]
    fn a_root_without_a_database_has_nothing_installed() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("var/lib/rpm")).expect("mkdir");
        let root = Root::open(dir.path()).expect("root");
        assert!(
            Dnf.installed(&crate::host::local_for_tests(), &root)
                .expect("installed")
                .is_empty()
        );
        // rpm must not have created a database in the root.
        assert!(
            fs::read_dir(dir.path().join("var/lib/rpm"))
                .expect("read_dir")
                .next()
                .is_none()
        );
    }

    #[test]
    fn a_symlinked_database_dir_is_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        fs::write(outside.path().join("rpmdb.sqlite"), b"not a database").expect("write");
        fs::create_dir_all(dir.path().join("usr/lib/sysimage")).expect("mkdir");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("usr/lib/sysimage/rpm"))
            .expect("symlink");
        assert!(
            open_db_dir(dir.path(), "usr/lib/sysimage/rpm")
                .expect("open")
                .is_none()
        );
        // Nor a symlinked database file.
        fs::create_dir_all(dir.path().join("var/lib/rpm")).expect("mkdir");
        std::os::unix::fs::symlink(
            outside.path().join("rpmdb.sqlite"),
            dir.path().join("var/lib/rpm/rpmdb.sqlite"),
        )
        .expect("symlink");
        assert!(
            open_db_dir(dir.path(), "var/lib/rpm")
                .expect("open")
                .is_none()
        );
    }

    #[test]
    fn host_commands_use_the_bootstrap_options() {
        let mut machine = DnfBootstrap::test_machine();
        machine.repos = vec![berth_schema::Repo {
            id: "r".into(),
            url: "file:///r".into(),
            gpgcheck: false,
        }];
        let cmds = Dnf
            .host_install(
                &crate::host::local_for_tests(),
                Path::new("/m/f"),
                &machine,
                &["x".to_owned()],
            )
            .expect("a host command");
        let cmd = &cmds[0];
        assert!(cmd.contains(&"--installroot=/m/f".to_owned()));
        assert!(cmd.contains(&"--repofrompath=r,file:///r".to_owned()));
        assert_eq!(&cmd[cmd.len() - 3..], ["install", "--", "x"]);
        let cmds = Dnf
            .host_remove(
                &crate::host::local_for_tests(),
                Path::new("/m/f"),
                &machine,
                &["x".to_owned()],
            )
            .expect("a host command");
        assert_eq!(&cmds[0][cmds[0].len() - 3..], ["remove", "--", "x"]);
    }
}
