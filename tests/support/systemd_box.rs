//! A booted systemd host for tests, on machines whose PID 1 is not systemd:
//! a Debian bookworm root with systemd, booted with `systemd-nspawn --boot`,
//! inside which `machinectl`, `systemd-nspawn@.service` and berth itself run
//! as on a real systemd host.
//!
//! The root is bootstrapped once per machine into
//! `/var/tmp/berth-test-cache/systemd-box-root-KEY` (KEY a hash of the
//! release, package list and mirror; built with [`cache::cached_dir`]);
//! every box boots its own copy of it, so
//! boxes run in parallel and never dirty the cache. The same cached root
//! seeds nested machines inside a box ([`SystemdBox::seed_nested_root`]).
//!
//! The box runs with its own network namespace (`--private-network`: the
//! veths of nested machines stay inside it; the box has no uplink) and its
//! own cgroup, so boxes never share nspawn's `supervisor`/`payload` cgroups.
//! Tests use it as `crate::support::systemd_box`.

use std::fs::{self, OpenOptions};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::support::cache::{self, safe_remove};
use crate::support::describe;

/// The cached box root's name in [`cache::TEST_CACHE`], before its key.
const BOX_ROOT: &str = "systemd-box-root";
/// The Debian release of the box and of nested roots.
const RELEASE: &str = "bookworm";
/// Packages on top of `--variant=minbase`: a bootable systemd with machined
/// and nspawn, and the tools tests poke around with.
const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "systemd-container",
    "util-linux",
    "iproute2",
    "procps",
];
/// PATH for commands run inside the box.
const BOX_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How long a box may take to reach running/degraded.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a box may take to power off after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// The timeout of [`SystemdBox::exec`].
const EXEC_TIMEOUT: Duration = Duration::from_secs(300);
/// How long debootstrap may take.
const BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(900);
/// Moves the shell into each cgroup.procs given before `--`, then execs the rest.
const JOIN_CGROUPS: &str =
    r#"while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@""#;

/// Boxes started by this process, for unique machine names.
static BOXES: AtomicU32 = AtomicU32::new(0);

/// A booted Debian bookworm systemd host in a `systemd-nspawn --boot`
/// container, with its own copy of the cached root. Dropping it stops nested
/// machines, powers the box off and removes its copy.
pub struct SystemdBox {
    /// The nspawn machine name of the box (unique on this host).
    machine: String,
    /// The box's temporary directory: `root/` and `console.log`.
    dir: PathBuf,
    /// The box's root directory (its own copy of the cache).
    root: PathBuf,
    /// The box's console output, every boot appended.
    log: PathBuf,
    /// The box's own cgroup, one directory per hierarchy nspawn uses.
    cgroups: Vec<PathBuf>,
    /// The running `systemd-nspawn --boot` process.
    nspawn: Option<Child>,
    /// Its hold on the [`crate::support::exclusive`] gate (dropped last).
    _shared: crate::support::Shared,
}

impl SystemdBox {
    /// Boots a box named after `name` from a fresh copy of the cached root
    /// (bootstrapping the cache first if needed) and waits until its systemd
    /// is running or degraded. The nspawn process gets SIGTERM if the thread
    /// that boots the box dies without dropping it (`setpriv --pdeathsig`),
    /// so keep a box in the thread that booted it.
    pub fn boot(name: &str) -> SystemdBox {
        Self::boot_with(name, &[])
    }

