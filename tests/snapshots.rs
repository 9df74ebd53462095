//! Issue 14's snapshots and rollback, for real: one Debian bookworm machine
//! (the nspawn launcher). A snapshot of the running machine; a file changed
//! and a package removed; `berth rollback snapweb` brings both back, keeps the
//! replaced root as `pre-rollback-...` and leaves the machine running (with
//! its spec, and without one: the same systemd-nspawn command line);
//! `--delete`; bad tags and unknown machines; `snapshots: {before_apply:
//! true, keep: 1}` takes one on a root-changing apply and keeps one;
//! destroy removes them. Needs root and the Debian mirror.

use std::fs;

use crate::support::{Sandbox, require_root};

/// The package removed and brought back (in every bookworm minbase root).
const PACKAGE: &str = "tzdata";

fn spec(hostname: &str, extra: &str) -> String {
    format!(
        "machines:\n  snapweb:\n    distro: debian\n    release: bookworm\n    \
         packages: [systemd, systemd-sysv, dbus]\n    launcher: nspawn\n    \
         hostname: {hostname}\n    state: running\n{extra}"
    )
}

/// The tags `berth snapshots snapweb --json` lists, with their origins.
fn snapshots(sandbox: &Sandbox) -> Vec<(String, String)> {
    let json = sandbox
        .berth_cmd()
        .args(["snapshots", "snapweb", "--json"])
        .run()
        .success()
        .json();
    json.as_array()
        .expect("a list")
        .iter()
        .map(|s| {
            (
                s["tag"].as_str().unwrap().to_owned(),
                s["origin"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn snapshot_rollback_delete_and_before_apply_on_a_booted_machine() {
    if !require_root("snapshot_rollback_delete_and_before_apply_on_a_booted_machine") {
        return;
    }
    let sandbox = Sandbox::new("snapshots");
    let berth = || sandbox.berth_cmd();
    berth()
        .spec(&spec("snapweb", ""))
        .args(["apply", "--yes"])
        .run()
        .success();
    let marker = sandbox.root("snapweb").join("etc/berth-snapshot-test");
    fs::write(&marker, "before\n").unwrap();
    berth()
        .args(["exec", "snapweb", "--", "dpkg-query", "-W", PACKAGE])
        .run()
        .success();

    // A snapshot of the running machine.
    let out = berth().args(["snapshot", "snapweb", "--tag", "good"]).run();
    out.success().stdout_has("snapweb: snapshot good taken");
    assert_eq!(snapshots(&sandbox), [("good".into(), "manual".into())]);
    let table = berth().args(["snapshots"]).run();
    table
        .success()
        .stdout_has("MACHINE")
        .stdout_has("ORIGIN")
        .stdout_has("good");
    // machined and berth's own listings never take it for a machine.
    assert!(
        sandbox
            .machines()
            .join(".snapweb.snapshots/good/root/etc/berth-snapshot-test")
            .is_file()
    );

    // Bad tags, a taken tag, unknown and unmanaged machines: exit 1, nothing made.
    for tag in ["a/b", ".hidden", "-x", "", "a b"] {
        berth()
            .args(["snapshot", "snapweb", &format!("--tag={tag}")])
            .run()
            .code(1)
            .stderr_has("tag");
    }
    berth()
        .args(["snapshot", "snapweb", "--tag", "good"])
        .run()
        .code(1)
        .stderr_has("exists already");
    berth()
        .args(["snapshot", "nope"])
        .run()
        .code(1)
        .stderr_has("no such machine");
    fs::create_dir(sandbox.root("byhand")).unwrap();
    berth()
        .args(["snapshot", "byhand"])
        .run()
        .code(1)
        .stderr_has("not created by berth");
    berth().args(["rollback", "nope"]).run().code(1);
    berth()
        .args(["rollback", "snapweb", "missing"])
        .run()
        .code(1)
        .stderr_has("no snapshot tagged");
    assert_eq!(snapshots(&sandbox).len(), 1);

    // Change a file and remove a package, then roll back.
    fs::write(&marker, "after\n").unwrap();
    berth()
        .args(["exec", "snapweb", "--", "dpkg", "--remove", PACKAGE])
        .run()
        .success();
    berth()
        .args([
            "exec",
            "snapweb",
            "--",
            "dpkg-query",
            "-W",
            "-f=${Status}",
            PACKAGE,
        ])
        .run();
    let out = berth().args(["rollback", "snapweb"]).run();
    out.success()
        .stdout_has("snapweb: rolled back to good")
        .stdout_has("pre-rollback-")
        .stdout_has("snapweb: started again");
    assert_eq!(fs::read_to_string(&marker).unwrap(), "before\n");
    let status = berth()
        .args([
            "exec",
            "snapweb",
            "--",
            "dpkg-query",
            "-W",
            "-f=${Status}",
            PACKAGE,
        ])
        .run();
    assert_eq!(status.success().stdout(), "install ok installed");
    berth()
        .args(["status", "snapweb"])
        .run()
        .success()
        .stdout_has("running");
    let all = snapshots(&sandbox);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0], ("good".into(), "manual".into()));
    assert!(all[1].0.starts_with("pre-rollback-"), "{all:?}");
    assert_eq!(all[1].1, "pre-rollback");
    // The replaced root is kept whole.
    assert_eq!(
        fs::read_to_string(sandbox.machines().join(format!(
            ".snapweb.snapshots/{}/root/etc/berth-snapshot-test",
            all[1].0
        )))
        .unwrap(),
        "after\n"
    );
    // Nothing left half-done.
    let hidden: Vec<String> = fs::read_dir(sandbox.machines().join(".snapweb.snapshots"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
    // The machine is as the spec says: nothing to do.
    berth().args(["plan", "--detailed-exitcode"]).run().code(0);

    // Without a spec (none here, no -f): started again the way it ran.
    let spec_file = sandbox.dir.path().join("machines.yaml");
    let kept = sandbox.dir.path().join("machines.yaml.kept");
    fs::rename(&spec_file, &kept).unwrap();
    fs::write(&marker, "again\n").unwrap();
    berth()
        .args(["rollback", "snapweb", "good"])
        .run()
        .success()
        .stdout_has("snapweb: started again");
    assert_eq!(fs::read_to_string(&marker).unwrap(), "before\n");
    berth()
        .args(["exec", "snapweb", "--", "true"])
        .run()
        .success();
    fs::rename(&kept, &spec_file).unwrap();
    berth().args(["plan", "--detailed-exitcode"]).run().code(0);
    assert_eq!(snapshots(&sandbox).len(), 3);

    // --delete.
    berth()
        .args(["snapshot", "--delete", "snapweb", "good"])
        .run()
        .success()
        .stdout_has("snapweb: snapshot good deleted");
    berth()
        .args(["snapshot", "--delete", "snapweb", "good"])
        .run()
        .code(1)
        .stderr_has("no snapshot tagged");
    assert!(!sandbox.machines().join(".snapweb.snapshots/good").exists());
    assert_eq!(snapshots(&sandbox).len(), 2);

    // before_apply: one snapshot on a root-changing apply, at most `keep`.
    let keep_one = "    snapshots: {before_apply: true, keep: 1}\n";
    berth()
        .spec(&spec("snapweb", keep_one))
        .args(["plan"])
        .run()
        .success()
        .stdout_lacks("snapshot snapweb");
    for host in ["snapweb-two", "snapweb-three"] {
        berth()
            .spec(&spec(host, keep_one))
            .args(["plan"])
            .run()
            .success()
            .stdout_has("+ snapshot snapweb (before apply; keeping 1)");
        berth()
            .spec(&spec(host, keep_one))
            .args(["apply", "--yes"])
            .run()
            .success();
        let before: Vec<_> = snapshots(&sandbox)
            .into_iter()
            .filter(|(_, origin)| origin == "before-apply")
            .collect();
        assert_eq!(before.len(), 1, "{before:?}");
    }
    // The newest before-apply snapshot holds the root before the last apply.
    let (tag, _) = snapshots(&sandbox)
        .into_iter()
        .find(|(_, origin)| origin == "before-apply")
        .unwrap();
    assert_eq!(
        fs::read_to_string(
            sandbox
                .machines()
                .join(format!(".snapweb.snapshots/{tag}/root/etc/hostname"))
        )
        .unwrap()
        .trim(),
        "snapweb-two"
    );

    // destroy removes the machine's snapshots too.
    berth()
        .args(["destroy", "--yes", "snapweb"])
        .run()
        .success();
    assert!(!sandbox.machines().join(".snapweb.snapshots").exists());
    fs::remove_dir(sandbox.root("byhand")).unwrap();
}
