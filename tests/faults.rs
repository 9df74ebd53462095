//! Faults and concurrency: SIGKILL at several points of a real apply
//! (mid-bootstrap, between configuration steps, while the guest boots), then
//! apply again: it converges to what a clean apply gives, the machine boots,
//! nothing is left behind and no lock is held. SIGINT stops at a safe point
//! (exit 130) saying what was and was not done. Two applies at once: the
//! second waits and finds nothing to do; `--lock-timeout 0` fails at once
//! naming the holder's pid; a killed holder's lock never blocks. A full disk
//! fails clearly and keeps existing files. Needs root (fails under CI=true
//! without it); the kill test needs a reachable Debian mirror and mmdebstrap.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::fake_root;
use crate::support::{Sandbox, code, describe, require_root};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A berth running in the background, its stderr lines streamed.
struct Running {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    /// Waits for a stderr line matching `pred`; panics after `timeout`.
    fn wait_for(&mut self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                let hit = pred(&line);
                self.seen.push(line);
                if hit {
                    return;
                }
            }
        }
        let _ = self.child.kill();
        panic!(
            "no line {what} within {timeout:?}:\n{}",
            self.seen.join("\n")
        );
    }

    fn signal(&mut self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Waits for exit; returns the code (None: killed) and all of stderr.
    fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(line);
        }
        (status.code(), self.seen.join("\n"))
    }
}

fn command(sandbox: &Sandbox, args: &[&str]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("berth"));
    cmd.env("BERTH_MACHINES_DIR", sandbox.machines())
        .env("BERTH_STATE_DIR", sandbox.state())
        .env("BERTH_NSPAWN_DIR", sandbox.nspawn())
        .env("BERTH_CACHE_DIR", sandbox.dir.path().join("cache"))
        .env("NO_COLOR", "1")
        .current_dir(sandbox.dir.path())
        .args(args);
    cmd
}

fn spawn(mut cmd: Command) -> Running {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    Running {
        child,
        lines,
        seen: Vec::new(),
    }
}

fn run(sandbox: &Sandbox, args: &[&str]) -> std::process::Output {
    let out = command(sandbox, args).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        describe(&out)
    );
    out
}

/// A `systemctl` that takes a second longer, first on PATH: slows unit
/// actions down so a signal lands between them deterministically.
fn slow_systemctl(sandbox: &Sandbox) -> String {
    let bin = sandbox.dir.path().join("slowbin");
    fs::create_dir_all(&bin).unwrap();
    let path = bin.join("systemctl");
    fs::write(
        &path,
        "#!/bin/sh\nsleep 1\nexec /usr/bin/systemctl \"$@\"\n",
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Leftover temp files and staging dirs under `dir` (not inside machine roots).
fn leftovers(dir: &Path, depth: usize) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains(".berth-tmp-") || name.contains(".tmp-") || name.contains("staging") {
            out.push(entry.path().display().to_string());
        }
        if depth > 0 && entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(leftovers(&entry.path(), depth - 1));
        }
    }
    out
}

/// Whether the state lock is free: `flock -n` can take it.
fn lock_is_free(sandbox: &Sandbox) -> bool {
    Command::new("flock")
        .args(["-n"])
        .arg(sandbox.state().join("lock"))
        .arg("true")
        .status()
        .unwrap()
        .success()
}

/// Processes whose command line mentions `needle` (ours: the sandbox path).
fn processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() as i32 {
            continue;
        }
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) {
                out.push((pid, text));
            }
        }
    }
    out
}

const NAME: &str = "fk";

fn real_spec() -> String {
    format!(
        "machines:\n  {NAME}:\n    distro: debian\n    release: bookworm\n    bootstrapper: mmdebstrap\n    \
         packages: [systemd, systemd-sysv, dbus]\n    hostname: fk-host\n    units:\n      \
         enable: [systemd-networkd]\n      mask: [apt-daily.timer]\n    root_password:\n      \
         hash: '{}'\n    securetty: [pts/0, pts/1]\n    launcher: nspawn\n    state: running\n",
        fake_root::HASH
    )
}

