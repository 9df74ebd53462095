//! The berth binary without machines: validation of good and hostile specs,
//! the JSON Schema, confirmation rules, destroy's refusals. No root needed.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::Sandbox;

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
            let run = sandbox.berth_cmd().args([command, "-f"]).args([file]).run();
            let name = file.file_name().unwrap().to_string_lossy();
            // The error names the file and never echoes a plaintext password.
            run.code(1)
                .stderr_lacks("panicked")
                .stderr_has(&name)
                .stderr_lacks("r00tpw");
            if let Some(expected) = expectation(file) {
                run.stderr_has(&expected);
            }
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
    sandbox
        .berth_cmd()
        .args(["validate", "-f"])
        .args([example])
        .run()
        .success();
}

#[test]
fn schema_is_json_with_the_spec_fields() {
    let sandbox = Sandbox::new("schema");
    let schema = sandbox.berth_cmd().args(["schema"]).run().success().json();
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
    let spec = format!("{DEBIAN}    bootstrapper: debootstrap\n");
    sandbox
        .berth_cmd()
        .spec(&spec)
        .args(["plan", "--detailed-exitcode"])
        .run()
        .code(2)
        .stdout_has("+ bootstrap debian bookworm with debootstrap")
        .stdout_has("$ debootstrap --variant=minbase");

    let plan = sandbox
        .berth_cmd()
        .args(["plan", "--json"])
        .run()
        .success()
        .json();
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
    sandbox
        .berth_cmd()
        .spec(DEBIAN)
        .args(["apply"])
        .run()
        .code(1)
        .stderr_has("--yes");
    // A "y" on a stdin that is not a terminal is no confirmation either.
    sandbox
        .berth_cmd()
        .args(["apply"])
        .stdin("y\n")
        .run()
        .code(1)
        .stderr_has("stdin is not a terminal");
    assert!(!sandbox.root("web").exists());
}

#[test]
fn destroy_refuses_a_machine_berth_does_not_manage() {
    let sandbox = Sandbox::new("unmanaged");
    let root = sandbox.root("handmade");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/canary"), "keep").unwrap();
    sandbox
        .berth_cmd()
        .args(["destroy", "--yes", "handmade"])
        .run()
        .code(1)
        .stderr_has("not created by berth");
    assert_eq!(fs::read_to_string(root.join("etc/canary")).unwrap(), "keep");
}

#[test]
fn plan_refuses_a_root_berth_does_not_manage() {
    let sandbox = Sandbox::new("unmanaged-plan");
    fs::create_dir_all(sandbox.root("web")).unwrap();
    sandbox
        .berth_cmd()
        .spec(DEBIAN)
        .args(["plan"])
        .run()
        .code(1)
        .stderr_has("does not manage");
}

#[test]
fn unknown_machine_names_on_the_command_line_are_errors() {
    let sandbox = Sandbox::new("names");
    sandbox
        .berth_cmd()
        .spec(DEBIAN)
        .args(["plan", "nosuch"])
        .run()
        .code(1)
        .stderr_has("nosuch");
}

#[test]
fn the_shipped_schema_file_matches_berth_schema() {
    let sandbox = Sandbox::new("schema-file");
    let run = sandbox.berth_cmd().args(["schema"]).run();
    run.success();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../berth.schema.json");
    let shipped = fs::read_to_string(&shipped).unwrap();
    assert_eq!(
        run.stdout(),
        shipped,
        "berth.schema.json is stale: run `berth schema > berth.schema.json`"
    );
}

#[test]
fn a_second_apply_waits_for_the_lock_and_says_so() {
    // Runs alone: a 300 ms head start for the lock holder (see support::exclusive).
    let _alone = crate::support::exclusive();
    let sandbox = Sandbox::new("lock");
    sandbox.spec("machines: {}\n");
    let lock = sandbox.state().join("lock");
    // Another process holds the state lock for a moment (util-linux flock).
    let mut holder = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sleep", "2"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    let run = sandbox.berth_cmd().args(["apply", "--yes"]).run();
    holder.wait().unwrap();
    run.success().stderr_has("waiting for another berth");
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
    let run = sandbox.berth_cmd().args(["plan"]).run();
    run.success().stderr_lacks("waiting");
    holder.wait().unwrap();
}

#[test]
fn status_without_a_spec_lists_the_machines_berth_manages() {
    let sandbox = Sandbox::new("status-records");
    // No machines.yaml, no record: an empty list, not "cannot read spec".
    sandbox.berth_cmd().args(["status"]).run().success();
    let empty = sandbox
        .berth_cmd()
        .args(["status", "--json"])
        .run()
        .success()
        .json();
    assert_eq!(empty, serde_json::json!([]));
    // A managed machine: a root adopted with a spec that is then gone.
    for name in ["alpha", "beta"] {
        let root = sandbox.root(name);
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(
            root.join("etc/os-release"),
            "ID=debian\nVERSION_CODENAME=bookworm\n",
        )
        .unwrap();
    }
    let spec = "machines:\n  alpha:\n    distro: debian\n    release: bookworm\n  \
                beta:\n    distro: debian\n    release: bookworm\n";
    sandbox
        .berth_cmd()
        .spec(spec)
        .args(["adopt", "alpha", "beta"])
        .run()
        .success();
    fs::remove_file(sandbox.dir.path().join("machines.yaml")).unwrap();
    sandbox
        .berth_cmd()
        .args(["status"])
        .run()
        .success()
        .stdout_has("NAME")
        .stdout_has("alpha")
        .stdout_has("beta")
        .stdout_has("stopped");
    let json = sandbox
        .berth_cmd()
        .args(["status", "--json", "--exclude", "beta"])
        .run()
        .success()
        .json();
    let list = json.as_array().expect("a JSON list");
    assert_eq!(list.len(), 1, "{json}");
    assert_eq!(list[0]["name"], "alpha");
    assert_eq!(list[0]["state"], "stopped");
    assert_eq!(list[0]["managed"], true);
    assert_eq!(list[0]["root"], sandbox.root("alpha").display().to_string());
    // A pattern matching no managed machine is an error, as with a spec.
    sandbox
        .berth_cmd()
        .args(["status", "gamma"])
        .run()
        .code(1)
        .stderr_has("no machine berth manages matches `gamma`");
    // An explicit -f that does not exist is still an error.
    sandbox
        .berth_cmd()
        .args(["status", "-f", "machines.yaml"])
        .run()
        .code(1)
        .stderr_has("machines.yaml");
}

/// `scripts/test` refuses to run without root, saying so, before it
/// installs, builds or tests anything: a run that skipped the root tests
/// would prove nothing.
#[test]
fn scripts_test_refuses_to_run_without_root() {
    if !crate::support::require_root("scripts_test_refuses_to_run_without_root") {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/test");
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&script)
        .env_remove("CI")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        crate::support::describe(&out)
    );
    assert!(
        stderr.contains("must run as root") && stderr.contains("sudo scripts/test"),
        "{}",
        crate::support::describe(&out)
    );
    assert!(out.stdout.is_empty(), "{}", crate::support::describe(&out));
}
