//! What berth manages inside the root: template `vars` (top level,
//! `defaults:`, per machine), `files`, `users`, root's
//! `ssh_authorized_keys` and `credentials`. Their valid forms, every error
//! (with its field path, line and column), secrets never shown, their
//! defaults merging, and what the JSON Schema accepts and refuses of them.

mod common;

use common::{errors, load, one_error, only, web};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_schema::{
    Credential, Diagnostic, FileContent, Machine, ManagedFile, RootPassword, SecretSource, Source,
    User, load_str,
};
use serde_json::json;

/// `files:` under `web` with one entry per line from line 6 (keys at column 7).
fn files(lines: &[&str]) -> String {
    let body: String = lines.iter().map(|l| format!("      {l}\n")).collect();
    web(&format!("    files:\n{body}"))
}

/// `users:` under `web` with one entry per line from line 6 (names at column 7).
fn users(lines: &[&str]) -> String {
    let body: String = lines.iter().map(|l| format!("      {l}\n")).collect();
    web(&format!("    users:\n{body}"))
}

/// Asserts `d` is at `field` (under `machines.web.`), `line:column`, with
/// `part` in its message.
fn assert_at(d: &Diagnostic, field: &str, line: usize, column: usize, part: &str) {
    assert_eq!(
        d.field.as_deref(),
        Some(&*format!("machines.web.{field}")),
        "{d}"
    );
    assert_eq!((d.line, d.column), (Some(line), Some(column)), "{d}");
    assert!(d.message.contains(part), "expected {part:?} in:\n{d}");
    assert!(
        d.to_string().starts_with(&format!(
            "spec.yaml:{line}:{column}: machines.web.{field}: "
        )),
        "{d}"
    );
}

/// The file managed at `path` in `m`.
fn file<'a>(m: &'a Machine, path: &str) -> &'a ManagedFile {
    m.files
        .iter()
        .find(|f| f.path == Path::new(path))
        .unwrap_or_else(|| panic!("{path} not in {:?}", m.files))
}

const SPEC_FILE: &str = "/etc/berth/spec.yaml";

fn at(line: usize, column: usize) -> Source {
    Source {
        file: PathBuf::from(SPEC_FILE),
        line: Some(line),
        column: Some(column),
    }
}

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGsPnWq alice@laptop";

// ---------------------------------------------------------------- all of it

const FULL: &str = r#"vars: {domain: example.org, port: 80}
defaults:
  vars: {port: 8080, tls: true}
machines:
  web:
    distro: debian
    release: bookworm
    vars:
      tls: false
      upstreams: [a, b]
      limits: {conns: 100, ratio: 0.5, name: ~}
    files:
      /etc/nginx/conf.d/site.conf:
        template: ./templates/site.conf.j2
        mode: "0640"
        owner: root
        group: www-data
      /etc/motd: {content: "managed by berth\n"}
      /usr/local/bin/tool: {source: ./bin/tool, mode: "0755"}
      /srv/www: {type: directory, mode: "755", owner: www-data}
      /etc/localtime: {link: /usr/share/zoneinfo/Europe/Berlin}
      /etc/old.conf: {state: absent}
      /etc/app/token: {secret: {env: APP_TOKEN}, mode: "0600"}
      /etc/app/key: {secret: {file: /srv/keys/app.key}, owner: 33, group: 0}
      /etc/x: {content: "...", replace: true, state: present}
      /var/lib/gone: {state: absent, replace: true}
    users:
      alice:
        groups: [sudo, www-data]
        shell: /bin/bash
        home: /home/alice
        ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGsPnWq alice@laptop"]
        password: {hash: '$6$salt$hash'}
      svc: {system: true, home: /var/lib/svc}
      bob: {state: absent, remove_home: false}
      carol:
      dave: {password: {file: secrets/dave}, ssh_authorized_keys: []}
    ssh_authorized_keys:
      - "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGsPnWq alice@laptop"
      - 'from="10.0.0.0/8" ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== ops'
      - "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGsPnWq alice@laptop"
    credentials:
      db-password: {env: DB_PW}
      tls.key: {file: ./secrets/db}
"#;

#[test]
fn every_field_loads() {
    let m = only(FULL);
    let vars: BTreeMap<String, serde_json::Value> = [
        ("domain", json!("example.org")),
        ("port", json!(8080)),
        ("tls", json!(false)),
        ("upstreams", json!(["a", "b"])),
        ("limits", json!({"conns": 100, "ratio": 0.5, "name": null})),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(m.vars, vars);

    assert_eq!(
        m.files[0],
        ManagedFile {
            path: "/etc/nginx/conf.d/site.conf".into(),
            content: FileContent::Template("/etc/berth/templates/site.conf.j2".into()),
            mode: Some(0o640),
            owner: Some("root".into()),
            group: Some("www-data".into()),
            replace: false,
            source: at(13, 7),
        }
    );
    let paths: Vec<&Path> = m.files.iter().map(|f| f.path.as_path()).collect();
    assert_eq!(
        paths,
        [
            "/etc/nginx/conf.d/site.conf",
            "/etc/motd",
            "/usr/local/bin/tool",
            "/srv/www",
            "/etc/localtime",
            "/etc/old.conf",
            "/etc/app/token",
            "/etc/app/key",
            "/etc/x",
            "/var/lib/gone",
        ]
        .map(Path::new)
    );
    let motd = file(&m, "/etc/motd");
    assert_eq!(
        motd.content,
        FileContent::Content("managed by berth\n".into())
    );
    assert_eq!((motd.mode, &motd.owner, &motd.group), (None, &None, &None));
    let tool = file(&m, "/usr/local/bin/tool");
    assert_eq!(
        tool.content,
        FileContent::Source("/etc/berth/bin/tool".into())
    );
    assert_eq!(tool.mode, Some(0o755));
    let www = file(&m, "/srv/www");
    assert_eq!(www.content, FileContent::Directory);
    assert_eq!(
        (www.mode, www.owner.as_deref()),
        (Some(0o755), Some("www-data"))
    );
    assert_eq!(
        file(&m, "/etc/localtime").content,
        FileContent::Link("/usr/share/zoneinfo/Europe/Berlin".into())
    );
    assert_eq!(file(&m, "/etc/old.conf").content, FileContent::Absent);
    let token = file(&m, "/etc/app/token");
    assert_eq!(
        token.content,
        FileContent::Secret(SecretSource::Env("APP_TOKEN".into()))
    );
    assert!(token.content.is_secret());
    let key = file(&m, "/etc/app/key");
    assert_eq!(
        key.content,
        FileContent::Secret(SecretSource::File("/srv/keys/app.key".into()))
    );
    assert_eq!(
        (key.owner.as_deref(), key.group.as_deref()),
        (Some("33"), Some("0"))
    );
    assert!(file(&m, "/etc/x").replace);
    let gone = file(&m, "/var/lib/gone");
    assert!(gone.replace && gone.content == FileContent::Absent);

    assert_eq!(
        m.users[0],
        User {
            name: "alice".into(),
            present: true,
            system: false,
            groups: vec!["sudo".into(), "www-data".into()],
            shell: Some("/bin/bash".into()),
            home: Some("/home/alice".into()),
            ssh_authorized_keys: Some(vec![KEY.into()]),
            password: Some(RootPassword::Hash("$6$salt$hash".into())),
            remove_home: false,
            source: at(28, 7),
        }
    );
    let names: Vec<&str> = m.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "svc", "bob", "carol", "dave"]);
    let svc = &m.users[1];
    assert!(svc.present && svc.system);
    assert_eq!(svc.home.as_deref(), Some(Path::new("/var/lib/svc")));
    assert_eq!((svc.shell.as_deref(), svc.password.as_ref()), (None, None));
    let bob = &m.users[2];
    assert!(!bob.present && !bob.remove_home);
    // A user with nothing under it is present with the guest's defaults.
    let carol = &m.users[3];
    assert!(carol.present && !carol.system && carol.groups.is_empty());
    assert_eq!(carol.ssh_authorized_keys, None);
    let dave = &m.users[4];
    assert_eq!(
        dave.password,
        Some(RootPassword::File("/etc/berth/secrets/dave".into()))
    );
    // An empty list of keys manages the file: it is emptied.
    assert_eq!(dave.ssh_authorized_keys, Some(Vec::new()));

    // root's keys, a line listed twice kept once.
    assert_eq!(
        m.ssh_authorized_keys,
        Some(vec![
            KEY.to_owned(),
            "from=\"10.0.0.0/8\" ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== ops".to_owned(),
        ])
    );
    assert_eq!(
        m.credentials,
        [
            Credential {
                name: "db-password".into(),
                source: SecretSource::Env("DB_PW".into()),
            },
            Credential {
                name: "tls.key".into(),
                source: SecretSource::File("/etc/berth/secrets/db".into()),
            },
        ]
    );
}

