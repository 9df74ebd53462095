//! Issue 14, prune and `moved:`, for real with Debian bookworm machines
//! (one bootstrap, the rest cloned from the sandbox's base cache; the
//! nspawn launcher). A machine dropped from a two-machine spec shows as a
//! destroy in plan, is kept by apply without `--prune` (with the warning)
//! and removed with it; a machine applied from another spec file is never
//! touched; `prevent_destroy` refuses `--prune` and `destroy`. A running
//! machine renamed with `moved:` runs under its new name (status, and the
//! systemd-nspawn process's `--machine=`), the old name is gone, its root's
//! content is kept, and a second plan is clean. Needs root and the Debian
//! mirror.

use std::fs;

use crate::support::{Sandbox, require_root};

fn machine(name: &str, state: &str, extra: &str) -> String {
    format!(
        "  {name}:\n    distro: debian\n    release: bookworm\n    \
         packages: [systemd, systemd-sysv, dbus]\n    launcher: nspawn\n    \
         hostname: {name}-host\n    state: {state}\n{extra}"
    )
}

fn spec(machines: &[String]) -> String {
    format!("machines:\n{}", machines.concat())
}

/// The command lines of the host's systemd-nspawn processes.
fn nspawn_command_lines() -> Vec<String> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().is_some_and(|a| a.ends_with("systemd-nspawn")) {
            out.push(args.join(" "));
        }
    }
    out
}

