//! Upgrading a guest's packages (`berth plan --upgrade`, `berth apply
//! --upgrade`): which packages the guest's own package manager would
//! upgrade, asked in simulation mode inside the machine (nsenter into the
//! running guest, `systemd-nspawn --pipe` on a stopped root; never the
//! host's package manager), and the commands that really upgrade.
//!
//! | distro | refresh | simulation | upgrade |
//! | --- | --- | --- | --- |
//! | debian, ubuntu | `apt-get update` | `apt-get -s dist-upgrade` (`Inst NAME [OLD] (NEW ...)`, `Remv NAME [OLD]`) | `apt-get -y dist-upgrade` (noninteractive, old config files kept) |
//! | arch | (none: the simulation syncs a copy) | `pacman -Sy` into a temporary database beside the real one, then `pacman -Qu` against it (`NAME OLD -> NEW`), as `checkupdates` does | `pacman -Syu --noconfirm` |
//! | fedora | (none: the simulation refreshes) | `dnf --refresh check-update` (exit 100: updates), old versions from `rpm -q` | `dnf -y upgrade` |
//!
//! Arch's simulation never syncs the guest's own database: a synced
//! database without the upgrade is the partial upgrade Arch warns about
//! (a later `pacman -S` would install against it).
//!
//! The plan carries the exact list (name, version now, version after).
//! apply refreshes and simulates again right before upgrading: when the
//! guest would now upgrade anything else, or to other versions, the plan
//! is stale and nothing is upgraded. (Pinning versions instead, `apt-get
//! install PKG=VER`, would mark every upgraded package as manually
//! installed and has no pacman equivalent.) The parsers are pure functions
//! tested on apt output captured on a Debian 12 host and on the formats
//! pacman and dnf document.

use berth_schema::{Bind, Distro};
use serde::Serialize;

use crate::drivers::guest;
use crate::error::EngineError;
use crate::host::{Cmd, Finished, Host};

/// One package an upgrade changes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PackageUpgrade {
    /// The package name (apt: with `:ARCH` when apt shows one).
    pub name: String,
    /// The version installed now; None: newly installed by the upgrade.
    pub from: Option<String>,
    /// The version after; None: removed by the upgrade.
    pub to: Option<String>,
}

impl std::fmt::Display for PackageUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} -> {}",
            self.name,
            self.from.as_deref().unwrap_or("(new)"),
            self.to.as_deref().unwrap_or("(removed)")
        )
    }
}

/// The guest's package manager, as far as upgrades go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeManager {
    /// apt-get (Debian, Ubuntu).
    Apt,
    /// pacman (Arch).
    Pacman,
    /// dnf (Fedora).
    Dnf,
}

impl UpgradeManager {
    /// The package manager of `distro`'s guests.
    pub fn for_distro(distro: Distro) -> Self {
        match distro {
            Distro::Debian | Distro::Ubuntu => UpgradeManager::Apt,
            Distro::Arch => UpgradeManager::Pacman,
            Distro::Fedora => UpgradeManager::Dnf,
        }
    }

