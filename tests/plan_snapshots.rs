//! Snapshots of `berth plan` (the human rendering and `--json`) through the
//! real binary, for the plan's main shapes: create, update in place with
//! diffs, replace, a stopped machine, warnings, no change, a plan error,
//! several machines, `--detailed-exitcode`. They pin the output byte for
//! byte (the engine may be refactored; its output may not change by
//! accident). Existing machines are fake roots (`crate::fake_root`) taken
//! over with `berth adopt`: planning only, no bootstrap, no root needed,
//! but debootstrap must be installed (the specs name it, and planning
//! checks that the tool is there).
//!
//! The sandbox's path and the base cache's id (a hash that covers the host
//! architecture) are replaced by `[SANDBOX]` and `[CACHE-ID]`. Snapshots
//! live in tests/snapshots/; after an intended change of the output,
//! review and accept them (`INSTA_UPDATE=always cargo test -p berth --test
//! main -- plan_snapshots::`, then `git diff tests/snapshots`).

use crate::fake_root;
use crate::support::{Sandbox, require_tools};

/// The tool the specs below name.
const TOOLS: &[(&str, &str)] = &[("debootstrap", "debootstrap")];

/// A sandbox with fake Debian bookworm roots `names` adopted under `spec`
/// (then replaced by the scenario's spec).
fn adopted(prefix: &str, names: &[&str], spec: &str) -> Sandbox {
    let sandbox = Sandbox::new(prefix);
    for name in names {
        fake_root::make(&sandbox.root(name));
    }
    let mut args = vec!["adopt"];
    args.extend(names);
    sandbox.berth_cmd().spec(spec).args(args).run().success();
    sandbox
}

/// A Debian bookworm machine as the fake root has it: nothing to change.
fn as_found(name: &str) -> String {
    format!(
        "  {name}:\n    distro: debian\n    release: bookworm\n    bootstrapper: debootstrap\n    \
         packages: [systemd, dbus]\n    hostname: old-name\n    launcher: nspawn\n    state: stopped\n"
    )
}

/// The full spec of a machine the README shows.
fn full(name: &str, release: &str, state: &str) -> String {
    format!(
        "  {name}:\n    distro: debian\n    release: {release}\n    bootstrapper: debootstrap\n    \
         packages: [systemd, systemd-sysv, dbus]\n    hostname: {name}-demo\n    units:\n      \
         enable: [systemd-networkd]\n      disable: [fstrim.timer]\n      mask: [apt-daily.timer]\n    \
         root_password:\n      hash: '{}'\n    securetty: [pts/0]\n    launcher: nspawn\n    \
         state: {state}\n",
        fake_root::HASH
    )
}

