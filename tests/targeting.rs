//! NAME patterns and --exclude on plan, apply and status: globs select in
//! spec order, excludes leave machines out, and a pattern that matches
//! nothing is an error naming it. No root needed (nothing is created).

use crate::support::Sandbox;

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
    let list = sandbox.berth_cmd().args(all).run().success().json();
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
    let plan = sandbox
        .berth_cmd()
        .args(["plan", "--json", "db*", "--exclude", "db22"])
        .run()
        .success()
        .json();
    let names: Vec<&str> = plan["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db1"]);
    // apply selects the same way; refusing at the prompt changes nothing.
    sandbox
        .berth_cmd()
        .args(["apply", "web-1?"])
        .run()
        .code(1)
        .stdout_has("\"web-10\"")
        .stdout_lacks("\"web-1\" ");
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
        // Names the pattern and lists the machines.
        sandbox
            .berth_cmd()
            .args(args)
            .run()
            .code(1)
            .stderr_has("`app-*`")
            .stderr_has("web-1, web-2");
    }
    sandbox
        .berth_cmd()
        .args(["status", "--exclude", "*"])
        .run()
        .code(1);
    assert!(sandbox.written_files().is_empty());
}
