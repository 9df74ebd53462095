//! pacstrap: Arch roots.
//!
//! The article's recipe was `pacstrap -i -c -d DIR --noconfirm base base-devel`.
//! berth builds the line from the spec and from what the installed pacstrap
//! and the host actually offer:
//!
//! - never `-i`: without it pacstrap itself passes `--noconfirm` to pacman,
//!   so berth passes no `--noconfirm` (the recipe's trailing one only reached
//!   pacman as an extra argument);
//! - `-d` only when the installed pacstrap still lists it in `pacstrap -h`
//!   (old versions refused a non-mountpoint target without it; version 24
//!   and later, Debian 12's arch-install-scripts 28 included, have no `-d`,
//!   reject it as an invalid option, and install into a plain directory);
//! - `-c` only with `bootstrap_options.host_cache`;
//! - `-C PATH` with the spec's `pacman_conf`;
//! - the keyring: see [`Pacstrap`];
//! - `-M` when the host has no `/etc/pacman.d/mirrorlist` (pacstrap would
//!   otherwise fail to copy it, noisily, after installing);
//! - the packages of the spec, `base` when it lists none.
//!
//! pacstrap needs its target to exist as a directory: it checks that before
//! anything else (`... is not a directory`), and creates everything below it.

use std::path::Path;
use std::sync::OnceLock;

use berth_schema::{BootstrapperKind, Machine};

use super::{Bootstrapper, Requirement};
use crate::drivers::packages::{PackageManager, Pacman};
use crate::host::{Cmd, Host};

/// The host's pacman keyring, which pacstrap copies into a new root.
const HOST_KEYRING: &str = "/etc/pacman.d/gnupg";

/// The host's mirror list, which pacstrap copies into a new root unless `-M`.
const HOST_MIRRORLIST: &str = "/etc/pacman.d/mirrorlist";

/// `pacstrap [-d] [-c] [-C PACMAN_CONF] [-G] [-M] TARGET PACKAGE...` (never `-i`).
///
/// Keyring: on a host with a pacman keyring (`/etc/pacman.d/gnupg`, as on
/// Arch, or on any host after `pacman-key --init`), pacstrap's default
/// applies: the host keyring is copied into the new root, so the machine
/// trusts the keys the host verified its packages with. On a host without one
/// (a Debian host that never ran `pacman-key`) there is nothing to copy, and
/// berth passes `-G` to say so. It does not pass `-K` (a fresh keyring in the
/// target): `pacman-key --init` starts a `gpg-agent` for the target's keyring
/// that outlives pacstrap and berth, and the packages are verified against
/// the host's keyring during the bootstrap anyway. Without a keyring the
/// machine runs `pacman-key --init && pacman-key --populate` before its own
/// pacman can verify signed packages.
///
/// `mirror:` is refused for pacstrap: pacman takes its servers only from a
/// configuration file, so servers go into a file named by `pacman_conf:`.
#[derive(Debug, Clone, Copy)]
pub struct Pacstrap;

/// What berth learned about the host's pacstrap and pacman setup, probed
/// once per process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HostPacstrap {
    /// The installed pacstrap lists `-d` in `pacstrap -h`.
    has_d: bool,
    /// The host has a pacman keyring to copy into new roots.
    keyring: bool,
    /// The host has a pacman mirror list to copy into new roots.
    mirrorlist: bool,
}

impl HostPacstrap {
    /// Probes this host once: `pacstrap -h` (the installed pacstrap on PATH,
    /// the one the bootstrap runs) and the keyring and mirror list paths.
    fn get(host: &dyn Host) -> &'static HostPacstrap {
        static PROBE: OnceLock<HostPacstrap> = OnceLock::new();
        PROBE.get_or_init(|| HostPacstrap {
            has_d: pacstrap_help(host).is_some_and(|help| help_lists_option(&help, 'd')),
            keyring: Path::new(HOST_KEYRING).is_dir(),
            mirrorlist: Path::new(HOST_MIRRORLIST).is_file(),
        })
    }
}

/// `pacstrap -h`'s output (stdout and stderr), or None when it cannot run.
fn pacstrap_help(host: &dyn Host) -> Option<String> {
    let out = host.run(&Cmd::new(["pacstrap", "-h"])).ok()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Some(text)
}

