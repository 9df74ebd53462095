//! `files:` and templates, for real: one Debian bookworm machine booted on
//! this host (the nspawn launcher) gets a file with a mode, owner and
//! group, a rendered template, a binary file, a directory, a link, a
//! secret, and a unit file that `units:` enables in the same apply; the
//! guest itself (`stat`, `systemctl`) says they are as the spec says. Then
//! drift: a hand edit shows in `plan --detailed-exitcode` (2, with the
//! diff), apply restores it, the next plan is empty; `state: absent`
//! removes a file once; a unit file changed on the running machine is
//! reloaded before units change. The secret never shows in plan, apply,
//! `--json` or a saved plan. Without a machine: spec files outside the
//! spec's directory are refused unless `--allow-files-from`, and an
//! undefined template variable names its template and line.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Sandbox, describe, require_root};

/// A secret value that must never appear in berth's output.
const SECRET: &str = "s3cr3t-berth-files-token";

/// The binary `source:` file: every byte value.
fn binary() -> Vec<u8> {
    (0..=255u8).rev().chain(0..=255u8).collect()
}

fn spec(hello_description: &str, extra: &str) -> String {
    format!(
        r#"vars:
  greeting: hello
machines:
  web:
    distro: debian
    release: bookworm
    packages: [systemd, systemd-sysv, dbus]
    launcher: nspawn
    vars:
      domain: example.org
      ports: [80, 443]
    units:
      enable: [hello]
    files:
      /etc/app:
        type: directory
        mode: "0750"
        group: www-data
      /etc/app/app.conf:
        content: |
          listen 8080
          user www-data
        mode: "0640"
        owner: root
        group: www-data
      /etc/app/site.conf:
        template: templates/site.conf.j2
      /usr/local/bin/tool:
        source: tool.bin
        mode: "0755"
      /etc/app/token:
        secret: {{file: token}}
      /etc/app/current:
        link: /etc/app/site.conf
      /etc/systemd/system/hello.service:
        content: |
          [Unit]
          Description={hello_description}
          [Service]
          ExecStart=/bin/sleep infinity
          [Install]
          WantedBy=multi-user.target
{extra}"#
    )
}

