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
use crate::host::Host;

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

/// The command line debootstrap and mmdebstrap share:
/// `TOOL OPTIONS... --variant=V [--include=PKGS] --components=C [CACHE...] RELEASE TARGET [MIRROR]`.
/// Validation guarantees release and mirror cannot be read as options (the
/// tools take no `--`); without a mirror the tool's own default is used,
/// never a hard-coded host.
pub(crate) fn debian_command(
    tool: &str,
    options: &[&str],
    host_cache: &[&str],
    machine: &Machine,
    target: &Path,
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
    if let Some(mirror) = &machine.mirror {
        cmd.push(mirror.clone());
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
            network: Default::default(),
            binds: Vec::new(),
            private_users: None,
            capabilities: Vec::new(),
            drop_capabilities: Vec::new(),
            environment: Vec::new(),
            storage: berth_schema::Storage::Copy,
        }
    }

    #[test]
    fn ubuntu_needs_universe_and_without_a_mirror_uses_debootstrap() {
        let machine = ubuntu(None);
        let tool = for_machine(&crate::host::local_for_tests(), &machine).unwrap();
        assert_eq!(tool.name(), "debootstrap");
        assert_eq!(
            tool.command(
                &crate::host::local_for_tests(),
                &machine,
                &PathBuf::from("/t")
            )
            .unwrap(),
            [
                "debootstrap",
                "--variant=minbase",
                "--include=systemd,dbus",
                "--components=main,universe",
                "noble",
                "/t"
            ]
        );
    }

    #[test]
    fn ubuntu_with_a_mirror_and_mmdebstrap_passes_the_mirror() {
        let mut machine = ubuntu(Some("http://archive.example/ubuntu"));
        machine.bootstrapper = Some(BootstrapperKind::Mmdebstrap);
        machine.bootstrap_options.host_cache = true;
        let cmd = for_machine(&crate::host::local_for_tests(), &machine)
            .unwrap()
            .command(
                &crate::host::local_for_tests(),
                &machine,
                &PathBuf::from("/t"),
            )
            .unwrap();
        assert_eq!(
            cmd[..5],
            [
                "mmdebstrap",
                "--mode=root",
                "--variant=minbase",
                "--include=systemd,dbus",
                "--components=main,universe"
            ]
        );
        assert!(
            cmd.iter().any(|a| a.starts_with("--setup-hook=sync-in")),
            "{cmd:?}"
        );
        assert_eq!(
            cmd[cmd.len() - 3..],
            ["noble", "/t", "http://archive.example/ubuntu"]
        );
    }

    #[test]
    fn a_bootstrapper_must_fit_the_distro() {
        let mut machine = ubuntu(None);
        machine.bootstrapper = Some(BootstrapperKind::Pacstrap);
        assert!(for_machine(&crate::host::local_for_tests(), &machine).is_err());
    }
}
