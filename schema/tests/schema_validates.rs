//! The shipped `berth.schema.json`, checked by a real Draft 2020-12
//! validator (the `jsonschema` crate): it accepts every spec the repository
//! ships or documents, and refuses the schema-level mistakes of the
//! hostile-spec corpus (unknown fields, bad enum values, wrong types, values
//! its patterns exclude).
//!
//! The valid specs of the other schema tests are checked too, where they are
//! loaded (`machine_settings.rs`, `load.rs`).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{assert_schema_accepts, repo_root, schema_errors, yaml_to_json};
use serde_json::Value;

#[test]
fn the_schema_file_is_a_valid_draft_2020_12_schema() {
    let text = std::fs::read_to_string(repo_root().join("berth.schema.json")).expect("read schema");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{schema:#}"
    );
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("berth.schema.json does not fit its meta-schema: {e}");
    }
}

#[test]
fn no_machine_property_is_required() {
    // Any field may come from `defaults:`, so a machine requires nothing.
    let schema = berth_schema::json_schema();
    let machine = &schema["$defs"]["Machine"];
    assert!(machine["properties"].is_object(), "{schema:#}");
    assert!(machine.get("required").is_none(), "{machine:#}");
    // Each optional field alone, `environment` first (it used to be required).
    for extra in [
        "",
        "    environment: {LANG: C.UTF-8}\n",
        "    environment: ~\n",
        "    release: rolling\n",
    ] {
        let text = format!("machines:\n  web:\n    distro: arch\n{extra}");
        assert_schema_accepts("a machine", &text);
    }
    // Nothing at all: every field may come from `defaults:`.
    assert_schema_accepts("an empty machine", "machines:\n  web: {}\n");
}

#[test]
fn the_example_spec_is_valid() {
    let path = repo_root().join("machines.example.yaml");
    let text = std::fs::read_to_string(&path).expect("read machines.example.yaml");
    berth_schema::load_str(&text, &path).unwrap_or_else(|e| panic!("{e}"));
    assert_schema_accepts("machines.example.yaml", &text);
}

/// Every file under `dir` whose name ends with `.yaml` or `.yml`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Whether a YAML document is a berth spec: a mapping with `machines:` or
/// `defaults:` at the top.
fn is_spec(doc: &Value) -> bool {
    doc.get("machines").is_some() || doc.get("defaults").is_some()
}

#[test]
fn every_example_is_valid() {
    let dir = repo_root().join("examples");
    let mut specs = Vec::new();
    let mut others = Vec::new();
    for path in yaml_files(&dir) {
        let name = path
            .strip_prefix(&dir)
            .expect("under examples")
            .display()
            .to_string();
        let text = std::fs::read_to_string(&path).expect("read example");
        let doc = yaml_to_json(&text).unwrap_or_else(|e| panic!("{name}: not YAML: {e}"));
        if !is_spec(&doc) {
            others.push(name);
            continue;
        }
        berth_schema::load_str(&text, &path).unwrap_or_else(|e| panic!("{e}"));
        assert_schema_accepts(&name, &text);
        specs.push(name);
    }
    // The only YAML under examples/ that is not a spec: a GitHub Actions workflow.
    assert_eq!(others, ["ci/berth.yml"], "non-spec YAML files changed");
    assert!(specs.len() >= 4, "only {specs:?}");
}

