//! A local rpm repository for the Fedora tests, since no Fedora mirror is
//! reachable here: the packages in `tests/fixtures/fedora/*.spec` built with
//! rpmbuild (noarch, no scriptlets) and indexed with createrepo_c.
//!
//! Built once and cached under `/var/tmp/berth-test-cache/rpm-repo-HASH`,
//! HASH covering the specs and this recipe; concurrent test processes take a
//! flock, the build happens in a temporary directory renamed into place when
//! complete, so a cached repository is always a whole one.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nix::fcntl::{Flock, FlockArg};

/// The repository id the tests give in `repos:`.
pub const REPO_ID: &str = "berthtest";

/// The packages in the repository, each `tests/fixtures/fedora/NAME.spec`.
pub const PACKAGES: [&str; 3] = ["berth-base", "berth-hello", "berth-extra"];

/// Where built repositories are kept between test runs.
const CACHE: &str = "/var/tmp/berth-test-cache";

/// Bump when the build steps below change, so cached repositories are rebuilt.
const RECIPE: &str = "rpm-repo recipe 1: rpmbuild -bb, createrepo_c";

/// The host programs the Fedora tests need, with their Debian packages.
pub const TOOLS: [(&str, &str); 5] = [
    ("dnf", "dnf"),
    ("rpm", "rpm"),
    ("rpmbuild", "rpm"),
    ("createrepo_c", "createrepo-c"),
    ("systemctl", "systemd"),
];

/// The fixtures directory holding one `.spec` per package.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/fedora")
}

/// The repository directory (holding `repodata/` and the packages), built
/// now unless a complete one is cached.
pub fn repo() -> PathBuf {
    let key = cache_key();
    let cache = Path::new(CACHE);
    fs::create_dir_all(cache).expect("creating the test cache dir");
    fs::set_permissions(cache, fs::Permissions::from_mode(0o755)).expect("chmod the cache dir");
    let dest = cache.join(format!("rpm-repo-{key}"));
    let lock = File::create(cache.join(format!("rpm-repo-{key}.lock"))).expect("lock file");
    let _lock = Flock::lock(lock, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("locking the rpm repo cache");
    if !dest.join("repodata/repomd.xml").exists() {
        build(&dest);
    }
    dest
}

/// The repository as a `file://` URL for `repos:`.
pub fn url() -> String {
    format!("file://{}", repo().display())
}

/// FNV-1a (64 bits) over the recipe and every spec: stable across Rust
/// versions, unlike std's hasher.
fn cache_key() -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(RECIPE.as_bytes());
    for pkg in PACKAGES {
        let path = fixtures().join(format!("{pkg}.spec"));
        let text = fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        feed(pkg.as_bytes());
        feed(&[0]);
        feed(&text);
        feed(&[0]);
    }
    format!("{hash:016x}")
}

fn build(dest: &Path) {
    let tmp = tempfile::Builder::new()
        .prefix(".rpm-repo-build-")
        .tempdir_in(CACHE)
        .expect("a build dir in the cache");
    let top = tmp.path().join("rpmbuild");
    let repo = tmp.path().join("repo");
    fs::create_dir_all(&top).expect("creating the rpmbuild topdir");
    fs::create_dir(&repo).expect("creating the repo dir");
    for pkg in PACKAGES {
        let out = Command::new("rpmbuild")
            .arg("--define")
            .arg(format!("_topdir {}", top.display()))
            // Write RPMs straight into the repository directory.
            .arg("--define")
            .arg(format!("_rpmdir {}", repo.display()))
            .args([
                "--define",
                "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
            ])
            .arg("-bb")
            .arg(fixtures().join(format!("{pkg}.spec")))
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LC_ALL", "C")
            .env("HOME", tmp.path())
            .output()
            .expect("running rpmbuild");
        assert!(
            out.status.success(),
            "rpmbuild {pkg} failed\n{}",
            text(&out)
        );
    }
    let built = fs::read_dir(&repo)
        .expect("reading the repo dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".rpm"))
        .count();
    assert_eq!(built, PACKAGES.len(), "built {built} packages");
    let out = Command::new("createrepo_c")
        .arg("--quiet")
        .arg(&repo)
        .env("LC_ALL", "C")
        .output()
        .expect("running createrepo_c");
    assert!(out.status.success(), "createrepo_c failed\n{}", text(&out));
    fs::set_permissions(&repo, fs::Permissions::from_mode(0o755)).expect("chmod the repo dir");
    // Another process may have finished the same build first (it held no
    // lock on a stale cache): keep whichever whole repository is there.
    if fs::rename(&repo, dest).is_err() {
        assert!(
            dest.join("repodata/repomd.xml").exists(),
            "moving the repository to {} failed",
            dest.display()
        );
    }
}

fn text(out: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
