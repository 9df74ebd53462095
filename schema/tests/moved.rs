//! The top-level `moved:` list: valid entries, and every error naming the
//! file, line, column and field.

mod common;

use std::path::Path;

use common::{errors, load, one_error};

const TWO: &str = "machines:\n  web:\n    distro: debian\n    release: bookworm\n  db:\n    distro: debian\n    release: bookworm\n";

fn with_moved(entries: &str) -> String {
    format!("moved:\n{entries}{TWO}")
}

#[test]
fn a_valid_moved_list_is_kept_in_order_with_its_position() {
    let spec = load(&with_moved(
        "  - {from: old-web, to: web}\n  - from: old-db\n    to: db\n",
    ));
    let moved: Vec<(&str, &str)> = spec
        .moved
        .iter()
        .map(|m| (m.from.as_str(), m.to.as_str()))
        .collect();
    assert_eq!(moved, [("old-web", "web"), ("old-db", "db")]);
    assert_eq!(spec.moved[0].source.line, Some(2));
    assert_eq!(spec.moved[1].source.line, Some(3));
}

#[test]
fn no_moved_list_is_an_empty_one() {
    assert!(load(TWO).moved.is_empty());
    assert!(load(&format!("moved:\n{TWO}")).moved.is_empty());
}

#[test]
fn to_must_be_a_machine_of_the_spec() {
    let d = one_error(&with_moved("  - {from: old-web, to: nope}\n"));
    assert_eq!((d.line, d.column), (Some(2), Some(25)));
    assert_eq!(d.field.as_deref(), Some("moved[0].to"));
    assert!(
        d.message.contains("`nope` is not a machine of the spec"),
        "{}",
        d.message
    );
    assert_eq!(d.file, Path::new("spec.yaml"));
}

#[test]
fn from_must_not_be_a_machine_of_the_spec() {
    let d = one_error(&with_moved("  - {from: db, to: web}\n"));
    assert_eq!((d.line, d.column), (Some(2), Some(12)));
    assert_eq!(d.field.as_deref(), Some("moved[0].from"));
    assert!(
        d.message.contains("`db` is still a machine of the spec"),
        "{}",
        d.message
    );
}

#[test]
fn chains_are_refused() {
    // old -> mid -> web: `mid` is both gone from the spec and a machine of it.
    let err = errors(&with_moved(
        "  - {from: old, to: mid}\n  - {from: mid, to: web}\n",
    ));
    assert!(
        err.diagnostics
            .iter()
            .any(|d| d.field.as_deref() == Some("moved[0].to")),
        "{err}"
    );
}

#[test]
fn a_name_moved_twice_or_two_moves_to_one_machine_are_refused() {
    let d = one_error(&with_moved(
        "  - {from: old, to: web}\n  - {from: old, to: db}\n",
    ));
    assert_eq!(d.field.as_deref(), Some("moved[1].from"));
    assert_eq!(d.line, Some(3));
    assert!(
        d.message.contains("moved twice (also at spec.yaml:2:5)"),
        "{}",
        d.message
    );

    let d = one_error(&with_moved(
        "  - {from: a, to: web}\n  - {from: b, to: web}\n",
    ));
    assert_eq!(d.field.as_deref(), Some("moved[1].to"));
    assert!(
        d.message.contains("two machines are moved to `web`"),
        "{}",
        d.message
    );
}

#[test]
fn bad_names_same_names_and_unknown_fields_are_refused() {
    let d = one_error(&with_moved("  - {from: -x, to: web}\n"));
    assert_eq!(d.field.as_deref(), Some("moved[0].from"));
    assert_eq!(d.line, Some(2));

    let d = one_error(&with_moved("  - {from: web, to: web}\n"));
    assert_eq!(d.field.as_deref(), Some("moved[0].to"));
    assert!(d.message.contains("the same machine"), "{}", d.message);

    let d = one_error(&with_moved("  - {from: a, to: web, why: x}\n"));
    assert_eq!(d.line, Some(2));
    assert!(d.message.contains("unknown field `why`"), "{}", d.message);

    let d = one_error(&with_moved("  - {from: a}\n"));
    assert!(d.message.contains("to"), "{}", d.message);
}

#[test]
fn in_a_directory_to_may_be_declared_in_another_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("a.yaml"),
        "moved:\n  - {from: old-web, to: web}\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("b.yaml"), TWO).expect("write");
    let spec = berth_schema::load(dir.path()).expect("valid");
    assert_eq!(spec.moved.len(), 1);
    assert_eq!(spec.moved[0].source.file, dir.path().join("a.yaml"));

    std::fs::write(
        dir.path().join("a.yaml"),
        "moved:\n  - {from: old-web, to: nope}\n",
    )
    .expect("write");
    let err = berth_schema::load(dir.path()).expect_err("refused");
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    assert_eq!(err.diagnostics[0].file, dir.path().join("a.yaml"));
    assert_eq!(err.diagnostics[0].line, Some(2));
}

#[test]
fn the_json_schema_refuses_a_malformed_entry() {
    let schema = berth_schema::json_schema();
    let moved = &schema["properties"]["moved"];
    assert_eq!(moved["items"]["$ref"], "#/$defs/Moved");
    let def = &schema["$defs"]["Moved"];
    assert_eq!(def["required"], serde_json::json!(["from", "to"]));
    assert_eq!(def["additionalProperties"], false);
}