#[test]
fn absent_fields_manage_nothing() {
    let m = only(&web(""));
    assert!(m.vars.is_empty() && m.files.is_empty() && m.users.is_empty());
    assert_eq!(m.ssh_authorized_keys, None);
    assert!(m.credentials.is_empty());
    // Written as null or empty: nothing either, but `[]` keys empty the file.
    let m = only(&web(
        "    vars:\n    files: {}\n    users:\n    credentials: {}\n    ssh_authorized_keys: []\n",
    ));
    assert!(m.vars.is_empty() && m.files.is_empty() && m.users.is_empty());
    assert_eq!(m.ssh_authorized_keys, Some(Vec::new()));
    let m = only(&web("    ssh_authorized_keys:\n"));
    assert_eq!(m.ssh_authorized_keys, None);
}

// ---------------------------------------------------------------- vars

#[test]
fn vars_merge_key_by_key_machine_then_defaults_then_top_level() {
    let text = "vars: {a: top, b: top, c: top}
defaults:
  vars: {b: defaults, c: defaults}
machines:
  one:
    distro: arch
    vars: {c: one, d: [1, {x: z}]}
  two: {distro: arch}
";
    let spec = load(text);
    let one = &spec.machines["one"].vars;
    assert_eq!(one["a"], json!("top"));
    assert_eq!(one["b"], json!("defaults"));
    assert_eq!(one["c"], json!("one"));
    assert_eq!(one["d"], json!([1, {"x": "z"}]));
    let two = &spec.machines["two"].vars;
    assert_eq!(
        two.iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect::<Vec<_>>(),
        [
            ("a", json!("top")),
            ("b", json!("defaults")),
            ("c", json!("defaults"))
        ]
    );
    // Top-level vars alone, no defaults.
    let spec = load("vars: {domain: example.org}\nmachines:\n  a: {distro: arch}\n");
    assert_eq!(spec.machines["a"].vars["domain"], json!("example.org"));
    // Values are YAML's: numbers, booleans, null, nested lists and maps.
    let m = only(&web(
        "    vars: {n: 40, f: 1.5, neg: -3, t: true, nothing: ~, s: '40', big: 99999999999999999999}\n",
    ));
    assert_eq!(m.vars["n"], json!(40));
    assert_eq!(m.vars["f"], json!(1.5));
    assert_eq!(m.vars["neg"], json!(-3));
    assert_eq!(m.vars["t"], json!(true));
    assert_eq!(m.vars["nothing"], json!(null));
    assert_eq!(m.vars["s"], json!("40"));
    assert!(m.vars["big"].is_f64());
    // As everywhere in a spec, unquoted yes/no/on/off/y/n are booleans
    // (YAML 1.1); quoted, they stay text.
    let m = only(&web("    vars: {a: no, b: 'no', c: y, d: \"on\"}\n"));
    assert_eq!(
        [&m.vars["a"], &m.vars["b"], &m.vars["c"], &m.vars["d"]],
        [&json!(false), &json!("no"), &json!(true), &json!("on")]
    );
}

#[test]
fn var_names_are_template_names() {
    for (name, part) in [
        ("my-var", "must match `[A-Za-z_][A-Za-z0-9_]*`"),
        ("1st", "must match"),
        ("'a.b'", "must match"),
        ("vars", "is reserved: templates see all variables as `vars`"),
        ("machine", "the machine's facts as `machine`"),
    ] {
        let d = one_error(&web(&format!("    vars:\n      {name}: x\n")));
        assert_at(&d, &format!("vars.{}", name.trim_matches('\'')), 6, 7, part);
    }
    // At the top and under defaults: reported there, once.
    let d = one_error("vars: {a-b: 1}\nmachines:\n  a: {distro: arch}\n  b: {distro: arch}\n");
    assert_eq!(d.field.as_deref(), Some("vars.a-b"));
    assert_eq!((d.line, d.column), (Some(1), Some(8)));
    let d = one_error(
        "defaults:\n  vars: {machine: 1}\nmachines:\n  a: {distro: arch}\n  b: {distro: arch}\n",
    );
    assert_eq!(d.field.as_deref(), Some("defaults.vars.machine"));
    let d = one_error("defaults:\n  vars: {a: [{[x]: y}]}\nmachines: {}\n");
    assert!(d.message.contains("their keys must be strings"), "{d}");
    // A machine named `vars` is no variable.
    let d = one_error("machines:\n  vars: {distro: arch, packages: [[a]]}\n");
    assert!(d.message.ends_with("`packages[0]` must be a string"), "{d}");
    // Not a mapping.
    let d = one_error(&web("    vars: [a]\n"));
    assert_eq!(d.field.as_deref(), Some("machines.web.vars"), "{d}");
    let d = one_error("vars: 5\nmachines: {}\n");
    assert_eq!(d.field.as_deref(), Some("vars"), "{d}");
    // A key YAML cannot make a string of, deep inside a value.
    let d = one_error(&web("    vars:\n      a: {[x]: y}\n"));
    assert!(
        d.message
            .ends_with("a variable's value may hold mappings, but their keys must be strings"),
        "{d}"
    );
    assert!(
        d.field
            .as_deref()
            .is_some_and(|f| f.starts_with("machines.web.vars.a")),
        "{d}"
    );
}