    /// Like [`SystemdBox::boot`], from a root with the Debian packages
    /// `extra` on top of the usual ones (its own cached root; nested roots
    /// seeded by [`SystemdBox::seed_nested_root`] stay the usual ones).
    pub fn boot_with(name: &str, extra: &[&str]) -> SystemdBox {
        let shared = crate::support::shared();
        let label = sanitize(name);
        let machine = format!(
            "berth-test-{label}-{}-{}",
            std::process::id(),
            BOXES.fetch_add(1, Ordering::SeqCst)
        );
        sweep_orphans();
        let dir = tempfile::Builder::new()
            .prefix(&format!("berth-test-box-{label}-{}-", std::process::id()))
            .tempdir_in("/var/tmp")
            .expect("creating the box's directory in /var/tmp")
            .keep();
        let mut sbox = SystemdBox {
            root: dir.join("root"),
            log: dir.join("console.log"),
            dir,
            machine,
            cgroups: Vec::new(),
            nspawn: None,
            _shared: shared,
        };
        copy_tree(&cached_root_with(extra), &sbox.root);
        fs::write(
            sbox.root.join("etc/hostname"),
            format!("{}\n", sbox.machine),
        )
        .expect("writing the box's hostname");
        sbox.cgroups = create_cgroups(&sbox.machine);
        sbox.start();
        sbox.wait_booted();
        sbox
    }

    /// Runs `argv` inside the booted box as root (all of its namespaces, its
    /// root and cgroup, a clean environment), with a 300 s timeout.
    pub fn exec(&self, argv: &[&str]) -> Output {
        self.exec_timeout(argv, EXEC_TIMEOUT)
    }

    /// Runs `argv` inside the booted box as root; after `timeout` the command
    /// and everything in its process group are killed, and the returned
    /// Output (status: killed by SIGKILL) has a note appended to its stderr.
    pub fn exec_timeout(&self, argv: &[&str], timeout: Duration) -> Output {
        assert!(!argv.is_empty(), "exec needs a command");
        let init = self.wait_init();
        run_with_timeout(self.nsenter(init, argv), timeout)
            .unwrap_or_else(|e| panic!("running {argv:?} in box {}: {e}", self.machine))
    }

    /// The command that runs `argv` inside the box as root (as
    /// [`SystemdBox::exec`] does), for callers that wire its stdio
    /// themselves (a pty). Panics if the box is not running.
    pub fn command(&self, argv: &[&str]) -> Command {
        assert!(!argv.is_empty(), "a command is needed");
        let init = self.wait_init();
        self.nsenter(init, argv)
    }