    /// How the upgrade is done, for plans: `apt-get dist-upgrade`.
    pub fn via(self) -> &'static str {
        match self {
            UpgradeManager::Apt => "apt-get dist-upgrade",
            UpgradeManager::Pacman => "pacman -Syu",
            UpgradeManager::Dnf => "dnf upgrade",
        }
    }

    /// The program (its path in the root) the commands run.
    pub fn program(self) -> &'static str {
        match self {
            UpgradeManager::Apt => "/usr/bin/apt-get",
            UpgradeManager::Pacman => "/usr/bin/pacman",
            UpgradeManager::Dnf => "/usr/bin/dnf",
        }
    }

    /// The environment of every command in the guest: the C locale (the
    /// output is parsed), and apt's noninteractive frontend.
    pub fn env(self) -> Vec<(String, String)> {
        let mut env = vec![("LC_ALL".to_owned(), "C".to_owned())];
        if self == UpgradeManager::Apt {
            env.push(("DEBIAN_FRONTEND".into(), "noninteractive".into()));
        }
        env
    }

    /// The commands that refresh the package lists before a simulation.
    pub fn refresh(self) -> Vec<Vec<String>> {
        match self {
            UpgradeManager::Apt => vec![argv(&["apt-get", "update"])],
            UpgradeManager::Pacman | UpgradeManager::Dnf => Vec::new(),
        }
    }

    /// The command that lists what an upgrade would do, changing nothing.
    pub fn simulate(self) -> Vec<String> {
        match self {
            UpgradeManager::Apt => argv(&["apt-get", "-s", "dist-upgrade"]),
            UpgradeManager::Pacman => argv(&["sh", "-c", PACMAN_CHECK]),
            UpgradeManager::Dnf => argv(&["dnf", "-q", "--refresh", "check-update"]),
        }
    }

    /// The commands that upgrade, in order.
    pub fn upgrade(self) -> Vec<Vec<String>> {
        match self {
            UpgradeManager::Apt => vec![argv(&[
                "apt-get",
                "-y",
                "-o",
                "Dpkg::Options::=--force-confdef",
                "-o",
                "Dpkg::Options::=--force-confold",
                "dist-upgrade",
            ])],
            UpgradeManager::Pacman => vec![argv(&["pacman", "-Syu", "--noconfirm"])],
            UpgradeManager::Dnf => vec![argv(&["dnf", "-y", "upgrade"])],
        }
    }

    /// Every command an upgrade runs (refresh, the check, the upgrade), as
    /// a user would type them.
    pub fn commands(self) -> Vec<String> {
        self.refresh()
            .into_iter()
            .chain([self.simulate()])
            .chain(self.upgrade())
            .map(|c| c.join(" "))
            .collect()
    }
}

/// The guest's pending pacman upgrades without syncing its database
/// (`checkupdates`' way): the sync databases go to a temporary dbpath whose
/// `local` is the real one; `pacman -Qu` exits 1 when there is nothing.
const PACMAN_CHECK: &str = "set -e; db=$(mktemp -d /tmp/berth-checkupdates.XXXXXX); \
trap 'rm -rf \"$db\"' EXIT; ln -s /var/lib/pacman/local \"$db/local\"; \
pacman -Sy --dbpath \"$db\" --logfile /dev/null >&2; \
pacman -Qu --dbpath \"$db\" || [ $? -eq 1 ]";

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| (*p).to_owned()).collect()
}

/// Where an upgrade's commands run: machine `name`, the running guest
/// whose init is `leader`, or its stopped root with the spec's `binds`
/// (a repository bound in is there as when the machine runs).
#[derive(Debug, Clone, Copy)]
pub struct InMachine<'a> {
    /// The machine.
    pub name: &'a str,
    /// The running guest's init, None when stopped.
    pub leader: Option<i32>,
    /// The spec's binds, given to `systemd-nspawn --pipe` on a stopped root.
    pub binds: &'a [Bind],
}

impl InMachine<'_> {
    /// The command that runs `argv` there with `manager`'s environment.
    fn command(&self, host: &dyn Host, manager: UpgradeManager, argv: &[String]) -> Cmd {
        let mut cmd = guest::command(host, self.name, self.leader, argv, &manager.env());
        if self.leader.is_none()
            && let Some(at) = cmd.argv.iter().position(|a| a == "--")
        {
            let binds = self.binds.iter().map(|b| {
                format!(
                    "--{}={}:{}",
                    if b.read_only { "bind-ro" } else { "bind" },
                    b.host.display(),
                    b.machine.display()
                )
            });
            cmd.argv.splice(at..at, binds);
        }
        cmd
    }

    /// Runs `argv` there, its output appended to the machine's log.
    pub fn run(
        &self,
        host: &dyn Host,
        manager: UpgradeManager,
        argv: &[String],
    ) -> Result<(), EngineError> {
        guest::run_command(host, self.name, argv, self.command(host, manager, argv))
    }
}

/// Runs `argv` in `place` with `manager`'s environment, output captured.
fn run_captured(
    host: &dyn Host,
    place: InMachine<'_>,
    manager: UpgradeManager,
    argv: &[String],
) -> Result<Finished, EngineError> {
    let cmd = place.command(host, manager, argv);
    let cgroup = cmd.cgroup.clone();
    let out = host.run(&cmd);
    if let Some(cgroup) = cgroup {
        host.remove_cgroup(&cgroup);
    }
    out
}