/// Runs `argv` in the guest whose init is `leader`, in all its namespaces.
fn in_guest(leader: i64, argv: &[&str]) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--target={leader}"))
        .args(["--mount", "--uts", "--ipc", "--net", "--pid", "--"])
        .args(argv)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .expect("running nsenter");
    assert!(
        out.status.success(),
        "{argv:?} in the guest: {}",
        describe(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

/// `systemctl is-active UNIT` in the guest, waiting for it to settle.
fn active(leader: i64, unit: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new("nsenter")
            .arg(format!("--target={leader}"))
            .args(["--mount", "--pid", "--", "systemctl", "is-active", unit])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .output()
            .expect("running nsenter");
        let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if state == "active" || Instant::now() > deadline {
            return state;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn assert_no_secret(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} shows the secret:\n{text}");
}

/// The plan's exit code under `--detailed-exitcode`, and its stdout.
fn plan(sandbox: &Sandbox, spec: &Path) -> (i32, String) {
    let out = sandbox.berth(&[
        "plan",
        "--detailed-exitcode",
        "-f",
        spec.to_str().expect("a UTF-8 path"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_no_secret("plan", &describe(&out));
    (out.status.code().unwrap_or(-1), text)
}

fn apply(sandbox: &Sandbox, spec: &Path) -> String {
    let out = sandbox.berth(&["apply", "--yes", "-f", spec.to_str().expect("a UTF-8 path")]);
    assert!(out.status.success(), "apply: {}", describe(&out));
    assert_no_secret("apply", &describe(&out));
    describe(&out)
}

#[test]
fn files_templates_links_and_secrets_on_a_booted_debian_machine() {
    if !require_root("files_templates_links_and_secrets_on_a_booted_debian_machine") {
        return;
    }
    let sandbox = Sandbox::new("files");
    let dir = sandbox.dir.path();
    fs::create_dir_all(dir.join("templates")).unwrap();
    fs::write(
        dir.join("templates/site.conf.j2"),
        "# {{ greeting }} from {{ machine.name }} ({{ machine.distro }} {{ machine.release }})\n\
         server_name {{ domain }};\n{% for port in ports %}listen {{ port }};\n{% endfor %}",
    )
    .unwrap();
    fs::write(dir.join("tool.bin"), binary()).unwrap();
    fs::write(dir.join("token"), SECRET).unwrap();
    fs::set_permissions(dir.join("token"), fs::Permissions::from_mode(0o600)).unwrap();
    let path = sandbox.spec(&spec("berth files test", ""));
    let spec_arg = path.to_str().unwrap();

    // The plan: attributes, a diff, a binary's size and hash, a secret's nothing.
    let (rc, shown) = plan(&sandbox, &path);
    assert_eq!(rc, 2, "{shown}");
    for needle in [
        "+ create directory /etc/app (mode 0750, owner root, group www-data)",
        "+ create /etc/app/app.conf (mode 0640, owner root, group www-data)",
        "+listen 8080",
        "+server_name example.org;",
        "+ create /usr/local/bin/tool (binary: size 512, sha256 ",
        "+ create /etc/app/token (sensitive; mode 0600, owner root, group root)",
        "+ link /etc/app/current -> /etc/app/site.conf",
        "+ create /etc/systemd/system/hello.service",
        "+ enable unit hello.service",
    ] {
        assert!(
            shown.contains(needle),
            "{needle:?} not in the plan:\n{shown}"
        );
    }
    let json = sandbox.berth(&["plan", "--json", "-f", spec_arg]);
    assert_no_secret("plan --json", &describe(&json));
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let actions = json["machines"][0]["actions"].as_array().unwrap();
    let token = actions
        .iter()
        .find(|a| a["path"] == "/etc/app/token")
        .unwrap();
    assert_eq!(token["action"], "write-file");
    assert_eq!(token["sensitive"], true);
    assert!(token.get("sha256").is_none(), "{token}");
    let saved = sandbox.berth(&["plan", "--out", "web.plan", "-f", spec_arg]);
    assert!(saved.status.success(), "{}", describe(&saved));
    assert_no_secret(
        "the saved plan",
        &fs::read_to_string(dir.join("web.plan")).unwrap(),
    );

    apply(&sandbox, &path);
    let status = sandbox.berth(&["status", "--json", "-f", spec_arg]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let leader = status[0]["leader"].as_i64().expect("a running guest");

    // As the guest sees them.
    assert_eq!(
        in_guest(leader, &["stat", "-c", "%a %U %G", "/etc/app/app.conf"]),
        "640 root www-data"
    );
    assert_eq!(
        in_guest(leader, &["stat", "-c", "%F %a %U %G", "/etc/app"]),
        "directory 750 root www-data"
    );
    assert_eq!(
        in_guest(leader, &["cat", "/etc/app/site.conf"]),
        "# hello from web (debian bookworm)\nserver_name example.org;\nlisten 80;\nlisten 443;"
    );
    assert_eq!(
        in_guest(
            leader,
            &["stat", "-c", "%a %U %G %s", "/usr/local/bin/tool"]
        ),
        "755 root root 512"
    );
    assert_eq!(
        fs::read(sandbox.root("web").join("usr/local/bin/tool")).unwrap(),
        binary()
    );
    assert_eq!(
        in_guest(leader, &["stat", "-c", "%a %U %G", "/etc/app/token"]),
        "600 root root"
    );
    assert_eq!(in_guest(leader, &["cat", "/etc/app/token"]), SECRET);
    assert_eq!(
        in_guest(leader, &["readlink", "/etc/app/current"]),
        "/etc/app/site.conf"
    );
    assert_eq!(
        in_guest(leader, &["systemctl", "is-enabled", "hello.service"]),
        "enabled"
    );
    assert_eq!(active(leader, "hello.service"), "active");
    let (rc, shown) = plan(&sandbox, &path);
    assert_eq!(rc, 0, "{shown}");

    // A hand edit: the next plan shows it, apply restores it.
    in_guest(
        leader,
        &["sh", "-c", "echo 'edited by hand' >> /etc/app/app.conf"],
    );
    in_guest(leader, &["chmod", "644", "/usr/local/bin/tool"]);
    let (rc, shown) = plan(&sandbox, &path);
    assert_eq!(rc, 2, "{shown}");
    assert!(shown.contains("~ update /etc/app/app.conf"), "{shown}");
    assert!(shown.contains("-edited by hand"), "{shown}");
    assert!(
        shown.contains("~ set mode 0644 -> 0755 on /usr/local/bin/tool"),
        "{shown}"
    );
    apply(&sandbox, &path);
    assert_eq!(
        in_guest(leader, &["cat", "/etc/app/app.conf"]),
        "listen 8080\nuser www-data"
    );
    assert_eq!(
        in_guest(leader, &["stat", "-c", "%a %U %G", "/etc/app/app.conf"]),
        "640 root www-data"
    );
    assert_eq!(plan(&sandbox, &path).0, 0);

    // A changed secret: updated, still never shown.
    fs::write(dir.join("token"), format!("{SECRET}-2")).unwrap();
    let (rc, shown) = plan(&sandbox, &path);
    assert_eq!(rc, 2, "{shown}");
    assert!(
        shown.contains("~ update /etc/app/token (sensitive)"),
        "{shown}"
    );
    apply(&sandbox, &path);
    assert_eq!(
        in_guest(leader, &["cat", "/etc/app/token"]),
        format!("{SECRET}-2")
    );

    // state: absent removes once; a second apply changes nothing.
    assert_eq!(in_guest(leader, &["test", "-e", "/etc/motd"]), "");
    let path = sandbox.spec(&spec(
        "berth files test",
        "      /etc/motd:\n        state: absent\n",
    ));
    let (rc, shown) = plan(&sandbox, &path);
    assert_eq!(rc, 2, "{shown}");
    assert!(shown.contains("- remove file /etc/motd"), "{shown}");
    apply(&sandbox, &path);
    let gone = Command::new("nsenter")
        .arg(format!("--target={leader}"))
        .args(["--mount", "--", "test", "-e", "/etc/motd"])
        .status()
        .unwrap();
    assert!(!gone.success(), "/etc/motd is still there");
    let again = apply(&sandbox, &path);
    assert!(again.contains("No changes"), "{again}");
    assert_eq!(plan(&sandbox, &path).0, 0);

    // A unit file changed on the running machine: systemd reloads it.
    let path = sandbox.spec(&spec(
        "berth files test, changed",
        "      /etc/motd:\n        state: absent\n",
    ));
    apply(&sandbox, &path);
    assert_eq!(
        in_guest(
            leader,
            &[
                "systemctl",
                "show",
                "--property=Description",
                "hello.service"
            ]
        ),
        "Description=berth files test, changed"
    );
    assert_eq!(plan(&sandbox, &path).0, 0);

    let out = sandbox.berth(&["destroy", "--yes", "web"]);
    assert!(out.status.success(), "{}", describe(&out));
}

/// A spec that reads files from outside its directory (no git work tree
/// here): `..`, an absolute path, a symlink out. `validate` and `plan`
/// refuse each, naming the field and where it is declared; with
/// `--allow-files-from` the directory is allowed.
#[test]
fn spec_files_outside_the_spec_directory_are_refused() {
    let sandbox = Sandbox::new("files-confined");
    let top = sandbox.dir.path();
    let spec_dir = top.join("spec");
    let outside = top.join("outside");
    fs::create_dir_all(&spec_dir).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("key"), "outside\n").unwrap();
    symlink(outside.join("key"), spec_dir.join("link")).unwrap();
    let absolute = outside.join("key").display().to_string();
    for (field, value) in [
        ("source", "../outside/key".to_owned()),
        ("source", absolute.clone()),
        ("template", "link".to_owned()),
        ("secret", format!("{{file: {absolute}}}")),
    ] {
        let spec = spec_dir.join("machines.yaml");
        fs::write(
            &spec,
            format!(
                "machines:\n  web:\n    distro: debian\n    release: bookworm\n    launcher: nspawn\n    \
                 files:\n      /etc/key:\n        {field}: {value}\n"
            ),
        )
        .unwrap();
        let spec_arg = spec.to_str().unwrap();
        for command in ["validate", "plan"] {
            let out = sandbox.berth(&[command, "-f", spec_arg]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{command} {value}: {}",
                describe(&out)
            );
            assert!(
                stderr.contains("machines.yaml:7:7: files /etc/key: ")
                    && stderr.contains("outside the spec's directory")
                    && stderr.contains("--allow-files-from"),
                "{command} {field}: {value}: {stderr}"
            );
        }
        let out = sandbox.berth(&[
            "validate",
            "--allow-files-from",
            outside.to_str().unwrap(),
            "-f",
            spec_arg,
        ]);
        assert!(out.status.success(), "{value}: {}", describe(&out));
    }
    // root_password: {file:} too.
    let spec = spec_dir.join("machines.yaml");
    fs::write(
        &spec,
        format!(
            "machines:\n  web:\n    distro: debian\n    release: bookworm\n    launcher: nspawn\n    \
             root_password: {{file: {absolute}}}\n"
        ),
    )
    .unwrap();
    let out = sandbox.berth(&["validate", "-f", spec.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("root_password: file: "),
        "{}",
        describe(&out)
    );
    assert!(
        sandbox.written_files().is_empty(),
        "{:?}",
        sandbox.written_files()
    );
}

/// An undefined template variable is a plan error naming the template and
/// its line; a missing source file names the field and its location.
#[test]
fn template_and_source_errors_name_the_file_and_line() {
    let sandbox = Sandbox::new("files-errors");
    let dir = sandbox.dir.path();
    fs::create_dir_all(dir.join("templates")).unwrap();
    fs::write(
        dir.join("templates/site.conf.j2"),
        "# {{ machine.name }}\nserver {\n  server_name {{ domian }};\n}\n",
    )
    .unwrap();
    let spec = "machines:\n  web:\n    distro: debian\n    release: bookworm\n    launcher: nspawn\n    \
                vars: {domain: example.org}\n    files:\n      /etc/site.conf:\n        \
                template: templates/site.conf.j2\n      /etc/other:\n        source: missing.txt\n";
    sandbox.spec(spec);
    for command in ["validate", "plan"] {
        let out = sandbox.berth(&[command]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert!(
            stderr.contains("templates/site.conf.j2:3: undefined value 'domian'"),
            "{command}: {stderr}"
        );
        assert!(
            stderr.contains("machines.yaml:8:7: files /etc/site.conf: template: "),
            "{command}: {stderr}"
        );
    }
    let out = sandbox.berth(&["validate"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("machines.yaml:10:7: files /etc/other: source: missing.txt does not exist"),
        "{}",
        describe(&out)
    );
    assert!(
        sandbox.written_files().is_empty(),
        "{:?}",
        sandbox.written_files()
    );
}