    /// Copies the host directory `host` into the box as `in_box` (which
    /// must not exist), reflinked where possible.
    pub fn install_tree(&self, host: &Path, in_box: &str) {
        let dest = self.host_path(in_box);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        }
        copy_tree(host, &dest);
    }

    /// Like [`SystemdBox::exec_timeout`], but never panics: None when the box
    /// has no init or the command cannot be run (for cleanup paths).
    fn try_exec(&self, argv: &[&str], timeout: Duration) -> Option<Output> {
        let init = self.init_pid()?;
        run_with_timeout(self.nsenter(init, argv), timeout).ok()
    }

    /// `nsenter` into every namespace, the root and cwd of the box's init
    /// (host pid `init`), joined to the box's exec cgroup, clean environment.
    fn nsenter(&self, init: i32, argv: &[&str]) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", JOIN_CGROUPS, "sh"])
            .args(self.exec_cgroup_procs())
            .arg("--")
            .arg("nsenter")
            .arg(format!("--target={init}"))
            .args([
                "--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup", "--root", "--wd", "--",
            ])
            .args(argv)
            .env_clear()
            .env("PATH", BOX_PATH)
            .env("HOME", "/root")
            .env("LANG", "C.UTF-8");
        cmd
    }

    /// Runs `argv` inside the box, panics (with its output and the console
    /// tail) unless it succeeds, and returns its stdout.
    pub fn exec_ok(&self, argv: &[&str]) -> String {
        let out = self.exec(argv);
        assert!(
            out.status.success(),
            "{argv:?} failed inside the box\n{}\n{}",
            describe(&out),
            self.console_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Copies the host file `host` into the box at `in_box` (an absolute
    /// path), creating parent directories and keeping its permissions; the
    /// box's root is a plain directory on the host, so the file is visible
    /// inside at once.
    pub fn install_file(&self, host: &Path, in_box: &str) {
        let dest = self.host_path(in_box);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        }
        fs::copy(host, &dest)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", host.display(), dest.display()));
    }

    /// Seeds a bootable Debian bookworm root (systemd, systemd-sysv, dbus,
    /// systemd-container; a copy of the cached box root, empty machine-id,
    /// hostname = the last path component) at `in_box_path` inside the box,
    /// e.g. `/var/lib/machines/web`. The path must not exist or be empty.
    pub fn seed_nested_root(&self, in_box_path: &str) {
        self.seed_nested_root_with(in_box_path, &[]);
    }

    /// Like [`SystemdBox::seed_nested_root`], from the cached root with the
    /// Debian packages `extra` on top of the usual ones (the same cached
    /// root [`SystemdBox::boot_with`] boots with those packages).
    pub fn seed_nested_root_with(&self, in_box_path: &str, extra: &[&str]) {
        let dest = self.host_path(in_box_path);
        if dest.exists() {
            let empty = fs::read_dir(&dest).is_ok_and(|mut d| d.next().is_none());
            assert!(
                empty,
                "{in_box_path} already exists in the box and is not empty"
            );
            fs::remove_dir(&dest).unwrap_or_else(|e| panic!("removing {}: {e}", dest.display()));
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        }
        copy_tree(&cached_root_with(extra), &dest);
        let hostname = dest
            .file_name()
            .map(|n| sanitize(&n.to_string_lossy()))
            .unwrap_or_else(|| "nested".to_owned());
        fs::write(dest.join("etc/hostname"), format!("{hostname}\n"))
            .expect("writing the nested root's hostname");
    }

    /// The box's root directory on the host.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of `in_box` (an absolute path inside the box).
    pub fn host_path(&self, in_box: &str) -> PathBuf {
        let rel = Path::new(in_box);
        assert!(
            rel.is_absolute() && rel.components().all(|c| !matches!(c, Component::ParentDir)),
            "{in_box:?}: an absolute path without `..` expected"
        );
        self.root.join(rel.strip_prefix("/").unwrap_or(rel))
    }

    /// The box's nspawn machine name (unique on this host; also its hostname).
    #[allow(dead_code)] // for debugging a failing box test
    pub fn machine(&self) -> &str {
        &self.machine
    }

    /// The box's console log (every boot appended).
    #[allow(dead_code)] // for debugging a failing box test
    pub fn console_log(&self) -> &Path {
        &self.log
    }

    /// The host pid of the box's init (waiting up to 15 s for it), e.g. to
    /// move a network link into the box's namespace (`ip link set ... netns PID`).
    #[allow(dead_code)] // used by the fleet tests
    pub fn init_pid_on_host(&self) -> i32 {
        self.wait_init()
    }

    /// The pid of the box's `systemd-nspawn` process, while it runs.
    pub fn nspawn_pid(&self) -> Option<u32> {
        self.nspawn.as_ref().map(Child::id)
    }

    /// Reboots the box: powers it off (SIGTERM to its nspawn, waiting for it
    /// to exit; SIGKILL after 30 s), boots it again from the same root, and
    /// waits until it is running or degraded.
    pub fn reboot(&mut self) {
        self.poweroff();
        self.start();
        self.wait_booted();
    }

    /// Waits (up to 90 s) until `systemctl is-system-running` inside says
    /// running or degraded; panics with the console log tail otherwise, or
    /// at once if the box exits.
    pub fn wait_booted(&self) {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        let mut last = String::from("(no answer yet)");
        while Instant::now() < deadline {
            assert!(
                self.nspawn_alive(),
                "box {} exited while booting (last state: {last})\n{}",
                self.machine,
                self.console_tail()
            );
            if self.init_pid().is_some() {
                let out =
                    self.exec_timeout(&["systemctl", "is-system-running"], Duration::from_secs(10));
                let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                if state == "running" || state == "degraded" {
                    return;
                }
                last = format!("{state:?} {}", String::from_utf8_lossy(&out.stderr).trim());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "box {} did not boot within {BOOT_TIMEOUT:?} (last `systemctl is-system-running`: {last})\n{}",
            self.machine,
            self.console_tail()
        );
    }

    /// Waits (up to `timeout`) until `systemctl -M machine is-system-running`
    /// inside the box says running or degraded, and returns that state;
    /// panics with the answers and the console tail otherwise.
    pub fn wait_machine_running(&self, machine: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("(no answer yet)");
        while Instant::now() < deadline {
            let out = self.exec_timeout(
                &["systemctl", "-M", machine, "is-system-running"],
                Duration::from_secs(10),
            );
            let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if state == "running" || state == "degraded" {
                return state;
            }
            last = format!("{state:?} {}", String::from_utf8_lossy(&out.stderr).trim());
            std::thread::sleep(Duration::from_millis(250));
        }
        let status = self.exec_timeout(
            &[
                "systemctl",
                "status",
                "--no-pager",
                "-n",
                "30",
                &format!("systemd-nspawn@{machine}.service"),
            ],
            Duration::from_secs(10),
        );
        panic!(
            "machine {machine} in box {} not running within {timeout:?} (last: {last})\n{}\n{}",
            self.machine,
            describe(&status),
            self.console_tail()
        );
    }

    /// The names `machinectl list` shows inside the box (empty if it fails
    /// or the box is not running).
    pub fn machines(&self) -> Vec<String> {
        let Some(out) = self.try_exec(
            &["machinectl", "list", "--no-legend", "--no-pager"],
            Duration::from_secs(15),
        ) else {
            return Vec::new();
        };
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect()
    }

    /// The last 60 lines of the box's console log, for panic messages.
    pub fn console_tail(&self) -> String {
        let text = fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        format!(
            "--- console of box {} ({}), tail\n{tail}",
            self.machine,
            self.log.display()
        )
    }

    /// Starts `systemd-nspawn --boot` on the box's root, in the box's own
    /// cgroup, its console appended to the log.
    fn start(&mut self) {
        assert!(
            self.nspawn.is_none(),
            "box {} is already running",
            self.machine
        );
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("opening the box's console log");
        {
            use std::io::Write;
            let _ = writeln!(log, "=== berth-test: booting box {} ===", self.machine);
        }
        let err = log.try_clone().expect("cloning the log file");
        let procs: Vec<PathBuf> = self
            .cgroups
            .iter()
            .map(|c| c.join("cgroup.procs"))
            .collect();
        let child = Command::new("setpriv")
            .args(["--pdeathsig", "TERM", "--", "sh", "-c", JOIN_CGROUPS, "sh"])
            .args(&procs)
            .arg("--")
            .arg("systemd-nspawn")
            .args([
                "--boot",
                "--capability=all",
                "--register=no",
                "--keep-unit",
                "--private-network",
                "--link-journal=no",
                "--console=read-only",
            ])
            .arg(format!("--machine={}", self.machine))
            .arg(format!("--directory={}", self.root.display()))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .process_group(0)
            .spawn()
            .expect("starting systemd-nspawn (is systemd-container installed?)");
        self.nspawn = Some(child);
    }

    /// Whether the box's nspawn process is running (not exited, not a zombie).
    fn nspawn_alive(&self) -> bool {
        let Some(child) = &self.nspawn else {
            return false;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{}/stat", child.id())) else {
            return false;
        };
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z")
    }

    /// The host pid of the box's init: the child of nspawn that is PID 1 of
    /// its own PID namespace.
    fn init_pid(&self) -> Option<i32> {
        let nspawn = self.nspawn.as_ref()?.id();
        let tasks = fs::read_dir(format!("/proc/{nspawn}/task")).ok()?;
        for task in tasks.flatten() {
            let Ok(children) = fs::read_to_string(task.path().join("children")) else {
                continue;
            };
            for child in children.split_whitespace() {
                let Ok(status) = fs::read_to_string(format!("/proc/{child}/status")) else {
                    continue;
                };
                let nspid: Vec<&str> = status
                    .lines()
                    .find_map(|l| l.strip_prefix("NSpid:"))
                    .map(|l| l.split_whitespace().collect())
                    .unwrap_or_default();
                if nspid.len() >= 2 && nspid.last() == Some(&"1") {
                    return child.parse().ok();
                }
            }
        }
        None
    }

    /// Waits (up to 15 s) for the box's init; panics if the box is not running.
    fn wait_init(&self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(pid) = self.init_pid() {
                return pid;
            }
            assert!(
                self.nspawn_alive() && Instant::now() < deadline,
                "box {} has no init (not running?)\n{}",
                self.machine,
                self.console_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// cgroup.procs files of a `berth-test-exec` cgroup inside the box's
    /// payload cgroup, so commands run by exec live in the box's cgroup tree
    /// (a nested `systemd-nspawn` started by hand then works too).
    fn exec_cgroup_procs(&self) -> Vec<PathBuf> {
        let mut procs = Vec::new();
        for cgroup in &self.cgroups {
            let payload = cgroup.join("payload");
            if !payload.is_dir() {
                continue;
            }
            let exec = payload.join("berth-test-exec");
            if fs::create_dir_all(&exec).is_ok() && exec.join("cgroup.procs").exists() {
                procs.push(exec.join("cgroup.procs"));
            }
        }
        procs
    }

    /// Powers the box off: SIGTERM to its nspawn only (nspawn asks the box's
    /// systemd to power off), waits, SIGKILL after 30 s; then removes the
    /// cgroups and runtime files nspawn left behind.
    fn poweroff(&mut self) {
        let Some(mut child) = self.nspawn.take() else {
            return;
        };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut exited = false;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !exited {
            eprintln!(
                "box {}: no poweroff within {STOP_TIMEOUT:?}, sending SIGKILL",
                self.machine
            );
            let _ = child.kill();
            let _ = child.wait();
        }
        for cgroup in &self.cgroups {
            remove_cgroup_children(cgroup, Duration::from_secs(10));
        }
        let propagate = Path::new("/run/systemd/nspawn/propagate").join(&self.machine);
        if propagate.exists() {
            safe_remove(&propagate);
        }
    }

    /// Best effort, bounded: terminates every machine running inside the box.
    fn terminate_nested(&self) {
        if !self.nspawn_alive() || self.init_pid().is_none() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let machines = self.machines();
            if machines.is_empty() || Instant::now() >= deadline {
                return;
            }
            for machine in &machines {
                let _ = self.exec_timeout(
                    &["machinectl", "terminate", machine],
                    Duration::from_secs(10),
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for SystemdBox {
    /// Stops nested machines (best effort, bounded), powers the box off
    /// (its own nspawn only), removes its cgroups and, once nothing is
    /// mounted under it, its directory. Never touches the shared cache.
    fn drop(&mut self) {
        self.terminate_nested();
        self.poweroff();
        for cgroup in &self.cgroups {
            remove_cgroup_children(cgroup, Duration::from_secs(10));
            let _ = fs::remove_dir(cgroup);
        }
        safe_remove(&self.dir);
    }
}

/// A name reduced to `[a-z0-9-]`, at most 20 characters, never empty.
fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(20)
        .collect();
    let s = s.trim_matches('-').to_owned();
    if s.is_empty() { "box".to_owned() } else { s }
}

/// A private copy (reflink where possible) of the cached, bootstrapped
/// Debian root in `dest`, for tests that need a real root without booting
/// it (e.g. comparing berth's native readers with systemctl and dpkg-query).
pub fn copy_of_cached_root(dest: &Path) {
    copy_tree(&cached_root(), dest);
}

/// The cached box root, `TEST_CACHE/systemd-box-root-KEY` (KEY: a hash of
/// [`stamp`]), bootstrapped if missing.
fn cached_root() -> PathBuf {
    cached_root_with(&[])
}

/// The cached box root with the packages `extra` on top of [`PACKAGES`].
fn cached_root_with(extra: &[&str]) -> PathBuf {
    let mut stamp = stamp();
    if !extra.is_empty() {
        stamp.push_str(&format!("extra: {}\n", extra.join(",")));
    }
    let name = format!("{BOX_ROOT}-{}", cache::key(&[stamp.as_bytes()]));
    cache::cached_dir(&name, |build| build_root(build, extra))
}

/// What the cached root is built from; a different stamp is another root.
fn stamp() -> String {
    format!(
        "berth systemd box root v1\nrelease: {RELEASE}\nvariant: minbase\ninclude: {}\nmirror: {}\n",
        PACKAGES.join(","),
        std::env::var("BERTH_TEST_MIRROR").unwrap_or_default()
    )
}

/// Bootstraps the box root into `build` (an empty directory; see
/// [`cache::cached_dir`]).
fn build_root(build: &Path, extra: &[&str]) {
    let started = Instant::now();
    eprintln!(
        "bootstrapping the systemd box root into {} (once per machine)",
        build.display()
    );
    let mut cmd = Command::new("debootstrap");
    cmd.arg("--variant=minbase")
        .arg(format!(
            "--include={}",
            PACKAGES
                .iter()
                .chain(extra)
                .copied()
                .collect::<Vec<_>>()
                .join(",")
        ))
        .arg(RELEASE)
        .arg(build);
    if let Ok(mirror) = std::env::var("BERTH_TEST_MIRROR") {
        cmd.arg(mirror);
    }
    let out = run_with_timeout(cmd, BOOTSTRAP_TIMEOUT)
        .unwrap_or_else(|e| panic!("running debootstrap (is it installed?): {e}"));
    let _ = fs::write(
        Path::new(cache::TEST_CACHE).join(format!("{BOX_ROOT}.build.log")),
        [&out.stdout[..], &out.stderr[..]].concat(),
    );
    if !out.status.success() {
        let text = describe(&out);
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        panic!(
            "debootstrap of the systemd box root failed (needs debootstrap and a reachable Debian mirror; BERTH_TEST_MIRROR overrides it)\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    // Every copy gets its own machine id at boot (nspawn passes a random
    // one): equal ids would make nested journal links collide.
    fs::write(build.join("etc/machine-id"), "").expect("emptying etc/machine-id");
    let _ = fs::remove_file(build.join("var/lib/dbus/machine-id"));
    if let Ok(debs) = fs::read_dir(build.join("var/cache/apt/archives")) {
        for deb in debs.flatten() {
            if deb.path().extension().is_some_and(|e| e == "deb") {
                let _ = fs::remove_file(deb.path());
            }
        }
    }
    eprintln!(
        "bootstrapped the systemd box root in {:?}",
        started.elapsed()
    );
}

/// `cp -a --reflink=auto from to` (`to` must not exist).
fn copy_tree(from: &Path, to: &Path) {
    let out = Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(from)
        .arg(to)
        .output()
        .expect("running cp");
    assert!(
        out.status.success(),
        "copying {} to {} failed\n{}",
        from.display(),
        to.display(),
        describe(&out)
    );
}

/// This process's cgroup in every hierarchy nspawn uses: the unified one
/// and, on hybrid hosts, name=systemd.
fn cgroup_parents() -> Vec<PathBuf> {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let own_path = |hierarchy: &str| {
        own.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            (controllers == hierarchy).then(|| path.trim_start_matches('/').to_owned())
        })
    };
    let base = Path::new("/sys/fs/cgroup");
    let mut mounts = Vec::new();
    if base.join("cgroup.controllers").exists() {
        mounts.push((base.to_owned(), ""));
    } else {
        if base.join("unified/cgroup.procs").exists() {
            mounts.push((base.join("unified"), ""));
        }
        if base.join("systemd/cgroup.procs").exists() {
            mounts.push((base.join("systemd"), "name=systemd"));
        }
    }
    mounts
        .into_iter()
        .filter_map(|(mount, hierarchy)| own_path(hierarchy).map(|p| mount.join(p)))
        .collect()
}

/// The box's own cgroup in every hierarchy nspawn uses, as children of this
/// process's cgroups, so that parallel boxes do not share nspawn's
/// `supervisor`/`payload` cgroups. Empty (nspawn then uses the caller's
/// cgroup) if they cannot be created.
fn create_cgroups(machine: &str) -> Vec<PathBuf> {
    let mut made = Vec::new();
    for parent in cgroup_parents() {
        let dir = parent.join(machine);
        if fs::create_dir(&dir).is_ok() {
            made.push(dir);
        } else {
            eprintln!(
                "box {machine}: cannot create cgroup {}: sharing the caller's",
                dir.display()
            );
            for d in &made {
                let _ = fs::remove_dir(d);
            }
            return Vec::new();
        }
    }
    made
}

/// The pid in `NAME-PID-SUFFIX` (the names of box dirs and box cgroups),
/// if that process no longer exists: the box's test process was killed.
fn orphan_pid(rest: &str) -> Option<u32> {
    let mut parts = rest.rsplitn(3, '-');
    let (_suffix, pid, _label) = (parts.next()?, parts.next()?, parts.next()?);
    let pid: u32 = pid.parse().ok()?;
    (pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()).then_some(pid)
}

/// Removes what boxes of killed test processes left behind: their empty
/// cgroups, and their directories under /var/tmp once nothing is mounted
/// below them (their nspawn died with them, by pdeathsig; a box whose
/// cgroup still holds processes is left alone).
fn sweep_orphans() {
    let mut running = Vec::new();
    for parent in cgroup_parents() {
        let Ok(entries) = fs::read_dir(&parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("berth-test-").and_then(orphan_pid) {
                remove_cgroup_children(&entry.path(), Duration::ZERO);
                if fs::remove_dir(entry.path()).is_err() {
                    running.push(pid);
                }
            }
        }
    }
    if let Ok(entries) = fs::read_dir("/var/tmp") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("berth-test-box-").and_then(orphan_pid)
                && !running.contains(&pid)
                && entry.path().join("console.log").exists()
            {
                safe_remove(&entry.path());
            }
        }
    }
}

/// Removes every cgroup below `cgroup`, deepest first (retrying for up to
/// `patience` while their last processes exit).
fn remove_cgroup_children(cgroup: &Path, patience: Duration) {
    let deadline = Instant::now() + patience;
    loop {
        let mut dirs = Vec::new();
        collect_dirs(cgroup, &mut dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        let mut left = 0;
        for dir in &dirs {
            if fs::remove_dir(dir).is_err() {
                left += 1;
            }
        }
        if left == 0 || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every directory below `dir` (not following symlinks).
fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(entry.path());
                collect_dirs(&entry.path(), out);
            }
        }
    }
}

/// Runs `cmd` (stdin null, stdout/stderr captured) in its own process
/// group; after `timeout` kills the group and notes it on stderr. Output
/// still held open by a leftover process is given up 5 s after the exit.
fn run_with_timeout(mut cmd: Command, timeout: Duration) -> std::io::Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        if let Some(mut pipe) = pipe {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = pipe.read_to_end(&mut buf);
                let _ = tx.send(buf);
            });
        }
        rx
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_default();
    let mut stderr = stderr
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_default();
    if timed_out {
        stderr.extend_from_slice(
            format!("\n[berth-test: timed out after {timeout:?}, killed]\n").as_bytes(),
        );
    }
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}