/// Refreshes the guest's package lists and asks its package manager what
/// an upgrade would change, in the machine (see the module doc). Sorted
/// by name.
pub fn simulate(
    host: &dyn Host,
    place: InMachine<'_>,
    manager: UpgradeManager,
) -> Result<Vec<PackageUpgrade>, EngineError> {
    let name = place.name;
    for argv in manager.refresh() {
        place.run(host, manager, &argv)?;
    }
    let simulation = manager.simulate();
    let out = run_captured(host, place, manager, &simulation)?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let failed = |out: &Finished| EngineError::Command {
        what: format!("{} (in machine {name})", simulation.join(" ")),
        status: out.status.clone(),
        output: tail(&out.stderr_text(), 20),
    };
    let mut upgrades = match manager {
        UpgradeManager::Apt if out.success() => parse_apt_simulation(&text),
        UpgradeManager::Pacman if out.success() => parse_pacman_upgrades(&text),
        UpgradeManager::Dnf if out.code == Some(0) => Vec::new(),
        UpgradeManager::Dnf if out.code == Some(100) => {
            let names = parse_dnf_check_update(&text);
            if names.is_empty() {
                Vec::new()
            } else {
                let mut rpm = argv(&["rpm", "-q", "--qf", "%{NAME} %{EVR}\\n", "--"]);
                rpm.extend(names.iter().map(|(n, _)| n.clone()));
                let old = run_captured(host, place, manager, &rpm)?;
                let installed = parse_rpm_versions(&String::from_utf8_lossy(&old.stdout));
                names
                    .into_iter()
                    .map(|(n, to)| PackageUpgrade {
                        from: installed
                            .iter()
                            .find(|(i, _)| *i == n)
                            .map(|(_, v)| v.clone()),
                        name: n,
                        to: Some(to),
                    })
                    .collect()
            }
        }
        _ => return Err(failed(&out)),
    };
    upgrades.sort();
    upgrades.dedup();
    Ok(upgrades)
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// What `apt-get -s dist-upgrade` would do: `Inst NAME [OLD] (NEW ...)`
/// (no `[OLD]`: newly installed) and `Remv NAME [OLD]` lines; the `Conf`
/// lines repeat the `Inst` ones and everything else is chatter.
pub fn parse_apt_simulation(text: &str) -> Vec<PackageUpgrade> {
    let mut out = Vec::new();
    for line in text.lines() {
        let (install, rest) = if let Some(rest) = line.strip_prefix("Inst ") {
            (true, rest)
        } else if let Some(rest) = line.strip_prefix("Remv ") {
            (false, rest)
        } else {
            continue;
        };
        let mut rest = rest.trim_start();
        let Some(name) = rest.split_whitespace().next() else {
            continue;
        };
        rest = rest[name.len()..].trim_start();
        let mut from = None;
        if let Some(inner) = rest.strip_prefix('[')
            && let Some(end) = inner.find(']')
        {
            from = Some(inner[..end].to_owned());
            rest = inner[end + 1..].trim_start();
        }
        let to = if install {
            let Some(inner) = rest.strip_prefix('(') else {
                continue;
            };
            let Some(version) = inner.split([' ', ')']).next().filter(|v| !v.is_empty()) else {
                continue;
            };
            Some(version.to_owned())
        } else {
            None
        };
        out.push(PackageUpgrade {
            name: name.to_owned(),
            from,
            to,
        });
    }
    out
}

/// What `pacman -Qu` lists after a sync: `NAME OLD -> NEW` (an ignored
/// package carries ` [ignored]` and is not upgraded).
pub fn parse_pacman_upgrades(text: &str) -> Vec<PackageUpgrade> {
    text.lines()
        .filter(|l| !l.trim_end().ends_with("[ignored]"))
        .filter_map(|line| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                [name, old, "->", new] => Some(PackageUpgrade {
                    name: (*name).to_owned(),
                    from: Some((*old).to_owned()),
                    to: Some((*new).to_owned()),
                }),
                _ => None,
            }
        })
        .collect()
}

