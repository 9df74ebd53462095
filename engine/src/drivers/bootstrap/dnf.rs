//! dnf --installroot: Fedora roots.
//!
//! The bootstrap is one host command:
//!
//! ```text
//! sh -euc SCRIPT berth-dnf dnf --installroot=TARGET --releasever=RELEASE --assumeyes \
//!     [--use-host-config] [--setopt=install_weak_deps=False] [--setopt=keepcache=True] \
//!     [--setopt=reposdir= --repofrompath=ID,URL --setopt=ID.gpgcheck=0|1 --repo=ID ...] \
//!     install -- PACKAGES
//! ```
//!
//! - **The rpm database.** The `sh` wrapper gives dnf a private `HOME` whose
//!   `.rpmmacros` sets `%_dbpath /usr/lib/sysimage/rpm`, Fedora's own
//!   location: Debian's rpm keeps its database in `~/.rpmdb`, which
//!   `--installroot` would turn into `TARGET/root/.rpmdb`, a database the
//!   guest's own rpm would never see. The wrapper removes that `HOME` when
//!   dnf exits, and runs dnf under `setpriv --pdeathsig KILL`, so dnf still
//!   dies with berth.
//! - **`--releasever`** is always given: the new root has no
//!   `system-release` package to detect it from.
//! - **Repositories.** With `repos:` (or `mirror:`) in the spec, dnf sees
//!   exactly those: `--setopt=reposdir=` turns off every `*.repo` directory
//!   (the host's and the root's), each repository is added with
//!   `--repofrompath` and its `gpgcheck` set explicitly, and `--repo=` enables
//!   only them. Without either, dnf uses the host's own repository
//!   configuration (a Fedora host's `/etc/yum.repos.d`); planning refuses when
//!   the host has none (a Debian host).
//! - **`mirror:`** is one more repository, id `mirror`, whose URL is the
//!   mirror as written (dnf substitutes `$releasever` and `$basearch` in it),
//!   with `gpgcheck` on.
//! - **dnf 4 or 5.** The installed dnf is probed once (`dnf --version`);
//!   dnf 5 reads its configuration from the install root unless given
//!   `--use-host-config`, which berth adds so both behave alike (the host's
//!   `dnf.conf`). Debian 12 ships dnf 4.14.
//! - **`host_cache`.** dnf 4 always puts its `cachedir` inside the install
//!   root, even when set on the command line, so sharing the host's cache
//!   takes a bind mount: the command runs under `unshare --mount
//!   --propagation private` (the mount never reaches the host's namespace and
//!   ends with dnf), binds the host's `/var/cache/berth/dnf` (berth's own,
//!   created on first use) over `TARGET/var/cache/dnf`, and sets
//!   `--setopt=keepcache=True` so downloaded packages stay for the next
//!   bootstrap.
//! - **Packages.** Without `packages:`, the minimal bootable set from
//!   systemd-nspawn(1)'s Fedora example: `systemd passwd dnf fedora-release`
//!   (dnf included, so the machine can change its own packages later).

use std::path::Path;
use std::sync::OnceLock;

use berth_schema::{BootstrapperKind, Machine};

use super::{Bootstrapper, Requirement};
use crate::drivers::packages::{Dnf as DnfPackages, PackageManager};
use crate::host::{Cmd, Host};

/// `dnf --installroot=TARGET --releasever=RELEASE install ...`, wrapped so
/// the rpm database lands where Fedora looks for it.
#[derive(Debug, Clone, Copy)]
pub struct Dnf;

/// The packages installed when the spec names none: the bootable minimum
/// of systemd-nspawn(1)'s Fedora example, plus dnf.
pub const DEFAULT_PACKAGES: &[&str] = &["systemd", "passwd", "dnf", "fedora-release"];

/// The host directory shared as dnf's cache when `host_cache` is set.
pub const HOST_CACHE_DIR: &str = "/var/cache/berth/dnf";

/// The rpm database location of Fedora 36 and later, relative to the root.
pub const RPM_DBPATH: &str = "/usr/lib/sysimage/rpm";

/// The repository id `mirror:` becomes.
pub const MIRROR_REPO_ID: &str = "mirror";

/// The name the wrapper script runs under (its `$0`).
const WRAPPER_NAME: &str = "berth-dnf";

