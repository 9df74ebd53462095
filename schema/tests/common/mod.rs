//! Shared by the integration tests: the shipped `berth.schema.json` as a
//! Draft 2020-12 validator, and YAML read as JSON the way an editor sees it.
//!
//! Each test crate uses a different part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A validator for the repository's `berth.schema.json`, compiled once.
pub fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let path = repo_root().join("berth.schema.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let schema: Value = serde_json::from_str(&text).expect("berth.schema.json is JSON");
        jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("berth.schema.json is not a valid schema: {e}"))
    })
}

/// `text` read as YAML 1.2 into JSON, as yaml-language-server reads it (`yes`
/// and `no` are strings; `40` is a number), under tight budgets so hostile
/// documents fail fast. An empty document is `null`.
pub fn yaml_to_json(text: &str) -> Result<Value, String> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 200_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_depth: 32,
            max_documents: 1,
            max_nodes: 100_000,
        },
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        strict_booleans: true,
    };
    serde_saphyr::from_str_with_options::<Option<Value>>(text, options)
        .map(|v| v.unwrap_or(Value::Null))
        .map_err(|e| e.to_string())
}

/// The schema's complaints about `doc`, one line each (empty: valid).
pub fn schema_errors(doc: &Value) -> Vec<String> {
    validator()
        .iter_errors(doc)
        .map(|e| format!("at `{}`: {e}", e.instance_path()))
        .collect()
}

/// Panics unless `text` is YAML the schema accepts; `what` names it.
pub fn assert_schema_accepts(what: &str, text: &str) {
    let doc = yaml_to_json(text).unwrap_or_else(|e| panic!("{what}: not YAML: {e}\n{text}"));
    let errors = schema_errors(&doc);
    assert!(
        errors.is_empty(),
        "{what}: berth.schema.json refuses a valid spec:\n{}\n---\n{text}",
        errors.join("\n")
    );
}

/// Loads `text` as `/etc/berth/spec.yaml`, panicking with the errors; the
/// shipped JSON Schema must accept it too.
pub fn load(text: &str) -> berth_schema::Spec {
    let spec = berth_schema::load_str(text, Path::new("/etc/berth/spec.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_schema_accepts("a valid spec", text);
    spec
}

/// The errors for `text`, panicking if it is accepted.
pub fn errors(text: &str) -> berth_schema::LoadError {
    match berth_schema::load_str(text, Path::new("spec.yaml")) {
        Ok(spec) => panic!("accepted: {spec:?}\n{text}"),
        Err(e) => e,
    }
}

/// The only error for `text`.
pub fn one_error(text: &str) -> berth_schema::Diagnostic {
    let err = errors(text);
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    err.diagnostics[0].clone()
}

/// One machine `web` (debian bookworm) with `extra` added under it (from line 5).
pub fn web(extra: &str) -> String {
    format!("machines:\n  web:\n    distro: debian\n    release: bookworm\n{extra}")
}

/// The only machine of `text`.
pub fn only(text: &str) -> berth_schema::Machine {
    let spec = load(text);
    assert_eq!(spec.machines.len(), 1);
    spec.machines[0].clone()
}
