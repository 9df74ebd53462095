//! Real-filesystem tests for confined file operations, `mounts_under` and
//! `remove_tree`. Everything happens inside temp dirs; "canary" files in a
//! sibling `host` dir stand for host files that must never be touched.
//! Tests that need root (chown, mknod, mounts) are skipped otherwise, except
//! under CI=true, where they fail.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use berth_engine::confined::{ConfinedError, FileKind, Root};
use berth_engine::mounts::mounts_under;
use berth_engine::remove::{RemoveError, remove_tree};
use nix::sys::stat::{Mode, SFlag};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "needs root, and CI=true: refusing to skip"
            );
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// A host file that must keep its content, mtime and mode.
struct Canary {
    path: PathBuf,
    content: Vec<u8>,
    mtime: SystemTime,
    mode: u32,
}

impl Canary {
    fn new(path: PathBuf, content: &[u8]) -> Canary {
        fs::write(&path, content).unwrap();
        // A fixed mtime in the past, so any write would be visible.
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let mode = fs::metadata(&path).unwrap().mode();
        Canary {
            path,
            content: content.to_vec(),
            mtime,
            mode,
        }
    }

    fn check(&self) {
        let md = fs::symlink_metadata(&self.path)
            .unwrap_or_else(|e| panic!("canary {} vanished: {e}", self.path.display()));
        assert!(
            md.is_file(),
            "canary {} is no longer a file",
            self.path.display()
        );
        assert_eq!(
            fs::read(&self.path).unwrap(),
            self.content,
            "canary {} changed",
            self.path.display()
        );
        assert_eq!(md.modified().unwrap(), self.mtime, "canary mtime changed");
        assert_eq!(md.mode(), self.mode, "canary mode changed");
    }
}

/// `tmp/root` (the machine root, with `etc/`) and `tmp/host` (with canaries
/// `host/canary` and `host/hostname`).
struct Fixture {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
    host: PathBuf,
    canaries: Vec<Canary>,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let root = base.join("root");
        let host = base.join("host");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir(&host).unwrap();
        let canaries = vec![
            Canary::new(host.join("canary"), b"host canary\n"),
            Canary::new(host.join("hostname"), b"host-machine\n"),
        ];
        Fixture {
            _tmp: tmp,
            base,
            root,
            host,
            canaries,
        }
    }

    fn open(&self) -> Root {
        Root::open(&self.root).unwrap()
    }

    fn check(&self) {
        for c in &self.canaries {
            c.check();
        }
        assert!(
            !self.host.join("newfile").exists(),
            "a file was created in the host dir"
        );
        if self.root.exists() {
            self.assert_no_temp_files(&self.root);
        }
    }

    fn assert_no_temp_files(&self, dir: &Path) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(!name.contains(".berth-tmp-"), "temp file left: {name}");
            let ft = entry.file_type().unwrap();
            if ft.is_dir() {
                self.assert_no_temp_files(&entry.path());
            }
        }
    }
}

/// Runs `f` on another thread and fails if it takes more than 10 s (a FIFO
/// opened for reading or writing would block forever).
fn with_timeout<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("operation hung (blocked on a FIFO?)")
}

fn assert_regular(path: &Path, content: &[u8]) -> fs::Metadata {
    let md = fs::symlink_metadata(path).unwrap();
    assert!(
        md.file_type().is_file(),
        "{} is not a regular file",
        path.display()
    );
    assert_eq!(fs::read(path).unwrap(), content);
    md
}

// ---------------------------------------------------------------- Root::open

