//! `health:`: units suffixed, the command kept as written, the timeout
//! parsed (default 60 s), inherited from `defaults:`, and errors that name
//! the file, line, column and field.

mod common;

use std::time::Duration;

use common::{errors, one_error, only, web};

#[test]
fn health_is_read_with_its_defaults() {
    let m = only(&web(
        "    health:\n      units: [nginx, ssh.socket, nginx.service]\n      \
         command: [curl, -fsS, 'http://127.0.0.1/']\n      timeout: 2m\n",
    ));
    let health = m.health.expect("health");
    assert_eq!(health.units, ["nginx.service", "ssh.socket"]);
    assert_eq!(
        health.command.as_deref(),
        Some(&["curl".to_owned(), "-fsS".into(), "http://127.0.0.1/".into()][..])
    );
    assert_eq!(health.timeout, Duration::from_secs(120));
    assert_eq!(health.source.line, Some(6));

    // Nothing given: only the system's state is checked, for 60 s.
    let m = only(&web("    health: {}\n"));
    let health = m.health.expect("health");
    assert!(health.units.is_empty() && health.command.is_none());
    assert_eq!(health.timeout, Duration::from_secs(60));
    // A bare number is seconds.
    let m = only(&web("    health: {timeout: 90}\n"));
    assert_eq!(m.health.expect("health").timeout, Duration::from_secs(90));
    // Left out: no health checks.
    assert!(only(&web("")).health.is_none());
}

#[test]
fn health_comes_from_defaults_unless_the_machine_has_its_own() {
    let text = "defaults:\n  health: {units: [nginx]}\nmachines:\n  a:\n    distro: arch\n  \
                b:\n    distro: arch\n    health: {command: ['true']}\n";
    let spec = common::load(text);
    let a = spec.machines["a"].health.clone().expect("a's health");
    assert_eq!(a.units, ["nginx.service"]);
    let b = spec.machines["b"].health.clone().expect("b's health");
    assert!(b.units.is_empty());
    assert_eq!(b.command, Some(vec!["true".to_owned()]));
}

#[test]
fn bad_health_values_name_the_field() {
    let d = one_error(&web("    health:\n      timeout: 10 minutes\n"));
    assert_eq!((d.line, d.column), (Some(6), Some(16)));
    assert_eq!(d.field.as_deref(), Some("machines.web.health.timeout"));
    assert!(d.message.contains("is not a duration"), "{}", d.message);

    let d = one_error(&web("    health: {timeout: 0s}\n"));
    assert_eq!(d.field.as_deref(), Some("machines.web.health.timeout"));
    assert!(d.message.contains("at least one second"), "{}", d.message);

    let d = one_error(&web("    health:\n      units: [nginx, -x]\n"));
    assert_eq!((d.line, d.column), (Some(6), Some(22)));
    assert_eq!(d.field.as_deref(), Some("machines.web.health.units[1]"));

    let d = one_error(&web("    health:\n      command: []\n"));
    assert_eq!(d.field.as_deref(), Some("machines.web.health.command"));
    assert!(d.message.contains("the command is empty"), "{}", d.message);

    let d = one_error(&web("    health:\n      command: ['', x]\n"));
    assert_eq!(d.field.as_deref(), Some("machines.web.health.command[0]"));

    let err = errors(&web("    health:\n      unit: [nginx]\n"));
    assert!(err.to_string().contains("unknown field `unit`"), "{err}");
    assert!(err.to_string().contains("spec.yaml:6:7"), "{err}");
}
