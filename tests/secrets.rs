//! Root passwords from `env:` and `file:` sources: the plaintext never
//! appears in plan, apply, status (human or JSON), berth's state, logs,
//! settings files, error messages, or any process's command line while apply
//! runs; a file readable by others draws a warning; a plaintext password in
//! the spec is refused. These use cheap fake roots, nothing boots.
//!
//! No other process ever holds an `env:` secret in its environment or
//! command line: sampled across the whole host during a real bootstrap,
//! configuration, boot, run and console under the nspawn launcher, and in
//! the systemd box under machinectl.
//! Needs root (fails under CI=true without it).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::fake_root;
use crate::support::systemd_box::SystemdBox;
use crate::support::{Sandbox, describe, require_root};

const ENV_PW: &str = "envS3cret-plaintext-7f3a";
const FILE_PW: &str = "fileS3cret-plaintext-91bc";

fn berth(sandbox: &Sandbox, args: &[&str]) -> Output {
    assert_cmd::Command::cargo_bin("berth")
        .unwrap()
        .env("BERTH_MACHINES_DIR", sandbox.machines())
        .env("BERTH_STATE_DIR", sandbox.state())
        .env("BERTH_NSPAWN_DIR", sandbox.nspawn())
        .env("BERTH_CACHE_DIR", sandbox.dir.path().join("cache"))
        .env("BERTH_TEST_PW", ENV_PW)
        .env("NO_COLOR", "1")
        .current_dir(sandbox.dir.path())
        .args(args)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap()
}

fn assert_clean(what: &str, out: &Output) {
    for secret in [ENV_PW, FILE_PW] {
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !String::from_utf8_lossy(bytes).contains(secret),
                "{what}: the plaintext is in {stream}:\n{}",
                describe(out)
            );
        }
    }
}

/// Every file below `dir` whose bytes contain a plaintext.
fn files_with_secret(dir: &Path) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let bytes = fs::read(&path).unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes);
                if text.contains(ENV_PW) || text.contains(FILE_PW) {
                    hits.push(path.display().to_string());
                }
            }
        }
    }
    hits
}

/// Samples every process's command line until stopped; returns those that
/// held a plaintext.
fn sample_cmdlines(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    std::thread::spawn(move || {
        let mut samples = 0;
        let mut hits = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            for entry in fs::read_dir("/proc").unwrap().flatten() {
                let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
                    continue;
                };
                let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                if text.contains(ENV_PW) || text.contains(FILE_PW) {
                    hits.push(text);
                }
            }
            samples += 1;
        }
        (samples, hits)
    })
}