/// Whether a usage text lists the single-letter option `-FLAG` at the start
/// of one of its lines (`    -d             Allow installation to a ...`).
fn help_lists_option(help: &str, flag: char) -> bool {
    let option = format!("-{flag}");
    help.lines().any(|line| {
        let mut words = line.split_whitespace();
        words
            .next()
            .is_some_and(|w| w == option || w.strip_suffix(',') == Some(option.as_str()))
    })
}

/// The command line for `machine` into `target` on a host described by `host`.
fn command_for(
    machine: &Machine,
    target: &Path,
    host: &HostPacstrap,
) -> Result<Vec<String>, String> {
    if machine.mirror.is_some() {
        return Err("mirror: pacstrap takes its servers only from pacman.conf: write `Server = ...` lines in a pacman.conf and name it with `pacman_conf:`".into());
    }
    let mut cmd = vec!["pacstrap".to_owned()];
    if host.has_d {
        // This pacstrap predates v24 and refuses a non-mountpoint target without -d.
        cmd.push("-d".to_owned());
    }
    if machine.bootstrap_options.host_cache {
        cmd.push("-c".to_owned());
    }
    if let Some(conf) = &machine.pacman_conf {
        if !conf.is_file() {
            return Err(format!(
                "pacman_conf: {} is not a file on this host",
                conf.display()
            ));
        }
        // Absolute, so the plan shows the file that will be used wherever
        // berth was started (a spec given as a relative path resolves
        // `pacman_conf` to a relative path).
        let conf = std::path::absolute(conf)
            .map_err(|e| format!("pacman_conf: {}: {e}", conf.display()))?;
        let conf = conf.to_str().ok_or_else(|| {
            format!(
                "pacman_conf: {} is not valid UTF-8, which pacstrap's command line shown in plans needs",
                conf.display()
            )
        })?;
        cmd.push("-C".to_owned());
        cmd.push(conf.to_owned());
    }
    if !host.keyring {
        cmd.push("-G".to_owned());
    }
    if !host.mirrorlist {
        cmd.push("-M".to_owned());
    }
    cmd.push(target.display().to_string());
    // Validation guarantees no package can be read as an option.
    if machine.packages.is_empty() {
        cmd.push("base".to_owned());
    } else {
        cmd.extend(machine.packages.iter().cloned());
    }
    Ok(cmd)
}

impl Bootstrapper for Pacstrap {
    fn kind(&self) -> BootstrapperKind {
        BootstrapperKind::Pacstrap
    }

    fn requirements(&self) -> &'static [Requirement] {
        &[
            Requirement {
                program: "pacstrap",
                package: "arch-install-scripts",
            },
            Requirement {
                program: "pacman",
                package: "pacman-package-manager",
            },
        ]
    }

    fn command(
        &self,
        host: &dyn Host,
        machine: &Machine,
        target: &Path,
    ) -> Result<Vec<String>, String> {
        command_for(machine, target, HostPacstrap::get(host))
    }

    fn needs_existing_target(&self) -> bool {
        true
    }

    fn package_manager(&self) -> &'static dyn PackageManager {
        &Pacman
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::path::PathBuf;

    /// `pacstrap -h` of arch-install-scripts 28 (Debian 12).
    const HELP_V28: &str = "usage: pacstrap [options] root [packages...]

  Options:
    -C <config>    Use an alternate config file for pacman
    -c             Use the package cache on the host, rather than the target
    -D             Skip pacman dependency checks
    -G             Avoid copying the host's pacman keyring to the target
    -i             Prompt for package confirmation when needed (run interactively)
    -K             Initialize an empty pacman keyring in the target (implies '-G')
    -M             Avoid copying the host's mirrorlist to the target
    -N             Run in unshare mode as a regular user
    -P             Copy the host's pacman config to the target
    -U             Use pacman -U to install packages

    -h             Print this help message

pacstrap installs packages to the specified new root directory. If no packages
are given, pacstrap defaults to the \"base\" group.
";

    /// `pacstrap -h` of arch-install-scripts 23 and earlier.
    const HELP_V23: &str = "usage: pacstrap [options] root [packages...]

  Options:
    -C config      Use an alternate config file for pacman
    -c             Use the package cache on the host, rather than the target
    -d             Allow installation to a non-mountpoint directory
    -G             Avoid copying the host's pacman keyring to the target
    -i             Prompt for package confirmation when needed (run interactively)
    -M             Avoid copying the host's mirrorlist to the target

    -h             Print this help message
