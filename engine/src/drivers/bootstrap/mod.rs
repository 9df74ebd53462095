//! Bootstrappers: the tools that make a root from nothing. Each one builds
//! its exact command line (shown in the plan and while applying), names the
//! programs it needs and the Debian packages that install them, and runs
//! into a staging directory that apply renames into place.

mod debootstrap;
mod dnf;
mod mmdebstrap;
mod pacstrap;

use std::path::Path;

use berth_schema::{BootstrapperKind, Distro, Machine};

pub use debootstrap::Debootstrap;
pub use dnf::Dnf;
pub use mmdebstrap::Mmdebstrap;
pub use pacstrap::Pacstrap;

use crate::drivers::packages::PackageManager;
use crate::host::{Cmd, Host};

/// A program a bootstrapper needs, and the Debian package that installs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// The program looked up on PATH.
    pub program: &'static str,
    /// The Debian package that installs it.
    pub package: &'static str,
}

/// A tool that creates a root filesystem.
pub trait Bootstrapper: Send + Sync {
    /// Which tool this is.
    fn kind(&self) -> BootstrapperKind;

    /// The tool's name (`debootstrap`).
    fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The programs the tool needs on PATH.
    fn requirements(&self) -> &'static [Requirement];

    /// The exact command line that bootstraps `machine` into `target`.
    fn command(
        &self,
        host: &dyn Host,
        machine: &Machine,
        target: &Path,
    ) -> Result<Vec<String>, String>;

    /// Extra environment variables for the command.
    fn env(&self, _machine: &Machine) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Whether the tool wants the target directory to exist already
    /// (pacstrap refuses a missing one; the Debian tools create it).
    fn needs_existing_target(&self) -> bool {
        false
    }

    /// The package manager of the roots this tool makes.
    fn package_manager(&self) -> &'static dyn PackageManager;
}

/// The first requirement of `bootstrapper` missing from PATH, as an error message.
pub fn missing_requirement(
    host: &dyn Host,
    bootstrapper: &dyn Bootstrapper,
) -> Option<Requirement> {
    bootstrapper
        .requirements()
        .iter()
        .find(|r| host.which(r.program).is_none())
        .copied()
}

/// The bootstrapper for `machine`: the spec's `bootstrapper:`, else the
/// distro's default (mmdebstrap for Debian when installed, else debootstrap).
pub fn for_machine(host: &dyn Host, machine: &Machine) -> Result<Box<dyn Bootstrapper>, String> {
    let kind = match machine.bootstrapper {
        Some(kind) => kind,
        None => default_kind(host, machine),
    };
    for_kind(machine, kind)
}

/// The bootstrapper of `kind` for `machine`, refused when it cannot make that distro.
pub fn for_kind(
    machine: &Machine,
    kind: BootstrapperKind,
) -> Result<Box<dyn Bootstrapper>, String> {
    let fits = matches!(
        (machine.distro, kind),
        (
            Distro::Debian | Distro::Ubuntu,
            BootstrapperKind::Debootstrap | BootstrapperKind::Mmdebstrap
        ) | (Distro::Arch, BootstrapperKind::Pacstrap)
            | (Distro::Fedora, BootstrapperKind::Dnf)
    );
    if !fits {
        return Err(format!(
            "bootstrapper: {kind} cannot bootstrap {}",
            machine.distro
        ));
    }
    match kind {
        BootstrapperKind::Debootstrap => Ok(Box::new(Debootstrap)),
        BootstrapperKind::Mmdebstrap => Ok(Box::new(Mmdebstrap)),
        BootstrapperKind::Pacstrap => Ok(Box::new(Pacstrap)),
        BootstrapperKind::Dnf => Ok(Box::new(Dnf)),
    }
}