// ---------------------------------------------------------------- files

#[test]
fn file_paths_are_absolute_normalised_and_part_of_the_root() {
    let cases = [
        ("etc/motd", "must be absolute"),
        ("./etc/motd", "must be absolute"),
        ("/", "is the machine's root itself"),
        (
            "/etc//motd",
            "is not normalised (`//`, `/./` or a trailing `/`): write `/etc/motd`",
        ),
        ("/etc/motd/", "write `/etc/motd`"),
        ("/etc/./motd", "write `/etc/motd`"),
        ("/etc/../shadow", "`..` component"),
        (
            "/proc/sys/kernel/x",
            "is under `/proc`, which is not part of the root",
        ),
        ("/sys/x", "is under `/sys`"),
        ("/dev/null", "is under `/dev`"),
        ("/run/app.pid", "is under `/run`"),
        ("/tmp", "is under `/tmp`"),
        ("/tmp/x", "/etc/tmpfiles.d/"),
    ];
    for (path, part) in cases {
        let d = one_error(&files(&[&format!("'{path}': {{content: x}}")]));
        assert_at(&d, &format!("files.{path}"), 6, 7, part);
    }
    let d = one_error(&files(&["\"/etc/a\\nb\": {content: x}"]));
    assert_at(&d, "files./etc/a\\nb", 6, 7, "control character");
    let d = one_error(&files(&["/run/x: {content: x}"]));
    assert_eq!(
        d.to_string().lines().next(),
        Some(
            "spec.yaml:6:7: machines.web.files./run/x: file path `/run/x` is under `/run`, which is not part of the root: a fresh tmpfs is mounted over it when the machine boots, hiding whatever berth would write there (for files made at boot, manage a systemd-tmpfiles line in /etc/tmpfiles.d/ instead)"
        )
    );
    // Near misses that are fine.
    for path in ["/runner", "/var/tmp/x", "/devices", "/etc/a b", "/.x"] {
        let m = only(&files(&[&format!("'{path}': {{content: x}}")]));
        assert_eq!(m.files[0].path, Path::new(path));
    }
}

#[test]
fn a_path_holds_exactly_one_thing() {
    let kinds = "content:, source:, template:, secret:, type: directory, link: or state: absent";
    for entry in [
        "{}",
        "",
        "{mode: '0644'}",
        "{state: present}",
        "{owner: root}",
    ] {
        let d = one_error(&files(&[&format!("/etc/motd: {entry}")]));
        assert_at(
            &d,
            "files./etc/motd",
            6,
            7,
            &format!("`/etc/motd` needs one of {kinds}"),
        );
    }
    // Two given: named both, at the second.
    let d = one_error(&files(&["/etc/motd: {content: x, source: ./y}"]));
    assert_at(
        &d,
        "files./etc/motd.source",
        6,
        39,
        "content: and source: cannot be given together: a path holds one thing",
    );
    let d = one_error(&files(&[
        "/etc/motd: {link: /x, type: directory, template: t}",
    ]));
    assert_at(
        &d,
        "files./etc/motd.type",
        6,
        35,
        "template:, type: and link: cannot be given together",
    );
    let d = one_error(&files(&["/etc/motd: {content: x, state: absent}"]));
    assert_at(
        &d,
        "files./etc/motd.state",
        6,
        38,
        "content: and state: absent cannot be given together",
    );
    // With absent, only replace.
    for (key, value, column) in [
        ("mode", "'0644'", 40),
        ("owner", "root", 41),
        ("group", "adm", 41),
    ] {
        let d = one_error(&files(&[&format!(
            "/etc/motd: {{state: absent, {key}: {value}}}"
        )]));
        assert_at(
            &d,
            &format!("files./etc/motd.{key}"),
            6,
            column,
            &format!(
                "with state: absent only replace: may be given: a path that is removed has no {key}"
            ),
        );
    }
    let d = one_error(&files(&["/etc/motd: {state: gone}"]));
    assert_at(
        &d,
        "files./etc/motd.state",
        6,
        26,
        "unknown state `gone`: expected `present` or `absent`",
    );
    let d = one_error(&files(&["/etc/motd: {type: file}"]));
    assert_at(
        &d,
        "files./etc/motd.type",
        6,
        25,
        "unknown type `file`: expected `directory` (a file is given by content:",
    );
    let d = one_error(&files(&["/srv: {type: Directory}"]));
    assert!(d.message.contains("did you mean `directory`?"), "{d}");
}

#[test]
fn modes_are_quoted_octal_strings() {
    for (mode, value) in [
        ("'0640'", 0o640),
        ("\"755\"", 0o755),
        ("'1777'", 0o1777),
        ("'000'", 0),
    ] {
        let m = only(&files(&[&format!(
            "/srv/x: {{type: directory, mode: {mode}}}"
        )]));
        assert_eq!(m.files[0].mode, Some(value), "{mode}");
    }
    // Unquoted, YAML reads a number: refused with the hint to quote it.
    for (mode, shown) in [
        ("0640", "640"),
        ("640", "640"),
        ("0o640", "416"),
        ("1e3", "1000"),
    ] {
        let d = one_error(&files(&[&format!(
            "/etc/motd: {{content: x, mode: {mode}}}"
        )]));
        assert_at(
            &d,
            "files./etc/motd.mode",
            6,
            37,
            &format!(
                "mode must be quoted, as in `mode: \"0640\"`: unquoted, YAML reads it as the number {shown}, not as octal digits"
            ),
        );
    }
    for (mode, part) in [
        ("'0648'", "mode `0648` must be 3 or 4 octal digits"),
        ("'64'", "3 or 4 octal digits"),
        ("'06400'", "3 or 4 octal digits"),
        ("'rw-r--r--'", "3 or 4 octal digits"),
        ("true", "not the boolean true"),
        ("[1]", "not a list"),
    ] {
        let d = one_error(&files(&[&format!(
            "/etc/motd: {{content: x, mode: {mode}}}"
        )]));
        assert_at(&d, "files./etc/motd.mode", 6, 37, part);
    }
    let d = one_error(&files(&["/etc/localtime: {link: /x, mode: '0777'}"]));
    assert_at(
        &d,
        "files./etc/localtime.mode",
        6,
        40,
        "a link has no mode of its own",
    );
}

