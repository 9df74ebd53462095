//! A fake host for unit tests: it records every command it is asked to run
//! and answers from a script; berth's directories and `/proc` are a temp
//! dir. A "bootstrap" makes a small root there, a "started" machine is a
//! fake process under the temp `/proc`, and `cp` copies for real inside the
//! temp dir. Nothing here needs root or touches the real host.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::command::{Cmd, Finished};
use super::{Detached, Host, HostFacts, LocalHost};
use crate::error::EngineError;
use crate::host::paths::Paths;

/// The fake host. See the module documentation.
#[derive(Debug)]
pub(crate) struct FakeHost {
    dir: tempfile::TempDir,
    facts: HostFacts,
    proc_dir: PathBuf,
    /// Every command run, in order (detached ones too).
    pub(crate) commands: Mutex<Vec<Cmd>>,
    next_pid: Mutex<i32>,
    /// The main pid of the last unit started with machinectl or systemctl.
    unit_pid: Mutex<Option<i32>>,
    /// Unit files a bootstrap puts in the new root.
    pub(crate) base_units: Vec<String>,
    /// Packages a bootstrap's dpkg status lists.
    pub(crate) base_packages: Vec<String>,
    /// Machines machined knows: (name, unit, root directory). `machinectl
    /// show` answers from here; `systemctl kill` of a unit removes its machine.
    pub(crate) machined: Mutex<Vec<(String, String, String)>>,
    /// The resource limits each detached process was started with.
    pub(crate) spawn_limits: Mutex<Vec<Vec<crate::drivers::resources::CgroupWrite>>>,
    /// What `apt-get -s dist-upgrade` prints in a guest (upgrades).
    pub(crate) apt_simulation: Mutex<String>,
    /// Whether `apt-get -y ... dist-upgrade` fails in a guest.
    pub(crate) apt_upgrade_fails: Mutex<bool>,
}

