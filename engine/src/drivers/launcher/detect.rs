//! Finding a machine that runs although berth did not start it (or no
//! longer knows it did): any systemd-nspawn process for its name or root.
//! One pass over `/proc`, no subprocess.

use std::path::Path;

use super::NSPAWN;
use crate::host::{Host, process};

/// A systemd-nspawn process running a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// Its pid.
    pub pid: i32,
    /// How it was started, as far as can be told.
    pub how: String,
}

/// Every systemd-nspawn process on the host with its arguments, read in one
/// pass over `/proc` (taken once per plan, however many machines).
#[derive(Debug, Clone, Default)]
pub struct NspawnProcesses {
    procs: Vec<(i32, Vec<String>)>,
}

impl NspawnProcesses {
    /// Reads the host's `/proc` now.
    pub fn scan(host: &dyn Host) -> Self {
        NspawnProcesses {
            procs: process::with_program(host, NSPAWN),
        }
    }

    /// The systemd-nspawn process booting machine `name` (root `root`), if any.
    pub fn find(&self, host: &dyn Host, name: &str, root: &Path) -> Option<Running> {
        let root = root.to_string_lossy();
        let (pid, _) = self
            .procs
            .iter()
            .find(|(_, args)| runs_machine(args, name, &root) && has_boot(args))?;
        let pid = *pid;
        let how =
            if host.booted_with_systemd() && super::unit::unit_main_pid(host, name) == Some(pid) {
                format!(
                    "{} (started with machinectl or systemctl)",
                    super::unit::unit_name(name)
                )
            } else {
                format!("a {NSPAWN} process (pid {pid})")
            };
        Some(Running { pid, how })
    }

    /// The pid of the systemd-nspawn process booting `root` itself as
    /// machine `name`, if any: its `--directory` is `root`, or it names
    /// only the machine (`--machine=NAME`, as systemd-nspawn@NAME.service
    /// does) and `root` is where nspawn then looks,
    /// `/var/lib/machines/NAME`. Unlike [`NspawnProcesses::find`], never a
    /// process that merely shares the name or boots an image.
    pub fn booting_root(&self, name: &str, root: &Path) -> Option<i32> {
        let root = root.to_string_lossy();
        let default = Path::new(DEFAULT_MACHINES_DIR).join(name);
        self.procs
            .iter()
            .find(|(_, args)| {
                has_boot(args)
                    && match source_of(args) {
                        Source::Directory(dir) => dir == root,
                        Source::Image => false,
                        Source::Name => {
                            runs_machine(args, name, "") && Path::new(root.as_ref()) == default
                        }
                    }
            })
            .map(|(pid, _)| *pid)
    }
}

/// Where systemd-nspawn looks for a machine named without a directory.
const DEFAULT_MACHINES_DIR: &str = "/var/lib/machines";

/// What a systemd-nspawn command line boots.
#[derive(Debug, PartialEq, Eq)]
enum Source {
    /// `--directory`/`-D`: this tree.
    Directory(String),
    /// `--image`/`-i`: a disk image.
    Image,
    /// Neither: the machine's name, looked up in nspawn's search path.
    Name,
}

/// What systemd-nspawn's arguments boot.
fn source_of(args: &[String]) -> Source {
    let mut it = args.iter().skip(1);
    while let Some(arg) = it.next() {
        if arg == "--" {
            break;
        }
        if arg == "--directory" || arg == "-D" {
            return Source::Directory(it.next().cloned().unwrap_or_default());
        }
        if let Some(dir) = arg
            .strip_prefix("--directory=")
            .or_else(|| arg.strip_prefix("-D").filter(|d| !d.is_empty()))
        {
            return Source::Directory(dir.to_owned());
        }
        if arg == "--image"
            || arg == "-i"
            || arg.starts_with("--image=")
            || (arg.starts_with("-i") && !arg.starts_with("--"))
        {
            return Source::Image;
        }
    }
    Source::Name
}