#[test]
fn owners_targets_sources_and_content_are_checked() {
    let cases = [
        ("owner: Root", "owner", 38, "owner name `Root` contains `R`"),
        (
            "group: 9x",
            "group",
            38,
            "group name `9x` must start with a lowercase letter",
        ),
        ("owner: 4294967295", "owner", 38, "not a valid numeric id"),
        ("owner: 'a b'", "owner", 38, "whitespace"),
        ("owner: ''", "owner", 38, "owner name is empty"),
    ];
    for (extra, key, column, part) in cases {
        let d = one_error(&files(&[&format!("/etc/motd: {{content: x, {extra}}}")]));
        assert_at(&d, &format!("files./etc/motd.{key}"), 6, column, part);
    }
    let d = one_error(&files(&["/etc/l: {link: ''}"]));
    assert_at(&d, "files./etc/l.link", 6, 22, "link target is empty");
    let d = one_error(&files(&["/etc/l: {link: \"a\\u001bb\"}"]));
    assert_at(&d, "files./etc/l.link", 6, 22, "control character");
    for key in ["source", "template"] {
        let d = one_error(&files(&[&format!("/etc/f: {{{key}: ''}}")]));
        assert_at(
            &d,
            &format!("files./etc/f.{key}"),
            6,
            18 + key.len(),
            &format!("{key} is empty"),
        );
        let d = one_error(&files(&[&format!("/etc/f: {{{key}: \"a\\nb\"}}")]));
        assert!(d.message.contains("control character"), "{d}");
    }
    let d = one_error(&files(&["/etc/f: {content: \"s3cr3t\\0\"}"]));
    assert_at(
        &d,
        "files./etc/f.content",
        6,
        25,
        "content contains a NUL character",
    );
    assert!(!d.to_string().contains("s3cr3t\0"), "{d}");
    // Content is any other text, empty included; numbers are taken as text.
    let m = only(&files(&["/etc/a: {content: ''}", "/etc/b: {content: 42}"]));
    assert_eq!(m.files[0].content, FileContent::Content(String::new()));
    assert_eq!(m.files[1].content, FileContent::Content("42".into()));
    // Relative and absolute paths are resolved, never checked on disk.
    let m = only(&files(&[
        "/etc/a: {source: ../x/./y}",
        "/etc/b: {template: /abs/t.j2}",
    ]));
    assert_eq!(
        m.files[0].content,
        FileContent::Source("/etc/berth/../x/y".into())
    );
    assert_eq!(
        m.files[1].content,
        FileContent::Template("/abs/t.j2".into())
    );
}

#[test]
fn a_path_inside_a_file_link_or_removed_path_is_refused() {
    for (outer, what) in [
        ("{content: x}", "a file"),
        ("{link: /elsewhere}", "a link"),
        ("{state: absent}", "a path to remove (state: absent)"),
        ("{secret: {env: X}}", "a file"),
    ] {
        let d = one_error(&files(&[
            &format!("/etc/app: {outer}"),
            "/etc/app/conf/x.conf: {content: y}",
        ]));
        assert_at(
            &d,
            "files./etc/app/conf/x.conf",
            7,
            7,
            &format!(
                "`/etc/app/conf/x.conf` is inside `/etc/app`, which files: manages as {what}: only a directory (type: directory) can hold other paths"
            ),
        );
    }
    // Inside a directory, in any order: fine.
    let m = only(&files(&[
        "/etc/app/conf/x.conf: {content: y}",
        "/etc/app: {type: directory}",
        "/etc/application: {content: z}",
    ]));
    assert_eq!(m.files.len(), 3);
}

#[test]
fn file_secrets_come_from_env_or_file_and_are_never_shown() {
    let m = only(&files(&["/etc/t: {secret: {file: ./t}}"]));
    assert_eq!(
        m.files[0].content,
        FileContent::Secret(SecretSource::File("/etc/berth/t".into()))
    );
    let cases = [
        (
            "s3cr3t",
            "files./etc/t.secret",
            "plaintext secrets are not allowed in a spec: use env: or file:",
        ),
        (
            "{value: s3cr3t}",
            "files./etc/t.secret.value",
            "plaintext secrets are not allowed",
        ),
        (
            "[s3cr3t]",
            "files./etc/t.secret",
            "secret must be a mapping with exactly one of env: or file:",
        ),
        (
            "{}",
            "files./etc/t.secret",
            "secret needs exactly one of env: or file:",
        ),
        (
            "{env: A, file: b}",
            "files./etc/t.secret",
            "secret has several sources (env, file): use exactly one",
        ),
        (
            "{hash: '$6$s$h'}",
            "files./etc/t.secret.hash",
            "unknown field `hash` in secret: expected exactly one of `env` or `file`",
        ),
        (
            "{envv: A}",
            "files./etc/t.secret.envv",
            "(did you mean `env`?)",
        ),
        (
            "{env: s3cr3t-x}",
            "files./etc/t.secret.env",
            "secret.env must be an environment variable name",
        ),
        (
            "{env: [a]}",
            "files./etc/t.secret.env",
            "secret.env must be a string",
        ),
        (
            "{file: ''}",
            "files./etc/t.secret.file",
            "secret.file is empty",
        ),
    ];
    for (secret, field, part) in cases {
        let text = files(&[&format!("/etc/t: {{secret: {secret}}}")]);
        let err = errors(&text);
        assert_eq!(err.diagnostics.len(), 1, "{err}");
        let d = &err.diagnostics[0];
        assert_eq!(
            d.field.as_deref(),
            Some(&*format!("machines.web.{field}")),
            "{d}"
        );
        assert!(d.message.contains(part), "expected {part:?} in:\n{d}");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }
}

#[test]
fn unknown_keys_and_wrong_shapes_in_files_name_the_path() {
    let d = one_error(&files(&["/etc/motd: {content: x, mod: '0644'}"]));
    assert_at(
        &d,
        "files./etc/motd.mod",
        6,
        31,
        "unknown field `mod`: expected one of `content`, `source`, `template`, `secret`, `type`, `link`, `state`, `mode`, `owner`, `group` or `replace` (did you mean `mode`?)",
    );
    let d = one_error(&files(&["/etc/motd: {contents: x}"]));
    assert!(d.message.contains("(did you mean `content`?)"), "{d}");
    for (text, field) in [
        (web("    files: [/etc/motd]\n"), "machines.web.files"),
        (files(&["/etc/motd: hello"]), "machines.web.files./etc/motd"),
        (
            files(&["/etc/motd: {content: [a]}"]),
            "machines.web.files./etc/motd.content",
        ),
        (
            files(&["/etc/motd: {content: x, replace: 'yes'}"]),
            "machines.web.files./etc/motd.replace",
        ),
    ] {
        let d = one_error(&text);
        assert_eq!(d.field.as_deref(), Some(field), "{d}");
    }
}