impl FakeHost {
    /// A fake host; `systemd`: whether it was booted with systemd.
    pub(crate) fn new(systemd: bool) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let top = dir.path().to_owned();
        let paths = Paths {
            machines_dir: top.join("machines"),
            state_dir: top.join("state"),
            nspawn_dir: top.join("nspawn"),
            cache_dir: top.join("cache"),
        };
        for d in [
            &paths.machines_dir,
            &paths.state_dir,
            &paths.nspawn_dir,
            &paths.cache_dir,
        ] {
            fs::create_dir_all(d).expect("a fake dir");
        }
        let proc_dir = top.join("proc");
        fs::create_dir_all(&proc_dir).expect("a fake /proc");
        FakeHost {
            dir,
            facts: HostFacts {
                paths,
                booted_with_systemd: systemd,
                host_dhcp: false,
                check_tools: false,
            },
            proc_dir,
            commands: Mutex::new(Vec::new()),
            next_pid: Mutex::new(1000),
            unit_pid: Mutex::new(None),
            base_units: vec![
                "systemd-networkd.service".into(),
                "fstrim.timer".into(),
                "apt-daily.timer".into(),
            ],
            base_packages: vec!["systemd".into(), "dbus".into()],
            machined: Mutex::new(Vec::new()),
            spawn_limits: Mutex::new(Vec::new()),
            apt_simulation: Mutex::new(String::new()),
            apt_upgrade_fails: Mutex::new(false),
        }
    }

    /// The fake's top directory.
    pub(crate) fn top(&self) -> &Path {
        self.dir.path()
    }

    /// The command lines run so far, each joined with spaces.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.commands
            .lock()
            .expect("commands")
            .iter()
            .map(Cmd::display)
            .collect()
    }

    /// Forgets the commands recorded so far.
    pub(crate) fn clear(&self) {
        self.commands.lock().expect("commands").clear();
    }

    /// A fake process running `program` with `args` (and, for
    /// systemd-nspawn, a guest init as its child); returns its pid.
    pub(crate) fn add_process(&self, program: &str, args: &[String]) -> i32 {
        let pid = {
            let mut next = self.next_pid.lock().expect("pid");
            *next += 2;
            *next
        };
        let dir = self.proc_dir.join(pid.to_string());
        fs::create_dir_all(dir.join(format!("task/{pid}"))).expect("fake proc");
        let stat_fields: Vec<String> = (0..50)
            .map(|i| if i == 19 { "4242".into() } else { "0".into() })
            .collect();
        fs::write(
            dir.join("stat"),
            format!("{pid} ({program}) S {}\n", stat_fields[1..].join(" ")),
        )
        .expect("stat");
        symlink(format!("/usr/bin/{program}"), dir.join("exe")).expect("exe");
        fs::write(dir.join("cmdline"), args.join("\0")).expect("cmdline");
        // The guest's init: PID 1 of its own namespace.
        let child = pid + 1;
        let child_dir = self.proc_dir.join(child.to_string());
        fs::create_dir_all(&child_dir).expect("fake child");
        fs::write(
            child_dir.join("status"),
            format!("Name:\tsystemd\nNSpid:\t{child}\t1\n"),
        )
        .expect("status");
        fs::write(
            dir.join(format!("task/{pid}/children")),
            format!("{child} "),
        )
        .expect("children");
        pid
    }

    /// Plays `mount -t overlay -o OPTIONS overlay TARGET`: the top layer
    /// (the upper dir, or the first lower dir of a read-only view) holds a
    /// whole copy of the root, filled from the base on the first mount, and
    /// is moved onto the mount point until unmounted; the mount is listed in
    /// the fake `/proc/self/mountinfo`.
    fn play_mount(&self, options: &str, target: &Path) {
        let option = |key: &str| {
            options
                .split(',')
                .find_map(|o| o.strip_prefix(key))
                .map(str::to_owned)
        };
        let (top, lower) = match option("upperdir=") {
            Some(upper) => (upper, option("lowerdir=").expect("lowerdir")),
            None => {
                let lowers = option("lowerdir=").expect("lowerdir");
                let (top, lower) = lowers.split_once(':').expect("two layers");
                (top.to_owned(), lower.to_owned())
            }
        };
        let top = PathBuf::from(top);
        assert!(top.starts_with(self.top()) && target.starts_with(self.top()));
        if fs::read_dir(&top).expect("the top layer").next().is_none() {
            let out = std::process::Command::new("cp")
                .args(["-a", "--no-target-directory", "--"])
                .arg(&lower)
                .arg(&top)
                .status()
                .expect("cp");
            assert!(out.success());
        }
        fs::remove_dir(target).expect("an empty mount point");
        fs::rename(&top, target).expect("the top layer onto the mount point");
        let info = self.proc_dir.join("self/mountinfo");
        fs::create_dir_all(self.proc_dir.join("self")).expect("fake /proc/self");
        let mut text = fs::read_to_string(&info).unwrap_or_default();
        text.push_str(&format!(
            "1 1 0:1 / {} rw - overlay overlay rw,{options},top={}\n",
            target.display(),
            top.display()
        ));
        fs::write(&info, text).expect("fake mountinfo");
    }

    /// Plays `umount TARGET` (see [`FakeHost::play_mount`]).
    fn play_umount(&self, target: &Path) {
        let info = self.proc_dir.join("self/mountinfo");
        let text = fs::read_to_string(&info).unwrap_or_default();
        let mut kept = String::new();
        for line in text.lines() {
            if line.split(' ').nth(4) == Some(&target.display().to_string()) {
                let top = line
                    .rsplit(',')
                    .find_map(|o| o.strip_prefix("top="))
                    .expect("the top layer");
                fs::rename(target, top).expect("the top layer back");
                fs::create_dir(target).expect("the mount point back");
            } else {
                kept.push_str(line);
                kept.push('\n');
            }
        }
        fs::write(&info, kept).expect("fake mountinfo");
    }

    /// Whether anything is mounted on `path` in the fake mountinfo.
    pub(crate) fn is_mounted(&self, path: &Path) -> bool {
        fs::read_to_string(self.proc_dir.join("self/mountinfo"))
            .unwrap_or_default()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(&path.display().to_string()))
    }

    /// Makes a small Debian-like root at `target`.
    fn make_root(&self, target: &Path) {
        for d in [
            "etc/systemd/system",
            "etc/systemd/network",
            "usr/lib/systemd/system",
            "var/lib/dpkg",
            "usr/bin",
        ] {
            fs::create_dir_all(target.join(d)).expect("root dirs");
        }
        for unit in &self.base_units {
            fs::write(
                target.join("usr/lib/systemd/system").join(unit),
                "[Unit]\nDescription=fake\n\n[Install]\nWantedBy=multi-user.target\n",
            )
            .expect("unit file");
        }
        let status: String = self
            .base_packages
            .iter()
            .map(|p| format!("Package: {p}\nStatus: install ok installed\nVersion: 1\n\n"))
            .collect();
        fs::write(target.join("var/lib/dpkg/status"), status).expect("dpkg status");
        fs::write(target.join("usr/bin/apt-get"), "").expect("apt-get");
        fs::write(target.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").expect("shadow");
    }
}