#[test]
fn open_refuses_symlink_and_missing_root() {
    let fx = Fixture::new();
    let link = fx.base.join("rootlink");
    symlink(&fx.root, &link).unwrap();
    let err = Root::open(&link).unwrap_err();
    assert!(
        matches!(err, ConfinedError::RootNotDirectory { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("is a symlink"), "{err}");

    let err = Root::open(&fx.base.join("missing")).unwrap_err();
    assert!(matches!(err, ConfinedError::OpenRoot { .. }), "{err}");

    let err = Root::open(&fx.host.join("canary")).unwrap_err();
    assert!(err.to_string().contains("regular file"), "{err}");

    let root = fx.open();
    assert_eq!(root.path(), fx.root.as_path());
    fx.check();
}

// ------------------------------------------------------------- write_atomic

#[test]
fn write_through_absolute_symlink_to_host_replaces_link() {
    let fx = Fixture::new();
    symlink(fx.host.join("hostname"), fx.root.join("etc/hostname")).unwrap();
    fx.open()
        .write_atomic("/etc/hostname", b"web\n", 0o644)
        .unwrap();
    let md = assert_regular(&fx.root.join("etc/hostname"), b"web\n");
    assert_eq!(md.mode() & 0o7777, 0o644);
    fx.check();
}

#[test]
fn write_through_relative_symlink_out_replaces_link() {
    for target in [
        "../../host/hostname",
        "../../../../../../../../host/hostname",
    ] {
        let fx = Fixture::new();
        symlink(target, fx.root.join("etc/hostname")).unwrap();
        fx.open()
            .write_atomic("etc/hostname", b"web\n", 0o644)
            .unwrap();
        assert_regular(&fx.root.join("etc/hostname"), b"web\n");
        fx.check();
    }
}

#[test]
fn write_when_parent_is_symlink_to_host_dir() {
    // Absolute and relative links from /etc to the host dir: resolved inside
    // the root they point at a missing directory, so the write fails.
    let fx = Fixture::new();
    fs::remove_dir(fx.root.join("etc")).unwrap();
    for target in [
        fx.host.clone(),
        PathBuf::from("../host"),
        PathBuf::from("../../../host"),
    ] {
        let _ = fs::remove_file(fx.root.join("etc"));
        symlink(&target, fx.root.join("etc")).unwrap();
        let err = fx
            .open()
            .write_atomic("/etc/hostname", b"web\n", 0o644)
            .unwrap_err();
        assert!(matches!(err, ConfinedError::ParentMissing { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("/etc/hostname"), "{msg}");
        assert!(msg.contains(&fx.root.display().to_string()), "{msg}");
        fx.check();
    }

    // With an in-root decoy at the in-root meaning of the link, the write
    // lands there (inside the root).
    fs::create_dir(fx.root.join("host")).unwrap();
    fs::remove_file(fx.root.join("etc")).unwrap();
    symlink("../../host", fx.root.join("etc")).unwrap();
    fx.open()
        .write_atomic("/etc/hostname", b"web\n", 0o644)
        .unwrap();
    assert_regular(&fx.root.join("host/hostname"), b"web\n");

    let inner = fx.root.join(fx.host.strip_prefix("/").unwrap());
    fs::create_dir_all(&inner).unwrap();
    fs::remove_file(fx.root.join("etc")).unwrap();
    symlink(&fx.host, fx.root.join("etc")).unwrap();
    fx.open()
        .write_atomic("/etc/hostname", b"abs\n", 0o644)
        .unwrap();
    assert_regular(&inner.join("hostname"), b"abs\n");
    fx.check();
}

#[test]
fn write_over_dangling_symlink_replaces_link() {
    let fx = Fixture::new();
    // Dangles inside the root, but would create a host file if followed.
    symlink(fx.host.join("newfile"), fx.root.join("etc/hostname")).unwrap();
    fx.open()
        .write_atomic("/etc/hostname", b"web\n", 0o600)
        .unwrap();
    let md = assert_regular(&fx.root.join("etc/hostname"), b"web\n");
    assert_eq!(md.mode() & 0o7777, 0o600);

    symlink("/nonexistent/x", fx.root.join("etc/motd")).unwrap();
    fx.open().write_atomic("/etc/motd", b"hi\n", 0o644).unwrap();
    assert_regular(&fx.root.join("etc/motd"), b"hi\n");
    fx.check();
}

#[test]
fn write_over_hard_link_to_host_file_leaves_host_file_alone() {
    let fx = Fixture::new();
    // Same filesystem (both in the temp dir), so the link can be made.
    fs::hard_link(fx.host.join("hostname"), fx.root.join("etc/hostname")).unwrap();
    fx.open()
        .write_atomic("/etc/hostname", b"web\n", 0o644)
        .unwrap();
    let md = assert_regular(&fx.root.join("etc/hostname"), b"web\n");
    assert_eq!(md.nlink(), 1);
    fx.check();
}

#[test]
fn write_over_directory_is_refused() {
    let fx = Fixture::new();
    fs::create_dir(fx.root.join("etc/hostname")).unwrap();
    fs::write(fx.root.join("etc/hostname/inner"), b"keep").unwrap();
    let err = fx
        .open()
        .write_atomic("/etc/hostname", b"web\n", 0o644)
        .unwrap_err();
    assert!(matches!(err, ConfinedError::NotAFile { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "/etc/hostname in {} is a directory, not a regular file",
            fx.root.display()
        )
    );
    assert_eq!(
        fs::read(fx.root.join("etc/hostname/inner")).unwrap(),
        b"keep"
    );
    fx.check();
}

#[test]
fn write_over_fifo_is_refused_without_hanging() {
    let fx = Fixture::new();
    let fifo = fx.root.join("etc/securetty");
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o644)).unwrap();
    let root_path = fx.root.clone();
    let err = with_timeout(move || {
        Root::open(&root_path)
            .unwrap()
            .write_atomic("/etc/securetty", b"x\n", 0o644)
            .unwrap_err()
            .to_string()
    });
    assert_eq!(
        err,
        format!(
            "/etc/securetty in {} is a FIFO, not a regular file",
            fx.root.display()
        )
    );
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    fx.check();
}

#[test]
fn write_keeps_mode_and_owner_of_existing_file() {
    require_root!();
    let fx = Fixture::new();
    let path = fx.root.join("etc/shadow");
    fs::write(&path, b"old").unwrap();
    nix::unistd::chown(
        &path,
        Some(nix::unistd::Uid::from_raw(123)),
        Some(nix::unistd::Gid::from_raw(456)),
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    fx.open()
        .write_atomic("/etc/shadow", b"new", 0o600)
        .unwrap();
    let md = assert_regular(&path, b"new");
    assert_eq!(md.mode() & 0o7777, 0o640);
    assert_eq!((md.uid(), md.gid()), (123, 456));

    // setuid survives too (fchmod after fchown).
    let bin = fx.root.join("etc/suid");
    fs::write(&bin, b"old").unwrap();
    nix::unistd::chown(
        &bin,
        Some(nix::unistd::Uid::from_raw(0)),
        Some(nix::unistd::Gid::from_raw(50)),
    )
    .unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o4755)).unwrap();
    fx.open().write_atomic("etc/suid", b"new", 0o644).unwrap();
    let md = assert_regular(&bin, b"new");
    assert_eq!(md.mode() & 0o7777, 0o4755);
    assert_eq!((md.uid(), md.gid()), (0, 50));
    fx.check();
}

#[test]
fn new_file_is_owned_like_parent_dir() {
    require_root!();
    let fx = Fixture::new();
    let dir = fx.root.join("home");
    fs::create_dir(&dir).unwrap();
    nix::unistd::chown(
        &dir,
        Some(nix::unistd::Uid::from_raw(1000)),
        Some(nix::unistd::Gid::from_raw(1000)),
    )
    .unwrap();
    fx.open()
        .write_atomic("/home/.profile", b"x", 0o640)
        .unwrap();
    let md = assert_regular(&dir.join(".profile"), b"x");
    assert_eq!((md.uid(), md.gid()), (1000, 1000));
    assert_eq!(md.mode() & 0o7777, 0o640);

    // A symlink at the target is replaced by a file owned like the parent,
    // even if the link points at a root-owned host file.
    symlink(fx.host.join("canary"), dir.join(".bashrc")).unwrap();
    fx.open()
        .write_atomic("/home/.bashrc", b"y", 0o644)
        .unwrap();
    let md = assert_regular(&dir.join(".bashrc"), b"y");
    assert_eq!((md.uid(), md.gid()), (1000, 1000));
    fx.check();
}

#[test]
fn write_requires_existing_parent() {
    let fx = Fixture::new();
    let err = fx
        .open()
        .write_atomic("/etc/systemd/network/10-x.network", b"x", 0o644)
        .unwrap_err();
    assert!(matches!(err, ConfinedError::ParentMissing { .. }), "{err}");
    assert!(err.to_string().contains("/etc/systemd/network"), "{err}");
    assert!(!fx.root.join("etc/systemd").exists());

    // A regular file where a directory is expected.
    fs::write(fx.root.join("etc/systemd"), b"").unwrap();
    let err = fx
        .open()
        .write_atomic("/etc/systemd/x.conf", b"x", 0o644)
        .unwrap_err();
    assert!(matches!(err, ConfinedError::NotADirectory { .. }), "{err}");

    // Invalid paths.
    for bad in ["/", "", "/etc/../etc/hostname", "/etc/host\0name"] {
        let err = fx.open().write_atomic(bad, b"x", 0o644).unwrap_err();
        assert!(
            matches!(err, ConfinedError::InvalidPath { .. }),
            "{bad:?}: {err}"
        );
    }
    fx.check();
}

#[test]
fn write_refuses_to_cross_a_mount_point() {
    require_root!();
    let fx = Fixture::new();
    let Some(_guard) = MountGuard::bind(&fx.host, &fx.root.join("etc")) else {
        return;
    };
    let err = fx
        .open()
        .write_atomic("/etc/hostname", b"web\n", 0o644)
        .unwrap_err();
    assert!(matches!(err, ConfinedError::CrossesMount { .. }), "{err}");
    let err = fx.open().read("/etc/hostname").unwrap_err();
    assert!(matches!(err, ConfinedError::CrossesMount { .. }), "{err}");
    drop(_guard);
    fx.check();
}

#[test]
fn write_plain_and_overwrite() {
    let fx = Fixture::new();
    let root = fx.open();
    root.write_atomic("/etc/hostname", b"one\n", 0o644).unwrap();
    root.write_atomic("etc/hostname", b"two\n", 0o600).unwrap();
    let md = assert_regular(&fx.root.join("etc/hostname"), b"two\n");
    // Existing file keeps its mode.
    assert_eq!(md.mode() & 0o7777, 0o644);
    root.write_atomic("/toplevel", b"", 0o644).unwrap();
    assert_regular(&fx.root.join("toplevel"), b"");
    // A very long name still gets a valid temp name.
    let long = "n".repeat(250);
    root.write_atomic(&format!("/etc/{long}"), b"l", 0o644)
        .unwrap();
    assert_regular(&fx.root.join("etc").join(&long), b"l");
    fx.check();
}

// --------------------------------------------------------------------- read

#[test]
fn read_special_files() {
    let fx = Fixture::new();
    let etc = fx.root.join("etc");
    nix::unistd::mkfifo(&etc.join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
    fs::create_dir(etc.join("dir")).unwrap();
    symlink("/nowhere", etc.join("dangling")).unwrap();
    symlink(fx.host.join("canary"), etc.join("abs-escape")).unwrap();
    symlink("../../../../../../host/canary", etc.join("rel-escape")).unwrap();
    symlink("fifo", etc.join("link-to-fifo")).unwrap();
    fs::write(etc.join("plain"), b"plain\n").unwrap();
    symlink("plain", etc.join("link-to-plain")).unwrap();
    symlink("/etc/plain", etc.join("abs-link-to-plain")).unwrap();

    let root_path = fx.root.clone();
    let results = with_timeout(move || {
        let root = Root::open(&root_path).unwrap();
        [
            "fifo",
            "link-to-fifo",
            "dir",
            "dangling",
            "abs-escape",
            "rel-escape",
            "plain",
            "link-to-plain",
            "abs-link-to-plain",
            "missing",
        ]
        .map(|n| {
            root.read_string(&format!("/etc/{n}"))
                .map_err(|e| e.to_string())
        })
    });
    let root_disp = fx.root.display().to_string();
    let [
        fifo,
        link_fifo,
        dir,
        dangling,
        abs_esc,
        rel_esc,
        plain,
        l_plain,
        abs_l_plain,
        missing,
    ] = results;
    assert_eq!(
        fifo.unwrap_err(),
        format!("/etc/fifo in {root_disp} is a FIFO, not a regular file")
    );
    assert!(link_fifo.unwrap_err().contains("is a FIFO"));
    assert!(dir.unwrap_err().contains("is a directory"));
    assert_eq!(dangling.unwrap(), None);
    assert_eq!(abs_esc.unwrap(), None);
    assert_eq!(rel_esc.unwrap(), None);
    assert_eq!(plain.unwrap().as_deref(), Some("plain\n"));
    assert_eq!(l_plain.unwrap().as_deref(), Some("plain\n"));
    assert_eq!(abs_l_plain.unwrap().as_deref(), Some("plain\n"));
    assert_eq!(missing.unwrap(), None);

    // Escaping links read the in-root target when it exists.
    fs::create_dir(fx.root.join("host")).unwrap();
    fs::write(fx.root.join("host/canary"), b"decoy").unwrap();
    let root = fx.open();
    assert_eq!(
        root.read_string("/etc/rel-escape").unwrap().as_deref(),
        Some("decoy")
    );
    let inner = fx.root.join(fx.host.strip_prefix("/").unwrap());
    fs::create_dir_all(&inner).unwrap();
    fs::write(inner.join("canary"), b"inner").unwrap();
    assert_eq!(
        root.read("/etc/abs-escape").unwrap().as_deref(),
        Some(&b"inner"[..])
    );
    fx.check();
}

#[test]
fn read_device_node_is_refused_without_opening() {
    require_root!();
    let fx = Fixture::new();
    nix::sys::stat::mknod(
        &fx.root.join("etc/null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    let err = fx.open().read("/etc/null").unwrap_err();
    assert!(err.to_string().contains("is a character device"), "{err}");
    let err = fx
        .open()
        .write_atomic("/etc/null", b"x", 0o644)
        .unwrap_err();
    assert!(err.to_string().contains("is a character device"), "{err}");
    fx.check();
}

#[test]
fn read_limits_size_and_checks_utf8() {
    let fx = Fixture::new();
    let big = fs::File::create(fx.root.join("etc/big")).unwrap();
    big.set_len(16 * 1024 * 1024 + 1).unwrap();
    let err = fx.open().read("/etc/big").unwrap_err();
    assert!(matches!(err, ConfinedError::TooLarge { .. }), "{err}");
    big.set_len(16 * 1024 * 1024).unwrap();
    assert_eq!(
        fx.open().read("/etc/big").unwrap().unwrap().len(),
        16 * 1024 * 1024
    );

    fs::write(fx.root.join("etc/bin"), [0xff, 0xfe]).unwrap();
    let err = fx.open().read_string("/etc/bin").unwrap_err();
    assert!(matches!(err, ConfinedError::InvalidUtf8 { .. }), "{err}");
    assert_eq!(
        fx.open().read("/etc/bin").unwrap().unwrap(),
        vec![0xff, 0xfe]
    );
    fx.check();
}

// ------------------------------------------- kind, exists, read_link, remove

#[test]
fn kind_exists_read_link() {
    let fx = Fixture::new();
    let etc = fx.root.join("etc");
    fs::write(etc.join("file"), b"").unwrap();
    symlink(fx.host.join("canary"), etc.join("escape")).unwrap();
    symlink("file", etc.join("good")).unwrap();
    nix::unistd::mkfifo(&etc.join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
    symlink(&fx.host, fx.root.join("hostdir")).unwrap();
    let root = fx.open();

    assert_eq!(root.kind("/").unwrap(), Some(FileKind::Dir));
    assert_eq!(root.kind("/etc").unwrap(), Some(FileKind::Dir));
    assert_eq!(root.kind("/etc/file").unwrap(), Some(FileKind::File));
    assert_eq!(root.kind("/etc/escape").unwrap(), Some(FileKind::Symlink));
    assert_eq!(root.kind("/etc/fifo").unwrap(), Some(FileKind::Other));
    assert_eq!(root.kind("/etc/missing").unwrap(), None);
    assert_eq!(root.kind("/nodir/missing").unwrap(), None);
    // The parent is resolved inside the root: /hostdir/canary does not exist there.
    assert_eq!(root.kind("/hostdir/canary").unwrap(), None);

    assert!(root.exists("/etc/file").unwrap());
    assert!(root.exists("/etc/good").unwrap());
    assert!(root.exists("/etc/fifo").unwrap());
    assert!(!root.exists("/etc/escape").unwrap());
    assert!(!root.exists("/hostdir/canary").unwrap());
    assert!(!root.exists("/etc/missing").unwrap());

    assert_eq!(
        root.read_link("/etc/escape").unwrap(),
        Some(fx.host.join("canary"))
    );
    assert_eq!(
        root.read_link("/etc/good").unwrap(),
        Some(PathBuf::from("file"))
    );
    assert_eq!(root.read_link("/etc/file").unwrap(), None);
    assert_eq!(root.read_link("/etc/missing").unwrap(), None);
    fx.check();
}

#[test]
fn remove_file_never_follows() {
    let fx = Fixture::new();
    let etc = fx.root.join("etc");
    symlink(fx.host.join("canary"), etc.join("escape")).unwrap();
    symlink(&fx.host, fx.root.join("hostdir")).unwrap();
    fs::write(etc.join("file"), b"").unwrap();
    nix::unistd::mkfifo(&etc.join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
    let root = fx.open();

    assert!(root.remove_file("/etc/escape").unwrap());
    assert!(fs::symlink_metadata(etc.join("escape")).is_err());
    assert!(root.remove_file("/etc/file").unwrap());
    assert!(root.remove_file("/etc/fifo").unwrap());
    assert!(!root.remove_file("/etc/file").unwrap());
    assert!(!root.remove_file("/hostdir/canary").unwrap());
    assert!(!root.remove_file("/nodir/x").unwrap());
    let err = root.remove_file("/etc").unwrap_err();
    assert!(err.to_string().contains("is a directory"), "{err}");
    assert!(etc.is_dir());
    fx.check();
}

// --------------------------------------------------------------- mounts

/// A bind mount that is detached when dropped (even if the test panics).
struct MountGuard(PathBuf);

impl MountGuard {
    /// Bind-mounts `src` on `target`; `None` (test skipped) if mounting is
    /// not permitted here, except under CI=true, where that is a failure
    /// (the same rule as `require_root!`: CI never passes a test that did
    /// not run).
    fn bind(src: &Path, target: &Path) -> Option<MountGuard> {
        match nix::mount::mount(
            Some(src),
            target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        ) {
            Ok(()) => Some(MountGuard(target.to_path_buf())),
            Err(nix::errno::Errno::EPERM) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "mount --bind {} {}: not permitted (EPERM), and CI=true: refusing to skip",
                    src.display(),
                    target.display()
                );
                eprintln!("skipped: mount not permitted");
                None
            }
            Err(e) => panic!("mount --bind {} {}: {e}", src.display(), target.display()),
        }
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if let Err(e) = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH) {
            eprintln!("warning: cannot unmount {}: {e}", self.0.display());
        }
    }
}

#[test]
fn mounts_under_handles_spaces_and_prefixes() {
    require_root!();
    let fx = Fixture::new();
    let spaced = fx.root.join("a b");
    fs::create_dir(&spaced).unwrap();
    let x = fx.base.join("x");
    let xy = fx.base.join("xy");
    fs::create_dir(&x).unwrap();
    fs::create_dir(&xy).unwrap();
    assert!(mounts_under(&fx.root).unwrap().is_empty());
    let Some(g1) = MountGuard::bind(&fx.host, &spaced) else {
        return;
    };
    let Some(g2) = MountGuard::bind(&fx.host, &xy) else {
        return;
    };
    assert_eq!(mounts_under(&fx.root).unwrap(), vec![spaced.clone()]);
    assert_eq!(mounts_under(&spaced).unwrap(), vec![spaced.clone()]);
    assert!(mounts_under(&x).unwrap().is_empty(), "string-prefix match");
    assert_eq!(mounts_under(&xy).unwrap(), vec![xy.clone()]);
    // A non-canonical spelling of the same dir.
    let alias = fx.base.join("alias");
    symlink(&fx.root, &alias).unwrap();
    assert_eq!(
        mounts_under(&fx.root.join("etc/../")).unwrap(),
        vec![spaced.clone()]
    );
    assert_eq!(mounts_under(&alias).unwrap(), vec![spaced.clone()]);
    drop(g2);
    drop(g1);
    assert!(mounts_under(&fx.root).unwrap().is_empty());
    fx.check();
}

// ------------------------------------------------------------- remove_tree

#[test]
fn remove_tree_does_not_follow_symlinks() {
    let fx = Fixture::new();
    let r = &fx.root;
    fs::create_dir_all(r.join("usr/lib/deep/er")).unwrap();
    fs::write(r.join("usr/lib/deep/er/f"), b"x").unwrap();
    symlink(fx.host.join("canary"), r.join("etc/abs-file")).unwrap();
    symlink(&fx.host, r.join("etc/abs-dir")).unwrap();
    symlink("../../host", r.join("usr/rel-dir")).unwrap();
    symlink(&fx.host, r.join("usr/lib/deep/er/abs-dir")).unwrap();
    symlink("/nowhere", r.join("dangling")).unwrap();
    nix::unistd::mkfifo(&r.join("etc/fifo"), Mode::from_bits_truncate(0o644)).unwrap();
    // A read-only directory (matters only when not root).
    fs::set_permissions(r.join("usr/lib/deep"), fs::Permissions::from_mode(0o555)).unwrap();
    // An empty directory with no permissions at all.
    fs::create_dir(r.join("locked")).unwrap();
    fs::set_permissions(r.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();

    with_timeout({
        let r = r.clone();
        move || remove_tree(&r).unwrap()
    });
    assert!(fs::symlink_metadata(r).is_err(), "root still exists");
    assert!(fx.host.is_dir());
    fx.check();
}

#[test]
fn remove_tree_refuses_symlink_and_file() {
    let fx = Fixture::new();
    let link = fx.base.join("link");
    symlink(&fx.host, &link).unwrap();
    let err = remove_tree(&link).unwrap_err();
    assert!(matches!(err, RemoveError::Symlink { .. }), "{err}");
    assert!(err.to_string().contains("is a symlink"), "{err}");
    let err = remove_tree(&fx.host.join("canary")).unwrap_err();
    assert!(matches!(err, RemoveError::NotADirectory { .. }), "{err}");
    let err = remove_tree(&fx.base.join("missing")).unwrap_err();
    assert!(matches!(err, RemoveError::Io { .. }), "{err}");
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    fx.check();
}

#[test]
fn remove_tree_refuses_bind_mount_inside() {
    require_root!();
    let fx = Fixture::new();
    let target = fx.root.join("var/lib/data dir");
    fs::create_dir_all(&target).unwrap();
    fs::write(fx.root.join("etc/keep"), b"keep").unwrap();
    {
        let Some(_guard) = MountGuard::bind(&fx.host, &target) else {
            return;
        };
        let err = remove_tree(&fx.root).unwrap_err();
        match &err {
            RemoveError::Mounted { mounts, .. } => assert_eq!(mounts, &vec![target.clone()]),
            other => panic!("unexpected: {other}"),
        }
        assert!(err.to_string().contains("data dir"), "{err}");
        // Nothing removed.
        assert_eq!(fs::read(fx.root.join("etc/keep")).unwrap(), b"keep");
        assert!(fx.root.join("var/lib/data dir/canary").is_file());
    }
    fx.check();
    // After unmounting, removal works and the bind source survives.
    remove_tree(&fx.root).unwrap();
    assert!(!fx.root.exists());
    fx.check();
}

#[test]
fn remove_tree_refuses_root_that_is_a_mount_point() {
    require_root!();
    let fx = Fixture::new();
    let Some(_guard) = MountGuard::bind(&fx.host, &fx.root) else {
        return;
    };
    let err = remove_tree(&fx.root).unwrap_err();
    assert!(matches!(err, RemoveError::Mounted { .. }), "{err}");
    drop(_guard);
    fx.check();
}

#[test]
fn remove_tree_handles_10000_levels() {
    use nix::fcntl::{OFlag, openat};
    const DEPTH: usize = 10_000;
    let fx = Fixture::new();
    let top = fx.root.join("deep");
    fs::create_dir(&top).unwrap();
    let mut fd =
        nix::fcntl::open(&top, OFlag::O_DIRECTORY | OFlag::O_RDONLY, Mode::empty()).unwrap();
    for i in 0..DEPTH {
        nix::sys::stat::mkdirat(&fd, "d", Mode::from_bits_truncate(0o755)).unwrap();
        if i % 1000 == 0 {
            nix::unistd::symlinkat(&fx.host, &fd, "escape").unwrap();
        }
        fd = openat(
            &fd,
            "d",
            OFlag::O_DIRECTORY | OFlag::O_RDONLY,
            Mode::empty(),
        )
        .unwrap();
    }
    nix::unistd::mkfifoat(&fd, "fifo", Mode::from_bits_truncate(0o644)).unwrap();
    drop(fd);
    // Run on a small stack to prove the walk is not recursive.
    let root = fx.root.clone();
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || remove_tree(&root))
        .unwrap();
    handle.join().unwrap().unwrap();
    assert!(!fx.root.exists());
    fx.check();
}

// ----------------------------------------------------------------- list_dir

#[test]
fn list_dir_stays_inside_the_root() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.root.join("var/lib/pacman/local/base-1-1")).unwrap();
    fs::write(fx.root.join("var/lib/pacman/local/ALPM_DB_VERSION"), "9").unwrap();
    let root = fx.open();
    assert_eq!(
        root.list_dir("/var/lib/pacman/local").unwrap().unwrap(),
        ["ALPM_DB_VERSION", "base-1-1"]
    );
    assert_eq!(root.list_dir("/nowhere").unwrap(), None);
    // A directory symlinked to an absolute host path resolves inside the root.
    fs::create_dir_all(fx.root.join("srv")).unwrap();
    symlink(&fx.host, fx.root.join("srv/out")).unwrap();
    assert_eq!(root.list_dir("/srv/out").unwrap(), None);
    symlink("../../../..", fx.root.join("srv/up")).unwrap();
    let up = root.list_dir("/srv/up").unwrap().unwrap();
    assert!(
        up.contains(&"etc".to_owned()) && !up.contains(&"canary".to_owned()),
        "{up:?}"
    );
    fx.check();
}
