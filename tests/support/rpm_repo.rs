//! A local rpm repository for the Fedora tests, since no Fedora mirror is
//! reachable here: the packages in `tests/fixtures/fedora/*.spec` built with
//! rpmbuild (noarch, no scriptlets) and indexed with createrepo_c.
//!
//! Built once and cached under `/var/tmp/berth-test-cache/rpm-repo-HASH`,
//! HASH covering the specs and this recipe, with [`cache::cached_dir`]
//! (a flock, a build into a directory renamed into place when complete).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::cache;

/// The repository id the tests give in `repos:`.
pub const REPO_ID: &str = "berthtest";

/// The packages in the repository, each `tests/fixtures/fedora/NAME.spec`.
pub const PACKAGES: [&str; 3] = ["berth-base", "berth-hello", "berth-extra"];

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
/// now unless it is cached.
pub fn repo() -> PathBuf {
    cache::cached_dir(&format!("rpm-repo-{}", cache_key()), build)
}

/// The repository as a `file://` URL for `repos:`.
pub fn url() -> String {
    format!("file://{}", repo().display())
}

/// A key over the recipe and every spec.
fn cache_key() -> String {
    let texts: Vec<(&str, Vec<u8>)> = PACKAGES
        .iter()
        .map(|pkg| {
            let path = fixtures().join(format!("{pkg}.spec"));
            let text =
                fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            (*pkg, text)
        })
        .collect();
    let mut parts: Vec<&[u8]> = vec![RECIPE.as_bytes()];
    for (pkg, text) in &texts {
        parts.push(pkg.as_bytes());
        parts.push(text);
    }
    cache::key(&parts)
}

/// Builds the packages straight into `repo` (an empty directory; see
/// [`cache::cached_dir`]) and indexes it.
fn build(repo: &Path) {
    let tmp = tempfile::Builder::new()
        .prefix(".rpm-repo-work-")
        .tempdir_in(cache::TEST_CACHE)
        .expect("a build dir in the cache");
    let top = tmp.path().join("rpmbuild");
    fs::create_dir_all(&top).expect("creating the rpmbuild topdir");
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
    let built = fs::read_dir(repo)
        .expect("reading the repo dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".rpm"))
        .count();
    assert_eq!(built, PACKAGES.len(), "built {built} packages");
    let out = Command::new("createrepo_c")
        .arg("--quiet")
        .arg(repo)
        .env("LC_ALL", "C")
        .output()
        .expect("running createrepo_c");
    assert!(out.status.success(), "createrepo_c failed\n{}", text(&out));
}

fn text(out: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