/// Runs `berth ARGS` in the sandbox and snapshots its exit code, stdout and
/// stderr as `NAME`, with the sandbox path and cache ids filtered.
fn snapshot(name: &str, sandbox: &Sandbox, args: &[&str]) {
    let run = sandbox.berth_cmd().args(args).run();
    let text = format!(
        "$ berth {}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        run.exit_code(),
        run.stdout(),
        run.stderr()
    );
    if args.contains(&"--json") && run.exit_code() == Some(0) {
        run.json();
    }
    insta::with_settings!({
        filters => vec![
            (r"/var/tmp/berth-test-[A-Za-z0-9._-]+", "[SANDBOX]"),
            (r"\.[0-9a-f]{32}\.staging", ".[CACHE-ID].staging"),
        ],
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

/// `plan` and `plan --json` of the sandbox's spec, as `NAME` and `NAME_json`.
fn both(name: &str, sandbox: &Sandbox) {
    snapshot(name, sandbox, &["plan"]);
    snapshot(&format!("{name}_json"), sandbox, &["plan", "--json"]);
}

#[test]
fn plan_snapshot_create() {
    if !require_tools("plan_snapshot_create", TOOLS) {
        return;
    }
    let sandbox = Sandbox::new("snap-create");
    sandbox.spec(&format!(
        "machines:\n{}",
        full("web", "bookworm", "running")
    ));
    both("create", &sandbox);
}

#[test]
fn plan_snapshot_create_stopped() {
    if !require_tools("plan_snapshot_create_stopped", TOOLS) {
        return;
    }
    let sandbox = Sandbox::new("snap-stopped");
    sandbox.spec(&format!(
        "machines:\n{}",
        full("web", "bookworm", "stopped")
    ));
    both("create_stopped", &sandbox);
}

#[test]
fn plan_snapshot_update_in_place() {
    if !require_tools("plan_snapshot_update_in_place", TOOLS) {
        return;
    }
    let sandbox = adopted(
        "snap-update",
        &["web"],
        &format!("machines:\n{}", as_found("web")),
    );
    // Every kind of in-place change: a package, the hostname, units, the
    // password, securetty, settings, and a start.
    sandbox.spec(&format!(
        "machines:\n  web:\n    distro: debian\n    release: bookworm\n    bootstrapper: debootstrap\n    \
         packages: [systemd, dbus, less]\n    hostname: web-new\n    units:\n      enable: [foo]\n      \
         disable: [baz]\n      mask: [bar]\n    root_password:\n      hash: '{}'\n    \
         securetty: [pts/0]\n    launcher: nspawn\n    network: {{mode: veth}}\n    state: running\n",
        fake_root::HASH
    ));
    both("update_in_place", &sandbox);
}

#[test]
fn plan_snapshot_warnings() {
    if !require_tools("plan_snapshot_warnings", TOOLS) {
        return;
    }
    let sandbox = adopted(
        "snap-warnings",
        &["web"],
        &format!("machines:\n{}", as_found("web")),
    );
    // securetty on Debian, and a base package gone from the spec.
    sandbox.spec(
        &as_found("web")
            .replace("[systemd, dbus]", "[systemd]")
            .replace("    state:", "    securetty: [pts/0]\n    state:")
            .replace("  web:", "machines:\n  web:"),
    );
    both("warnings", &sandbox);
}

#[test]
fn plan_snapshot_replace() {
    if !require_tools("plan_snapshot_replace", TOOLS) {
        return;
    }
    let sandbox = adopted(
        "snap-replace",
        &["web"],
        &format!("machines:\n{}", as_found("web")),
    );
    sandbox.spec(&format!(
        "machines:\n{}",
        as_found("web").replace("release: bookworm", "release: trixie")
    ));
    both("replace", &sandbox);
}

#[test]
fn plan_snapshot_no_change() {
    if !require_tools("plan_snapshot_no_change", TOOLS) {
        return;
    }
    let spec = format!("machines:\n{}", as_found("web"));
    let sandbox = adopted("snap-nochange", &["web"], &spec);
    both("no_change", &sandbox);
    snapshot(
        "no_change_detailed_exitcode",
        &sandbox,
        &["plan", "--detailed-exitcode"],
    );
}

#[test]
fn plan_snapshot_missing_unit_is_an_error_naming_its_package() {
    if !require_tools(
        "plan_snapshot_missing_unit_is_an_error_naming_its_package",
        TOOLS,
    ) {
        return;
    }
    let sandbox = adopted(
        "snap-error",
        &["web"],
        &format!("machines:\n{}", as_found("web")),
    );
    sandbox.spec(&format!(
        "machines:\n{}",
        as_found("web").replace(
            "    launcher:",
            "    units:\n      enable: [systemd-resolved, foo]\n    launcher:"
        )
    ));
    both("missing_unit", &sandbox);
}

#[test]
fn plan_snapshot_several_machines() {
    if !require_tools("plan_snapshot_several_machines", TOOLS) {
        return;
    }
    let found = format!("machines:\n{}{}", as_found("db"), as_found("web"));
    let sandbox = adopted("snap-several", &["db", "web"], &found);
    // One new, one changed, one as it is, in spec order.
    sandbox.spec(&format!(
        "machines:\n{}{}{}",
        full("app", "bookworm", "running"),
        as_found("web").replace("hostname: old-name", "hostname: web-new"),
        as_found("db"),
    ));
    both("several_machines", &sandbox);
    snapshot(
        "several_machines_one_selected",
        &sandbox,
        &["plan", "web", "--exclude", "app"],
    );
}

#[test]
fn plan_snapshot_detailed_exitcode() {
    if !require_tools("plan_snapshot_detailed_exitcode", TOOLS) {
        return;
    }
    let sandbox = adopted(
        "snap-exitcode",
        &["web"],
        &format!("machines:\n{}", as_found("web")),
    );
    sandbox.spec(&format!(
        "machines:\n{}",
        as_found("web").replace("hostname: old-name", "hostname: web-new")
    ));
    snapshot(
        "detailed_exitcode_changes",
        &sandbox,
        &["plan", "--detailed-exitcode"],
    );
    snapshot(
        "detailed_exitcode_changes_json",
        &sandbox,
        &["plan", "--json", "--detailed-exitcode"],
    );
}

#[test]
fn plan_snapshot_destroy() {
    if !require_tools("plan_snapshot_destroy", TOOLS) {
        return;
    }
    let sandbox = adopted(
        "snap-destroy",
        &["web"],
        &format!("machines:\n{}", as_found("web")),
    );
    snapshot(
        "destroy",
        &sandbox,
        &["plan", "--destroy", "web", "gone", "--detailed-exitcode"],
    );
    snapshot(
        "destroy_json",
        &sandbox,
        &["plan", "--destroy", "web", "--json"],
    );
    // destroy --json reports the same plan and each machine's result.
    let run = sandbox
        .berth_cmd()
        .args(["destroy", "--json", "--yes", "web"])
        .run();
    run.success();
    let report = run.json();
    assert_eq!(report["destroyed"], true);
    assert_eq!(report["machines"][0]["result"], "destroyed");
    assert_eq!(report["machines"][0]["actions"][0]["action"], "destroy");
    assert!(!sandbox.root("web").exists());
}