// ---------------------------------------------------------------- users

#[test]
fn user_names_are_login_names_and_not_root() {
    let d = one_error(&users(&["root: {shell: /bin/zsh}"]));
    assert_at(
        &d,
        "users.root",
        6,
        7,
        "root is not managed under users: its password is the machine's root_password and its SSH keys the machine's ssh_authorized_keys",
    );
    for (name, part) in [
        ("Alice", "user name `Alice` contains `A`"),
        ("1x", "must start with a lowercase letter or `_`"),
        ("a.b", "contains `.`"),
        ("'a$b'", "may only end with `$`"),
        ("'-x'", "could be read as an option"),
        ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "at most 32"),
    ] {
        let d = one_error(&users(&[&format!("{name}: {{}}")]));
        assert_at(
            &d,
            &format!("users.{}", name.trim_matches('\'')),
            6,
            7,
            part,
        );
    }
    let m = only(&users(&["'host$': {system: true}", "_apt: ~"]));
    assert_eq!(m.users[0].name, "host$");
}

#[test]
fn user_settings_are_checked() {
    let cases = [
        ("shell: bash", "shell", 22, "must be an absolute path"),
        ("shell: '/bin/a:b'", "shell", 22, "contains `:`"),
        ("home: home/a", "home", 21, "must be absolute"),
        ("home: /home//a", "home", 21, "write `/home/a`"),
        ("home: /home/a/", "home", 21, "is not normalised"),
        ("home: /home/../a", "home", 21, "`..` component"),
        ("home: '/home/a:b'", "home", 21, "contains `:`"),
        (
            "groups: [Sudo]",
            "groups[0]",
            24,
            "group name `Sudo` contains `S`",
        ),
        (
            "groups: [sudo, adm, sudo]",
            "groups[2]",
            35,
            "group `sudo` is already listed as groups[0]",
        ),
        ("system: 'yes'", "system", 23, "`system` must be a boolean"),
        (
            "state: gone",
            "state",
            22,
            "unknown state `gone`: expected `present` or `absent`",
        ),
        (
            "ssh_authorized_keys: [AAAA]",
            "ssh_authorized_keys[0]",
            37,
            "has no key type",
        ),
    ];
    for (extra, field, column, part) in cases {
        let d = one_error(&users(&[&format!("alice: {{{extra}}}")]));
        assert_at(&d, &format!("users.alice.{field}"), 6, column, part);
    }
    // Home may be `/`, as for many system users.
    let m = only(&users(&["svc: {system: true, home: /}"]));
    assert_eq!(m.users[0].home.as_deref(), Some(Path::new("/")));
}

#[test]
fn an_absent_user_takes_only_remove_home() {
    for (extra, field, column) in [
        ("system: true", "system", 36),
        ("groups: [a]", "groups", 36),
        ("shell: /bin/sh", "shell", 35),
        ("home: /h", "home", 34),
        ("ssh_authorized_keys: []", "ssh_authorized_keys", 49),
        ("password: {env: X}", "password", 38),
    ] {
        let d = one_error(&users(&[&format!("bob: {{state: absent, {extra}}}")]));
        assert_at(
            &d,
            &format!("users.bob.{field}"),
            6,
            column,
            &format!(
                "with state: absent only remove_home: may be given: {field} is for a user that is present"
            ),
        );
    }
    for state in ["", "state: present, "] {
        let d = one_error(&users(&[&format!("bob: {{{state}remove_home: true}}")]));
        assert!(
            d.message
                .starts_with("remove_home is only for state: absent"),
            "{d}"
        );
        assert_eq!(
            d.field.as_deref(),
            Some("machines.web.users.bob.remove_home")
        );
    }
    let m = only(&users(&["bob: {state: absent, remove_home: true}"]));
    assert!(!m.users[0].present && m.users[0].remove_home);
}

#[test]
fn user_passwords_are_checked_as_root_passwords_and_never_shown() {
    let cases = [
        (
            "s3cr3t",
            "users.alice.password",
            "plaintext passwords are not allowed in a spec: use hash:, env: or file:",
        ),
        (
            "{password: s3cr3t}",
            "users.alice.password.password",
            "plaintext passwords are not allowed",
        ),
        (
            "{hash: s3cr3t}",
            "users.alice.password.hash",
            "password.hash is not a crypt(3) hash",
        ),
        (
            "{hash: '$6$s$h', env: X}",
            "users.alice.password",
            "password has several sources (hash, env)",
        ),
        (
            "{env: 'x y'}",
            "users.alice.password.env",
            "password.env must be an environment variable name",
        ),
        (
            "{}",
            "users.alice.password",
            "password needs exactly one of hash:, env: or file:",
        ),
    ];
    for (password, field, part) in cases {
        let err = errors(&users(&[&format!("alice: {{password: {password}}}")]));
        assert_eq!(err.diagnostics.len(), 1, "{err}");
        let d = &err.diagnostics[0];
        assert_eq!(
            d.field.as_deref(),
            Some(&*format!("machines.web.{field}")),
            "{d}"
        );
        assert!(d.message.contains(part), "expected {part:?} in:\n{d}");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }
    // In block style, the snippet stops at the key.
    let err = errors(&users(&["alice:", "  password: s3cr3t"]));
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
    assert!(err.to_string().contains("password: (sensitive)"), "{err}");
}

#[test]
fn unknown_keys_in_users_suggest_the_field() {
    let d = one_error(&users(&["alice: {group: [sudo]}"]));
    assert_at(&d, "users.alice.group", 6, 15, "(did you mean `groups`?)");
    let d = one_error(&users(&["alice: {ssh_keys: []}"]));
    assert_eq!(
        d.field.as_deref(),
        Some("machines.web.users.alice.ssh_keys")
    );
    let d = one_error(&users(&["alice: [sudo]"]));
    assert_eq!(d.field.as_deref(), Some("machines.web.users.alice"), "{d}");
    let d = one_error(&web("    users: [alice]\n"));
    assert_eq!(d.field.as_deref(), Some("machines.web.users"), "{d}");
}

// ---------------------------------------------------------------- SSH keys

