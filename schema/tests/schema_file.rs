//! `berth.schema.json` at the repository root is exactly what `berth schema`
//! prints. `BERTH_UPDATE_SCHEMA=1 cargo test -p berth-schema --test
//! schema_file` rewrites it.

use std::path::Path;

#[test]
fn repository_schema_file_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../berth.schema.json");
    let printed = serde_json::to_string_pretty(&berth_schema::json_schema()).expect("serialize");
    // What `berth schema` prints: the pretty JSON and a newline.
    let expected = format!("{printed}\n");
    if std::env::var_os("BERTH_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &expected).expect("write berth.schema.json");
        return;
    }
    if let Ok(current) = std::fs::read_to_string(&path) {
        assert!(
            current == expected,
            "{} is stale: run `BERTH_UPDATE_SCHEMA=1 cargo test -p berth-schema --test schema_file`",
            path.display()
        );
    }
}