/// The default tool for a distro on this host.
fn default_kind(host: &dyn Host, machine: &Machine) -> BootstrapperKind {
    match machine.distro {
        // mmdebstrap is 3-6x faster; without a mirror, Ubuntu needs
        // debootstrap, whose scripts know Ubuntu's default archive.
        Distro::Debian if host.which("mmdebstrap").is_some() => BootstrapperKind::Mmdebstrap,
        Distro::Ubuntu if machine.mirror.is_some() && host.which("mmdebstrap").is_some() => {
            BootstrapperKind::Mmdebstrap
        }
        Distro::Debian | Distro::Ubuntu => BootstrapperKind::Debootstrap,
        Distro::Arch => BootstrapperKind::Pacstrap,
        Distro::Fedora => BootstrapperKind::Dnf,
    }
}

/// Where debootstrap keeps its per-release scripts.
pub const DEBOOTSTRAP_SCRIPTS: &str = "/usr/share/debootstrap/scripts";

/// Ubuntu's archive keyring (the `ubuntu-keyring` package): what both
/// debootstrap's Ubuntu script and berth's mmdebstrap line check Ubuntu's
/// Release files against.
pub const UBUNTU_KEYRING: &str = "/usr/share/keyrings/ubuntu-archive-keyring.gpg";

/// What the host's Debian-family bootstrappers can make, observed before
/// planning so that a release the installed tools cannot make is a plan
/// error, not a failure halfway through apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianTools {
    /// debootstrap's scripts directory exists.
    pub scripts_dir: bool,
    /// debootstrap has a script named after the release (`jammy`, `trixie`).
    pub release_script: bool,
    /// The script every release of the distro uses (`gutsy` for Ubuntu
    /// since 7.10, `sid` for Debian), by path, when debootstrap has it.
    pub family_script: Option<String>,
    /// The default mirror that family script itself defines for this host's
    /// architecture and the release (evaluated, never hard-coded in berth).
    pub family_mirror: Option<String>,
    /// Ubuntu's archive keyring ([`UBUNTU_KEYRING`]) is installed.
    pub ubuntu_keyring: bool,
}

impl DebianTools {
    /// Tools that can make anything (unit tests that must not depend on
    /// the host's tools, where `check_tools` is off).
    pub fn everything() -> Self {
        DebianTools {
            scripts_dir: true,
            release_script: true,
            family_script: None,
            family_mirror: None,
            ubuntu_keyring: true,
        }
    }

    /// Looks at this host: debootstrap's scripts, the family script's
    /// default mirror (by sourcing the script with stubs, as mmdebstrap
    /// does), the Ubuntu keyring.
    pub fn probe(host: &dyn Host, machine: &Machine) -> Self {
        if !host.facts().check_tools {
            return Self::everything();
        }
        let dir = Path::new(DEBOOTSTRAP_SCRIPTS);
        let release = machine.release.as_deref().unwrap_or("");
        let release_script =
            !release.is_empty() && !release.contains('/') && dir.join(release).is_file();
        let family = match machine.distro {
            Distro::Ubuntu => "gutsy",
            _ => "sid",
        };
        let family_path = dir.join(family);
        let family_script = family_path
            .is_file()
            .then(|| family_path.display().to_string());
        // Needed when the family script stands in for a missing one, and
        // by mmdebstrap for Ubuntu, whose own default depends on knowing
        // the suite.
        let family_mirror = match &family_script {
            Some(script) if !release_script || machine.distro == Distro::Ubuntu => {
                script_default_mirror(host, script, release).or_else(|| {
                    // Debian's scripts leave it to debootstrap's own DEF_MIRROR.
                    (machine.distro == Distro::Debian)
                        .then(|| debootstrap_default_mirror(host))
                        .flatten()
                })
            }
            _ => None,
        };
        DebianTools {
            scripts_dir: dir.is_dir(),
            release_script,
            family_script,
            family_mirror,
            ubuntu_keyring: Path::new(UBUNTU_KEYRING).is_file(),
        }
    }
}

