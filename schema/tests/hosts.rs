//! `hosts:`, `known_hosts:`, `host_key_checking:` and a machine's `host:`
//! (issue 15): loading, errors with their place, `--hosts` selection, and
//! one host's part of a spec.

mod common;

use berth_schema::hosts::{HostKeyChecking, LOCAL_HOST, host_part};
use common::{load, one_error};

const FLEET: &str = "\
hosts:
  alpha: {ssh: root@192.0.2.10}
  beta:  {ssh: \"admin@beta.lan:2222\", identity: ./keys/deploy, labels: [edge]}
  local: {}
known_hosts: ./known_hosts
host_key_checking: accept-new
defaults:
  distro: debian
  release: trixie
machines:
  web:  {host: alpha}
  edge: {host: beta, root_password: {env: PW}}
  here: {}
";

#[test]
fn hosts_load_with_their_placement() {
    let spec = load(FLEET);
    let fleet = &spec.fleet;
    assert_eq!(fleet.hosts.len(), 3);
    let beta = &fleet.hosts["beta"];
    let ssh = beta.ssh.as_ref().expect("ok");
    assert_eq!(ssh.user.as_deref(), Some("admin"));
    assert_eq!(ssh.address, "beta.lan");
    assert_eq!(ssh.port, Some(2222));
    assert_eq!(
        beta.identity.as_deref(),
        Some(std::path::Path::new("/etc/berth/keys/deploy"))
    );
    assert_eq!(beta.labels, ["edge"]);
    assert!(fleet.hosts["local"].is_local());
    assert_eq!(
        fleet.known_hosts.as_deref(),
        Some(std::path::Path::new("/etc/berth/known_hosts"))
    );
    assert_eq!(fleet.host_key_checking, HostKeyChecking::AcceptNew);
    assert_eq!(fleet.host_of("web"), "alpha");
    assert_eq!(fleet.host_of("edge"), "beta");
    assert_eq!(fleet.host_of("here"), LOCAL_HOST);
    assert!(fleet.has_remote());
}

#[test]
fn no_hosts_means_everything_local() {
    let spec = load("machines:\n  web: {distro: debian, release: trixie}\n");
    assert!(!spec.fleet.has_remote());
    assert_eq!(spec.fleet.host_of("web"), LOCAL_HOST);
    assert_eq!(spec.fleet.host_key_checking, HostKeyChecking::Strict);
}

#[test]
fn defaults_host_places_every_machine() {
    let spec = load(
        "hosts:\n  alpha: {ssh: alpha-alias}\ndefaults:\n  host: alpha\nmachines:\n  a: {distro: debian, release: trixie}\n  b: {distro: debian, release: trixie, host: local}\n",
    );
    assert_eq!(spec.fleet.host_of("a"), "alpha");
    assert_eq!(spec.fleet.host_of("b"), "local");
}

#[test]
fn unknown_host_is_an_error_with_a_suggestion() {
    let d = one_error(
        "hosts:\n  alpha: {ssh: root@192.0.2.10}\nmachines:\n  web: {distro: debian, release: trixie, host: alpa}\n",
    );
    assert_eq!(d.line, Some(4));
    assert_eq!(d.field.as_deref(), Some("machines.web.host"));
    assert!(d.message.contains("unknown host `alpa`"), "{}", d.message);
    assert!(d.message.contains("did you mean `alpha`?"), "{}", d.message);
}

#[test]
fn bad_ssh_address_is_an_error_at_its_place() {
    let d = one_error("hosts:\n  alpha: {ssh: \"root@host:99999\"}\nmachines: {}\n");
    assert_eq!(
        (d.line, d.field.as_deref()),
        (Some(2), Some("hosts.alpha.ssh"))
    );
    assert!(d.message.contains("port"), "{}", d.message);
    let d = one_error("hosts:\n  alpha: {ssh: \"-oProxyCommand=evil\"}\nmachines: {}\n");
    assert!(
        d.message.contains("must not start with `-`"),
        "{}",
        d.message
    );
}

#[test]
fn bad_host_fields_are_errors() {
    let d = one_error("hosts:\n  alpha: {ssh: a, sssh: b}\n");
    assert!(d.message.contains("unknown field `sssh`"), "{}", d.message);
    let d = one_error("host_key_checking: maybe\n");
    assert_eq!(d.field.as_deref(), Some("host_key_checking"));
    let d = one_error("hosts:\n  alpha: {ssh: a, berth: relative/berth}\n");
    assert_eq!(d.field.as_deref(), Some("hosts.alpha.berth"));
    let d = one_error("hosts:\n  here: {identity: ./k}\n");
    assert_eq!(d.field.as_deref(), Some("hosts.here.identity"));
}

#[test]
fn hosts_are_selected_by_name_glob_and_label() {
    let spec = load(FLEET);
    let f = &spec.fleet;
    assert_eq!(f.select(&["alpha".into()]).expect("ok"), ["alpha"]);
    assert_eq!(f.select(&["label:edge".into()]).expect("ok"), ["beta"]);
    assert_eq!(
        f.select(&["*a".into(), "local".into()]).expect("ok"),
        ["alpha", "beta", "local"]
    );
    let e = f.select(&["gamma".into()]).expect_err("an error");
    assert!(e.contains("--hosts gamma: no such host"), "{e}");
    assert!(f.select(&["label:nope".into()]).is_err());
}

#[test]
fn one_hosts_part_loads_back_without_hosts() {
    let spec = load(FLEET);
    let part = host_part(FLEET, &spec.fleet, "beta").expect("ok").to_yaml();
    assert!(!part.contains("alpha"), "{part}");
    assert!(!part.contains("\"host\""), "{part}");
    assert!(!part.contains("known_hosts"), "{part}");
    let back = berth_schema::load_str(&part, std::path::Path::new("/x/spec.yaml"))
        .unwrap_or_else(|e| panic!("{e}\n{part}"));
    assert_eq!(back.machines.len(), 1);
    let edge = &back.machines["edge"];
    assert_eq!(edge.release.as_deref(), Some("trixie"));
    assert!(!back.fleet.has_remote());
    let mut expected = spec.machines["edge"].clone();
    expected.source = edge.source.clone();
    assert_eq!(*edge, expected);
}

#[test]
fn a_hosts_part_keeps_every_value_as_loaded() {
    let text = "\
hosts:
  a: {ssh: root@192.0.2.1}
vars: {port: 8080, ratio: 0.5, on: true, name: x}
defaults: {host: a, autostart: yes}
machines:
  f:
    distro: fedora
    release: 40
    environment: {A: 1, B: 'yes', C: \"tab\\there\"}
    files:
      /etc/x: {content: \"a: b\\n'q'\\n\", mode: \"0640\"}
    units: {enable: [x]}
    network: {mode: veth, ports: [\"8080:80\"]}
    resources: {memory_max: 1G, cpu_weight: 100}
  d: {distro: debian, release: bookworm, state: stopped, vars: {n: 1}}
";
    // `yes` is a YAML 1.1 boolean berth takes (the JSON Schema's YAML 1.2 does not).
    let spec =
        berth_schema::load_str(text, std::path::Path::new("/etc/berth/spec.yaml")).expect("valid");
    let part = host_part(text, &spec.fleet, "a").expect("ok").to_yaml();
    let back = berth_schema::load_str(&part, std::path::Path::new("/etc/berth/spec.yaml"))
        .unwrap_or_else(|e| panic!("{e}\n{part}"));
    for name in ["f", "d"] {
        let mut want = spec.machines[name].clone();
        let mut got = back.machines[name].clone();
        // Where things are declared differs; what they are must not.
        want.source = got.source.clone();
        for (w, g) in want.files.iter_mut().zip(&mut got.files) {
            w.source = g.source.clone();
        }
        assert_eq!(got, want, "{part}");
    }
}

#[test]
fn a_spec_directory_may_declare_hosts_in_one_file_and_use_them_in_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("00-hosts.yaml"),
        "hosts:\n  alpha: {ssh: root@192.0.2.1}\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("10-web.yaml"),
        "machines:\n  web: {host: alpha, distro: debian, release: trixie}\n  here: {distro: debian, release: trixie}\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("20-db.yaml"),
        "hosts:\n  beta: {ssh: beta-alias}\nmachines:\n  db: {host: beta, distro: debian, release: trixie}\n  local2: {host: local, distro: debian, release: trixie}\n",
    )
    .expect("write");
    let spec = berth_schema::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.fleet.host_of("web"), "alpha");
    assert_eq!(spec.fleet.host_of("db"), "beta");
    assert_eq!(spec.fleet.host_of("here"), LOCAL_HOST);
    assert_eq!(spec.fleet.host_of("local2"), LOCAL_HOST);
    // A host no file declares is still an error, at its place.
    std::fs::write(
        dir.path().join("30-bad.yaml"),
        "machines:\n  x: {host: gamma, distro: debian, release: trixie}\n",
    )
    .expect("write");
    let err = berth_schema::load(dir.path()).expect_err("unknown host");
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    let d = &err.diagnostics[0];
    assert!(d.file.ends_with("30-bad.yaml"), "{err}");
    assert_eq!(d.field.as_deref(), Some("machines.x.host"));
    assert!(d.message.contains("unknown host `gamma`"), "{err}");
}

#[test]
fn a_host_part_keeps_the_moved_entries_of_its_machines() {
    let text = "\
hosts:
  a: {ssh: root@192.0.2.10}
  b: {ssh: root@192.0.2.11}
defaults: {distro: debian, release: bookworm}
machines:
  web: {host: a}
  db: {host: b}
moved:
  - {from: old-web, to: web}
  - {from: old-db, to: db}
";
    let spec =
        berth_schema::load_str(text, std::path::Path::new("/etc/berth/spec.yaml")).expect("valid");
    let part = host_part(text, &spec.fleet, "a").expect("ok").to_yaml();
    let back = berth_schema::load_str(&part, std::path::Path::new("/etc/berth/spec.yaml"))
        .unwrap_or_else(|e| panic!("{e}\n{part}"));
    let moved: Vec<(&str, &str)> = back
        .moved
        .iter()
        .map(|m| (m.from.as_str(), m.to.as_str()))
        .collect();
    assert_eq!(moved, [("old-web", "web")], "{part}");
    // A host none of whose machines moved gets no `moved:`.
    let text = text.replace("  - {from: old-db, to: db}\n", "");
    let part = host_part(&text, &spec.fleet, "b").expect("ok").to_yaml();
    assert!(!part.contains("moved"), "{part}");
}