#[test]
fn the_everything_example_uses_every_field() {
    let path = repo_root().join("examples/everything.yaml");
    let text = std::fs::read_to_string(&path).expect("read examples/everything.yaml");
    let doc = yaml_to_json(&text).expect("YAML");
    let schema = berth_schema::json_schema();
    // Every mapping written as a machine (`defaults:` too), and the
    // mappings inside them, by the schema definition describing them.
    let mut machines: Vec<&Value> = vec![&doc["defaults"]];
    machines.extend(doc["machines"].as_object().expect("machines").values());
    let values = |field: &str| -> Vec<&Value> {
        machines
            .iter()
            .filter_map(|m| m.get(field))
            .flat_map(|v| match v {
                Value::Array(items) => items.iter().collect::<Vec<_>>(),
                other => vec![other],
            })
            .collect()
    };
    let entries = |field: &str| -> Vec<&Value> {
        values(field)
            .into_iter()
            .filter_map(Value::as_object)
            .flat_map(|m| m.values())
            .collect()
    };
    // `""`: the file itself (`defaults`, `vars`, `machines`).
    let used: Vec<(&str, Vec<&Value>)> = vec![
        ("", vec![&doc]),
        ("Machine", machines.clone()),
        ("Network", values("network")),
        ("Resources", values("resources")),
        ("Snapshots", values("snapshots")),
        ("BootstrapOptions", values("bootstrap_options")),
        ("NspawnExtra", values("nspawn_extra")),
        ("Units", values("units")),
        ("Repo", values("repos")),
        ("Device", values("devices")),
        ("Bind", values("binds")),
        ("ManagedFile", entries("files")),
        ("User", entries("users")),
        ("Health", values("health")),
    ];
    let mut missing = Vec::new();
    for (def, objects) in used {
        let properties = if def.is_empty() {
            &schema["properties"]
        } else {
            &schema["$defs"][def]["properties"]
        };
        let properties = properties.as_object().unwrap_or_else(|| panic!("{def}"));
        for name in properties.keys() {
            if !objects.iter().any(|o| o.get(name).is_some()) {
                missing.push(format!("{def}.{name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "examples/everything.yaml does not use: {}",
        missing.join(", ")
    );
}

/// The spec blocks of the README: ```yaml fences, and the tour's
/// `cat > machines.yaml <<'EOF'` heredoc, keeping those with a top-level
/// `machines:`. Each comes with the README line it starts on.
fn readme_specs(readme: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while let Some(line) = lines.get(i) {
        let end = if line.trim_end() == "```yaml" {
            Some("```")
        } else if line.trim_end().ends_with("cat > machines.yaml <<'EOF'") {
            Some("EOF")
        } else {
            None
        };
        i += 1;
        if let Some(end) = end {
            let start = i;
            while lines.get(i).is_some_and(|l| l.trim_end() != end) {
                i += 1;
            }
            assert!(i < lines.len(), "README.md:{start}: block never closed");
            let body: String = lines[start..i].iter().map(|l| format!("{l}\n")).collect();
            if body.lines().any(|l| l.starts_with("machines:")) {
                blocks.push((format!("README.md:{}", start + 1), body));
            }
        }
    }
    blocks
}

#[test]
fn every_spec_in_the_readme_is_valid() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("read README.md");
    let blocks = readme_specs(&readme);
    let tour = blocks
        .iter()
        .filter(|(_, body)| body.starts_with("# yaml-language-server:"))
        .count();
    assert_eq!(tour, 1, "the tour's heredoc spec was not found");
    assert!(blocks.len() >= 3, "only {} spec blocks", blocks.len());
    for (at, body) in &blocks {
        assert_schema_accepts(at, body);
    }
}

/// Corpus files whose mistake the schema sees, by kind.
const SCHEMA_REFUSES: &[&str] = &[
    // Unknown field names (typos, plaintext password keys).
    "01-unknown-field",
    "02-typo-field",
    "27-root-password-password-key",
    "42-plaintext-in-defaults",
    "44-root-password-unknown-key",
    "48-plaintext-in-flow",
    "52-unknown-units-field",
    "56-unknown-top-level",
    "81-network-unknown-field",
    // Bad enum values.
    "30-unknown-distro",
    "31-unknown-launcher",
    "32-unknown-state",
    "43-defaults-bad-launcher",
    "58-unknown-bootstrapper",
    "77-private-users-unknown",
    // Wrong types.
    "26-root-password-plaintext-scalar",
    "34-wrong-type",
    "46-not-a-mapping",
    "55-wrong-type-units",
    "78-autostart-string",
    "84-defaults-bool-as-string",
    // Values outside a pattern, a length or a shape the schema spells out.
    "05-machine-name-leading-dash",
    "06-machine-name-leading-dot",
    "08-machine-name-too-long",
    "09-machine-name-slash",
    "10-machine-name-space",
    "12-package-option",
    "13-package-space",
    "14-package-path-escape",
    "15-release-option",
    "16-release-slash",
    "17-unit-option",
    "18-unit-path-escape",
    "19-unit-newline",
    "20-securetty-absolute",
    "22-securetty-space",
    "24-root-password-no-source",
    "25-root-password-two-sources",
    "28-root-password-not-crypt",
    "29-root-password-bad-env",
    "39-control-char-in-value",
    "40-bad-mirror-scheme",
    "49-package-too-long",
    "50-bad-mirror-whitespace",
    "51-hostname-too-long",
    "60-bad-variant",
    "61-component-with-slash",
    "62-repo-url-with-comma",
    "63-repo-id-with-space",
    "66-port-unknown-protocol",
    "69-bind-relative-host",
    "71-bind-colon-in-path",
    "73-capability-lowercase",
    "74-capability-leading-dash",
    "75-env-name-with-dash",
    "82-drop-all-capabilities",
    "88-storage-unknown",
];

/// Corpus files the schema accepts: their mistake is one only berth's
/// validation sees (across fields, across `defaults:`, or finer than the
/// schema's patterns).
const BEYOND_THE_SCHEMA: &[&str] = &[
    "07-machine-name-dotdot",
    "11-bad-hostname",
    "21-securetty-dotdot",
    "23-unit-enable-and-mask",
    "33-missing-release",
    "41-missing-distro",
    "47-machine-name-not-hostname",
    "53-root-password-file-newline",
    "54-unit-disable-and-mask-in-defaults",
    "59-bootstrapper-wrong-distro",
    "64-port-zero",
    "65-port-too-large",
    "67-ports-without-veth",
    "68-zone-and-bridge",
    "70-bind-dotdot",
    "72-bind-machine-root",
    "76-env-value-newline",
    "79-pacman-conf-on-debian",
    "80-repos-on-arch",
    "83-bind-machine-path-twice",
    "85-repo-id-twice",
    "86-bootstrapper-from-defaults-wrong-distro",
    "87-zone-with-host-mode",
    "89-storage-overlay-with-pick",
];

/// Corpus files that are not one YAML document of JSON values at all: the
/// schema never sees them (berth refuses them while reading).
const NOT_A_DOCUMENT: &[&str] = &[
    "03-duplicate-key",
    "04-duplicate-machine-in-file",
    "35-alias-bomb",
    "36-deep-nesting",
    "37-nul-byte",
    "38-non-utf8",
    "45-multiple-documents",
    "57-raw-control-char",
];

#[test]
fn the_schema_refuses_the_schema_level_mistakes_of_the_corpus() {
    let dir = repo_root().join("tests/corpus/invalid");
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_owned))
        .collect();
    let listed: Vec<&str> = [SCHEMA_REFUSES, BEYOND_THE_SCHEMA, NOT_A_DOCUMENT].concat();
    let listed_set: BTreeSet<String> = listed.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(
        listed.len(),
        listed_set.len(),
        "a corpus file is listed twice"
    );
    assert_eq!(
        files, listed_set,
        "every corpus file must be listed exactly once above"
    );

    let mut failures = Vec::new();
    for name in listed {
        let bytes = std::fs::read(dir.join(format!("{name}.yaml"))).expect("read corpus file");
        let doc = String::from_utf8(bytes)
            .map_err(|e| e.to_string())
            .and_then(|text| yaml_to_json(&text));
        match doc {
            Err(e) if !NOT_A_DOCUMENT.contains(&name) => {
                failures.push(format!("{name}: not read as YAML: {e}"));
            }
            Err(_) => {}
            Ok(_) if NOT_A_DOCUMENT.contains(&name) => {
                failures.push(format!("{name}: read as one YAML document"));
            }
            Ok(doc) => {
                let errors = schema_errors(&doc);
                if SCHEMA_REFUSES.contains(&name) && errors.is_empty() {
                    failures.push(format!("{name}: accepted by the schema"));
                }
                if BEYOND_THE_SCHEMA.contains(&name) && !errors.is_empty() {
                    failures.push(format!(
                        "{name}: now refused by the schema (move it to SCHEMA_REFUSES):\n{}",
                        errors.join("\n")
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