fn is_enabled(root: &Path, unit: &str) -> String {
    let out = Command::new("systemctl")
        .arg(format!("--root={}", root.display()))
        .args(["is-enabled", unit])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// One bootstrap, killed three times at different stages, then finished:
/// the result is the clean apply's, it runs, and destroy stops it first.
#[test]
fn sigkill_anywhere_in_apply_then_apply_converges_and_boots() {
    if !require_root("sigkill_anywhere_in_apply_then_apply_converges_and_boots") {
        return;
    }
    let sandbox = Sandbox::new("faults");
    let spec = sandbox.spec(&real_spec());
    let spec = spec.to_str().unwrap();
    let root = sandbox.root(NAME);
    let sandbox_path = sandbox.dir.path().display().to_string();

    // 1. SIGKILL mid-bootstrap: no machine appears, the tool dies with berth.
    let mut apply = spawn(command(&sandbox, &["apply", "--yes", "-f", spec]));
    apply.wait_for(
        "showing the bootstrap command",
        Duration::from_secs(60),
        |l| l.contains("$ mmdebstrap"),
    );
    std::thread::sleep(Duration::from_secs(4));
    apply.signal(Signal::SIGKILL);
    let (rc, _) = apply.finish();
    assert_eq!(rc, None);
    assert!(!root.exists(), "a killed bootstrap left a machine");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !processes_mentioning(&sandbox_path).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        processes_mentioning(&sandbox_path),
        vec![],
        "the bootstrap outlived berth"
    );
    assert!(lock_is_free(&sandbox), "a killed berth holds the lock");

    // 2. The stale lock does not block (--lock-timeout 0), and a kill
    //    between configuration steps (unit actions slowed to a second each).
    let mut cmd = command(
        &sandbox,
        &["apply", "--yes", "--lock-timeout", "0", "-f", spec],
    );
    cmd.env("PATH", slow_systemctl(&sandbox));
    let mut apply = spawn(cmd);
    apply.wait_for(
        "finishing the first configuration step",
        Duration::from_secs(300),
        |l| l.starts_with(&format!("{NAME}: done: set hostname")),
    );
    apply.signal(Signal::SIGKILL);
    let (rc, log) = apply.finish();
    assert_eq!(rc, None, "{log}");
    assert!(root.join("etc/os-release").exists(), "{log}");
    assert!(lock_is_free(&sandbox));

    // 3. A kill while the guest boots.
    let mut apply = spawn(command(&sandbox, &["apply", "--yes", "-f", spec]));
    apply.wait_for("waiting for the boot", Duration::from_secs(120), |l| {
        l.contains("waiting for the guest to finish booting")
    });
    apply.signal(Signal::SIGKILL);
    let (rc, log) = apply.finish();
    assert_eq!(rc, None, "{log}");
    assert!(lock_is_free(&sandbox));

    // 4. Apply again: it completes, and a plan then has nothing to do.
    let out = run(&sandbox, &["apply", "--yes", "-f", spec]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let out = run(&sandbox, &["plan", "-f", spec, "--detailed-exitcode"]);
    assert_eq!(code(&out), 0, "not converged: {}", describe(&out));
    // What a clean apply gives.
    assert_eq!(
        fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "fk-host\n"
    );
    let shadow = fs::read_to_string(root.join("etc/shadow")).unwrap();
    assert!(
        shadow.contains(&format!("root:{}:", fake_root::HASH)),
        "{shadow}"
    );
    let securetty = fs::read_to_string(root.join("etc/securetty")).unwrap();
    assert!(securetty.lines().any(|l| l == "pts/0") && securetty.lines().any(|l| l == "pts/1"));
    assert_eq!(is_enabled(&root, "systemd-networkd.service"), "enabled");
    assert_eq!(is_enabled(&root, "apt-daily.timer"), "masked");
    let id = fs::read_to_string(root.join("etc/machine-id")).unwrap();
    assert!(
        id.trim().len() == 32 && id.trim().chars().all(|c| c.is_ascii_hexdigit()),
        "{id:?}"
    );
    let status = run(&sandbox, &["status", "-f", spec, "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status[0]["state"], "running", "{status}");
    let mut left = leftovers(&sandbox.machines(), 0);
    left.extend(leftovers(&sandbox.state(), 3));
    left.extend(leftovers(&sandbox.nspawn(), 0));
    left.extend(leftovers(&root.join("etc"), 0));
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(lock_is_free(&sandbox));

    // 5. destroy stops the running machine first, then removes it.
    let out = run(&sandbox, &["destroy", "--yes", NAME]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stopping"),
        "{}",
        describe(&out)
    );
    assert!(!root.exists());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !processes_mentioning(&format!("{}", sandbox.machines().display())).is_empty()
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        processes_mentioning(&format!("{}", sandbox.machines().display())),
        vec![]
    );
}

/// SIGINT stops at the next safe point: the action under way finishes, the
/// rest is not started, berth says which is which and exits 130; a later
/// apply finishes the job.
#[test]
fn sigint_stops_between_actions_and_says_what_was_done() {
    if !require_root("sigint_stops_between_actions_and_says_what_was_done") {
        return;
    }
    // Runs alone: the signal must land inside a 1 s step (see support::exclusive).
    let _alone = crate::support::exclusive();
    let sandbox = Sandbox::new("sigint");
    let root = sandbox.root("h");
    fake_root::make(&root);
    let spec = sandbox.spec(&fake_root::spec("h", &fake_root::hash_source()));
    let spec = spec.to_str().unwrap();
    let out = run(&sandbox, &["adopt", "-f", spec, "h"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));

    let mut cmd = command(&sandbox, &["apply", "--yes", "-f", spec]);
    cmd.env("PATH", slow_systemctl(&sandbox));
    let mut apply = spawn(cmd);
    apply.wait_for("starting the unit step", Duration::from_secs(30), |l| {
        l.starts_with("h: enable unit foo.service")
    });
    apply.signal(Signal::SIGINT);
    let (rc, log) = apply.finish();
    assert_eq!(rc, Some(130), "{log}");
    assert!(log.contains("interrupted"), "{log}");
    assert!(log.contains("done: set hostname"), "{log}");
    assert!(
        log.contains("not done: mask unit bar.service"),
        "the message does not list what was not done: {log}"
    );
    // The step under way was finished, the next one not started.
    assert!(
        fs::symlink_metadata(root.join("etc/systemd/system/multi-user.target.wants/foo.service"))
            .is_ok(),
        "{log}"
    );
    assert!(
        fs::symlink_metadata(root.join("etc/systemd/system/bar.service")).is_err(),
        "{log}"
    );
    assert!(lock_is_free(&sandbox));
    assert!(leftovers(&root.join("etc"), 0).is_empty());

    let out = run(&sandbox, &["apply", "--yes", "-f", spec]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let out = run(&sandbox, &["plan", "-f", spec, "--detailed-exitcode"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
}

/// Two applies at once: both wait for the holder; one applies, the other
/// then finds nothing to do. While a berth holds the lock, `--lock-timeout 0`
/// fails at once naming its pid, and `plan` runs without waiting.
#[test]
fn concurrent_applies_serialise_and_lock_timeout_names_the_holder() {
    if !require_root("concurrent_applies_serialise_and_lock_timeout_names_the_holder") {
        return;
    }
    // Runs alone: wall-clock bounds (fails within 2 s) (see support::exclusive).
    let _alone = crate::support::exclusive();
    let sandbox = Sandbox::new("concurrent");
    fake_root::make(&sandbox.root("h"));
    let spec = sandbox.spec(&fake_root::spec("h", &fake_root::hash_source()));
    let spec = spec.to_str().unwrap();
    let out = run(&sandbox, &["adopt", "-f", spec, "h"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));

    // A slow berth apply holds the lock.
    let mut cmd = command(&sandbox, &["apply", "--yes", "-f", spec]);
    cmd.env("PATH", slow_systemctl(&sandbox));
    let mut holder = spawn(cmd);
    holder.wait_for("a first action", Duration::from_secs(30), |l| {
        l.starts_with("h: set hostname")
    });
    let holder_pid = holder.child.id();

    // --lock-timeout 0: at once, naming the holder.
    let started = Instant::now();
    let out = run(
        &sandbox,
        &["apply", "--yes", "--lock-timeout", "0", "-f", spec],
    );
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(started.elapsed() < Duration::from_secs(2), "it waited");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("pid {holder_pid}")), "{stderr}");
    let out = run(&sandbox, &["destroy", "--yes", "--lock-timeout", "0", "h"]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(sandbox.root("h").exists());
    // plan takes no exclusive lock.
    let started = Instant::now();
    let out = run(&sandbox, &["plan", "-f", spec]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("waiting"));
    assert!(started.elapsed() < Duration::from_secs(5));
    // A second full apply waits, then has nothing to do.
    let waiter = spawn(command(&sandbox, &["apply", "--yes", "-f", spec]));
    let (rc, log) = holder.finish();
    assert_eq!(rc, Some(0), "{log}");
    let (rc, log) = waiter.finish();
    assert_eq!(rc, Some(0), "{log}");
    assert!(
        log.contains(&format!("waiting for another berth (pid {holder_pid})")),
        "{log}"
    );
    assert!(
        !log.contains("done:"),
        "the second apply changed something: {log}"
    );

    // Two more at once, released together: exactly one applies.
    fs::write(sandbox.root("h/etc/hostname"), "drifted\n").unwrap();
    let mut flock = Command::new("flock")
        .arg(sandbox.state().join("lock"))
        .args(["sleep", "1"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let a = spawn(command(&sandbox, &["apply", "--yes", "-f", spec]));
    let b = spawn(command(&sandbox, &["apply", "--yes", "-f", spec]));
    flock.wait().unwrap();
    let (ra, la) = a.finish();
    let (rb, lb) = b.finish();
    assert_eq!((ra, rb), (Some(0), Some(0)), "{la}\n---\n{lb}");
    let changed = [&la, &lb]
        .iter()
        .filter(|l| l.contains("done: set hostname"))
        .count();
    assert_eq!(changed, 1, "{la}\n---\n{lb}");
}

/// A mount this test made; detached on drop, even when the test fails.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        mount(
            Some("tmpfs"),
            at,
            Some("tmpfs"),
            MsFlags::empty(),
            Some(format!("size={size}").as_str()),
        )
        .unwrap();
        Tmpfs(at.to_path_buf())
    }

    /// Fills the filesystem to the last byte.
    fn fill(&self) {
        use std::io::Write;
        let mut f = fs::File::create(self.0.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let mut small = fs::File::create(self.0.join("filler2")).unwrap();
        while small.write_all(&[0u8]).is_ok() {}
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

/// A full machines dir or state dir: a clear "No space left" error, the
/// existing files intact, no temp file left.
#[test]
fn a_full_disk_fails_clearly_and_keeps_existing_files() {
    if !require_root("a_full_disk_fails_clearly_and_keeps_existing_files") {
        return;
    }
    // Runs alone: tmpfs mounts on the host (see support::exclusive).
    let _alone = crate::support::exclusive();
    let sandbox = Sandbox::new("fulldisk");
    let spec = sandbox.spec(&fake_root::spec("h", &fake_root::hash_source()));
    let spec = spec.to_str().unwrap();
    {
        let machines = Tmpfs::mount(&sandbox.machines(), "1m");
        let root = sandbox.root("h");
        fake_root::make(&root);
        let out = run(&sandbox, &["adopt", "-f", spec, "h"]);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        let shadow = fs::read(root.join("etc/shadow")).unwrap();
        machines.fill();
        let out = run(&sandbox, &["apply", "--yes", "-f", spec]);
        assert_eq!(code(&out), 1, "{}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("No space left on device"),
            "{}",
            describe(&out)
        );
        assert_eq!(
            fs::read_to_string(root.join("etc/hostname")).unwrap(),
            "old-name\n"
        );
        assert_eq!(fs::read(root.join("etc/shadow")).unwrap(), shadow);
        assert!(
            leftovers(&root.join("etc"), 0).is_empty(),
            "{:?}",
            leftovers(&root, 3)
        );
        assert!(lock_is_free(&sandbox));
    }
    // The state dir full: adopt fails clearly and writes no partial record.
    let sandbox = Sandbox::new("fullstate");
    fake_root::make(&sandbox.root("h"));
    let spec = sandbox.spec(&fake_root::spec("h", &fake_root::hash_source()));
    let spec = spec.to_str().unwrap();
    {
        let state = Tmpfs::mount(&sandbox.state(), "64k");
        fs::create_dir_all(sandbox.state().join("machines")).unwrap();
        state.fill();
        let out = run(&sandbox, &["adopt", "-f", spec, "h"]);
        assert_eq!(code(&out), 1, "{}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("No space left on device"),
            "{}",
            describe(&out)
        );
        assert!(!sandbox.state().join("machines/h.json").exists());
        assert!(
            leftovers(&sandbox.state(), 2).is_empty(),
            "{:?}",
            leftovers(&sandbox.state(), 2)
        );
    }
}

/// A berth killed between writing a temp file and renaming it leaves
/// `.NAME.berth-tmp-*` (in a root) or `.NAME.tmp-PID` (in the state dir):
/// the next write of that file removes them.
#[test]
fn temp_files_of_a_killed_write_are_removed_by_the_next_one() {
    if !require_root("temp_files_of_a_killed_write_are_removed_by_the_next_one") {
        return;
    }
    let sandbox = Sandbox::new("stale-temps");
    let root = sandbox.root("h");
    fake_root::make(&root);
    let spec = sandbox.spec(&fake_root::spec("h", &fake_root::hash_source()));
    let spec = spec.to_str().unwrap();
    let state_temp = sandbox.state().join("machines/.h.json.tmp-4194303");
    fs::create_dir_all(state_temp.parent().unwrap()).unwrap();
    fs::write(&state_temp, "half-written").unwrap();
    let out = run(&sandbox, &["adopt", "-f", spec, "h"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        !state_temp.exists(),
        "the record's stale temp file is still there"
    );
    let planted = [
        root.join("etc/.hostname.berth-tmp-0123456789abcdef"),
        root.join("etc/.shadow.berth-tmp-fedcba9876543210"),
    ];
    for path in &planted {
        fs::write(path, "half-written").unwrap();
    }
    // Look-alikes that are not berth's temp files stay.
    let kept = root.join("etc/.hostname.berth-tmp-guest");
    fs::write(&kept, "guest data").unwrap();
    let out = run(&sandbox, &["apply", "--yes", "-f", spec]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    for path in &planted {
        assert!(!path.exists(), "{} is still there", path.display());
    }
    assert_eq!(fs::read_to_string(&kept).unwrap(), "guest data");
}
