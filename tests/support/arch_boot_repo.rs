//! A pacman repository whose `base` boots: the article's Arch machine,
//! made offline. No Arch mirror is reachable here, so `base` is a Debian 12
//! userland packaged for pacman: an mmdebstrap minbase tree with systemd,
//! dbus, login, util-linux, PAM (with `pam_securetty.so` in the login stack
//! as Arch has it: `auth required pam_securetty.so`), bash, coreutils and
//! pacman itself (Debian's `pacman-package-manager` and its libraries),
//! with a `pacman.conf` whose only repository is [`IN_MACHINE`], the
//! repository directory bound into the machine (the spec's `binds:`).
//! `base-devel` is a meta package; `hello-berth` (from
//! `tests/fixtures/arch`) is what the running guest's pacman installs later.
//!
//! Built with Debian's own makepkg (as the unprivileged build user, under
//! fakeroot, from a tar of the tree so ownership and modes survive) and
//! repo-add; the tree and the repository are each cached with
//! [`cache::cached_dir`], keyed by this recipe.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cache;
use crate::support::pacman_repo::{REPO_NAME, build_user, fixtures, text};

/// Where the repository is bound inside the machine (and where the tests
/// put it inside the systemd box, so the same path serves pacstrap there).
pub const IN_MACHINE: &str = "/srv/berth-repo";

/// Debian packages of the bootable userland, on top of minbase (which
/// already has bash, coreutils, login, passwd, util-linux and PAM).
const USERLAND: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "systemd-resolved",
    "dbus",
    "libpam-modules",
    "pacman-package-manager",
];

/// Bump when the steps below change.
const RECIPE: &str =
    "arch boot repo recipe 1: mmdebstrap minbase bookworm, base from a tar, PKGEXT=.pkg.tar";

/// Arch's login stack: root only on the ttys of /etc/securetty, then the
/// usual Debian stack.
const PAM_LOGIN: &str = "#%PAM-1.0\n\
# As Arch has it: root logs in only on the ttys listed in /etc/securetty.\n\
auth       required     pam_securetty.so\n\
auth       requisite    pam_nologin.so\n\
session    required     pam_loginuid.so\n\
@include common-auth\n\
@include common-account\n\
@include common-session\n\
@include common-password\n";

/// The guest's pacman.conf: the bound repository only, unsigned test packages.
fn guest_pacman_conf() -> String {
    format!(
        "# berth test: the repository bound in at {IN_MACHINE}\n\
         [options]\n\
         Architecture = auto\n\
         SigLevel = Never\n\
         LocalFileSigLevel = Never\n\
         \n\
         [{REPO_NAME}]\n\
         Server = file://{IN_MACHINE}\n"
    )
}

fn key() -> String {
    let hello = fs::read(fixtures().join("hello-berth/PKGBUILD")).expect("reading hello-berth");
    cache::key(&[
        RECIPE.as_bytes(),
        USERLAND.join(",").as_bytes(),
        PAM_LOGIN.as_bytes(),
        guest_pacman_conf().as_bytes(),
        &hello,
        std::env::var("BERTH_TEST_MIRROR")
            .unwrap_or_default()
            .as_bytes(),
    ])
}

/// The repository (`berthtest.db` and the packages `base`, `base-devel`,
/// `hello-berth`), built now unless cached.
pub fn repo() -> PathBuf {
    let key = key();
    let tree = cache::cached_dir(&format!("arch-boot-tree-{key}"), build_tree);
    cache::cached_dir(&format!("arch-boot-repo-{key}"), |repo| {
        build_repo(&tree, repo)
    })
}

/// A pacman.conf on the host side (for pacstrap) that installs from the
/// repository at `repo`.
pub fn write_host_pacman_conf(path: &Path, repo: &Path) {
    crate::support::pacman_repo::write_pacman_conf(path, repo);
}

