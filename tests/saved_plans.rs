//! Saved plans: `berth plan --out FILE` and `berth apply FILE`. A saved plan
//! runs without asking, holds no secret, and refuses ("plan is stale: ...")
//! once the spec or the machine changed; editing only a comment does not
//! make it stale. The machines are hand-made Debian roots (os-release, a
//! dpkg status, hostname, shadow) adopted with `berth adopt`, so no
//! bootstrap is needed; applying writes into them, hence root.

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::support::{Sandbox, code, describe, require_root};

const ENV_SECRET: &str = "s3cr3t-from-env";
const FILE_SECRET: &str = "s3cr3t-from-file";

fn fake_debian_root(sandbox: &Sandbox, name: &str) {
    let root = sandbox.root(name);
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    fs::write(
        root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
    )
    .unwrap();
    fs::write(
        root.join("var/lib/dpkg/status"),
        "Package: systemd\nStatus: install ok installed\nPriority: important\n",
    )
    .unwrap();
    fs::write(root.join("etc/hostname"), format!("{name}-old\n")).unwrap();
    fs::write(root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
}

fn spec(web_hostname: &str, comment: &str) -> String {
    format!(
        "# {comment}
machines:
  web:
    distro: debian
    release: bookworm
    packages: [systemd]
    hostname: {web_hostname}
    root_password: {{env: BERTH_TEST_PW}}
    state: stopped
  db:
    distro: debian
    release: bookworm
    packages: [systemd]
    hostname: db-new
    root_password: {{file: ./db-password}}
    state: stopped
"
    )
}

/// berth with the password variable set and stdin closed (no prompt can be answered).
fn berth(sandbox: &Sandbox, args: &[&str]) -> Output {
    assert_cmd::Command::cargo_bin("berth")
        .unwrap()
        .env("BERTH_MACHINES_DIR", sandbox.machines())
        .env("BERTH_STATE_DIR", sandbox.state())
        .env("BERTH_NSPAWN_DIR", sandbox.nspawn())
        .env("NO_COLOR", "1")
        .env("BERTH_TEST_PW", ENV_SECRET)
        .current_dir(sandbox.dir.path())
        .args(args)
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap()
}

fn hostname(sandbox: &Sandbox, name: &str) -> String {
    fs::read_to_string(sandbox.root(name).join("etc/hostname"))
        .unwrap()
        .trim()
        .to_owned()
}

fn stale(out: &Output, what: &str) {
    assert_eq!(code(out), 1, "{}", describe(out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plan is stale: "), "{err}");
    assert!(err.contains(what), "expected {what:?} in: {err}");
}

fn setup() -> Sandbox {
    let sandbox = Sandbox::new("saved-plans");
    fake_debian_root(&sandbox, "web");
    fake_debian_root(&sandbox, "db");
    fs::write(sandbox.dir.path().join("db-password"), FILE_SECRET).unwrap();
    sandbox.spec(&spec("web-old", "v1"));
    let out = berth(&sandbox, &["adopt", "web", "db"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    sandbox
}

#[test]
fn a_saved_plan_runs_without_asking_and_holds_no_secret() {
    if !require_root("a_saved_plan_runs_without_asking_and_holds_no_secret") {
        return;
    }
    let sandbox = setup();
    sandbox.spec(&spec("web-new", "v2"));
    let out = berth(&sandbox, &["plan", "--out", "changes.plan"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let file = sandbox.dir.path().join("changes.plan");
    let text = fs::read_to_string(&file).unwrap();
    let saved: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(saved["format"], "berth-plan");
    assert_eq!(saved["targets"], serde_json::json!(["web", "db"]));
    assert!(Path::new(saved["spec"].as_str().unwrap()).is_absolute());
    assert!(saved["plan"]["changes"].as_u64().unwrap() >= 4, "{text}");
    assert!(
        !text.contains("s3cr3t"),
        "a secret leaked into the plan:\n{text}"
    );

    // Applied without --yes and with stdin closed: a saved plan was reviewed.
    let out = berth(&sandbox, &["apply", "changes.plan"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(hostname(&sandbox, "web"), "web-new");
    assert_eq!(hostname(&sandbox, "db"), "db-new");
    let shadow = fs::read_to_string(sandbox.root("web").join("etc/shadow")).unwrap();
    let hash = shadow.split(':').nth(1).unwrap().to_owned();
    assert!(hash.starts_with("$6$"), "{shadow}");

    // Once applied, the same plan is stale: the machines changed.
    stale(
        &berth(&sandbox, &["apply", "./changes.plan"]),
        "machine web changed",
    );

    // A plan made against the hashed password stores neither it nor the secrets.
    sandbox.spec(&spec("web-newer", "v3"));
    let out = berth(&sandbox, &["plan", "--out", "again.plan"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let text = fs::read_to_string(sandbox.dir.path().join("again.plan")).unwrap();
    assert!(!text.contains(&hash) && !text.contains("s3cr3t"), "{text}");

    // Editing only a comment keeps it fresh.
    sandbox.spec(&spec("web-newer", "v3, reviewed"));
    let out = berth(&sandbox, &["apply", "./again.plan"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(hostname(&sandbox, "web"), "web-newer");
    let out = berth(&sandbox, &["plan", "--detailed-exitcode"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
}

#[test]
fn a_plan_is_stale_once_the_spec_or_a_machine_changed() {
    if !require_root("a_plan_is_stale_once_the_spec_or_a_machine_changed") {
        return;
    }
    let sandbox = setup();
    sandbox.spec(&spec("web-new", "v2"));
    let out = berth(&sandbox, &["plan", "--out", "p.plan"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));

    // The spec changed.
    sandbox.spec(&spec("web-other", "v2"));
    stale(
        &berth(&sandbox, &["apply", "p.plan"]),
        "the spec of machine web changed",
    );
    assert_eq!(hostname(&sandbox, "web"), "web-old", "nothing may run");

    // A machine changed by hand.
    let out = berth(&sandbox, &["plan", "--out", "p.plan", "db"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    fs::write(sandbox.root("db").join("etc/hostname"), "db-by-hand\n").unwrap();
    stale(&berth(&sandbox, &["apply", "p.plan"]), "machine db changed");
    assert_eq!(hostname(&sandbox, "db"), "db-by-hand");

    // A machine left the spec.
    let out = berth(&sandbox, &["plan", "--out", "p.plan"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let only_web: String = spec("web-other", "v2")
        .split("  db:")
        .next()
        .unwrap()
        .to_owned();
    sandbox.spec(&only_web);
    stale(
        &berth(&sandbox, &["apply", "p.plan"]),
        "machine db is no longer in the spec",
    );
    assert_eq!(hostname(&sandbox, "web"), "web-old");
}

#[test]
fn apply_tells_a_plan_file_from_machine_names() {
    if !require_root("apply_tells_a_plan_file_from_machine_names") {
        return;
    }
    let sandbox = setup();
    sandbox.spec(&spec("web-new", "v2"));
    let out = berth(&sandbox, &["plan", "--out", "p.plan"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    // A plan must be the only argument.
    let out = berth(&sandbox, &["apply", "p.plan", "web"]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only argument"));
    // A path with a slash that is not a plan is refused, not taken as a name.
    fs::write(sandbox.dir.path().join("notes.txt"), "hello\n").unwrap();
    let out = berth(&sandbox, &["apply", "--yes", "./notes.txt"]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a plan"));
    // A file named like a machine that is not a plan: the machine.
    fs::write(sandbox.dir.path().join("web"), "not a plan\n").unwrap();
    let out = berth(&sandbox, &["apply", "--yes", "web"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(hostname(&sandbox, "web"), "web-new");
    assert_eq!(hostname(&sandbox, "db"), "db-old");
}