/// The default mirror a debootstrap script defines for this host's
/// architecture and `suite`: the script is sourced with its directives
/// stubbed out, `default_mirror` printing its argument.
fn script_default_mirror(host: &dyn Host, script: &str, suite: &str) -> Option<String> {
    let arch = debian_arch()?;
    let program = "set -eu; default_mirror() { echo \"$1\"; }; mirror_style() { :; }; \
                   download_style() { :; }; finddebs_style() { :; }; variants() { :; }; \
                   keyring() { :; }; doing_variant() { false; }; info() { :; }; \
                   warning() { :; }; error() { exit 1; }; . \"$0\"";
    let mut cmd = Cmd::new(["sh", "-c", program, script])
        .env("ARCH", arch)
        .env("SUITE", suite)
        .env("EXTRACTOR_OVERRIDE", "ar")
        .env("DEBOOTSTRAP_DIR", "/usr/share/debootstrap")
        .quiet();
    cmd.timeout = Some(std::time::Duration::from_secs(10));
    let out = host.run(&cmd).ok()?;
    if !out.success() {
        return None;
    }
    let text = out.stdout_text();
    let mirror = text.lines().next_back()?.trim();
    (mirror.starts_with("http://") || mirror.starts_with("https://")).then(|| mirror.to_owned())
}

/// The `DEF_MIRROR="..."` the installed debootstrap (a shell script)
/// defines: the mirror it uses for Debian when given none.
fn debootstrap_default_mirror(host: &dyn Host) -> Option<String> {
    let program = host.which("debootstrap")?;
    let text = std::fs::read_to_string(program).ok()?;
    text.lines().find_map(|line| {
        let value = line
            .trim()
            .strip_prefix("DEF_MIRROR=\"")?
            .strip_suffix('"')?;
        (value.starts_with("http://") || value.starts_with("https://")).then(|| value.to_owned())
    })
}

/// This host's Debian architecture name (`amd64`), for debootstrap's scripts.
fn debian_arch() -> Option<&'static str> {
    Some(match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        "aarch64" => "arm64",
        "arm" => "armhf",
        "riscv64" => "riscv64",
        "powerpc64" => "ppc64el",
        "s390x" => "s390x",
        "loongarch64" => "loong64",
        _ => return None,
    })
}

/// The command line debootstrap and mmdebstrap share:
/// `TOOL OPTIONS... --variant=V [--include=PKGS] --components=C [CACHE...] RELEASE TARGET [MIRROR [SCRIPT]]`.
/// Validation guarantees release and mirror cannot be read as options (the
/// tools take no `--`); without a mirror the tool's own default is used,
/// never a hard-coded host. `mirror` is the spec's, or a default a
/// debootstrap script defines; `script` (debootstrap only) names the script
/// to use for a release debootstrap has none of its own for, and needs the
/// mirror before it.
pub(crate) fn debian_command(
    tool: &str,
    options: &[&str],
    host_cache: &[&str],
    machine: &Machine,
    target: &Path,
    mirror: Option<&str>,
    script: Option<&str>,
) -> Result<Vec<String>, String> {
    let mut cmd = vec![tool.to_owned()];
    cmd.extend(options.iter().map(|o| (*o).to_owned()));
    cmd.push(format!(
        "--variant={}",
        machine
            .bootstrap_options
            .variant
            .as_deref()
            .unwrap_or("minbase")
    ));
    if !machine.packages.is_empty() {
        cmd.push(format!("--include={}", machine.packages.join(",")));
    }
    cmd.push(format!("--components={}", components(machine).join(",")));
    if machine.bootstrap_options.host_cache {
        cmd.extend(host_cache.iter().map(|o| (*o).to_owned()));
    }
    let release = machine
        .release
        .clone()
        .ok_or_else(|| format!("release: {tool} needs a release"))?;
    cmd.push(release);
    cmd.push(target.display().to_string());
    match (mirror, script) {
        (Some(mirror), script) => {
            cmd.push(mirror.to_owned());
            cmd.extend(script.map(str::to_owned));
        }
        (None, Some(_)) => {
            return Err(format!(
                "{tool}: a script of another release needs a mirror"
            ));
        }
        (None, None) => {}
    }
    Ok(cmd)
}