#[test]
fn prune_and_moved_on_real_machines() {
    if !require_root("prune_and_moved_on_real_machines") {
        return;
    }
    let sandbox = Sandbox::new("prune-moved");
    let berth = || sandbox.berth_cmd();
    let pmweb = || machine("pmweb", "stopped", "");
    let pmweb2 = |extra: &str| machine("pmweb2", "stopped", extra);

    // Two machines from machines.yaml, one from another spec file.
    berth()
        .spec(&spec(&[pmweb(), pmweb2("")]))
        .args(["apply", "--yes"])
        .run()
        .success();
    let other = sandbox.dir.path().join("other.yaml");
    fs::write(&other, spec(&[machine("db", "stopped", "")])).unwrap();
    let other_arg = other.to_str().unwrap();
    berth()
        .args(["apply", "-f", other_arg, "--yes"])
        .run()
        .success();
    let record: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(sandbox.state().join("machines/pmweb2.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        record["spec"],
        fs::canonicalize(sandbox.dir.path().join("machines.yaml"))
            .unwrap()
            .to_str()
            .unwrap()
    );

    // pmweb2 leaves the spec: plan shows its destroy; db is not mentioned.
    let only_web = spec(&[pmweb()]);
    let out = berth().spec(&only_web).args(["plan"]).run();
    out.success()
        .stdout_has("- destroy pmweb2 (no longer in the spec)")
        .stdout_lacks("machine \"db\"")
        .stdout_lacks("destroy db");
    berth().args(["plan", "--detailed-exitcode"]).run().code(2);
    let json = berth().args(["plan", "--json"]).run().success().json();
    let entry = json["machines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "pmweb2")
        .unwrap_or_else(|| panic!("{json:#}"))
        .clone();
    assert_eq!(entry["change"], "destroy");
    assert_eq!(entry["reason"], "not-in-spec");
    let destroy = entry["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "destroy")
        .unwrap_or_else(|| panic!("{entry:#}"));
    assert_eq!(destroy["reason"], "not-in-spec");
    assert!(json["changes"].as_u64().unwrap() >= 1);
    // Name targeting: only what is named.
    berth()
        .args(["plan", "pmweb"])
        .run()
        .success()
        .stdout_lacks("pmweb2");
    berth()
        .args(["plan", "pmweb2"])
        .run()
        .success()
        .stdout_has("- destroy pmweb2 (no longer in the spec)");

    // apply without --prune keeps it, with the warning.
    berth()
        .args(["apply", "--yes"])
        .run()
        .success()
        .stderr_has("! pmweb2: kept: pass --prune to destroy");
    assert!(sandbox.root("pmweb2").is_dir());
    berth()
        .args(["apply", "--yes", "--detailed-exitcode"])
        .run()
        .code(2);

    // prevent_destroy (recorded at the last apply, together with another
    // change) refuses --prune and destroy.
    berth()
        .spec(&spec(&[
            pmweb(),
            pmweb2("    prevent_destroy: true\n    units:\n      disable: [fstrim.timer]\n"),
        ]))
        .args(["apply", "--yes"])
        .run()
        .success();
    berth()
        .spec(&only_web)
        .args(["apply", "--yes", "--prune"])
        .run()
        .code(1)
        .stderr_has("prevent_destroy");
    assert!(sandbox.root("pmweb2").is_dir());
    berth()
        .args(["destroy", "--yes", "pmweb2"])
        .run()
        .code(1)
        .stderr_has("prevent_destroy");
    assert!(sandbox.root("pmweb2").is_dir());
    // Lifted by editing the spec, not by a flag.
    berth()
        .spec(&spec(&[pmweb(), pmweb2("")]))
        .args(["apply", "--yes"])
        .run()
        .success();

    // apply --prune removes it; the other spec's machine is untouched.
    berth()
        .spec(&only_web)
        .args(["apply", "--yes", "--prune"])
        .run()
        .success();
    assert!(!sandbox.root("pmweb2").exists());
    assert!(!sandbox.state().join("machines/pmweb2.json").exists());
    assert!(sandbox.root("db").is_dir());
    berth().args(["plan", "--detailed-exitcode"]).run().code(0);
    berth()
        .args(["plan", "-f", other_arg, "--detailed-exitcode"])
        .run()
        .code(0);

    // A saved plan carries the prune: `apply FILE` keeps the machine like
    // apply does, `apply FILE --prune` destroys it.
    berth()
        .spec(&spec(&[pmweb(), pmweb2("")]))
        .args(["apply", "--yes"])
        .run()
        .success();
    berth()
        .spec(&only_web)
        .args(["plan", "--out", "plan.json"])
        .run()
        .success()
        .stdout_has("- destroy pmweb2 (no longer in the spec)");
    let saved = fs::read_to_string(sandbox.dir.path().join("plan.json")).unwrap();
    assert!(saved.contains("not-in-spec"), "{saved}");
    berth()
        .args(["apply", "./plan.json"])
        .run()
        .success()
        .stderr_has("! pmweb2: kept: pass --prune to destroy");
    assert!(sandbox.root("pmweb2").is_dir());
    berth()
        .args(["apply", "./plan.json", "--prune"])
        .run()
        .success();
    assert!(!sandbox.root("pmweb2").exists());
    assert!(sandbox.root("db").is_dir());

    // moved: pmweb runs, then is renamed to pmwww.
    berth()
        .spec(&spec(&[machine("pmweb", "running", "")]))
        .args(["apply", "--yes"])
        .run()
        .success();
    fs::write(sandbox.root("pmweb").join("root/marker"), "kept\n").unwrap();
    let moved = format!(
        "moved:\n  - {{from: pmweb, to: pmwww}}\n{}",
        spec(&[machine("pmwww", "running", "")])
    );
    berth()
        .spec(&moved)
        .args(["plan"])
        .run()
        .success()
        .stdout_has("~ rename pmweb -> pmwww")
        .stdout_lacks("no longer in the spec");
    berth().args(["apply", "--yes"]).run().success();
    assert!(!sandbox.root("pmweb").exists());
    assert!(!sandbox.state().join("machines/pmweb.json").exists());
    assert!(!sandbox.nspawn().join("pmweb.nspawn").exists());
    assert!(sandbox.nspawn().join("pmwww.nspawn").exists());
    assert_eq!(
        fs::read_to_string(sandbox.root("pmwww").join("root/marker")).unwrap(),
        "kept\n"
    );
    let status = berth().args(["status", "--json"]).run().success().json();
    let pmwww = status
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "pmwww")
        .unwrap_or_else(|| panic!("{status:#}"));
    assert_eq!(pmwww["state"], "running", "{status:#}");
    let lines = nspawn_command_lines();
    let root = sandbox.root("pmwww");
    let root = root.to_str().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("--machine=pmwww") && l.contains(root)),
        "{lines:#?}"
    );
    let old_root = sandbox.root("pmweb");
    let old_root = old_root.to_str().unwrap();
    // (Other tests' machines may be called pmweb: only this sandbox's count.)
    let machines_dir = sandbox.machines();
    let machines_dir = machines_dir.to_str().unwrap();
    assert!(
        !lines.iter().filter(|l| l.contains(machines_dir)).any(|l| l
            .split(' ')
            .any(|a| a == "--machine=pmweb" || a.ends_with(old_root))),
        "{lines:#?}"
    );
    // The entry can stay: a second plan is clean.
    berth().args(["plan", "--detailed-exitcode"]).run().code(0);

    // An overlay machine, running, renamed with its layers.
    let pmwww = machine("pmwww", "running", "");
    let overlay = |name: &str| machine(name, "running", "    storage: overlay\n");
    berth()
        .spec(&format!(
            "moved:\n  - {{from: pmweb, to: pmwww}}\n{}",
            spec(&[pmwww.clone(), overlay("ov")])
        ))
        .args(["apply", "--yes"])
        .run()
        .success();
    fs::write(sandbox.root("ov").join("root/marker"), "upper\n").unwrap();
    let renamed = berth()
        .spec(&format!(
            "moved:\n  - {{from: pmweb, to: pmwww}}\n  - {{from: ov, to: ov2}}\n{}",
            spec(&[pmwww.clone(), overlay("ov2")])
        ))
        .args(["apply", "--yes"])
        .run();
    renamed.success();
    assert!(!sandbox.machines().join(".ov.overlay").exists());
    assert!(sandbox.machines().join(".ov2.overlay/upper").is_dir());
    assert!(!sandbox.root("ov").exists());
    assert_eq!(
        fs::read_to_string(sandbox.root("ov2").join("root/marker")).unwrap(),
        "upper\n"
    );
    let lines = nspawn_command_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.split(' ').any(|a| a == "--machine=ov2")),
        "{lines:#?}\n{}\n{}",
        renamed.stdout(),
        renamed.stderr()
    );
    berth().args(["plan", "--detailed-exitcode"]).run().code(0);
    berth().args(["destroy", "--yes", "ov2"]).run().success();

    // Clean up: the running machine and the other spec's.
    berth().args(["destroy", "--yes", "pmwww"]).run().success();
    berth()
        .args(["destroy", "-f", other_arg, "--yes", "db"])
        .run()
        .success();
}