/// The packages `dnf check-update` lists (`NAME.ARCH  VERSION  REPO`),
/// as (name, new version); the "Obsoleting Packages" section and anything
/// after it, and lines of other shapes, are left out.
pub fn parse_dnf_check_update(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    // dnf wraps a long name onto a line of its own; the rest follows.
    let mut wrapped: Option<&str> = None;
    for line in text.lines() {
        if line.starts_with("Obsoleting") || line.starts_with("Security:") {
            break;
        }
        let mut parts: Vec<&str> = line.split_whitespace().collect();
        match (parts.len(), wrapped.take()) {
            (1, _) => {
                wrapped = Some(parts[0]);
                continue;
            }
            (2, Some(name)) => parts.insert(0, name),
            _ => {}
        }
        let [package, version, _repo] = parts.as_slice() else {
            continue;
        };
        let Some((name, arch)) = package.rsplit_once('.') else {
            continue;
        };
        if name.is_empty()
            || arch.is_empty()
            || !version.chars().next().is_some_and(|c| c.is_ascii_digit())
        {
            continue;
        }
        out.push((name.to_owned(), (*version).to_owned()));
    }
    out
}

/// `rpm -q --qf '%{NAME} %{EVR}\n'` output: (name, version) pairs.
pub fn parse_rpm_versions(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (name, version) = l.trim().split_once(' ')?;
            Some((name.to_owned(), version.trim().to_owned()))
        })
        .collect()
}

