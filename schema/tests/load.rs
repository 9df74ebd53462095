//! Valid specs: every field, defaults merging, unit suffixing, `file:`
//! resolution, directory loading; and the JSON Schema.

mod common;

use std::path::{Path, PathBuf};

use berth_schema::{
    DesiredState, Distro, Launcher, LoadError, RootPassword, Source, Spec, load, load_str,
};

/// [`load_str`] of a spec that must be valid: the shipped JSON Schema must
/// accept it too.
fn load_valid(text: &str, file: &Path) -> Result<Spec, LoadError> {
    let spec = load_str(text, file)?;
    common::assert_schema_accepts(&file.display().to_string(), text);
    Ok(spec)
}

const FULL: &str = r#"# A spec using every field.
defaults:
  distro: debian
  release: bookworm
  mirror: http://deb.debian.org/debian
  packages: [systemd, dbus]
  launcher: nspawn
  units:
    enable: [systemd-networkd]
  securetty: [console]
machines:
  web:
    packages: [systemd, systemd-sysv, dbus, systemd]
    hostname: web.example.org
    units:
      enable: [systemd-networkd, systemd-networkd.service, foo@bar, sshd.socket]
      disable: [fstrim.timer]
      mask: [apt-daily.timer, apt-daily]
    root_password:
      file: ./secret
    securetty: [pts/0, pts/1, pts/0]
    state: stopped
  build:
    distro: arch
    release: ~
    root_password: {hash: '$6$rounds=5000$salt$abc./XYZ'}
    launcher: machinectl
  f40:
    distro: fedora
    release: 40
    mirror: file:///srv/fedora
    root_password: {env: ROOT_PW}
    launcher: nspawn-unit
    state: running
"#;

#[test]
fn full_spec_loads_with_defaults_merged() {
    let spec = load_valid(FULL, Path::new("/etc/berth/spec.yaml")).expect("valid spec");
    let names: Vec<&str> = spec.machines.keys().map(String::as_str).collect();
    assert_eq!(names, ["web", "build", "f40"]);

    let web = &spec.machines["web"];
    assert_eq!(web.name, "web");
    assert_eq!(
        web.source,
        Source {
            file: PathBuf::from("/etc/berth/spec.yaml"),
            line: Some(12),
            column: Some(3),
        }
    );
    assert_eq!(web.distro, Distro::Debian);
    assert_eq!(web.release.as_deref(), Some("bookworm"));
    assert_eq!(web.mirror.as_deref(), Some("http://deb.debian.org/debian"));
    assert_eq!(web.packages, ["systemd", "systemd-sysv", "dbus"]);
    assert_eq!(web.hostname, "web.example.org");
    assert_eq!(
        web.units.enable,
        ["systemd-networkd.service", "foo@bar.service", "sshd.socket"]
    );
    assert_eq!(web.units.disable, ["fstrim.timer"]);
    assert_eq!(web.units.mask, ["apt-daily.timer", "apt-daily.service"]);
    assert_eq!(
        web.root_password,
        Some(RootPassword::File(PathBuf::from("/etc/berth/secret")))
    );
    assert_eq!(web.securetty, ["pts/0", "pts/1"]);
    assert_eq!(web.launcher, Launcher::Nspawn);
    assert_eq!(web.state, DesiredState::Stopped);

    let build = &spec.machines["build"];
    assert_eq!(build.distro, Distro::Arch);
    // `release: ~` is "not set here": the defaults' release applies.
    assert_eq!(build.release.as_deref(), Some("bookworm"));
    assert_eq!(build.packages, ["systemd", "dbus"]);
    assert_eq!(build.hostname, "build");
    // The defaults' units apply whole to machines without their own.
    assert_eq!(build.units.enable, ["systemd-networkd.service"]);
    assert!(build.units.disable.is_empty() && build.units.mask.is_empty());
    assert_eq!(build.securetty, ["console"]);
    assert_eq!(
        build.root_password,
        Some(RootPassword::Hash("$6$rounds=5000$salt$abc./XYZ".into()))
    );
    assert_eq!(build.launcher, Launcher::Machinectl);
    assert_eq!(build.state, DesiredState::Running);

    let f40 = &spec.machines["f40"];
    assert_eq!(f40.distro, Distro::Fedora);
    assert_eq!(f40.release.as_deref(), Some("40"));
    assert_eq!(f40.mirror.as_deref(), Some("file:///srv/fedora"));
    assert_eq!(f40.root_password, Some(RootPassword::Env("ROOT_PW".into())));
    assert_eq!(f40.launcher, Launcher::NspawnUnit);
}

#[test]
fn minimal_machine_gets_defaults() {
    let spec = load_valid("machines:\n  box:\n    distro: arch\n", Path::new("s.yaml"))
        .expect("valid spec");
    let m = &spec.machines["box"];
    assert_eq!(m.release, None);
    assert_eq!(m.mirror, None);
    assert!(m.packages.is_empty());
    assert_eq!(m.hostname, "box");
    assert_eq!(m.root_password, None);
    assert_eq!(m.launcher, Launcher::Auto);
    assert_eq!(m.state, DesiredState::Running);
}

