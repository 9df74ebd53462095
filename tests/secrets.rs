//! Root passwords from `env:` and `file:` sources: the plaintext never
//! appears in plan, apply, status (human or JSON), berth's state, logs,
//! settings files, error messages, or any process's command line while apply
//! runs; a file readable by others draws a warning; a plaintext password in
//! the spec is refused. Cheap fake roots, nothing boots.
//! Needs root (fails under CI=true without it).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::fake_root;
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
