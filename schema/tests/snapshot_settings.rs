//! `snapshots: {before_apply, keep}`: defaults, errors with their field,
//! line and column, merging from `defaults:`, the overlay refusal, and what
//! the JSON Schema accepts.

mod common;

use common::{assert_schema_accepts, errors, one_error, only, web, yaml_to_json};

use berth_schema::Snapshots;

#[test]
fn defaults_and_values() {
    assert_eq!(only(&web("")).snapshots, Snapshots::default());
    assert_eq!(
        Snapshots::default(),
        Snapshots {
            before_apply: false,
            keep: 3
        }
    );
    let m = only(&web("    snapshots: {before_apply: true, keep: 5}\n"));
    assert_eq!(
        m.snapshots,
        Snapshots {
            before_apply: true,
            keep: 5
        }
    );
    let m = only(&web("    snapshots:\n      before_apply: true\n"));
    assert_eq!(m.snapshots.keep, 3);
}

#[test]
fn defaults_give_snapshots_to_every_machine() {
    let text = "defaults:\n  snapshots: {before_apply: true, keep: 2}\nmachines:\n  web:\n    distro: debian\n    release: bookworm\n";
    let m = only(text);
    assert_eq!(
        m.snapshots,
        Snapshots {
            before_apply: true,
            keep: 2
        }
    );
}

#[test]
fn errors_name_the_field() {
    let d = one_error(&web("    snapshots: {before_apply: \"true\"}\n"));
    assert_eq!(
        d.field.as_deref(),
        Some("machines.web.snapshots.before_apply"),
        "{d}"
    );
    assert!(d.message.contains("boolean"), "{d}");
    for (keep, part) in [
        ("0", "out of range"),
        ("1001", "out of range"),
        ("two", "whole number"),
        ("-1", "whole number"),
    ] {
        let d = one_error(&web(&format!("    snapshots: {{keep: {keep}}}\n")));
        assert_eq!(
            d.field.as_deref(),
            Some("machines.web.snapshots.keep"),
            "{d}"
        );
        assert_eq!((d.line, d.column), (Some(5), Some(23)), "{d}");
        assert!(d.message.contains(part), "{keep}: {d}");
    }
    let err = errors(&web("    snapshots: {before_aply: true}\n"));
    assert!(err.to_string().contains("before_aply"), "{err}");
}

#[test]
fn overlay_machines_cannot_take_snapshots_before_apply() {
    let d = one_error(&web(
        "    storage: overlay\n    snapshots: {before_apply: true}\n",
    ));
    assert_eq!(d.field.as_deref(), Some("machines.web.storage"), "{d}");
    assert!(d.message.contains("snapshots"), "{d}");
    // keep alone is fine.
    only(&web("    storage: overlay\n    snapshots: {keep: 2}\n"));
}

#[test]
fn the_json_schema_knows_the_field() {
    assert_schema_accepts(
        "snapshots",
        &web("    snapshots: {before_apply: true, keep: 3}\n"),
    );
    let refused = |text: &str| {
        let doc = yaml_to_json(text).expect("YAML");
        assert!(!common::schema_errors(&doc).is_empty(), "accepted: {text}");
    };
    refused(&web("    snapshots: {keep: 0}\n"));
    refused(&web("    snapshots: {before_apply: \"yes\"}\n"));
    refused(&web("    snapshots: {other: 1}\n"));
}
