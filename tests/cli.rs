//! The berth binary without machines: validation of good and hostile specs,
//! the JSON Schema, confirmation rules, destroy's refusals. No root needed.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::{Sandbox, code, describe};

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/invalid");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// The substring the corpus file says its error must contain (`# expect: ...`
/// on its first line, or a sidecar `.expect` file).
fn expectation(file: &Path) -> Option<String> {
    let sidecar = file.with_extension("expect");
    if let Ok(text) = fs::read_to_string(&sidecar) {
        return Some(text.trim().to_owned());
    }
    let bytes = fs::read(file).ok()?;
    let first = bytes.split(|b| *b == b'\n').next()?;
    let first = std::str::from_utf8(first).ok()?;
    first.strip_prefix("# expect:").map(|s| s.trim().to_owned())
}

#[test]
fn every_hostile_spec_is_refused_by_validate_and_plan_without_writing() {
    let files = corpus();
    assert!(
        files.len() >= 30,
        "the corpus has only {} specs",
        files.len()
    );
    let sandbox = Sandbox::new("corpus");
    for file in &files {
        for command in ["validate", "plan"] {
            let out = sandbox.berth(&[command, "-f", file.to_str().unwrap()]);
            let rc = code(&out);
            assert_eq!(rc, 1, "{command} {}: {}", file.display(), describe(&out));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!err.contains("panicked"), "{}: {err}", file.display());
            let name = file.file_name().unwrap().to_string_lossy();
            assert!(
                err.contains(name.as_ref()),
                "{command}: error does not name the file:\n{err}"
            );
            if let Some(expected) = expectation(file) {
                assert!(
                    err.contains(&expected),
                    "{command} {}: error lacks {expected:?}:\n{err}",
                    file.display()
                );
            }
            assert!(
                !err.contains("r00tpw"),
                "{}: a plaintext password was echoed:\n{err}",
                file.display()
            );
        }
    }
    assert!(
        sandbox.written_files().is_empty(),
        "files were written: {:?}",
        sandbox.written_files()
    );
}

#[test]
fn the_example_spec_validates() {
    let sandbox = Sandbox::new("example");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../machines.example.yaml");
    let out = sandbox.berth(&["validate", "-f", example.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
}

#[test]
fn schema_is_json_with_the_spec_fields() {
    let sandbox = Sandbox::new("schema");
    let out = sandbox.berth(&["schema"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = schema.to_string();
    for field in [
        "machines",
        "defaults",
        "root_password",
        "securetty",
        "launcher",
    ] {
        assert!(text.contains(field), "schema lacks {field}");
    }
}

const DEBIAN: &str =
    "machines:\n  web:\n    distro: debian\n    release: bookworm\n    launcher: nspawn\n";

#[test]
fn plan_of_a_new_machine_shows_the_bootstrap_and_exits_2_with_detailed_exitcode() {
    let sandbox = Sandbox::new("plan");
    let spec = sandbox.spec(&format!("{DEBIAN}    bootstrapper: debootstrap\n"));
    let out = sandbox.berth(&["plan", "-f", spec.to_str().unwrap(), "--detailed-exitcode"]);
    assert_eq!(code(&out), 2, "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("+ bootstrap debian bookworm with debootstrap"),
        "{stdout}"
    );
    assert!(
        stdout.contains("$ debootstrap --variant=minbase"),
        "{stdout}"
    );

    let out = sandbox.berth(&["plan", "-f", spec.to_str().unwrap(), "--json"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["machines"][0]["name"], "web");
    assert_eq!(plan["machines"][0]["actions"][0]["action"], "bootstrap");
    assert!(plan["changes"].as_u64().unwrap() >= 2);
    assert!(
        sandbox.written_files().is_empty(),
        "plan wrote {:?}",
        sandbox.written_files()
    );
}

#[test]
fn apply_without_a_terminal_or_yes_refuses_and_changes_nothing() {
    let sandbox = Sandbox::new("noyes");
    let spec = sandbox.spec(DEBIAN);
    let out = sandbox.berth(&["apply", "-f", spec.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--yes"),
        "{}",
        describe(&out)
    );
    assert!(!sandbox.root("web").exists());
}

#[test]
fn destroy_refuses_a_machine_berth_does_not_manage() {
    let sandbox = Sandbox::new("unmanaged");
    let root = sandbox.root("handmade");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/canary"), "keep").unwrap();
    let out = sandbox.berth(&["destroy", "--yes", "handmade"]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not created by berth"),
        "{}",
        describe(&out)
    );
    assert_eq!(fs::read_to_string(root.join("etc/canary")).unwrap(), "keep");
}

#[test]
fn plan_refuses_a_root_berth_does_not_manage() {
    let sandbox = Sandbox::new("unmanaged-plan");
    fs::create_dir_all(sandbox.root("web")).unwrap();
    let spec = sandbox.spec(DEBIAN);
    let out = sandbox.berth(&["plan", "-f", spec.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not manage"),
        "{}",
        describe(&out)
    );
}

#[test]
fn unknown_machine_names_on_the_command_line_are_errors() {
    let sandbox = Sandbox::new("names");
    let spec = sandbox.spec(DEBIAN);
    let out = sandbox.berth(&["plan", "-f", spec.to_str().unwrap(), "nosuch"]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch"));
}

#[test]
fn the_shipped_schema_file_matches_berth_schema() {
    let sandbox = Sandbox::new("schema-file");
    let out = sandbox.berth(&["schema"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../berth.schema.json");
    let shipped = fs::read_to_string(&shipped).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        shipped,
        "berth.schema.json is stale: run `berth schema > berth.schema.json`"
    );
}

#[test]
fn a_second_apply_waits_for_the_lock_and_says_so() {
    // Runs alone: a 300 ms head start for the lock holder (see support::exclusive).
    let _alone = crate::support::exclusive();
    let sandbox = Sandbox::new("lock");
    let spec = sandbox.spec("machines: {}\n");
    let lock = sandbox.state().join("lock");
    // Another process holds the state lock for a moment (util-linux flock).
    let mut holder = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sleep", "2"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    let out = sandbox.berth(&["apply", "--yes", "-f", spec.to_str().unwrap()]);
    holder.wait().unwrap();
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("waiting for another berth"),
        "{}",
        describe(&out)
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "apply did not wait"
    );

    // plan takes no lock.
    let mut holder = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sleep", "2"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = sandbox.berth(&["plan", "-f", spec.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("waiting"));
    holder.wait().unwrap();
}