";

    fn machine(packages: &[&str]) -> Machine {
        let spec = berth_schema::load_str(
            "machines:\n  archcontainer:\n    distro: arch\n",
            Path::new("/srv/spec/machines.yaml"),
        )
        .unwrap();
        let mut m = spec.machines["archcontainer"].clone();
        m.packages = packages.iter().map(|p| (*p).to_owned()).collect();
        m
    }

    const ARCH_HOST: HostPacstrap = HostPacstrap {
        has_d: false,
        keyring: true,
        mirrorlist: true,
    };
    const DEBIAN_HOST: HostPacstrap = HostPacstrap {
        has_d: false,
        keyring: false,
        mirrorlist: false,
    };

    const TARGET: &str = "/var/lib/machines/.archcontainer.berth-staging";

    #[test]
    fn probes_d_from_the_help_text() {
        assert!(!help_lists_option(HELP_V28, 'd'));
        assert!(help_lists_option(HELP_V28, 'D'));
        assert!(help_lists_option(HELP_V28, 'G'));
        assert!(help_lists_option(HELP_V23, 'd'));
        assert!(!help_lists_option(HELP_V23, 'K'));
        // A mention in prose is not an option.
        assert!(!help_lists_option("use it with -d to allow it", 'd'));
    }

    #[test]
    fn the_articles_machine_on_an_arch_host() {
        let cmd = command_for(
            &machine(&["base", "base-devel"]),
            Path::new(TARGET),
            &ARCH_HOST,
        );
        assert_eq!(cmd.unwrap(), ["pacstrap", TARGET, "base", "base-devel"]);
    }

    #[test]
    fn on_a_debian_host_no_keyring_and_no_mirrorlist_are_copied() {
        let cmd = command_for(&machine(&["base"]), Path::new(TARGET), &DEBIAN_HOST);
        assert_eq!(cmd.unwrap(), ["pacstrap", "-G", "-M", TARGET, "base"]);
    }

    #[test]
    fn never_interactive_and_no_noconfirm() {
        for host in [ARCH_HOST, DEBIAN_HOST] {
            let cmd = command_for(&machine(&["base"]), Path::new(TARGET), &host).unwrap();
            assert!(
                !cmd.iter().any(|a| a == "-i" || a == "--noconfirm"),
                "{cmd:?}"
            );
        }
    }

    #[test]
    fn d_only_when_the_installed_pacstrap_has_it() {
        let old = HostPacstrap {
            has_d: true,
            ..ARCH_HOST
        };
        let cmd = command_for(&machine(&["base"]), Path::new(TARGET), &old).unwrap();
        assert_eq!(cmd, ["pacstrap", "-d", TARGET, "base"]);
    }

    #[test]
    fn host_cache_and_pacman_conf() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("pacman.conf");
        std::fs::write(&conf, "[options]\n").unwrap();
        let mut m = machine(&["base"]);
        m.bootstrap_options.host_cache = true;
        m.pacman_conf = Some(conf.clone());
        let cmd = command_for(&m, Path::new(TARGET), &ARCH_HOST).unwrap();
        assert_eq!(
            cmd,
            [
                "pacstrap",
                "-c",
                "-C",
                conf.to_str().unwrap(),
                TARGET,
                "base"
            ]
        );
    }

    #[test]
    fn a_missing_pacman_conf_is_a_plan_error() {
        let mut m = machine(&["base"]);
        m.pacman_conf = Some(PathBuf::from("/nonexistent/berth/pacman.conf"));
        let err = command_for(&m, Path::new(TARGET), &ARCH_HOST).unwrap_err();
        assert!(err.contains("/nonexistent/berth/pacman.conf"), "{err}");
    }

    #[test]
    fn no_packages_means_base() {
        let cmd = command_for(&machine(&[]), Path::new(TARGET), &ARCH_HOST).unwrap();
        assert_eq!(cmd, ["pacstrap", TARGET, "base"]);
    }

    #[test]
    fn a_mirror_is_refused_with_the_way_to_set_servers() {
        let mut m = machine(&["base"]);
        m.mirror = Some("https://mirror.example/archlinux".into());
        let err = command_for(&m, Path::new(TARGET), &ARCH_HOST).unwrap_err();
        assert!(err.contains("pacman_conf"), "{err}");
    }

    #[test]
    fn requires_pacstrap_and_pacman() {
        let programs: Vec<_> = Pacstrap.requirements().iter().map(|r| r.program).collect();
        assert_eq!(programs, ["pacstrap", "pacman"]);
    }
}