/// The systemd-nspawn process running machine `name` (root `root`), if any.
pub fn find_nspawn(host: &dyn Host, name: &str, root: &Path) -> Option<Running> {
    NspawnProcesses::scan(host).find(host, name, root)
}

/// Whether systemd-nspawn's arguments name this machine or its root.
pub(crate) fn runs_machine(args: &[String], name: &str, root: &str) -> bool {
    let mut it = args.iter().skip(1).peekable();
    while let Some(arg) = it.next() {
        let value = |flag_long: &str, flag_short: &str| -> Option<String> {
            if let Some(v) = arg.strip_prefix(&format!("{flag_long}=")) {
                return Some(v.to_owned());
            }
            if arg == flag_long || arg == flag_short {
                return None;
            }
            arg.strip_prefix(flag_short)
                .filter(|v| !v.is_empty() && !flag_short.is_empty())
                .map(str::to_owned)
        };
        for (long, short, wanted) in [("--machine", "-M", name), ("--directory", "-D", root)] {
            if arg == long || arg == short {
                if it.peek().is_some_and(|v| v.as_str() == wanted) {
                    return true;
                }
            } else if value(long, short).as_deref() == Some(wanted) {
                return true;
            }
        }
    }
    false
}

/// Whether the process boots a machine (not a one-off command berth runs
/// in a stopped root with `--pipe`).
fn has_boot(args: &[String]) -> bool {
    args.iter().any(|a| a == "--boot" || a == "-b")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn recognises_the_ways_nspawn_is_told_which_machine() {
        let root = "/var/lib/machines/web";
        for cmd in [
            "systemd-nspawn --quiet --keep-unit --boot --link-journal=try-guest --network-veth -U --settings=override --machine=web",
            "systemd-nspawn -b -D /var/lib/machines/web",
            "systemd-nspawn -b --directory=/var/lib/machines/web",
            "systemd-nspawn -b -M web",
            "systemd-nspawn -b -Mweb",
        ] {
            assert!(runs_machine(&args(cmd), "web", root), "{cmd}");
        }
        for cmd in [
            "systemd-nspawn -b --machine=web2",
            "systemd-nspawn -b -D /var/lib/machines/web2",
        ] {
            assert!(!runs_machine(&args(cmd), "web", root), "{cmd}");
        }
    }

    #[test]
    fn only_a_process_booting_the_root_itself_is_its_guest() {
        let procs = |cmd: &str| NspawnProcesses {
            procs: vec![(42, args(cmd))],
        };
        let root = Path::new("/var/lib/machines/web");
        for cmd in [
            "systemd-nspawn --quiet --keep-unit --boot --link-journal=try-guest --network-veth -U --settings=override --machine=web",
            "systemd-nspawn -b -D /var/lib/machines/web",
            "systemd-nspawn -b --directory=/var/lib/machines/web -M other",
            "systemd-nspawn -b -D/var/lib/machines/web",
        ] {
            assert_eq!(procs(cmd).booting_root("web", root), Some(42), "{cmd}");
        }
        for cmd in [
            // The same name, another tree or an image: not this root.
            "systemd-nspawn -b -M web -D /srv/other",
            "systemd-nspawn -b -M web --image=/srv/web.raw",
            "systemd-nspawn -b -M web -i /srv/web.raw",
            // Not booted: a one-off command in the root.
            "systemd-nspawn --pipe -D /var/lib/machines/web -- true",
        ] {
            assert_eq!(procs(cmd).booting_root("web", root), None, "{cmd}");
        }
        // Named only: nspawn looks in /var/lib/machines, not elsewhere.
        let elsewhere = Path::new("/srv/machines/web");
        assert_eq!(
            procs("systemd-nspawn -b -M web").booting_root("web", elsewhere),
            None
        );
        assert_eq!(
            procs("systemd-nspawn -b -D /srv/machines/web").booting_root("web", elsewhere),
            Some(42)
        );
    }
}