#[test]
fn ssh_keys_are_public_key_lines() {
    for (key, part) in [
        ("''", "SSH key is empty"),
        (
            "'AAAAC3Nza alice'",
            "has no key type: expected a line such as `ssh-ed25519 AAAA... user@host`",
        ),
        (
            "ssh-ed25519",
            "has no base64 key after its type `ssh-ed25519`",
        ),
        ("'# ssh-ed25519 AAAA old key'", "is a comment"),
        (
            "\"ssh-ed25519 AAAA\\nssh-rsa BBBB\"",
            "give one key per list item",
        ),
        ("\"ssh-ed25519\\tAAAA\"", "control character"),
        ("ssh-ed25519 AAAA*", "no base64 key"),
    ] {
        let d = one_error(&web(&format!("    ssh_authorized_keys:\n      - {key}\n")));
        assert_at(&d, "ssh_authorized_keys[0]", 6, 9, part);
    }
    let long = format!("ssh-rsa {}", "A".repeat(16 * 1024));
    let d = one_error(&web(&format!("    ssh_authorized_keys: [{long}]\n")));
    assert!(d.message.contains("longer than 16 KiB"), "{d}");
    for key in [
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY=",
        "ecdsa-sha2-nistp521 AAAAE2Vj",
        "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t yubikey",
        "sk-ecdsa-sha2-nistp256@openssh.com AAAAInNr",
        "no-pty,command=\"uptime\" ssh-ed25519 AAAAC3Nz backup@host",
    ] {
        let m = only(&web(&format!("    ssh_authorized_keys: ['{key}']\n")));
        assert_eq!(m.ssh_authorized_keys, Some(vec![key.to_owned()]));
    }
}

#[test]
fn a_private_key_is_refused_and_never_shown() {
    let private = "-----BEGIN OPENSSH PRIVATE KEY-----\n      b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n      -----END OPENSSH PRIVATE KEY-----";
    for text in [
        web(&format!(
            "    ssh_authorized_keys:\n      - |\n        {}\n",
            private.replace("\n      ", "\n        ")
        )),
        web(&format!(
            "    ssh_authorized_keys:\n      - \"{}\"\n",
            private.replace('\n', "\\n")
        )),
        users(&[&format!(
            "alice: {{ssh_authorized_keys: [\"{}\"]}}",
            private.replace('\n', "\\n")
        )]),
    ] {
        let err = errors(&text);
        assert_eq!(err.diagnostics.len(), 1, "{err}");
        let shown = err.to_string();
        assert!(
            shown.contains("this is a private key: never put one in a spec"),
            "{shown}"
        );
        assert!(!shown.contains("b3Blbn"), "{shown}");
    }
}

#[test]
fn authorized_keys_are_not_also_managed_as_files() {
    let d = one_error(&web(&format!(
        "    ssh_authorized_keys: ['{KEY}']\n    files:\n      /root/.ssh/authorized_keys: {{content: x}}\n"
    )));
    assert_at(
        &d,
        "files./root/.ssh/authorized_keys",
        7,
        7,
        "`/root/.ssh/authorized_keys` is written from ssh_authorized_keys (root's keys): manage those keys in one place, not also under files:",
    );
    let d = one_error(&web(
        "    users: {alice: {ssh_authorized_keys: []}, svc: {home: /srv/svc, ssh_authorized_keys: []}}\n    files:\n      /home/alice/.ssh/authorized_keys: {content: x}\n",
    ));
    assert_at(
        &d,
        "files./home/alice/.ssh/authorized_keys",
        7,
        7,
        "is written from users.alice.ssh_authorized_keys",
    );
    let d = one_error(&web(
        "    users: {svc: {home: /srv/svc, ssh_authorized_keys: []}}\n    files:\n      /srv/svc/.ssh/authorized_keys: {content: x}\n",
    ));
    assert!(d.message.contains("users.svc.ssh_authorized_keys"), "{d}");
    // From defaults: reported there, for each machine it reaches.
    let err = errors(&format!(
        "defaults:\n  files: {{/root/.ssh/authorized_keys: {{content: x}}}}\nmachines:\n  a: {{distro: arch, ssh_authorized_keys: ['{KEY}']}}\n  b: {{distro: arch}}\n"
    ));
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    let d = &err.diagnostics[0];
    assert_eq!(
        d.field.as_deref(),
        Some("defaults.files./root/.ssh/authorized_keys")
    );
    assert!(d.message.contains("(machine `a`)"), "{d}");
    // Keys left alone, or an absent user's: the file may be managed.
    only(&web(
        "    files:\n      /root/.ssh/authorized_keys: {content: x}\n",
    ));
    only(&web(
        "    users: {alice: {state: absent}}\n    files:\n      /home/alice/.ssh/authorized_keys: {state: absent}\n",
    ));
}

// ---------------------------------------------------------------- credentials

