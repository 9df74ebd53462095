//! destroy never removes what it should not: a machine dir that is a
//! symlink, a root with a host dir bind-mounted inside (canaries survive),
//! a root with another filesystem mounted inside or on it. Each refusal
//! names the reason and leaves everything in place; once the mount is gone,
//! destroy removes the root. (Unmanaged machines: tests/cli.rs
//! destroy_refuses_a_machine_berth_does_not_manage. A running machine is
//! stopped first: tests/faults.rs.) Needs root (fails under CI=true without it).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::fake_root;
use crate::support::{Sandbox, code, describe, require_root};
use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// A mount this test made; detached on drop, even when the test fails.
struct Mounted(PathBuf);

impl Mounted {
    fn bind(from: &Path, at: &Path) -> Mounted {
        mount(Some(from), at, None::<&str>, MsFlags::MS_BIND, None::<&str>).unwrap();
        Mounted(at.to_path_buf())
    }

    fn tmpfs(at: &Path) -> Mounted {
        mount(
            Some("tmpfs"),
            at,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("size=1m"),
        )
        .unwrap();
        Mounted(at.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

/// A managed fake root `name` in a fresh sandbox.
fn managed(name: &str) -> (Sandbox, PathBuf) {
    let sandbox = Sandbox::new("destroy");
    fake_root::make(&sandbox.root(name));
    let spec = sandbox.spec(&fake_root::spec(name, &fake_root::hash_source()));
    let out = sandbox.berth(&["adopt", "-f", spec.to_str().unwrap(), name]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let root = sandbox.root(name);
    (sandbox, root)
}

/// Host canaries: a dir with a file and a subdir.
fn canaries(sandbox: &Sandbox) -> PathBuf {
    let dir = sandbox.dir.path().join("host-data");
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::write(dir.join("precious"), "keep me\n").unwrap();
    fs::write(dir.join("sub/also"), "keep me too\n").unwrap();
    dir
}

fn assert_canaries(dir: &Path) {
    assert_eq!(
        fs::read_to_string(dir.join("precious")).unwrap(),
        "keep me\n"
    );
    assert_eq!(
        fs::read_to_string(dir.join("sub/also")).unwrap(),
        "keep me too\n"
    );
}

#[test]
fn destroy_refuses_a_machine_dir_that_is_a_symlink() {
    if !require_root("destroy_refuses_a_machine_dir_that_is_a_symlink") {
        return;
    }
    let (sandbox, root) = managed("d");
    let data = canaries(&sandbox);
    // The managed root is swapped for a link to host data.
    fs::rename(&root, sandbox.dir.path().join("moved-root")).unwrap();
    symlink(&data, &root).unwrap();
    let out = sandbox.berth(&["destroy", "--yes", "d"]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is a symlink"),
        "{}",
        describe(&out)
    );
    assert_canaries(&data);
    assert!(
        fs::symlink_metadata(&root)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        sandbox.state().join("machines/d.json").exists(),
        "the record went"
    );
}

#[test]
fn destroy_refuses_a_root_with_a_host_dir_bind_mounted_inside() {
    if !require_root("destroy_refuses_a_root_with_a_host_dir_bind_mounted_inside") {
        return;
    }
    // Runs alone: a bind mount on the host (see support::exclusive).
    let _alone = crate::support::exclusive();
    let (sandbox, root) = managed("d");
    let data = canaries(&sandbox);
    let at = root.join("mnt/data");
    fs::create_dir_all(&at).unwrap();
    {
        let _mount = Mounted::bind(&data, &at);
        let out = sandbox.berth(&["destroy", "--yes", "d"]);
        assert_eq!(code(&out), 1, "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("mounted inside the root") && stderr.contains("mnt/data"),
            "{stderr}"
        );
        assert_canaries(&data);
        assert_canaries(&at);
        assert!(
            root.join("etc/shadow").exists(),
            "part of the root was removed"
        );
    }
    assert_canaries(&data);
    // Unmounted: destroy goes ahead, and the host data is still there.
    let out = sandbox.berth(&["destroy", "--yes", "d"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(!root.exists());
    assert_canaries(&data);
}

#[test]
fn destroy_never_enters_another_filesystem() {
    if !require_root("destroy_never_enters_another_filesystem") {
        return;
    }
    // Runs alone: mounts on the host (see support::exclusive).
    let _alone = crate::support::exclusive();
    // A tmpfs deep inside the root, and a tmpfs that is the root itself.
    let (sandbox, root) = managed("d");
    let at = root.join("var/cache/deep");
    fs::create_dir_all(&at).unwrap();
    {
        let _mount = Mounted::tmpfs(&at);
        fs::write(at.join("on-tmpfs"), "x").unwrap();
        let out = sandbox.berth(&["destroy", "--yes", "d"]);
        assert_eq!(code(&out), 1, "{}", describe(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("var/cache/deep"));
        assert_eq!(fs::read_to_string(at.join("on-tmpfs")).unwrap(), "x");
    }

    let (sandbox2, root2) = managed("t");
    let saved = sandbox2.dir.path().join("saved");
    fs::rename(&root2, &saved).unwrap();
    fs::create_dir(&root2).unwrap();
    {
        let _mount = Mounted::tmpfs(&root2);
        fs::write(root2.join("on-tmpfs"), "x").unwrap();
        let out = sandbox2.berth(&["destroy", "--yes", "t"]);
        assert_eq!(code(&out), 1, "{}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("mounted"),
            "{}",
            describe(&out)
        );
        assert_eq!(fs::read_to_string(root2.join("on-tmpfs")).unwrap(), "x");
    }
    drop(sandbox);
}