impl Host for FakeHost {
    fn facts(&self) -> &HostFacts {
        &self.facts
    }

    fn run(&self, cmd: &Cmd) -> Result<Finished, EngineError> {
        self.commands.lock().expect("commands").push(cmd.clone());
        let argv: Vec<&str> = cmd.argv.iter().map(String::as_str).collect();
        let ok = |stdout: &str| Finished {
            code: Some(0),
            status: "exit status: 0".into(),
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
        };
        match argv.as_slice() {
            // A bootstrap: the target is the command's last path argument.
            ["unshare", .., target] => {
                self.make_root(Path::new(target));
                Ok(ok(""))
            }
            // Copies stay inside the temp dir: run them for real.
            ["cp", ..] => {
                let inside = cmd.argv[1..]
                    .iter()
                    .filter(|a| a.starts_with('/'))
                    .all(|a| Path::new(a).starts_with(self.top()));
                assert!(
                    inside,
                    "the fake host copies only inside its temp dir: {cmd:?}"
                );
                LocalHost::with_facts(self.facts.clone()).run(cmd)
            }
            ["mount", "-t", "overlay", "-o", options, "overlay", target] => {
                self.play_mount(options, Path::new(target));
                Ok(ok(""))
            }
            ["umount", target] => {
                self.play_umount(Path::new(target));
                Ok(ok(""))
            }
            [.., "is-system-running"] => Ok(ok("running\n")),
            [.., "apt-get", "-s", "dist-upgrade"] => {
                Ok(ok(&self.apt_simulation.lock().expect("apt")))
            }
            [.., "dist-upgrade"]
                if argv.contains(&"-y") && *self.apt_upgrade_fails.lock().expect("apt") =>
            {
                Ok(Finished {
                    code: Some(100),
                    status: "exit status: 100".into(),
                    stdout: Vec::new(),
                    stderr: b"E: Sub-process /usr/bin/dpkg returned an error code (1)".to_vec(),
                })
            }
            ["machinectl", "show", .., "--", name] => {
                let machined = self.machined.lock().expect("machined");
                match machined.iter().find(|(n, _, _)| n == name) {
                    Some((_, unit, root)) => {
                        Ok(ok(&format!("Unit={unit}\nRootDirectory={root}\n")))
                    }
                    None => Ok(Finished {
                        code: Some(1),
                        status: "exit status: 1".into(),
                        stdout: Vec::new(),
                        stderr: format!("No machine '{name}' known").into_bytes(),
                    }),
                }
            }
            ["systemctl", "kill", .., "--", unit] => {
                self.machined
                    .lock()
                    .expect("machined")
                    .retain(|(_, u, _)| u != unit);
                Ok(ok(""))
            }
            ["machinectl", "start", name] | ["systemctl", "start", name] => {
                let pid = self.add_process("systemd-nspawn", &[format!("--machine={name}")]);
                *self.unit_pid.lock().expect("pid") = Some(pid);
                Ok(ok(""))
            }
            ["systemctl", "show", "--property=MainPID", ..] => {
                let pid = self.unit_pid.lock().expect("pid").unwrap_or(0);
                Ok(ok(&format!("{pid}\n")))
            }
            ["systemctl", "is-enabled", ..] => Ok(ok("disabled\n")),
            // Plays set-property: one drop-in per property, as systemd writes them.
            ["systemctl", "set-property", "--", unit, properties @ ..] => {
                let dir = self.systemd_control_dir().join(format!("{unit}.d"));
                fs::create_dir_all(&dir).expect("a fake drop-in dir");
                for property in properties {
                    let key = property.split('=').next().unwrap_or_default();
                    fs::write(
                        dir.join(format!("50-{key}.conf")),
                        format!("# set-property\n[Service]\n{property}\n"),
                    )
                    .expect("a fake drop-in");
                }
                Ok(ok(""))
            }
            _ => Ok(ok("")),
        }
    }