/// The userland: mmdebstrap minbase plus [`USERLAND`], then made Arch-like.
fn build_tree(tree: &Path) {
    let mut cmd = Command::new("mmdebstrap");
    cmd.args([
        "--mode=root",
        "--variant=minbase",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-exclude=/usr/share/info/*",
    ])
    .arg(format!("--include={}", USERLAND.join(",")))
    .arg("bookworm")
    .arg(tree);
    if let Ok(mirror) = std::env::var("BERTH_TEST_MIRROR") {
        cmd.arg(mirror);
    }
    let out = cmd.output().expect("running mmdebstrap (is it installed?)");
    assert!(
        out.status.success(),
        "mmdebstrap of the Arch test userland failed (needs a reachable Debian mirror; BERTH_TEST_MIRROR overrides it)\n{}",
        text(&out)
    );
    let write = |rel: &str, content: &str| {
        let path = tree.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("creating a dir in the tree");
        }
        let _ = fs::remove_file(&path);
        fs::write(&path, content).unwrap_or_else(|e| panic!("writing {rel}: {e}"));
    };
    write("etc/pam.d/login", PAM_LOGIN);
    write("etc/securetty", "console\ntty1\n");
    write("etc/pacman.conf", &guest_pacman_conf());
    write(
        "usr/lib/os-release",
        "NAME=\"Arch Linux\"\nPRETTY_NAME=\"Arch Linux (berth test: a Debian 12 userland)\"\nID=arch\nBUILD_ID=rolling\n",
    );
    let _ = fs::remove_file(tree.join("etc/os-release"));
    std::os::unix::fs::symlink("../usr/lib/os-release", tree.join("etc/os-release"))
        .expect("linking etc/os-release");
    // berth gives every new root its own id.
    write("etc/machine-id", "");
    let _ = fs::remove_file(tree.join("var/lib/dbus/machine-id"));
    for dir in ["var/lib/pacman", "var/cache/pacman/pkg"] {
        fs::create_dir_all(tree.join(dir)).expect("creating pacman's dirs");
    }
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        if let Ok(entries) = fs::read_dir(tree.join(dir)) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_file()) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }
}

/// Packages the tree (as `base`), `base-devel` and `hello-berth` with
/// makepkg and indexes them with repo-add into `repo`.
fn build_repo(tree: &Path, repo: &Path) {
    let (uid, gid) = build_user();
    let tmp = tempfile::Builder::new()
        .prefix(".arch-boot-work-")
        .tempdir_in(cache::TEST_CACHE)
        .expect("a build dir in the cache");
    let work = tmp.path();
    let owned_dir = |path: &Path| {
        fs::create_dir_all(path).expect("creating a build dir");
        nix::unistd::chown(path, Some(uid), Some(gid)).expect("chown to the build user");
    };
    for sub in ["", "out", "build", "sources", "home", "src"] {
        owned_dir(&work.join(sub));
    }
    // The tree as root sees it (owners, modes, setuid bits), readable by
    // the build user; fakeroot restores it into the package.
    let base_src = work.join("src/base");
    owned_dir(&base_src);
    let out = Command::new("tar")
        .arg("-C")
        .arg(tree)
        .args([
            "--numeric-owner",
            "--exclude=./dev/*",
            "--exclude=./proc/*",
            "--exclude=./sys/*",
            "--exclude=./run/*",
            "--exclude=./tmp/*",
            "-cpf",
        ])
        .arg(base_src.join("base-tree.tar"))
        .arg(".")
        .output()
        .expect("running tar");
    assert!(
        out.status.success(),
        "tar of the tree failed\n{}",
        text(&out)
    );
    nix::unistd::chown(&base_src.join("base-tree.tar"), Some(uid), Some(gid))
        .expect("chown the tree tar");
    let options = "options=(!strip !zipman !purge !emptydirs !libtool !staticlibs !debug)";
    let pkgbuilds = [
        (
            "base",
            format!(
                "pkgname=base\npkgver=1\npkgrel=1\npkgdesc='berth test: a bootable userland (Debian 12, systemd, pacman)'\n\
                 arch=(any)\nlicense=(custom)\n{options}\nsource=(base-tree.tar)\nnoextract=(base-tree.tar)\n\
                 sha256sums=(SKIP)\nbackup=(etc/pacman.conf etc/securetty etc/pam.d/login)\n\
                 package() {{\n  bsdtar -xpf \"$srcdir/base-tree.tar\" -C \"$pkgdir\"\n}}\n"
            ),
        ),
        (
            "base-devel",
            format!(
                "pkgname=base-devel\npkgver=1\npkgrel=1\npkgdesc='berth test: a meta package'\n\
                 arch=(any)\nlicense=(custom)\n{options}\ndepends=(base)\npackage() {{\n  :\n}}\n"
            ),
        ),
        (
            "hello-berth",
            fs::read_to_string(fixtures().join("hello-berth/PKGBUILD"))
                .expect("reading hello-berth"),
        ),
    ];
    for (pkg, pkgbuild) in &pkgbuilds {
        let src = work.join("src").join(pkg);
        owned_dir(&src);
        fs::write(src.join("PKGBUILD"), pkgbuild).expect("writing a PKGBUILD");
        let out = Command::new("makepkg")
            .args(["--nodeps", "--noconfirm", "--nocolor", "--skipinteg"])
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
            .env("PKGEXT", ".pkg.tar")
            .env("PACKAGER", "berth tests <berth@example.invalid>")
            .output()
            .expect("running makepkg");
        assert!(out.status.success(), "makepkg {pkg} failed\n{}", text(&out));
    }
    let mut built = Vec::new();
    for entry in fs::read_dir(work.join("out")).expect("reading built packages") {
        let path = entry.expect("a built package").path();
        let target = repo.join(path.file_name().expect("a file name"));
        fs::rename(&path, &target)
            .or_else(|_| fs::copy(&path, &target).map(|_| ()))
            .expect("moving a package into the repo");
        built.push(target);
    }
    assert_eq!(built.len(), pkgbuilds.len(), "built: {built:?}");
    let out = Command::new("repo-add")
        .arg("--quiet")
        .arg(repo.join(format!("{REPO_NAME}.db.tar.gz")))
        .args(&built)
        .env("LC_ALL", "C")
        .output()
        .expect("running repo-add");
    assert!(out.status.success(), "repo-add failed\n{}", text(&out));
}
