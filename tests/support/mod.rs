//! Shared helpers for berth's integration tests: a sandbox with its own
//! machines and state dirs, the real `berth` binary, root checks, and a
//! guard that stops every machine the test started and removes its files.

pub mod arch_boot_repo;
pub mod berth;
pub mod cache;
pub mod pacman_repo;
pub mod pty;
pub mod rpm_repo;
pub mod systemd_box;

use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Who holds the [`exclusive`] gate: how many sandboxes and boxes exist
/// (shared holders), whether a test runs alone, how many wait to.
struct Gate {
    shared: usize,
    exclusive: bool,
    waiting: usize,
}

static GATE: Mutex<Gate> = Mutex::new(Gate {
    shared: 0,
    exclusive: false,
    waiting: 0,
});
static GATE_CHANGED: Condvar = Condvar::new();

thread_local! {
    /// Whether this thread holds the gate exclusively.
    static ALONE: Cell<bool> = const { Cell::new(false) };
    /// How many shared holds this thread has.
    static HELD: Cell<usize> = const { Cell::new(0) };
}

fn gate() -> MutexGuard<'static, Gate> {
    GATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A test's right to run beside others: every [`Sandbox`] and
/// [`systemd_box::SystemdBox`] holds one, so a test that asked for
/// [`exclusive`] waits for them to go and keeps new ones from being made.
pub struct Shared(bool);

/// Holds the gate shared for as long as the returned value lives (a no-op
/// in the thread that holds it exclusively: its own sandboxes are its own).
pub fn shared() -> Shared {
    if ALONE.get() {
        return Shared(false);
    }
    let mut g = gate();
    // A thread that already holds the gate never waits for a waiting
    // exclusive test (that would deadlock: it waits for us); a new test does.
    while g.exclusive || (g.waiting > 0 && HELD.get() == 0) {
        g = GATE_CHANGED.wait(g).unwrap_or_else(PoisonError::into_inner);
    }
    g.shared += 1;
    HELD.set(HELD.get() + 1);
    Shared(true)
}

impl Drop for Shared {
    fn drop(&mut self) {
        if self.0 {
            gate().shared -= 1;
            HELD.set(HELD.get().saturating_sub(1));
            GATE_CHANGED.notify_all();
        }
    }
}

/// A test running alone; see [`exclusive`].
pub struct Exclusive(());

/// Runs the calling test alone among this binary's tests, until the
/// returned value is dropped: it waits until no other test holds a sandbox
/// or a systemd box, and no other test makes one meanwhile.
///
/// Every test file is a module of one binary (tests/main.rs), so tests from
/// different files run in parallel in one process, where they used to run
/// one file after the other. Two kinds of tests must not overlap with others:
///
/// - tests with wall-clock bounds (a lock holder's 300 ms head start, "fails
///   within 2 s", a signal landing inside a 1 s step): a bootstrap or a boot
///   running beside them on this 2-CPU host can stretch those and make them
///   fail for no fault of berth's;
/// - tests that mount filesystems in the host's mount namespace (a full
///   tmpfs, bind mounts, a loop-mounted btrfs): a machine or a systemd box
///   booted meanwhile copies the host's mounts into its own namespace, and
///   host-wide mount tables are what these tests assert about.
///
/// Take it first thing in the test, before any sandbox:
/// `let _alone = support::exclusive();`.
pub fn exclusive() -> Exclusive {
    assert!(
        HELD.get() == 0 && !ALONE.get(),
        "support::exclusive() must be taken before the test makes a sandbox or box"
    );
    let mut g = gate();
    g.waiting += 1;
    while g.exclusive || g.shared > 0 {
        g = GATE_CHANGED.wait(g).unwrap_or_else(PoisonError::into_inner);
    }
    g.waiting -= 1;
    g.exclusive = true;
    ALONE.set(true);
    Exclusive(())
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        gate().exclusive = false;
        ALONE.set(false);
        GATE_CHANGED.notify_all();
    }
}

/// Whether this test may run: true as root. Without root the test is
/// skipped with a note, except under CI=true, where it fails.
pub fn require_root(test: &str) -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test} needs root, and CI=true: refusing to skip");
    }
    eprintln!("skipping {test}: needs root (run the suite as root; CI=true makes this a failure)");
    false
}

/// Whether every `(program, Debian package)` of `tools` is on PATH. Without
/// them the test is skipped with a note, except under CI=true, where it fails.
pub fn require_tools(test: &str, tools: &[(&str, &str)]) -> bool {
    let missing: Vec<String> = tools
        .iter()
        .filter(|(program, _)| !on_path(program))
        .map(|(program, package)| format!("{program} (Debian package {package})"))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{test} needs {} (run scripts/install-deps)",
        missing.join(", ")
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}, and CI=true: refusing to skip");
    }
    eprintln!("skipping {msg}");
    false
}

/// Whether an executable `program` is on PATH.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// A test's own machines dir, state dir and spec files.
pub struct Sandbox {
    /// The sandbox's top directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// Its hold on the [`exclusive`] gate.
    _shared: Shared,
}

