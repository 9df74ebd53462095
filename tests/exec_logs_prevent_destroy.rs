//! Issue 14, for real: one Debian bookworm machine booted on this host (the
//! nspawn launcher). `berth exec` runs a command in the guest with stdin,
//! stdout and exit code passed through, and refuses a stopped machine;
//! `berth logs` reads the guest's volatile journal while it runs without a
//! persistent one (journald's `Storage=volatile`), says how to get one once
//! it is stopped, and reads the persistent journal once journald keeps one; `prevent_destroy:
//! true` refuses destroy and a replacing plan until it leaves the spec.
//! Needs root and the Debian mirror.

use std::fs;

use crate::support::{Sandbox, require_root};

fn spec(state: &str, extra: &str) -> String {
    format!(
        "machines:\n  logweb:\n    distro: debian\n    release: bookworm\n    \
         packages: [systemd, systemd-sysv, dbus]\n    launcher: nspawn\n    \
         hostname: logweb-host\n    state: {state}\n{extra}"
    )
}

/// How many lines of `text` are journal entries (not `-- ... --` markers).
fn entries(text: &str) -> usize {
    text.lines().filter(|l| !l.starts_with("-- ")).count()
}

#[test]
fn exec_logs_and_prevent_destroy_on_a_booted_machine() {
    if !require_root("exec_logs_and_prevent_destroy_on_a_booted_machine") {
        return;
    }
    let sandbox = Sandbox::new("lifecycle14");
    let berth = || sandbox.berth_cmd();
    // A volatile journal: journald keeps it in /run/log/journal only
    // (the guest's tmpfiles still make an empty /var/log/journal).
    berth()
        .spec(&spec("stopped", ""))
        .args(["apply", "--yes"])
        .run()
        .success();
    let persistent = sandbox.root("logweb").join("var/log/journal");
    if persistent.exists() {
        fs::remove_dir_all(&persistent).unwrap();
    }
    let dropin = sandbox.root("logweb").join("etc/systemd/journald.conf.d");
    fs::create_dir_all(&dropin).unwrap();
    fs::write(
        dropin.join("volatile.conf"),
        "[Journal]\nStorage=volatile\n",
    )
    .unwrap();
    berth()
        .spec(&spec("running", ""))
        .args(["apply", "--yes"])
        .run()
        .success();

    // exec: stdout, the exit code, stdin; with the spec and from the records.
    let out = berth()
        .args(["exec", "logweb", "--", "cat", "/etc/hostname"])
        .run();
    assert_eq!(out.success().stdout().trim(), "logweb-host");
    berth()
        .args(["exec", "logweb", "--", "sh", "-c", "exit 7"])
        .run()
        .code(7);
    let out = berth()
        .args(["exec", "logweb", "--", "cat"])
        .stdin("hi\n")
        .run();
    assert_eq!(out.success().stdout(), "hi\n");
    // A clean environment: berth's own does not leak in.
    let out = berth()
        .env("BERTH_TEST_SECRET", "leak")
        .args(["exec", "logweb", "--", "env"])
        .run();
    let env = out.success().stdout();
    assert!(
        env.contains("HOME=/root") && env.contains("LANG=C.UTF-8"),
        "{env}"
    );
    assert!(!env.contains("BERTH_TEST_SECRET"), "{env}");
    // Without a spec (no machines.yaml here): from berth's records.
    let spec_path = sandbox.dir.path().join("machines.yaml");
    let moved = sandbox.dir.path().join("spec.yaml");
    fs::rename(&spec_path, &moved).unwrap();
    let out = berth()
        .args(["exec", "logweb", "--", "cat", "/etc/hostname"])
        .run();
    assert_eq!(out.success().stdout().trim(), "logweb-host");
    berth()
        .args(["exec", "nosuch", "--", "true"])
        .run()
        .code(1)
        .stderr_has("berth manages no such machine");
    let moved_arg = moved.to_str().unwrap();
    let out = berth()
        .args([
            "exec",
            "-f",
            moved_arg,
            "logweb",
            "--",
            "cat",
            "/etc/hostname",
        ])
        .run();
    assert_eq!(out.success().stdout().trim(), "logweb-host");
    fs::rename(&moved, &spec_path).unwrap();
    // `--` is required.
    berth().args(["exec", "logweb", "true"]).run().failure();

    // logs: no persistent journal, the running guest's volatile one.
    assert!(fs::read_dir(&persistent).map_or(true, |mut d| d.next().is_none()));
    let out = berth().args(["logs", "logweb", "-n", "5"]).run();
    let text = out.success().stdout();
    assert!(entries(&text) >= 1 && entries(&text) <= 5, "{text}");
    let out = berth()
        .args(["logs", "logweb", "-u", "systemd-journald.service"])
        .run();
    let text = out.success().stdout();
    assert!(text.contains("systemd-journald"), "{text}");
    assert!(
        text.lines()
            .filter(|l| !l.starts_with("-- "))
            .all(|l| l.contains("systemd-journald")),
        "{text}"
    );

    // Stopped: exec fails clearly, logs say how to get a persistent journal.
    berth()
        .spec(&spec("stopped", ""))
        .args(["apply", "--yes"])
        .run()
        .success();
    berth()
        .args(["exec", "logweb", "--", "true"])
        .run()
        .code(1)
        .stderr_has("machine logweb: is not running");
    berth()
        .args(["logs", "logweb"])
        .run()
        .code(1)
        .stderr_has("no persistent journal")
        .stderr_has("/var/log/journal");

    // A persistent journal from the next boot on (journald's default,
    // /var/log/journal existing).
    fs::remove_file(dropin.join("volatile.conf")).unwrap();
    berth()
        .spec(&spec("running", ""))
        .args(["apply", "--yes"])
        .run()
        .success();
    let out = berth().args(["logs", "logweb", "-n", "5"]).run();
    let text = out.success().stdout();
    assert!(entries(&text) >= 1 && entries(&text) <= 5, "{text}");
    let out = berth()
        .args(["logs", "logweb", "-u", "systemd-journald.service"])
        .run();
    let text = out.success().stdout();
    assert!(text.contains("systemd-journald"), "{text}");

    // prevent_destroy: destroy, plan --destroy and a replacing plan are
    // refused, naming the field and where it is written.
    let protected = spec("running", "    prevent_destroy: true\n");
    berth()
        .spec(&protected)
        .args(["apply", "--yes"])
        .run()
        .success();
    let record = fs::read_to_string(sandbox.state().join("machines/logweb.json")).unwrap();
    assert!(record.contains("\"prevent_destroy\": true"), "{record}");
    berth()
        .args(["destroy", "--yes", "logweb"])
        .run()
        .code(1)
        .stderr_has("machine logweb: prevent_destroy is set (")
        .stderr_has("machines.yaml:9:")
        .stderr_has("remove it from the spec to destroy or replace this machine");
    berth()
        .args(["plan", "--destroy", "logweb"])
        .run()
        .code(1)
        .stderr_has("prevent_destroy is set");
    berth()
        .spec(&protected.replace("bookworm", "trixie"))
        .args(["plan"])
        .run()
        .code(1)
        .stderr_has("machine logweb: prevent_destroy is set (")
        .stderr_has("machines.yaml:9:");
    // From the records alone (no spec here): refused too.
    fs::rename(&spec_path, &moved).unwrap();
    berth()
        .args(["destroy", "--yes", "logweb"])
        .run()
        .code(1)
        .stderr_has("prevent_destroy is set (recorded at the last apply");
    fs::rename(&moved, &spec_path).unwrap();
    assert!(sandbox.root("logweb").is_dir());
    // Removed from the spec: destroy works.
    berth()
        .spec(&spec("running", ""))
        .args(["destroy", "--yes", "logweb"])
        .run()
        .success();
    assert!(!sandbox.root("logweb").exists());
}
