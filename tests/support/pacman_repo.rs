//! A local pacman repository for the Arch tests, since no Arch mirror is
//! reachable here: the packages in `tests/fixtures/arch/*/PKGBUILD` built
//! with makepkg (as the unprivileged user `berth-build`, created when
//! missing: makepkg refuses root) and indexed with repo-add as repository
//! `berthtest` (never `local`, the name of pacman's own database).
//!
//! Built once and cached under `/var/tmp/berth-test-cache/pacman-repo-HASH`,
//! HASH covering the PKGBUILDs and this recipe, with [`cache::cached_dir`]
//! (a flock, a build into a directory renamed into place when complete).

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::cache;

/// The repository's name (its `[section]` in pacman.conf).
pub const REPO_NAME: &str = "berthtest";

/// The packages in the repository, each a directory under the fixtures.
pub const PACKAGES: [&str; 3] = ["base", "hello-berth", "extra-berth"];

/// The unprivileged user makepkg runs as.
const BUILD_USER: &str = "berth-build";

/// Bump when the build steps below change, so cached repositories are rebuilt.
const RECIPE: &str = "pacman-repo recipe 1: makepkg --nodeps, PKGEXT=.pkg.tar.gz, repo-add";

/// The host programs the Arch tests need, with their Debian packages.
pub const TOOLS: [(&str, &str); 6] = [
    ("pacstrap", "arch-install-scripts"),
    ("pacman", "pacman-package-manager"),
    ("makepkg", "makepkg"),
    ("repo-add", "pacman-package-manager"),
    ("bsdtar", "libarchive-tools"),
    ("fakeroot", "fakeroot"),
];

/// The fixtures directory holding one PKGBUILD directory per package.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/arch")
}

/// The repository directory (holding `berthtest.db` and the packages),
/// built now unless it is cached.
pub fn repo() -> PathBuf {
    cache::cached_dir(&format!("pacman-repo-{}", cache_key()), build)
}

/// A pacman.conf at `path` that installs from `repo` only, unsigned
/// (SigLevel = Never: the test packages are not signed).
pub fn write_pacman_conf(path: &Path, repo: &Path) {
    let text = format!(
        "# berth test: the local repository built from tests/fixtures/arch\n\
         [options]\n\
         Architecture = auto\n\
         SigLevel = Never\n\
         LocalFileSigLevel = Never\n\
         \n\
         [{REPO_NAME}]\n\
         Server = file://{}\n",
        repo.display()
    );
    fs::write(path, text).expect("writing pacman.conf");
}

/// A key over the recipe and every PKGBUILD.
fn cache_key() -> String {
    let texts: Vec<(&str, Vec<u8>)> = PACKAGES
        .iter()
        .map(|pkg| {
            let path = fixtures().join(pkg).join("PKGBUILD");
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

/// The build user's uid and gid, creating the user when missing.
pub(crate) fn build_user() -> (nix::unistd::Uid, nix::unistd::Gid) {
    let lookup = || nix::unistd::User::from_name(BUILD_USER).expect("looking up the build user");
    let user = match lookup() {
        Some(user) => user,
        None => {
            let out = Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                ])
                .arg(BUILD_USER)
                .output()
                .expect("running useradd");
            // Another test process may have created it meanwhile.
            lookup().unwrap_or_else(|| panic!("useradd {BUILD_USER} failed\n{}", text(&out)))
        }
    };
    (user.uid, user.gid)
}

/// Builds the packages in a work dir and the repository into `repo` (an
/// empty directory; see [`cache::cached_dir`]).
fn build(repo: &Path) {
    let (uid, gid) = build_user();
    let tmp = tempfile::Builder::new()
        .prefix(".pacman-repo-work-")
        .tempdir_in(cache::TEST_CACHE)
        .expect("a build dir in the cache");
    let work = tmp.path();
    let owned_dir = |path: &Path| {
        fs::create_dir_all(path).expect("creating a build dir");
        nix::unistd::chown(path, Some(uid), Some(gid)).expect("chown to the build user");
    };
    owned_dir(work);
    for sub in ["out", "build", "sources", "home"] {
        owned_dir(&work.join(sub));
    }
    for pkg in PACKAGES {
        let src = work.join("src").join(pkg);
        owned_dir(&work.join("src"));
        owned_dir(&src);
        fs::copy(fixtures().join(pkg).join("PKGBUILD"), src.join("PKGBUILD"))
            .expect("copying a PKGBUILD");
        let out = Command::new("makepkg")
            .args(["--nodeps", "--noconfirm", "--nocolor"])
            .current_dir(&src)
            .uid(uid.as_raw())
            .gid(gid.as_raw())
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LC_ALL", "C")
            .env("HOME", work.join("home"))
            .env("PKGDEST", work.join("out"))
            .env("SRCDEST", work.join("sources"))
            .env("BUILDDIR", work.join("build"))
            .env("PKGEXT", ".pkg.tar.gz")
            .env("PACKAGER", "berth tests <berth@example.invalid>")
            .output()
            .expect("running makepkg");
        assert!(out.status.success(), "makepkg {pkg} failed\n{}", text(&out));
    }
    let mut built = Vec::new();
    for entry in fs::read_dir(work.join("out")).expect("reading built packages") {
        let path = entry.expect("a built package").path();
        let target = repo.join(path.file_name().expect("a file name"));
        fs::copy(&path, &target).expect("copying a package into the repo");
        built.push(target);
    }
    assert_eq!(built.len(), PACKAGES.len(), "built: {built:?}");
    let out = Command::new("repo-add")
        .arg("--quiet")
        .arg(repo.join(format!("{REPO_NAME}.db.tar.gz")))
        .args(&built)
        .env("LC_ALL", "C")
        .output()
        .expect("running repo-add");
    assert!(out.status.success(), "repo-add failed\n{}", text(&out));
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