#[test]
fn credentials_are_named_and_come_from_env_or_file() {
    for (name, part) in [
        ("'a/b'", "credential name `a/b` contains `/`"),
        ("'a b'", "contains ` `"),
        ("'..'", "is not a file name"),
        ("'.'", "is not a file name"),
    ] {
        let d = one_error(&web(&format!(
            "    credentials:\n      {name}: {{env: X}}\n"
        )));
        assert_at(
            &d,
            &format!("credentials.{}", name.trim_matches('\'')),
            6,
            7,
            part,
        );
    }
    let cases = [
        (
            "hunter2",
            "credentials.db",
            "plaintext secrets are not allowed in a spec: use env: or file:",
        ),
        (
            "{value: hunter2}",
            "credentials.db.value",
            "plaintext secrets are not allowed",
        ),
        (
            "",
            "credentials.db",
            "credentials.db needs exactly one of env: or file:",
        ),
        (
            "{env: X, file: y}",
            "credentials.db",
            "credentials.db has several sources (env, file)",
        ),
        (
            "{env: hunter2!}",
            "credentials.db.env",
            "credentials.db.env must be an environment variable name",
        ),
        (
            "{hash: '$6$s$h'}",
            "credentials.db.hash",
            "unknown field `hash` in credentials.db",
        ),
        (
            "[hunter2]",
            "credentials.db",
            "credentials.db must be a mapping",
        ),
    ];
    for (value, field, part) in cases {
        let err = errors(&web(&format!("    credentials:\n      db: {value}\n")));
        assert_eq!(err.diagnostics.len(), 1, "{err}");
        let d = &err.diagnostics[0];
        assert_eq!(
            d.field.as_deref(),
            Some(&*format!("machines.web.{field}")),
            "{d}"
        );
        assert!(d.message.contains(part), "expected {part:?} in:\n{d}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
    let err = errors(&web("    credentials:\n      db: hunter2\n"));
    assert!(
        err.to_string().contains("6 |       db: (sensitive)"),
        "{err}"
    );
    // A bad name next to a plaintext value: the line is not shown; next to
    // sources, it is.
    let err = errors(&web("    credentials: {'a/b': hunter2}\n"));
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let err = errors(&web("    credentials:\n      a/b: {env: X}\n"));
    assert!(err.to_string().contains("6 |       a/b: {env: X}"), "{err}");
    // Written inline, the line is cut after `credentials:`.
    let err = errors(&web("    credentials: {db: hunter2, x: {env: [}\n"));
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

// ---------------------------------------------------------------- defaults

#[test]
fn defaults_give_files_users_keys_and_credentials_whole() {
    let text = "defaults:
  files: {/etc/motd: {content: hi}}
  users: {ops: {groups: [adm]}}
  ssh_authorized_keys: ['ssh-ed25519 AAAA ops']
  credentials: {token: {env: TOKEN}}
machines:
  a: {distro: arch}
  b:
    distro: arch
    files: {/etc/issue: {content: b}}
    users: {}
    ssh_authorized_keys: []
    credentials: {other: {file: /x}}
";
    let spec = load(text);
    let a = &spec.machines["a"];
    assert_eq!(a.files.len(), 1);
    assert_eq!(a.files[0].path, Path::new("/etc/motd"));
    // Declared under defaults: its source points there.
    assert_eq!(a.files[0].source.line, Some(2));
    assert_eq!(a.users[0].name, "ops");
    assert_eq!(
        a.ssh_authorized_keys,
        Some(vec!["ssh-ed25519 AAAA ops".to_owned()])
    );
    assert_eq!(a.credentials[0].name, "token");
    let b = &spec.machines["b"];
    assert_eq!(b.files.len(), 1);
    assert_eq!(b.files[0].path, Path::new("/etc/issue"));
    assert!(b.users.is_empty());
    assert_eq!(b.ssh_authorized_keys, Some(Vec::new()));
    assert_eq!(b.credentials[0].name, "other");
    // Errors under defaults are reported once, there.
    let err = errors(
        "defaults:\n  files: {/tmp/x: {content: y}}\n  users: {root: {}}\nmachines:\n  a: {distro: arch}\n  b: {distro: arch}\n",
    );
    let fields: Vec<_> = err
        .diagnostics
        .iter()
        .filter_map(|d| d.field.as_deref())
        .collect();
    assert_eq!(
        fields,
        ["defaults.files./tmp/x", "defaults.users.root"],
        "{err}"
    );
}

// ---------------------------------------------------------------- no panics

#[test]
fn nothing_panics_on_odd_values() {
    let values = [
        "",
        "~",
        "0",
        "-1",
        "0640",
        "0o777",
        "1.5",
        "1e400",
        "-.inf",
        "0x7fffffffffffffffffff",
        "true",
        "'yes'",
        "[]",
        "[[]]",
        "{}",
        "{a: {b: c}}",
        "\"\\u0000\"",
        "\"\\u202e\"",
        "\"\\n\"",
        "99999999999999999999999999999999999999999",
        "/",
        "//",
        "'/proc'",
        "'..'",
        "'$'",
        "'$$'",
        "'é'",
        "'ssh-rsa'",
        "'ssh-rsa ='",
        "'PRIVATE KEY'",
        "!!binary aGVsbG8=",
        "&a x",
        "*nope",
    ];
    let templates = [
        "    vars: {a: V}\n",
        "    vars: V\n",
        "    vars: {V: 1}\n",
        "    files: V\n",
        "    files: {V: {content: x}}\n",
        "    files: {/etc/x: V}\n",
        "    files: {/etc/x: {content: V, mode: V}}\n",
        "    files: {/etc/x: {source: V, owner: V, group: V}}\n",
        "    files: {/etc/x: {template: V, replace: V}}\n",
        "    files: {/etc/x: {secret: V}}\n",
        "    files: {/etc/x: {secret: {env: V}}}\n",
        "    files: {/etc/x: {secret: {file: V}}}\n",
        "    files: {/etc/x: {type: V, state: V}}\n",
        "    files: {/etc/x: {link: V, mode: V}}\n",
        "    files: {/etc/x: {V: 1}}\n",
        "    users: V\n",
        "    users: {V: {}}\n",
        "    users: {a: V}\n",
        "    users: {a: {state: V, remove_home: V}}\n",
        "    users: {a: {system: V, groups: V, shell: V, home: V}}\n",
        "    users: {a: {groups: [V, V], ssh_authorized_keys: [V]}}\n",
        "    users: {a: {ssh_authorized_keys: V, password: V}}\n",
        "    users: {a: {password: {hash: V}}}\n",
        "    ssh_authorized_keys: V\n",
        "    ssh_authorized_keys: [V]\n",
        "    credentials: V\n",
        "    credentials: {V: {env: X}}\n",
        "    credentials: {a: V}\n",
        "    credentials: {a: {file: V}}\n",
    ];
    for template in templates {
        for value in values {
            let text = web(&template.replace('V', value));
            // Either outcome is fine; a panic is not.
            let _ = load_str(&text, Path::new("spec.yaml"));
        }
    }
    for top in [
        "vars: V\nmachines: {}\n",
        "vars: {V: V}\n",
        "defaults: {vars: V, files: V, users: V, credentials: V}\n",
    ] {
        for value in values {
            let _ = load_str(&top.replace('V', value), Path::new("spec.yaml"));
        }
    }
}

// ---------------------------------------------------------------- JSON Schema

#[test]
fn json_schema_describes_every_new_field() {
    let schema = berth_schema::json_schema();
    let defs = &schema["$defs"];
    let described = |object: &str, fields: &[&str]| {
        for field in fields {
            assert!(
                defs[object]["properties"][field]["description"].is_string(),
                "{object}.{field}: {schema:#}"
            );
        }
        assert_eq!(
            defs[object]["additionalProperties"], false,
            "{object}: {schema:#}"
        );
    };
    described(
        "Machine",
        &[
            "vars",
            "files",
            "users",
            "ssh_authorized_keys",
            "credentials",
        ],
    );
    described(
        "ManagedFile",
        &[
            "content", "source", "template", "secret", "type", "link", "state", "mode", "owner",
            "group", "replace",
        ],
    );
    described(
        "User",
        &[
            "state",
            "system",
            "groups",
            "shell",
            "home",
            "ssh_authorized_keys",
            "password",
            "remove_home",
        ],
    );
    assert!(
        schema["properties"]["vars"]["description"].is_string(),
        "{schema:#}"
    );
    for def in [
        "Vars",
        "Files",
        "Users",
        "Credentials",
        "SecretSource",
        "Password",
        "SshKey",
    ] {
        assert!(defs[def]["description"].is_string(), "{def}: {schema:#}");
    }
}

/// Specs berth accepts and the schema must accept too.
const VALID: &[&str] = &[
    "vars: {domain: example.org, n: 1, l: [a], m: {x: {y: z}}, nothing: ~}\nmachines: {}\n",
    "defaults:\n  vars: {a: 1}\n  files: {/etc/motd: {content: hi}}\n  users: {ops: ~}\n  credentials: {t: {env: T}}\n  ssh_authorized_keys: []\nmachines: {}\n",
    "machines:\n  a:\n    distro: arch\n    files:\n      /etc/a: {content: x, mode: '0600', owner: root, group: 0}\n      /etc/b: {source: ./b, replace: true, state: present}\n      /etc/c: {template: c.j2, owner: 33}\n      /etc/d: {secret: {file: ./d}}\n      /srv/e: {type: directory, mode: '1777'}\n      /etc/f: {link: ../g, owner: root}\n      /etc/h: {state: absent, replace: false}\n",
    "machines:\n  a:\n    distro: arch\n    users:\n      alice: {groups: [sudo, adm], shell: /bin/bash, home: /home/alice, ssh_authorized_keys: ['ssh-ed25519 AAAAC3Nz alice@x'], password: {hash: '$6$salt$hash'}}\n      svc: {system: true, home: /}\n      bob: {state: absent, remove_home: true}\n      'host$': ~\n",
    "machines:\n  a:\n    distro: arch\n    ssh_authorized_keys: ['no-pty ssh-rsa AAAAB3Nza== ops', 'sk-ssh-ed25519@openssh.com AAAAGnNr']\n    credentials: {db-password: {env: DB_PW}, tls.key: {file: /etc/k}}\n",
];

#[test]
fn the_schema_accepts_the_new_fields() {
    for text in VALID {
        load_str(text, Path::new("s.yaml")).unwrap_or_else(|e| panic!("{e}\n{text}"));
        common::assert_schema_accepts("new fields", text);
    }
}

#[test]
fn the_schema_refuses_mistakes_in_the_new_fields() {
    for (extra, what) in [
        ("vars: {my-var: 1}", "var name"),
        ("vars: {machine: 1}", "reserved var name"),
        ("vars: [a]", "vars as a list"),
        ("files: {etc/motd: {content: x}}", "relative path"),
        ("files: {/etc//motd: {content: x}}", "double slash"),
        ("files: {/etc/motd/: {content: x}}", "trailing slash"),
        ("files: {/etc/../motd: {content: x}}", "dot-dot"),
        ("files: {/etc/./motd: {content: x}}", "dot"),
        ("files: {/: {type: directory}}", "the root"),
        ("files: {/run/x: {content: x}}", "under /run"),
        ("files: {/tmp: {type: directory}}", "/tmp itself"),
        ("files: {/etc/motd: {}}", "no kind"),
        ("files: {/etc/motd: ~}", "null entry"),
        ("files: {/etc/motd: {mode: '0644'}}", "mode alone"),
        ("files: {/etc/motd: {content: x, source: y}}", "two kinds"),
        (
            "files: {/etc/motd: {content: x, state: absent}}",
            "content and absent",
        ),
        (
            "files: {/etc/motd: {state: absent, mode: '0644'}}",
            "absent with mode",
        ),
        ("files: {/etc/motd: {state: present}}", "present alone"),
        (
            "files: {/etc/motd: {content: x, mode: 0644}}",
            "unquoted mode",
        ),
        (
            "files: {/etc/motd: {content: x, mode: '0648'}}",
            "non-octal mode",
        ),
        (
            "files: {/etc/motd: {content: x, mode: '06440'}}",
            "five digits",
        ),
        (
            "files: {/etc/l: {link: /x, mode: '0777'}}",
            "link with mode",
        ),
        ("files: {/etc/motd: {type: file}}", "unknown type"),
        (
            "files: {/etc/motd: {content: x, owner: Root}}",
            "owner name",
        ),
        (
            "files: {/etc/motd: {content: x, group: -1}}",
            "negative group",
        ),
        ("files: {/etc/motd: {secret: s3cr3t}}", "plaintext secret"),
        (
            "files: {/etc/motd: {secret: {env: A, file: b}}}",
            "two secret sources",
        ),
        (
            "files: {/etc/motd: {secret: {hash: '$6$s$h'}}}",
            "hash secret",
        ),
        (
            "files: {/etc/motd: {content: x, mdoe: '0644'}}",
            "file typo",
        ),
        (
            "files: {/etc/motd: {content: x, replace: 'yes'}}",
            "replace string",
        ),
        ("users: {root: {}}", "root"),
        ("users: {Alice: {}}", "uppercase name"),
        ("users: {a.b: {}}", "dot in a login name"),
        (
            "users: {bob: {state: absent, shell: /bin/sh}}",
            "absent with shell",
        ),
        (
            "users: {bob: {remove_home: true}}",
            "remove_home without absent",
        ),
        ("users: {bob: {groups: [sudo, sudo]}}", "group twice"),
        ("users: {bob: {groups: [Sudo]}}", "group name"),
        ("users: {bob: {shell: bash}}", "relative shell"),
        ("users: {bob: {home: /home//bob}}", "home not normalised"),
        ("users: {bob: {home: home}}", "relative home"),
        ("users: {bob: {password: s3cr3t}}", "plaintext password"),
        ("users: {bob: {password: {hash: nope}}}", "not a crypt hash"),
        ("users: {bob: {system: 'yes'}}", "system string"),
        ("users: {bob: {grups: []}}", "user typo"),
        ("ssh_authorized_keys: ['AAAA alice']", "key without type"),
        ("ssh_authorized_keys: ['ssh-ed25519']", "key without key"),
        ("ssh_authorized_keys: ['# ssh-ed25519 AAAA']", "comment"),
        (
            "ssh_authorized_keys: [\"ssh-ed25519 AAAA\\nssh-rsa BBBB\"]",
            "two lines",
        ),
        (
            "ssh_authorized_keys: ['-----BEGIN OPENSSH PRIVATE KEY----- ssh-rsa AAAA']",
            "private key",
        ),
        ("ssh_authorized_keys: ssh-ed25519 AAAA", "keys as a string"),
        ("credentials: {a/b: {env: X}}", "credential name"),
        ("credentials: {..: {env: X}}", "dot-dot credential"),
        ("credentials: {db: hunter2}", "plaintext credential"),
        (
            "credentials: {db: {env: X, file: y}}",
            "two credential sources",
        ),
        ("credentials: {db: {}}", "no credential source"),
    ] {
        let text = format!("machines:\n  a:\n    distro: arch\n    {extra}\n");
        let doc = common::yaml_to_json(&text).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            !common::schema_errors(&doc).is_empty(),
            "{what}: the schema accepts\n{text}"
        );
        assert!(
            load_str(&text, Path::new("s.yaml")).is_err(),
            "{what}: berth accepts\n{text}"
        );
    }
}