#[test]
fn empty_specs_are_valid() {
    for text in [
        "",
        "# nothing\n",
        "machines: {}\n",
        "machines:\n",
        "defaults: {}\nmachines: {}\n",
    ] {
        let spec =
            load_valid(text, Path::new("s.yaml")).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert!(spec.machines.is_empty());
    }
}

#[test]
fn relative_secret_file_resolves_against_the_spec_directory() {
    let text = "machines:\n  a:\n    distro: arch\n    root_password: {file: secrets/root}\n";
    let spec = load_valid(text, Path::new("specs/prod.yaml")).expect("valid");
    assert_eq!(
        spec.machines["a"].root_password,
        Some(RootPassword::File(PathBuf::from("specs/secrets/root")))
    );
}

#[test]
fn directory_loads_yaml_files_sorted_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("b.yaml"),
        "machines:\n  zeta:\n    distro: arch\n  alpha:\n    distro: arch\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("a.yaml"),
        "defaults:\n  distro: debian\n  release: trixie\nmachines:\n  mid:\n    root_password: {file: pw}\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("README.md"), "not a spec: [").expect("write");
    std::fs::write(dir.path().join("c.yaml.bak"), "not a spec: [").expect("write");
    let spec = load(dir.path()).expect("valid directory");
    let names: Vec<&str> = spec.machines.keys().map(String::as_str).collect();
    assert_eq!(names, ["mid", "zeta", "alpha"]);
    // Defaults apply within their own file only.
    assert_eq!(spec.machines["mid"].distro, Distro::Debian);
    assert_eq!(spec.machines["zeta"].distro, Distro::Arch);
    assert_eq!(spec.machines["mid"].source.file, dir.path().join("a.yaml"));
    assert_eq!(
        spec.machines["alpha"].source.file,
        dir.path().join("b.yaml")
    );
    assert_eq!(spec.machines["alpha"].source.line, Some(4));
    assert_eq!(
        spec.machines["mid"].root_password,
        Some(RootPassword::File(dir.path().join("pw")))
    );
}

#[test]
fn duplicate_machine_across_files_names_both_places() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("10-web.yaml"),
        "machines:\n  web:\n    distro: arch\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("20-more.yaml"),
        "machines:\n  db:\n    distro: arch\n  web:\n    distro: arch\n",
    )
    .expect("write");
    let err = load(dir.path()).expect_err("duplicate refused");
    assert_eq!(err.diagnostics.len(), 1);
    let d = &err.diagnostics[0];
    assert_eq!(d.file, dir.path().join("20-more.yaml"));
    assert_eq!((d.line, d.column), (Some(4), Some(3)));
    assert_eq!(d.field.as_deref(), Some("machines.web"));
    let rendered = err.to_string();
    assert!(rendered.contains("20-more.yaml:4:3"), "{rendered}");
    assert!(rendered.contains("10-web.yaml:2:3"), "{rendered}");
}

#[test]
fn errors_in_several_files_are_all_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("a.yaml"),
        "machines:\n  a:\n    distro: nope\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("b.yaml"),
        "machines:\n  b:\n    distro: arch\n    state: up\n",
    )
    .expect("write");
    let err = load(dir.path()).expect_err("invalid");
    let fields: Vec<_> = err
        .diagnostics
        .iter()
        .filter_map(|d| d.field.as_deref())
        .collect();
    assert_eq!(fields, ["machines.a.distro", "machines.b.state"]);
}

#[test]
fn defaults_errors_are_reported_once_at_the_defaults() {
    let text =
        "defaults:\n  launcher: bogus\nmachines:\n  a: {distro: arch}\n  b: {distro: arch}\n";
    let err = load_str(text, Path::new("s.yaml")).expect_err("invalid");
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    assert_eq!(
        err.diagnostics[0].field.as_deref(),
        Some("defaults.launcher")
    );
    assert_eq!(err.diagnostics[0].line, Some(2));
}

#[test]
fn machine_values_override_invalid_defaults_silently_but_defaults_still_fail() {
    // A machine overriding a bad default still gets its own value, but the
    // spec is refused because of the default.
    let text = "defaults:\n  state: gone\nmachines:\n  a: {distro: arch, state: stopped}\n";
    let err = load_str(text, Path::new("s.yaml")).expect_err("invalid");
    assert_eq!(err.diagnostics.len(), 1);
}

#[test]
fn json_schema_describes_the_file() {
    let schema = berth_schema::json_schema();
    let props = &schema["properties"];
    assert!(props.get("defaults").is_some(), "{schema:#}");
    assert!(props.get("machines").is_some(), "{schema:#}");
    assert_eq!(schema["additionalProperties"], false);
    let text = schema.to_string();
    for word in [
        "root_password",
        "securetty",
        "nspawn-unit",
        "fedora",
        "stopped",
        "minProperties",
        "maxProperties",
        "propertyNames",
    ] {
        assert!(text.contains(word), "schema lacks {word}: {schema:#}");
    }
    let machine = &schema["$defs"]["Machine"];
    assert_eq!(machine["additionalProperties"], false, "{schema:#}");
    assert!(machine["description"].is_string(), "{schema:#}");
}

#[test]
fn the_repository_example_loads() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../machines.example.yaml");
    if example.exists() {
        let spec = load(&example).unwrap_or_else(|e| panic!("{e}"));
        assert!(!spec.machines.is_empty());
    }
}