    fn exec(&self, cmd: &Cmd) -> EngineError {
        self.commands.lock().expect("commands").push(cmd.clone());
        EngineError::State(format!("the fake host does not exec {}", cmd.display()))
    }

    fn spawn_detached(&self, request: &Detached) -> Result<i32, EngineError> {
        self.commands
            .lock()
            .expect("commands")
            .push(request.cmd.clone());
        self.spawn_limits
            .lock()
            .expect("limits")
            .push(request.limits.clone());
        let program = request.cmd.argv.first().cloned().unwrap_or_default();
        Ok(self.add_process(&program, &request.cmd.argv))
    }

    fn which(&self, program: &str) -> Option<PathBuf> {
        Some(PathBuf::from("/usr/bin").join(program))
    }

    fn proc_dir(&self) -> &Path {
        &self.proc_dir
    }

    fn cgroup_fs(&self) -> PathBuf {
        self.top().join("cgroup")
    }

    fn systemd_control_dir(&self) -> PathBuf {
        self.top().join("system.control")
    }

    fn credentials_dir(&self) -> PathBuf {
        self.top().join("credentials")
    }

    fn runtime_unit_dir(&self) -> PathBuf {
        self.top().join("run-system")
    }

    fn ensure_tmpfs(&self, _dir: &Path) -> Result<(), EngineError> {
        Ok(())
    }

    fn kill_cgroup(&self, _name: &str) -> usize {
        0
    }

    fn remove_cgroup(&self, _name: &str) {}

    fn reap(&self, _pid: i32) {}

    fn mount_overlay(
        &self,
        options: &str,
        read_only: bool,
        target: &Path,
    ) -> Result<(), EngineError> {
        let options = if read_only {
            format!("ro,{options}")
        } else {
            options.to_owned()
        };
        self.run(&Cmd::new([
            "mount".to_owned(),
            "-t".into(),
            "overlay".into(),
            "-o".into(),
            options,
            "overlay".into(),
            target.display().to_string(),
        ]))
        .map(|_| ())
    }

    fn unmount(&self, target: &Path) -> Result<(), EngineError> {
        self.run(&Cmd::new([
            "umount".to_owned(),
            target.display().to_string(),
        ]))
        .map(|_| ())
    }

    fn in_private_mount_namespace(
        &self,
        work: &mut (dyn FnMut() + Send),
    ) -> Result<(), EngineError> {
        // The fake's mounts are played (see `play_mount`): callers unmount.
        work();
        Ok(())
    }

    fn signal(&self, pid: i32, _signal: nix::sys::signal::Signal) {
        // The fake process exits at once, with its guest.
        let _ = fs::remove_dir_all(self.proc_dir.join(pid.to_string()));
        let _ = fs::remove_dir_all(self.proc_dir.join((pid + 1).to_string()));
    }
}