/// Which major version of dnf is installed on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnfFlavor {
    /// dnf 4 (Python; Debian 12's 4.14): reads the host's configuration
    /// when the install root has none.
    Dnf4,
    /// dnf 5: needs `--use-host-config` to read the host's configuration.
    Dnf5,
}

impl DnfFlavor {
    /// The flavor named by the first line of `dnf --version`: dnf 5 prints
    /// `dnf5 version 5.x.y`, dnf 4 prints `4.x.y`.
    pub fn from_version_output(text: &str) -> DnfFlavor {
        let first = text.lines().next().unwrap_or("").trim();
        if first.starts_with("dnf5") || first.starts_with("5.") {
            DnfFlavor::Dnf5
        } else {
            DnfFlavor::Dnf4
        }
    }

    /// The host's dnf, probed once per process (`dnf --version`); dnf 4 when
    /// dnf is missing or says nothing recognisable.
    pub fn probe(host: &dyn Host) -> DnfFlavor {
        static FLAVOR: OnceLock<DnfFlavor> = OnceLock::new();
        *FLAVOR.get_or_init(|| {
            host.run(&Cmd::new(["dnf", "--version"]).quiet())
                .map(|out| DnfFlavor::from_version_output(&String::from_utf8_lossy(&out.stdout)))
                .unwrap_or(DnfFlavor::Dnf4)
        })
    }
}

/// Whether the host has dnf repositories of its own (`*.repo` files in
/// `/etc/yum.repos.d`, or dnf 5's `/etc/distro.repos.d`).
pub fn host_has_repos() -> bool {
    ["/etc/yum.repos.d", "/etc/distro.repos.d"]
        .iter()
        .any(|dir| {
            std::fs::read_dir(dir).is_ok_and(|entries| {
                entries
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(".repo"))
            })
        })
}

/// What dnf does to the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `install`.
    Install,
    /// `remove`.
    Remove,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Verb::Install => "install",
            Verb::Remove => "remove",
        }
    }
}

/// Whether a repository id is safe on a dnf command line: letters, digits
/// and `-_.:` only (no `,` that would split `--repofrompath`, no `=`).
fn valid_repo_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// The dnf options that choose repositories: none (the host's own) when the
/// spec gives neither `repos:` nor `mirror:`, else exactly the spec's.
fn repo_options(machine: &Machine, host_repos: bool) -> Result<Vec<String>, String> {
    let mut repos: Vec<(&str, &str, bool)> = Vec::new();
    if let Some(mirror) = &machine.mirror {
        repos.push((MIRROR_REPO_ID, mirror, true));
    }
    for repo in &machine.repos {
        if !valid_repo_id(&repo.id) {
            return Err(format!(
                "repos: repository id {:?} is not usable with dnf (letters, digits, `-_.:` only)",
                repo.id
            ));
        }
        if repos.iter().any(|(id, _, _)| *id == repo.id) {
            return Err(format!(
                "repos: repository id {:?} is used twice (`mirror:` is the repository {MIRROR_REPO_ID:?})",
                repo.id
            ));
        }
        if repo.url.is_empty() {
            return Err(format!("repos: repository {:?} has no url", repo.id));
        }
        repos.push((&repo.id, &repo.url, repo.gpgcheck));
    }
    if repos.is_empty() {
        if !host_repos {
            return Err(
                "fedora needs dnf repositories: give `repos:` (or `mirror:`) in the spec; \
                 this host has none in /etc/yum.repos.d"
                    .to_owned(),
            );
        }
        return Ok(Vec::new());
    }
    let mut out = vec!["--setopt=reposdir=".to_owned()];
    for (id, url, gpgcheck) in &repos {
        out.push(format!("--repofrompath={id},{url}"));
        out.push(format!("--setopt={id}.gpgcheck={}", u8::from(*gpgcheck)));
    }
    for (id, _, _) in &repos {
        out.push(format!("--repo={id}"));
    }
    Ok(out)
}