/// The shadow hash verifies `password` (openssl reads it from stdin).
fn verifies(hash: &str, password: &str) -> bool {
    use std::io::Write;
    let salt = hash.split('$').nth(2).unwrap();
    let mut child = std::process::Command::new("openssl")
        .args(["passwd", "-6", "-salt", salt, "-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == hash
}

fn root_hash(root: &Path) -> String {
    let shadow = fs::read_to_string(root.join("etc/shadow")).unwrap();
    shadow
        .lines()
        .find_map(|l| l.strip_prefix("root:"))
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn plaintext_passwords_never_leak() {
    if !require_root("plaintext_passwords_never_leak") {
        return;
    }
    let sandbox = Sandbox::new("secrets");
    fake_root::make(&sandbox.root("e"));
    fake_root::make(&sandbox.root("f"));
    let secret_file = sandbox.dir.path().join("pw");
    fs::write(&secret_file, format!("{FILE_PW}\n")).unwrap();
    fs::set_permissions(&secret_file, fs::Permissions::from_mode(0o600)).unwrap();
    let spec_text = format!(
        "{}{}",
        fake_root::spec("e", "{env: BERTH_TEST_PW}"),
        fake_root::spec("f", "{file: ./pw}").replace("machines:\n", "")
    );
    let spec = sandbox.spec(&spec_text);
    let spec = spec.to_str().unwrap();
    for name in ["e", "f"] {
        let out = berth(&sandbox, &["adopt", "-f", spec, name]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    }

    for args in [
        &["plan", "-f", spec][..],
        &["plan", "-f", spec, "--json"],
        &["status", "-f", spec],
        &["status", "-f", spec, "--json"],
    ] {
        let out = berth(&sandbox, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", describe(&out));
        assert_clean(&format!("{args:?}"), &out);
    }

    // apply, with every command line on the host sampled while it runs.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_cmdlines(stop.clone());
    let out = berth(&sandbox, &["apply", "--yes", "-f", spec]);
    let json = berth(&sandbox, &["apply", "--yes", "--json", "-f", spec]);
    stop.store(true, Ordering::SeqCst);
    let (samples, hits) = sampler.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_clean("apply", &out);
    assert_eq!(json.status.code(), Some(0), "{}", describe(&json));
    assert_clean("apply --json", &json);
    assert!(
        samples > 3,
        "the process list was sampled only {samples} times"
    );
    assert!(hits.is_empty(), "a plaintext on a command line: {hits:?}");

    // The roots hold hashes that verify, and nothing holds the plaintext.
    assert!(verifies(&root_hash(&sandbox.root("e")), ENV_PW));
    assert!(verifies(&root_hash(&sandbox.root("f")), FILE_PW));
    for dir in [sandbox.state(), sandbox.nspawn(), sandbox.machines()] {
        let hits = files_with_secret(&dir);
        assert!(hits.is_empty(), "the plaintext is stored in {hits:?}");
    }
    // Converged: the stored hash satisfies the secret.
    let out = berth(&sandbox, &["plan", "-f", spec, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_clean("plan after apply", &out);

    // A different password is drift; the error-free plan still hides both.
    let out = assert_cmd::Command::cargo_bin("berth")
        .unwrap()
        .env("BERTH_MACHINES_DIR", sandbox.machines())
        .env("BERTH_STATE_DIR", sandbox.state())
        .env("BERTH_NSPAWN_DIR", sandbox.nspawn())
        .env("BERTH_CACHE_DIR", sandbox.cache())
        .env("BERTH_TEST_PW", FILE_PW)
        .current_dir(sandbox.dir.path())
        .args(["plan", "-f", spec, "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_clean("plan with a changed password", &out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("set-root-password"));
}

#[test]
fn bad_secret_values_are_refused_without_echoing_them() {
    if !require_root("bad_secret_values_are_refused_without_echoing_them") {
        return;
    }
    let sandbox = Sandbox::new("secret-errors");
    fake_root::make(&sandbox.root("e"));
    let spec = sandbox.spec(&fake_root::spec("e", "{env: BERTH_TEST_PW}"));
    let spec = spec.to_str().unwrap();
    let out = berth(&sandbox, &["adopt", "-f", spec, "e"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // A colon or a newline cannot go into /etc/shadow: refused, not echoed.
    for bad in [format!("{ENV_PW}:x"), format!("{ENV_PW}\nx")] {
        for args in [&["plan", "-f", spec][..], &["apply", "--yes", "-f", spec]] {
            let command = args[0];
            let out = assert_cmd::Command::cargo_bin("berth")
                .unwrap()
                .env("BERTH_MACHINES_DIR", sandbox.machines())
                .env("BERTH_STATE_DIR", sandbox.state())
                .env("BERTH_NSPAWN_DIR", sandbox.nspawn())
                .env("BERTH_CACHE_DIR", sandbox.cache())
                .env("BERTH_TEST_PW", &bad)
                .current_dir(sandbox.dir.path())
                .args(args)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(1), "{command}: {}", describe(&out));
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("BERTH_TEST_PW"),
                "{command}: the error does not name the source: {}",
                describe(&out)
            );
            assert_clean(command, &out);
        }
    }
    // An unset variable: named, nothing else.
    let out = assert_cmd::Command::cargo_bin("berth")
        .unwrap()
        .env("BERTH_MACHINES_DIR", sandbox.machines())
        .env("BERTH_STATE_DIR", sandbox.state())
        .env("BERTH_NSPAWN_DIR", sandbox.nspawn())
        .env("BERTH_CACHE_DIR", sandbox.cache())
        .env_remove("BERTH_TEST_PW")
        .current_dir(sandbox.dir.path())
        .args(["plan", "-f", spec])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BERTH_TEST_PW is not set"));
    assert_eq!(
        fs::read_to_string(sandbox.root("e/etc/shadow")).unwrap(),
        "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
        "a refused secret changed the shadow file"
    );
}

#[test]
fn a_secret_file_readable_by_others_draws_a_warning() {
    if !require_root("a_secret_file_readable_by_others_draws_a_warning") {
        return;
    }
    let sandbox = Sandbox::new("secret-perms");
    fake_root::make(&sandbox.root("f"));
    let secret_file = sandbox.dir.path().join("pw");
    fs::write(&secret_file, format!("{FILE_PW}\n")).unwrap();
    let spec = sandbox.spec(&fake_root::spec("f", "{file: ./pw}"));
    let spec = spec.to_str().unwrap();
    let out = berth(&sandbox, &["adopt", "-f", spec, "f"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    for (mode, warned) in [(0o644, true), (0o640, true), (0o600, false), (0o400, false)] {
        fs::set_permissions(&secret_file, fs::Permissions::from_mode(mode)).unwrap();
        let out = berth(&sandbox, &["plan", "-f", spec]);
        assert_eq!(out.status.code(), Some(0), "{mode:o}: {}", describe(&out));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            all.contains("readable by group or others"),
            warned,
            "mode {mode:o}: {all}"
        );
        assert_clean("plan", &out);
    }
}

/// A plaintext password anywhere in the spec is refused before anything is
/// touched, and the refusal does not repeat it.
#[test]
fn plaintext_passwords_in_the_spec_are_refused() {
    let sandbox = Sandbox::new("secret-plain");
    let base = "machines:\n  w:\n    distro: arch\n    launcher: nspawn\n";
    for field in [
        format!("    root_password: {ENV_PW}\n"),
        format!("    root_password: {{plain: {ENV_PW}}}\n"),
        format!("    root_password: {{password: {ENV_PW}}}\n"),
        format!("    root_password: {{hash: {ENV_PW}}}\n"),
        format!("    root_password: {{env: X, hash: {ENV_PW}}}\n"),
        format!("    password: {ENV_PW}\n"),
        format!("    root_password: [{ENV_PW}]\n"),
    ] {
        let spec = sandbox.spec(&format!("{base}{field}"));
        for command in ["validate", "plan"] {
            let out = berth(&sandbox, &[command, "-f", spec.to_str().unwrap()]);
            assert_eq!(out.status.code(), Some(1), "{field}: {}", describe(&out));
            assert_clean(&format!("{command} {field}"), &out);
        }
    }
    assert!(sandbox.written_files().is_empty());
}

/// A canary password no other process on this host holds: unique per run.
fn canary() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("berthCanary{}x{nanos}", std::process::id())
}

/// What a [`Sampler`] saw: per phase, how many passes over `/proc` it made
/// and the names of the processes it read; and every process whose
/// environment or command line held the canary.
#[derive(Debug, Default)]
struct Sampled {
    passes: std::collections::BTreeMap<&'static str, usize>,
    seen: std::collections::BTreeMap<&'static str, std::collections::BTreeSet<String>>,
    hits: std::collections::BTreeSet<String>,
}

impl Sampled {
    /// Panics unless phase `phase` was sampled at least `min` times.
    fn assert_sampled(&self, phase: &str, min: usize) {
        let n = self.passes.get(phase).copied().unwrap_or(0);
        assert!(
            n >= min,
            "phase {phase:?} sampled {n} times (want {min}): {self:?}"
        );
    }

    /// Panics unless a process named `comm` was read during `phase`.
    fn assert_saw(&self, phase: &str, comm: &str) {
        assert!(
            self.seen.get(phase).is_some_and(|s| s.contains(comm)),
            "no {comm} process was sampled during {phase:?}: {:?}",
            self.seen.get(phase)
        );
    }
}

/// Reads `/proc/*/environ` and `/proc/*/cmdline` of every process on the
/// host (boxes and machines included: they share this kernel) in a loop,
/// until [`Sampler::finish`], labelling each pass with the current phase.
/// berth's own processes are left out (berth holds the variable it reads;
/// that is the point): every process whose executable is named `berth`.
struct Sampler {
    stop: Arc<AtomicBool>,
    phase: Arc<std::sync::Mutex<&'static str>>,
    handle: std::thread::JoinHandle<Sampled>,
}

impl Sampler {
    fn start(canary: &str, phase: &'static str) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(std::sync::Mutex::new(phase));
        let (stop2, phase2, canary) = (stop.clone(), phase.clone(), canary.as_bytes().to_vec());
        let handle = std::thread::spawn(move || {
            let mut sampled = Sampled::default();
            let holds = |bytes: &[u8]| bytes.windows(canary.len()).any(|w| w == canary);
            while !stop2.load(Ordering::SeqCst) {
                let now = *phase2.lock().unwrap();
                for entry in fs::read_dir("/proc").unwrap().flatten() {
                    let dir = entry.path();
                    if !entry
                        .file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                    {
                        continue;
                    }
                    let exe = fs::read_link(dir.join("exe")).unwrap_or_default();
                    if exe.file_name().is_some_and(|n| n == "berth") {
                        continue;
                    }
                    let comm = fs::read_to_string(dir.join("comm")).unwrap_or_default();
                    let comm = comm.trim().to_owned();
                    for file in ["environ", "cmdline"] {
                        let bytes = fs::read(dir.join(file)).unwrap_or_default();
                        if holds(&bytes) {
                            // Where, never what: the secret stays out of the report.
                            sampled.hits.insert(format!(
                                "{now}: {} ({comm}, {}) {file}",
                                dir.display(),
                                exe.display()
                            ));
                        }
                    }
                    sampled.seen.entry(now).or_default().insert(comm);
                }
                *sampled.passes.entry(now).or_default() += 1;
            }
            sampled
        });
        Sampler {
            stop,
            phase,
            handle,
        }
    }

    /// Labels the passes from now on.
    fn phase(&self, phase: &'static str) {
        *self.phase.lock().unwrap() = phase;
    }

    /// Samples `phase` for `how_long`.
    fn dwell(&self, phase: &'static str, how_long: Duration) {
        self.phase(phase);
        std::thread::sleep(how_long);
    }

    fn finish(self) -> Sampled {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap()
    }
}

/// The plaintext of an `env:` password never reaches another process: no
/// process on the host (the bootstrapper and its children, systemctl,
/// systemd-nspawn, the guest, `berth shell`'s nsenter and shell) holds it in
/// its environment or command line, sampled during the bootstrap, the
/// configuration, the boot, while the machine runs, during a configuration
/// of the running machine and after apply. Under the nspawn launcher on
/// this host; the same under machinectl in the systemd box is the next test.
/// Needs mmdebstrap and a reachable Debian mirror.
#[test]
fn an_env_secret_is_in_no_other_process_environment_or_command_line() {
    if !require_root("an_env_secret_is_in_no_other_process_environment_or_command_line") {
        return;
    }
    let sandbox = Sandbox::new("secret-env");
    let canary = canary();
    let spec = |hostname: &str, units: &str| {
        format!(
            "machines:\n  envpw:\n    distro: debian\n    release: bookworm\n    bootstrapper: mmdebstrap\n    \
             packages: [systemd, systemd-sysv, dbus]\n    hostname: {hostname}\n    units:\n      enable: [{units}]\n    \
             root_password: {{env: BERTH_TEST_PW}}\n    launcher: nspawn\n    state: running\n"
        )
    };
    let berth = |args: &[&str]| {
        sandbox
            .berth_cmd()
            .env("BERTH_TEST_PW", &canary)
            .env("TERM", "berth-test-term")
            .args(args)
    };

    let sampler = Sampler::start(&canary, "bootstrap, configuration and boot");
    berth(&["apply", "--yes"])
        .spec(&spec("envpw", "systemd-networkd"))
        .run()
        .success()
        .stderr_lacks(&canary)
        .stdout_lacks(&canary);
    sampler.dwell("running", Duration::from_secs(2));
    berth(&["status"]).run().success().stdout_has("running");

    // A configuration of the running machine: hostname set live, a unit
    // enabled and the guest's systemd reloaded.
    sampler.phase("configuration of the running machine");
    berth(&["apply", "--yes"])
        .spec(&spec(
            "envpw-two",
            "systemd-networkd, systemd-networkd-wait-online",
        ))
        .run()
        .success()
        .stdout_has("envpw-two");
    sampler.dwell("after apply", Duration::from_secs(2));

    // berth shell: the console gets TERM, and nothing else of berth's.
    sampler.phase("berth shell");
    let shell = berth(&["shell", "envpw"])
        .stdin("env; sleep 2; exit\n")
        .run();
    shell.success();
    let env = shell.stdout();
    sampler.dwell("after apply", Duration::from_secs(1));
    let sampled = sampler.finish();

    sampled.assert_sampled("bootstrap, configuration and boot", 20);
    sampled.assert_saw("bootstrap, configuration and boot", "mmdebstrap");
    sampled.assert_saw("bootstrap, configuration and boot", "systemd-nspawn");
    sampled.assert_sampled("configuration of the running machine", 3);
    sampled.assert_sampled("running", 5);
    sampled.assert_saw("running", "systemd-nspawn");
    sampled.assert_saw("running", "systemd-journal");
    sampled.assert_sampled("after apply", 5);
    sampled.assert_saw("after apply", "systemd-nspawn");
    sampled.assert_sampled("berth shell", 3);
    sampled.assert_saw("berth shell", "nsenter");
    assert!(
        sampled.hits.is_empty(),
        "the secret is in other processes:\n{}",
        sampled.hits.iter().cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(
        env.contains("TERM=berth-test-term"),
        "the console lost TERM: {env}"
    );
    assert!(
        !env.contains(&canary),
        "the console's shell holds the secret: {env}"
    );
    assert!(verifies(&root_hash(&sandbox.root("envpw")), &canary));
    sandbox
        .berth_cmd()
        .args(["destroy", "--yes", "envpw"])
        .run()
        .success();
}

/// The same on a systemd host under the machinectl launcher: berth runs in
/// the systemd box with the canary in its environment only (read from a
/// file by the shell that starts berth, so no command line holds it, and
/// given to berth alone, not exported to the shell), and no other
/// process in the box, in the machine or on this host holds it, sampled
/// during adopt and the first apply (configuration, `machinectl start`, the
/// boot), while the machine runs, during a configuration of the running
/// machine, after apply and under `berth shell` (`machinectl shell`).
#[test]
fn in_a_systemd_box_an_env_secret_is_in_no_other_process_under_machinectl() {
    if !require_root("in_a_systemd_box_an_env_secret_is_in_no_other_process_under_machinectl") {
        return;
    }
    let sbox = SystemdBox::boot("secret-env");
    sbox.install_file(
        Path::new(env!("CARGO_BIN_EXE_berth")),
        "/usr/local/bin/berth",
    );
    sbox.seed_nested_root("/var/lib/machines/web");
    let canary = canary();
    let pw = sbox.host_path("/root/pw");
    fs::write(&pw, &canary).unwrap();
    fs::set_permissions(&pw, fs::Permissions::from_mode(0o600)).unwrap();
    let spec = |hostname: &str| {
        fs::write(
            sbox.host_path("/root/machines.yaml"),
            format!(
                "machines:\n  web:\n    distro: debian\n    release: bookworm\n    \
                 packages: [systemd, systemd-sysv, dbus]\n    hostname: {hostname}\n    units:\n      \
                 enable: [systemd-networkd]\n    root_password: {{env: BERTH_TEST_PW}}\n    \
                 launcher: machinectl\n    state: running\n"
            ),
        )
        .unwrap();
    };
    let berth = |args: &str, stdin: &str| {
        let script = format!(
            "cd /root; {stdin} BERTH_TEST_PW=\"$(cat /root/pw)\" TERM=berth-test-term berth {args}"
        );
        let out = sbox.exec_timeout(&["sh", "-c", &script], Duration::from_secs(300));
        assert_eq!(
            out.status.code(),
            Some(0),
            "berth {args}\n{}\n{}",
            describe(&out),
            sbox.console_tail()
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(&canary)
                && !String::from_utf8_lossy(&out.stderr).contains(&canary),
            "berth {args} printed the secret"
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    spec("web");
    let sampler = Sampler::start(&canary, "configuration and boot");
    berth("adopt web", "");
    berth("apply --yes", "");
    sampler.dwell("running", Duration::from_secs(2));
    assert!(berth("status", "").contains("running"));
    sampler.phase("configuration of the running machine");
    spec("web-two");
    berth("apply --yes", "");
    sampler.dwell("after apply", Duration::from_secs(2));
    sampler.phase("berth shell");
    // stdin stays open for 3 s, so the console runs that long.
    let shell = berth("shell web", "(sleep 3; echo 'hostname; exit') |");
    sampler.dwell("after apply", Duration::from_secs(1));
    let sampled = sampler.finish();

    sampled.assert_sampled("configuration and boot", 10);
    sampled.assert_saw("configuration and boot", "systemd-nspawn");
    sampled.assert_sampled("running", 5);
    sampled.assert_saw("running", "systemd-nspawn");
    sampled.assert_sampled("configuration of the running machine", 3);
    sampled.assert_sampled("after apply", 5);
    sampled.assert_sampled("berth shell", 3);
    sampled.assert_saw("berth shell", "machinectl");
    assert!(
        sampled.hits.is_empty(),
        "the secret is in other processes:\n{}",
        sampled.hits.iter().cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(
        shell.contains("web-two"),
        "berth shell ran no shell: {shell}"
    );
    assert!(verifies(
        &root_hash(&sbox.host_path("/var/lib/machines/web")),
        &canary
    ));
    berth("destroy --yes web", "");
}
