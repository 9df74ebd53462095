//! NAME patterns and --exclude on plan, apply and status: globs select in
//! spec order, excludes leave machines out, and a pattern that matches
//! nothing is an error naming it. No root needed (nothing is created).

use crate::support::{Sandbox, code, describe};

const SPEC: &str = "machines:
  web-1: {distro: debian, release: bookworm, state: stopped}
  web-2: {distro: debian, release: bookworm, state: stopped}
  web-10: {distro: debian, release: bookworm, state: stopped}
  db1: {distro: debian, release: bookworm, state: stopped}
  db22: {distro: debian, release: bookworm, state: stopped}
";

fn status_names(sandbox: &Sandbox, args: &[&str]) -> Vec<String> {
    let mut all = vec!["status", "--json"];
    all.extend(args);
    let out = sandbox.berth(&all);
    assert_eq!(code(&out), 0, "{args:?}: {}", describe(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn globs_and_excludes_select_machines_in_spec_order() {
    let sandbox = Sandbox::new("targeting");
    sandbox.spec(SPEC);
    assert_eq!(
        status_names(&sandbox, &["web-*"]),
        ["web-1", "web-2", "web-10"]
    );
    assert_eq!(status_names(&sandbox, &["db?"]), ["db1"]);
    assert_eq!(
        status_names(&sandbox, &["db1", "web-?"]),
        ["web-1", "web-2", "db1"]
    );
    assert_eq!(
        status_names(&sandbox, &["web-*", "--exclude", "web-1?"]),
        ["web-1", "web-2"]
    );
    assert_eq!(
        status_names(&sandbox, &["--exclude", "web-*", "--exclude", "db1"]),
        ["db22"]
    );
    assert_eq!(status_names(&sandbox, &["web-[12]"]), ["web-1", "web-2"]);
    assert!(sandbox.written_files().is_empty());
}

#[test]
fn plan_and_apply_take_the_same_patterns() {
    let sandbox = Sandbox::new("targeting-plan");
    sandbox.spec(SPEC);
    let out = sandbox.berth(&["plan", "--json", "db*", "--exclude", "db22"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = plan["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db1"]);
    // apply selects the same way; refusing at the prompt changes nothing.
    let out = sandbox.berth(&["apply", "web-1?"]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"web-10\"") && !text.contains("\"web-1\" "),
        "{text}"
    );
    let written: Vec<_> = sandbox
        .written_files()
        .into_iter()
        .filter(|p| !p.ends_with("state/lock"))
        .collect();
    assert!(written.is_empty(), "{written:?}");
}

#[test]
fn a_pattern_matching_nothing_is_an_error_naming_it() {
    let sandbox = Sandbox::new("targeting-errors");
    sandbox.spec(SPEC);
    for args in [
        &["plan", "app-*"][..],
        &["apply", "--yes", "web-1", "app-*"][..],
        &["status", "app-*"][..],
        &["plan", "--exclude", "app-*"][..],
        &["status", "--exclude", "app-*"][..],
    ] {
        let out = sandbox.berth(args);
        assert_eq!(code(&out), 1, "{args:?}: {}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("`app-*`"), "{args:?}: {err}");
        assert!(err.contains("web-1, web-2"), "lists the machines: {err}");
    }
    let out = sandbox.berth(&["status", "--exclude", "*"]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(sandbox.written_files().is_empty());
}