impl Sandbox {
    /// A new sandbox under /var/tmp (a real disk, where nspawn and debootstrap work).
    pub fn new(prefix: &str) -> Self {
        let shared = shared();
        let dir = tempfile::Builder::new()
            .prefix(&format!("berth-test-{prefix}-"))
            .tempdir_in("/var/tmp")
            .expect("creating a sandbox in /var/tmp");
        fs::create_dir_all(dir.path().join("machines")).expect("machines dir");
        fs::create_dir_all(dir.path().join("state")).expect("state dir");
        fs::create_dir_all(dir.path().join("nspawn")).expect("nspawn dir");
        fs::create_dir_all(dir.path().join("cache")).expect("cache dir");
        Sandbox {
            dir,
            _shared: shared,
        }
    }

    /// The machines dir.
    pub fn machines(&self) -> PathBuf {
        self.dir.path().join("machines")
    }

    /// The state dir.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The directory of `.nspawn` settings files.
    pub fn nspawn(&self) -> PathBuf {
        self.dir.path().join("nspawn")
    }

    /// The base cache of this sandbox (tests never share berth's cache by accident).
    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// The root of machine `name`.
    pub fn root(&self, name: &str) -> PathBuf {
        self.machines().join(name)
    }

    /// Writes `machines.yaml` and returns its path.
    pub fn spec(&self, yaml: &str) -> PathBuf {
        let path = self.dir.path().join("machines.yaml");
        fs::write(&path, yaml).expect("writing the spec");
        path
    }

    /// `berth ARGS` with this sandbox's dirs, no terminal, no colour (the
    /// output of [`Sandbox::berth_cmd`]).
    pub fn berth(&self, args: &[&str]) -> Output {
        self.berth_cmd().args(args).run().into_output()
    }

    /// Hidden entries (staging directories of bootstraps) left in the
    /// machines dir and the base cache.
    pub fn staging_left(&self) -> Vec<String> {
        [self.machines(), self.cache().join("bases")]
            .iter()
            .filter_map(|dir| fs::read_dir(dir).ok())
            .flat_map(|entries| entries.flatten())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect()
    }

    /// Every file under the sandbox's machines and state dirs (to prove nothing was written).
    pub fn written_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for top in [self.machines(), self.state(), self.nspawn(), self.cache()] {
            walk(&top, &mut out);
        }
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            out.push(path.clone());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&path, out);
            }
        }
    }
}

impl Drop for Sandbox {
    /// Stops any machine berth recorded as started in this sandbox (by its
    /// recorded pid, nothing else), so a failing test leaves nothing running.
    fn drop(&mut self) {
        let records = self.state().join("machines");
        if let Ok(entries) = fs::read_dir(&records) {
            for entry in entries.flatten() {
                let Ok(text) = fs::read_to_string(entry.path()) else {
                    continue;
                };
                let Ok(record) = serde_json::from_str::<serde_json::Value>(&text) else {
                    continue;
                };
                if let Some(pid) = record["launch"]["pid"].as_i64() {
                    stop_pid(pid as i32, record["launch"]["start_time"].as_u64());
                }
                if let Some(name) = record["name"].as_str() {
                    remove_machine_cgroups(name);
                }
            }
        }
    }
}

/// Removes the (empty) cgroups the nspawn launcher made for machine `name`
/// on a host without systemd, once its machine is gone.
fn remove_machine_cgroups(name: &str) {
    for hierarchy in [
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup/systemd",
        "/sys/fs/cgroup",
    ] {
        let dir = Path::new(hierarchy).join(format!("berth-{name}"));
        remove_empty_dirs(&dir, 0);
    }
    // The cgroup v1 hierarchies of resource controllers (hybrid hosts),
    // under this process's cgroup there.
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        for controller in ["memory", "cpu", "pids", "blkio"] {
            if controllers.split(',').any(|c| c == controller) {
                let dir = Path::new("/sys/fs/cgroup")
                    .join(controller)
                    .join(path.trim_start_matches('/'))
                    .join(format!("berth-{name}"));
                remove_empty_dirs(&dir, 0);
            }
        }
    }
}

fn remove_empty_dirs(dir: &Path, depth: usize) {
    if depth > 8 {
        return;
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&entry.path(), depth + 1);
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

/// SIGTERM, then SIGKILL, a process we started, checked by its start time.
fn stop_pid(pid: i32, start_time: Option<u64>) {
    use nix::sys::signal::{Signal, kill};
    let same = || {
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields.get(19).and_then(|t| t.parse::<u64>().ok()) == start_time
            && fields.first() != Some(&"Z")
    };
    if !same() {
        return;
    }
    let pid_t = nix::unistd::Pid::from_raw(pid);
    let _ = kill(pid_t, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(30);
    while same() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if same() {
        let _ = kill(pid_t, Signal::SIGKILL);
    }
}

/// stdout and stderr of a berth run, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The exit code (panics on death by signal).
pub fn code(output: &Output) -> i32 {
    output
        .status
        .code()
        .unwrap_or_else(|| panic!("berth died by a signal\n{}", describe(output)))
}