/// The shell script that runs `"$@"` (dnf) with the rpm database at
/// [`RPM_DBPATH`]; with `host_cache`, `$1` is the root, whose
/// `/var/cache/dnf` gets the host's shared cache bound over it first.
fn wrapper_script(host_cache: bool) -> String {
    let mut script = String::new();
    if host_cache {
        script.push_str(&format!(
            "root=$1; shift; mkdir -p -- {HOST_CACHE_DIR} \"$root/var/cache/dnf\"; \
             mount --bind -- {HOST_CACHE_DIR} \"$root/var/cache/dnf\"; "
        ));
    }
    script.push_str(&format!(
        "home=$(mktemp -d); trap 'rm -rf -- \"$home\"' EXIT; \
         printf '%s\\n' '%_dbpath {RPM_DBPATH}' >\"$home/.rpmmacros\"; \
         HOME=$home setpriv --pdeathsig KILL -- \"$@\""
    ));
    script
}

/// The full host command that runs dnf `verb` on the root at `root`:
/// the bootstrap (`Verb::Install` into an empty root) and berth's changes to
/// a root without its own dnf. `host_repos` says whether the host has dnf
/// repositories of its own (used only when the spec gives none).
pub fn host_command(
    machine: &Machine,
    root: &Path,
    verb: Verb,
    packages: &[String],
    flavor: DnfFlavor,
    host_repos: bool,
) -> Result<Vec<String>, String> {
    let release = machine.release.as_deref().ok_or_else(|| {
        "release: dnf needs a release (the Fedora version, e.g. \"40\")".to_owned()
    })?;
    if !root.is_absolute() {
        return Err(format!(
            "dnf --installroot needs an absolute path, not {}",
            root.display()
        ));
    }
    let options = &machine.bootstrap_options;
    let mut cmd: Vec<String> = Vec::new();
    if options.host_cache {
        cmd.extend(["unshare", "--mount", "--propagation", "private", "--"].map(str::to_owned));
    }
    cmd.extend([
        "sh".to_owned(),
        "-euc".to_owned(),
        wrapper_script(options.host_cache),
    ]);
    cmd.push(WRAPPER_NAME.to_owned());
    if options.host_cache {
        cmd.push(root.display().to_string());
    }
    cmd.push("dnf".to_owned());
    cmd.push(format!("--installroot={}", root.display()));
    cmd.push(format!("--releasever={release}"));
    cmd.push("--assumeyes".to_owned());
    if flavor == DnfFlavor::Dnf5 {
        cmd.push("--use-host-config".to_owned());
    }
    if !options.install_weak_deps {
        cmd.push("--setopt=install_weak_deps=False".to_owned());
    }
    if options.host_cache {
        cmd.push("--setopt=keepcache=True".to_owned());
    }
    cmd.extend(repo_options(machine, host_repos)?);
    cmd.push(verb.as_str().to_owned());
    cmd.push("--".to_owned());
    cmd.extend(packages.iter().cloned());
    Ok(cmd)
}

/// The packages a bootstrap installs: the spec's, else [`DEFAULT_PACKAGES`].
pub fn bootstrap_packages(machine: &Machine) -> Vec<String> {
    if machine.packages.is_empty() {
        DEFAULT_PACKAGES.iter().map(|p| (*p).to_owned()).collect()
    } else {
        machine.packages.clone()
    }
}

impl Dnf {
    /// The host command that installs (`install: true`) or removes
    /// `packages` in the root at `root` with the host's dnf: the same
    /// wrapper, repositories and options as the bootstrap, for roots without
    /// a dnf of their own.
    pub fn host_change(
        host: &dyn Host,
        machine: &Machine,
        root: &Path,
        install: bool,
        packages: &[String],
    ) -> Result<Vec<String>, String> {
        let host_repos = machine.repos.is_empty() && machine.mirror.is_none() && host_has_repos();
        let verb = if install { Verb::Install } else { Verb::Remove };
        host_command(
            machine,
            root,
            verb,
            packages,
            DnfFlavor::probe(host),
            host_repos,
        )
    }
}

#[cfg(test)]
impl Dnf {
    /// A Fedora machine for other modules' unit tests.
    pub(crate) fn test_machine() -> Machine {
        tests::machine(Vec::new())
    }
}

impl Bootstrapper for Dnf {
    fn kind(&self) -> BootstrapperKind {
        BootstrapperKind::Dnf
    }