/// The components for a Debian-family bootstrap: the spec's, else `main`
/// (Debian) or `main,universe` (Ubuntu).
pub(crate) fn components(machine: &Machine) -> Vec<String> {
    if !machine.bootstrap_options.components.is_empty() {
        return machine.bootstrap_options.components.clone();
    }
    match machine.distro {
        Distro::Ubuntu => vec!["main".into(), "universe".into()],
        _ => vec!["main".into()],
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use berth_schema::{DesiredState, Launcher, Source, Units};

    use super::*;

    fn ubuntu(mirror: Option<&str>) -> Machine {
        Machine {
            name: "u".into(),
            source: Source::default(),
            distro: Distro::Ubuntu,
            release: Some("noble".into()),
            mirror: mirror.map(str::to_owned),
            packages: vec!["systemd".into(), "dbus".into()],
            hostname: "u".into(),
            units: Units::default(),
            root_password: None,
            securetty: Vec::new(),
            launcher: Launcher::Nspawn,
            state: DesiredState::Stopped,
            bootstrapper: None,
            bootstrap_options: Default::default(),
            pacman_conf: None,
            repos: Vec::new(),
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

    /// debootstrap 1.0.128 (Debian 12): `jammy` is a link to `gutsy`,
    /// `noble` has no script; `trixie` and `testing` are links to `sid`,
    /// `forky` has none. The default mirrors are what its scripts define.
    fn bookworm_tools(release: &str, distro: Distro) -> DebianTools {
        let has = ["jammy", "trixie", "testing", "bookworm", "sid"].contains(&release);
        let ubuntu = distro == Distro::Ubuntu;
        DebianTools {
            scripts_dir: true,
            release_script: has,
            family_script: Some(if ubuntu {
                "/usr/share/debootstrap/scripts/gutsy".into()
            } else {
                "/usr/share/debootstrap/scripts/sid".into()
            }),
            family_mirror: (!has || ubuntu).then(|| {
                if ubuntu {
                    "http://ubuntu.example/ubuntu".into()
                } else {
                    "http://debian.example/debian".into()
                }
            }),
            ubuntu_keyring: true,
        }
    }

    fn command(
        kind: BootstrapperKind,
        machine: &Machine,
        tools: &DebianTools,
    ) -> Result<Vec<String>, String> {
        let target = PathBuf::from("/t");
        match kind {
            BootstrapperKind::Debootstrap => debootstrap::command_for(machine, &target, tools),
            _ => mmdebstrap::command_for(machine, &target, tools),
        }
    }

    #[test]
    fn ubuntu_needs_universe_and_without_a_mirror_uses_debootstrap() {
        let machine = ubuntu(None);
        let tool = for_machine(&crate::host::local_for_tests(), &machine).unwrap();
        assert_eq!(tool.name(), "debootstrap");
    }

    #[test]
    fn ubuntu_lts_releases_on_a_debian_12_debootstrap() {
        // jammy: debootstrap has a script (a link to gutsy) and its default mirror.
        let mut jammy = ubuntu(None);
        jammy.release = Some("jammy".into());
        let tools = bookworm_tools("jammy", Distro::Ubuntu);
        assert_eq!(
            command(BootstrapperKind::Debootstrap, &jammy, &tools).unwrap(),
            [
                "debootstrap",
                "--variant=minbase",
                "--include=systemd,dbus",
                "--components=main,universe",
                "jammy",
                "/t"
            ]
        );
        // noble: no script of its own, so gutsy's, with the mirror gutsy defines.
        let noble = ubuntu(None);
        let tools = bookworm_tools("noble", Distro::Ubuntu);
        assert_eq!(
            command(BootstrapperKind::Debootstrap, &noble, &tools).unwrap(),
            [
                "debootstrap",
                "--variant=minbase",
                "--include=systemd,dbus",
                "--components=main,universe",
                "noble",
                "/t",
                "http://ubuntu.example/ubuntu",
                "/usr/share/debootstrap/scripts/gutsy"
            ]
        );
        // ... or the spec's mirror.
        let mirrored = ubuntu(Some("http://mirror.example/ubuntu"));
        let cmd = command(BootstrapperKind::Debootstrap, &mirrored, &tools).unwrap();
        assert_eq!(
            cmd[4..],
            [
                "noble",
                "/t",
                "http://mirror.example/ubuntu",
                "/usr/share/debootstrap/scripts/gutsy"
            ]
        );
    }

    #[test]
    fn ubuntu_lts_releases_with_mmdebstrap_get_ubuntus_keyring_and_archive() {
        for release in ["jammy", "noble"] {
            let mut machine = ubuntu(None);
            machine.release = Some(release.into());
            let tools = bookworm_tools(release, Distro::Ubuntu);
            assert_eq!(
                command(BootstrapperKind::Mmdebstrap, &machine, &tools).unwrap(),
                [
                    "mmdebstrap",
                    "--mode=root",
                    "--keyring=/usr/share/keyrings/ubuntu-archive-keyring.gpg",
                    "--variant=minbase",
                    "--include=systemd,dbus",
                    "--components=main,universe",
                    release,
                    "/t",
                    "http://ubuntu.example/ubuntu"
                ]
            );
        }
    }

    #[test]
    fn a_release_the_tools_cannot_make_says_what_to_install_or_set() {
        let noble = ubuntu(None);
        let mut tools = bookworm_tools("noble", Distro::Ubuntu);
        tools.ubuntu_keyring = false;
        for kind in [BootstrapperKind::Debootstrap, BootstrapperKind::Mmdebstrap] {
            let err = command(kind, &noble, &tools).unwrap_err();
            assert!(
                err.contains("install the package `ubuntu-keyring`"),
                "{err}"
            );
        }
        let mut tools = bookworm_tools("noble", Distro::Ubuntu);
        tools.family_mirror = None;
        let err = command(BootstrapperKind::Debootstrap, &noble, &tools).unwrap_err();
        assert!(err.contains("set `mirror:`"), "{err}");
        tools.family_script = None;
        let err = command(BootstrapperKind::Debootstrap, &noble, &tools).unwrap_err();
        assert!(
            err.contains("no script for noble") && err.contains("bootstrapper: mmdebstrap"),
            "{err}"
        );
    }

    #[test]
    fn debian_testing_releases_with_both_tools() {
        for release in ["trixie", "testing", "forky"] {
            let mut machine = ubuntu(None);
            machine.distro = Distro::Debian;
            machine.release = Some(release.into());
            let tools = bookworm_tools(release, Distro::Debian);
            let head = [
                "--variant=minbase",
                "--include=systemd,dbus",
                "--components=main",
                release,
                "/t",
            ];
            let debootstrap = command(BootstrapperKind::Debootstrap, &machine, &tools).unwrap();
            assert_eq!(debootstrap[0], "debootstrap");
            assert_eq!(debootstrap[1..6], head);
            if release == "forky" {
                // Newer than the tool: sid's script, with the mirror sid defines.
                assert_eq!(
                    debootstrap[6..],
                    [
                        "http://debian.example/debian",
                        "/usr/share/debootstrap/scripts/sid"
                    ]
                );
            } else {
                assert_eq!(debootstrap.len(), 6, "{debootstrap:?}");
            }
            // mmdebstrap takes any Debian suite as it is, with its own default mirror.
            let mmdebstrap = command(BootstrapperKind::Mmdebstrap, &machine, &tools).unwrap();
            assert_eq!(mmdebstrap[..2], ["mmdebstrap", "--mode=root"]);
            assert_eq!(mmdebstrap[2..], head);
        }
    }

    #[test]
    fn a_bootstrapper_must_fit_the_distro() {
        let mut machine = ubuntu(None);
        machine.bootstrapper = Some(BootstrapperKind::Pacstrap);
        assert!(for_machine(&crate::host::local_for_tests(), &machine).is_err());
    }
}