/// Says how `now` differs from `approved` (both sorted), or None when the
/// guest would upgrade exactly what was approved.
pub fn difference(approved: &[PackageUpgrade], now: &[PackageUpgrade]) -> Option<String> {
    let added: Vec<String> = now
        .iter()
        .filter(|p| !approved.contains(p))
        .map(ToString::to_string)
        .collect();
    let gone: Vec<String> = approved
        .iter()
        .filter(|p| !now.contains(p))
        .map(ToString::to_string)
        .collect();
    if added.is_empty() && gone.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("it would now also do: {}", added.join(", ")));
    }
    if !gone.is_empty() {
        parts.push(format!("it would no longer do: {}", gone.join(", ")));
    }
    Some(parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(name: &str, from: Option<&str>, to: Option<&str>) -> PackageUpgrade {
        PackageUpgrade {
            name: name.into(),
            from: from.map(Into::into),
            to: to.map(Into::into),
        }
    }

    /// `apt-get -s dist-upgrade` in a Debian 12 guest with the test's local
    /// repository (the shape tests/upgrades.rs sees).
    const APT_LOCAL: &str = "\
Reading package lists...
Building dependency tree...
Reading state information...
Calculating upgrade...
The following packages will be upgraded:
  berth-hello
1 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.
Inst berth-hello [1.0] (2.0 localhost [all])
Conf berth-hello (2.0 localhost [all])
";

    /// `apt-get -s dist-upgrade` on a Debian 12 host against Debian's
    /// archive (captured, a few of its 123 packages; the summary as printed).
    const APT_HOST: &str = "\
Reading package lists...
Building dependency tree...
Reading state information...
Calculating upgrade...
The following packages will be upgraded:
  base-files dpkg libssh2-1 tzdata zstd
123 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.
Inst base-files [12.4+deb12u11] (12.4+deb12u15 Debian:12.15/oldstable [amd64])
Conf base-files (12.4+deb12u15 Debian:12.15/oldstable [amd64])
Inst dpkg [1.21.22] (1.21.23 Debian:12.15/oldstable [amd64])
Conf dpkg (1.21.23 Debian:12.15/oldstable [amd64])
Inst tzdata [2025b-0+deb12u2] (2026f-0+deb12u1 Debian-Security:12/oldstable-security [all])
Inst libssh2-1 [1.10.0-3+b1] (1.10.0-3+deb12u1 Debian-Security:12/oldstable-security [amd64])
Inst zstd [1.5.4+dfsg2-5] (1.5.4+dfsg2-5+deb12u1 Debian-Security:12/oldstable-security [amd64])
Conf tzdata (2026f-0+deb12u1 Debian-Security:12/oldstable-security [all])
Conf libssh2-1 (1.10.0-3+deb12u1 Debian-Security:12/oldstable-security [amd64])
Conf zstd (1.5.4+dfsg2-5+deb12u1 Debian-Security:12/oldstable-security [amd64])
";

    /// `apt-get -s dist-upgrade` with a new kernel package, a removal and
    /// a trailing `[...]` of broken dependencies (the shapes apt prints).
    const APT_ARCHIVE: &str = "\
Reading package lists...
Building dependency tree...
Reading state information...
Calculating upgrade...
The following packages will be REMOVED:
  oldlib1
The following NEW packages will be installed:
  linux-image-6.1.0-18-amd64
The following packages will be upgraded:
  libc-bin libc6
2 upgraded, 1 newly installed, 1 to remove and 0 not upgraded.
Remv oldlib1 [1.2-3]
Inst libc6 [2.36-9+deb12u3] (2.36-9+deb12u4 Debian:12.5/stable, Debian-Security:12/stable-security [amd64]) [libc-bin:amd64 ]
Inst libc-bin [2.36-9+deb12u3] (2.36-9+deb12u4 Debian:12.5/stable, Debian-Security:12/stable-security [amd64])
Inst linux-image-6.1.0-18-amd64 (6.1.76-1 Debian-Security:12/stable-security [amd64])
Conf libc6 (2.36-9+deb12u4 Debian:12.5/stable, Debian-Security:12/stable-security [amd64])
Conf libc-bin (2.36-9+deb12u4 Debian:12.5/stable, Debian-Security:12/stable-security [amd64])
Conf linux-image-6.1.0-18-amd64 (6.1.76-1 Debian-Security:12/stable-security [amd64])
";

    #[test]
    fn apt_simulation_lists_upgrades_installs_and_removals() {
        assert_eq!(
            parse_apt_simulation(APT_LOCAL),
            [up("berth-hello", Some("1.0"), Some("2.0"))]
        );
        assert_eq!(
            parse_apt_simulation(APT_HOST),
            [
                up("base-files", Some("12.4+deb12u11"), Some("12.4+deb12u15")),
                up("dpkg", Some("1.21.22"), Some("1.21.23")),
                up("tzdata", Some("2025b-0+deb12u2"), Some("2026f-0+deb12u1")),
                up("libssh2-1", Some("1.10.0-3+b1"), Some("1.10.0-3+deb12u1")),
                up("zstd", Some("1.5.4+dfsg2-5"), Some("1.5.4+dfsg2-5+deb12u1")),
            ]
        );
        assert_eq!(
            parse_apt_simulation(APT_ARCHIVE),
            [
                up("oldlib1", Some("1.2-3"), None),
                up("libc6", Some("2.36-9+deb12u3"), Some("2.36-9+deb12u4")),
                up("libc-bin", Some("2.36-9+deb12u3"), Some("2.36-9+deb12u4")),
                up("linux-image-6.1.0-18-amd64", None, Some("6.1.76-1")),
            ]
        );
        let nothing = "Reading package lists...\nCalculating upgrade...\n\
                       0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n";
        assert!(parse_apt_simulation(nothing).is_empty());
        // Malformed lines are skipped, not guessed at.
        assert!(parse_apt_simulation("Inst \nInst foo\nInst bar [1]\n").is_empty());
    }

    #[test]
    fn pacman_lists_upgrades_not_ignored_ones() {
        let text = "linux 6.7.4.arch1-1 -> 6.7.5.arch1-1\n\
                    zlib 1:1.3-1 -> 1:1.3.1-1\n\
                    pinned 1.0-1 -> 2.0-1 [ignored]\n\
                    :: warning line\n";
        assert_eq!(
            parse_pacman_upgrades(text),
            [
                up("linux", Some("6.7.4.arch1-1"), Some("6.7.5.arch1-1")),
                up("zlib", Some("1:1.3-1"), Some("1:1.3.1-1")),
            ]
        );
        assert!(parse_pacman_upgrades("").is_empty());
    }

    #[test]
    fn dnf_check_update_and_rpm_versions() {
        let text = "\n\
bash.x86_64                          5.2.26-3.fc40                   updates\n\
curl.x86_64                          8.6.0-8.fc40                    updates\n\
python3-very-long-package-name.noarch\n\
                                     1.0-1.fc40                      updates\n\
Obsoleting Packages\n\
grub2-tools.x86_64                   1:2.06-121.fc40                 updates\n";
        assert_eq!(
            parse_dnf_check_update(text),
            [
                ("bash".to_owned(), "5.2.26-3.fc40".to_owned()),
                ("curl".to_owned(), "8.6.0-8.fc40".to_owned()),
                (
                    "python3-very-long-package-name".to_owned(),
                    "1.0-1.fc40".to_owned()
                ),
            ]
        );
        assert_eq!(
            parse_rpm_versions("bash 5.2.26-1.fc40\ncurl 8.6.0-7.fc40\n"),
            [
                ("bash".to_owned(), "5.2.26-1.fc40".to_owned()),
                ("curl".to_owned(), "8.6.0-7.fc40".to_owned()),
            ]
        );
    }

    #[test]
    fn differences_name_what_changed() {
        let a = [up("hello", Some("1.0"), Some("2.0"))];
        let b = [up("hello", Some("1.0"), Some("3.0"))];
        assert_eq!(difference(&a, &a), None);
        let diff = difference(&a, &b).unwrap();
        assert!(diff.contains("also do: hello 1.0 -> 3.0"), "{diff}");
        assert!(diff.contains("no longer do: hello 1.0 -> 2.0"), "{diff}");
        assert_eq!(
            up("x", None, Some("1")).to_string(),
            "x (new) -> 1".to_owned()
        );
        assert_eq!(
            up("x", Some("1"), None).to_string(),
            "x 1 -> (removed)".to_owned()
        );
    }

    #[test]
    fn a_stopped_root_gets_the_spec_binds_a_running_guest_has() {
        let host = crate::host::fake::FakeHost::new(false);
        let binds = [
            Bind {
                host: "/srv/repo".into(),
                machine: "/srv/repo".into(),
                read_only: true,
            },
            Bind {
                host: "/data".into(),
                machine: "/var/data".into(),
                read_only: false,
            },
        ];
        let stopped = InMachine {
            name: "up",
            leader: None,
            binds: &binds,
        };
        let cmd = stopped.command(&host, UpgradeManager::Apt, &argv(&["apt-get", "update"]));
        let line = cmd.display();
        assert!(line.starts_with("systemd-nspawn "), "{line}");
        assert!(
            line.ends_with(
                " --bind-ro=/srv/repo:/srv/repo --bind=/data:/var/data -- apt-get update"
            ),
            "{line}"
        );
        assert!(line.contains("--setenv=LC_ALL=C"), "{line}");
        assert!(cmd.env.is_empty(), "{:?}", cmd.env);
        let running = InMachine {
            leader: Some(42),
            ..stopped
        };
        let line = running
            .command(&host, UpgradeManager::Apt, &argv(&["apt-get", "update"]))
            .display();
        assert!(line.starts_with("nsenter --target=42 "), "{line}");
        assert!(!line.contains("--bind"), "{line}");
        assert!(line.contains(" env -i PATH="), "{line}");
    }

    #[test]
    fn commands_per_manager() {
        assert_eq!(
            UpgradeManager::Apt.commands(),
            [
                "apt-get update",
                "apt-get -s dist-upgrade",
                "apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold dist-upgrade"
            ]
        );
        let arch = UpgradeManager::for_distro(Distro::Arch).commands();
        assert_eq!(arch.len(), 2, "{arch:?}");
        assert!(
            arch[0].starts_with("sh -c set -e; db=$(mktemp -d "),
            "{arch:?}"
        );
        assert!(arch[0].contains("pacman -Sy --dbpath \"$db\""), "{arch:?}");
        assert!(
            arch[0].contains("pacman -Qu --dbpath \"$db\" || [ $? -eq 1 ]"),
            "{arch:?}"
        );
        assert_eq!(arch[1], "pacman -Syu --noconfirm");
        assert_eq!(
            UpgradeManager::for_distro(Distro::Fedora).commands(),
            ["dnf -q --refresh check-update", "dnf -y upgrade"]
        );
        assert!(
            UpgradeManager::Apt
                .env()
                .contains(&("DEBIAN_FRONTEND".into(), "noninteractive".into()))
        );
    }
}