    fn requirements(&self) -> &'static [Requirement] {
        &[
            Requirement {
                program: "dnf",
                package: "dnf",
            },
            Requirement {
                program: "rpm",
                package: "rpm",
            },
            Requirement {
                program: "setpriv",
                package: "util-linux",
            },
            Requirement {
                program: "unshare",
                package: "util-linux",
            },
            Requirement {
                program: "mktemp",
                package: "coreutils",
            },
        ]
    }

    fn command(
        &self,
        host: &dyn Host,
        machine: &Machine,
        target: &Path,
    ) -> Result<Vec<String>, String> {
        let host_repos = machine.repos.is_empty() && machine.mirror.is_none() && host_has_repos();
        host_command(
            machine,
            target,
            Verb::Install,
            &bootstrap_packages(machine),
            DnfFlavor::probe(host),
            host_repos,
        )
    }

    fn package_manager(&self) -> &'static dyn PackageManager {
        &DnfPackages
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_schema::{Distro, Repo};

    /// A Fedora machine with `repos`, built directly (as the schema would).
    pub(crate) fn machine(repos: Vec<Repo>) -> Machine {
        Machine {
            name: "f".into(),
            source: Default::default(),
            distro: Distro::Fedora,
            release: Some("40".into()),
            mirror: None,
            packages: vec!["berth-base".into()],
            hostname: "f".into(),
            units: Default::default(),
            root_password: None,
            securetty: Vec::new(),
            launcher: Default::default(),
            state: Default::default(),
            bootstrapper: None,
            bootstrap_options: Default::default(),
            pacman_conf: None,
            repos,
            autostart: None,
            prevent_destroy: None,
            network: Default::default(),
            binds: Vec::new(),
            private_users: None,
            capabilities: Vec::new(),
            drop_capabilities: Vec::new(),
            environment: Vec::new(),
            storage: berth_schema::Storage::Copy,
            resources: Default::default(),
            devices: Vec::new(),
            nspawn_extra: Default::default(),
            vars: Default::default(),
            files: Vec::new(),
            users: Vec::new(),
            ssh_authorized_keys: None,
            credentials: Vec::new(),
            health: None,
            snapshots: Default::default(),
        }
    }

    fn repo(id: &str, url: &str, gpgcheck: bool) -> Repo {
        Repo {
            id: id.into(),
            url: url.into(),
            gpgcheck,
        }
    }

    fn dnf_args(cmd: &[String]) -> Vec<&str> {
        let start = cmd
            .iter()
            .position(|a| a == "dnf")
            .expect("dnf in the command");
        cmd[start..].iter().map(String::as_str).collect()
    }

    #[test]
    fn bootstrap_with_spec_repos() {
        let m = machine(vec![
            repo("berthtest", "file:///srv/repo", false),
            repo("signed", "https://example.invalid/$releasever/", true),
        ]);
        let cmd = host_command(
            &m,
            Path::new("/var/lib/machines/.f.berth-staging"),
            Verb::Install,
            &bootstrap_packages(&m),
            DnfFlavor::Dnf4,
            false,
        )
        .expect("command");
        assert_eq!(&cmd[..2], ["sh", "-euc"]);
        assert!(
            cmd[2].contains("%_dbpath /usr/lib/sysimage/rpm"),
            "{}",
            cmd[2]
        );
        assert!(cmd[2].contains("setpriv --pdeathsig KILL"), "{}", cmd[2]);
        assert_eq!(cmd[3], "berth-dnf");
        assert_eq!(
            dnf_args(&cmd),
            [
                "dnf",
                "--installroot=/var/lib/machines/.f.berth-staging",
                "--releasever=40",
                "--assumeyes",
                "--setopt=install_weak_deps=False",
                "--setopt=reposdir=",
                "--repofrompath=berthtest,file:///srv/repo",
                "--setopt=berthtest.gpgcheck=0",
                "--repofrompath=signed,https://example.invalid/$releasever/",
                "--setopt=signed.gpgcheck=1",
                "--repo=berthtest",
                "--repo=signed",
                "install",
                "--",
                "berth-base",
            ]
        );
    }

    #[test]
    fn weak_deps_host_cache_and_dnf5() {
        let mut m = machine(vec![repo("r", "file:///r", false)]);
        m.bootstrap_options.install_weak_deps = true;
        m.bootstrap_options.host_cache = true;
        let cmd = host_command(
            &m,
            Path::new("/m/.f.berth-staging"),
            Verb::Install,
            &m.packages,
            DnfFlavor::Dnf5,
            false,
        )
        .expect("command");
        assert_eq!(
            &cmd[..7],
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-euc"
            ]
        );
        assert!(
            cmd[7].contains("mount --bind -- /var/cache/berth/dnf \"$root/var/cache/dnf\""),
            "{}",
            cmd[7]
        );
        assert_eq!(&cmd[8..10], ["berth-dnf", "/m/.f.berth-staging"]);
        let args = dnf_args(&cmd);
        assert!(args.contains(&"--use-host-config"));
        assert!(args.contains(&"--setopt=keepcache=True"));
        assert!(!args.iter().any(|a| a.contains("install_weak_deps")));
    }

    #[test]
    fn mirror_is_a_repository() {
        let mut m = machine(Vec::new());
        m.mirror = Some("http://mirror.example/fedora/$releasever/$basearch/".into());
        let cmd = host_command(
            &m,
            Path::new("/t"),
            Verb::Remove,
            &m.packages,
            DnfFlavor::Dnf4,
            false,
        )
        .expect("command");
        let args = dnf_args(&cmd);
        assert!(args.contains(
            &"--repofrompath=mirror,http://mirror.example/fedora/$releasever/$basearch/"
        ));
        assert!(args.contains(&"--setopt=mirror.gpgcheck=1"));
        assert!(args.contains(&"--repo=mirror"));
        assert_eq!(&args[args.len() - 3..], ["remove", "--", "berth-base"]);
    }

    #[test]
    fn host_repos_or_a_clear_error() {
        let m = machine(Vec::new());
        let err = host_command(
            &m,
            Path::new("/t"),
            Verb::Install,
            &m.packages,
            DnfFlavor::Dnf4,
            false,
        )
        .expect_err("no repos anywhere");
        assert!(err.contains("repos:"), "{err}");
        let cmd = host_command(
            &m,
            Path::new("/t"),
            Verb::Install,
            &m.packages,
            DnfFlavor::Dnf4,
            true,
        )
        .expect("host repos");
        assert!(
            !cmd.iter()
                .any(|a| a.starts_with("--setopt=reposdir") || a.starts_with("--repo"))
        );
    }

    #[test]
    fn refuses_bad_input() {
        let mut m = machine(vec![repo("a,b", "file:///r", false)]);
        assert!(
            host_command(
                &m,
                Path::new("/t"),
                Verb::Install,
                &[],
                DnfFlavor::Dnf4,
                false
            )
            .is_err()
        );
        m.repos = vec![repo("mirror", "file:///r", false)];
        m.mirror = Some("file:///m".into());
        assert!(
            host_command(
                &m,
                Path::new("/t"),
                Verb::Install,
                &[],
                DnfFlavor::Dnf4,
                false
            )
            .is_err()
        );
        let mut m = machine(vec![repo("r", "file:///r", false)]);
        m.release = None;
        assert!(
            host_command(
                &m,
                Path::new("/t"),
                Verb::Install,
                &[],
                DnfFlavor::Dnf4,
                false
            )
            .is_err()
        );
        let m = machine(vec![repo("r", "file:///r", false)]);
        assert!(
            host_command(
                &m,
                Path::new("rel"),
                Verb::Install,
                &[],
                DnfFlavor::Dnf4,
                false
            )
            .is_err()
        );
    }

    #[test]
    fn default_packages_when_none() {
        let mut m = machine(Vec::new());
        m.packages.clear();
        assert_eq!(bootstrap_packages(&m), DEFAULT_PACKAGES);
    }

    #[test]
    fn flavor_from_version() {
        assert_eq!(
            DnfFlavor::from_version_output("4.14.0\n  Installed: dnf-0:4.14.0\n"),
            DnfFlavor::Dnf4
        );
        assert_eq!(
            DnfFlavor::from_version_output("dnf5 version 5.2.5.0\ndnf5 plugin API version 2.0\n"),
            DnfFlavor::Dnf5
        );
        assert_eq!(DnfFlavor::from_version_output(""), DnfFlavor::Dnf4);
    }
}
