//! The hostile-spec corpus: every file under `tests/corpus/invalid` must be
//! refused, promptly, with an error that names the file and the problem, and
//! never echoes the plaintext password `r00tpw`.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use berth_schema::{LoadError, Spec, load};

/// The plaintext password used in the corpus; it must never be shown.
const PLAINTEXT: &str = "r00tpw";

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/invalid")
}

/// The `# expect: SUBSTRING` of a corpus file's first line (or its `.expect` sidecar).
fn expectation(path: &Path) -> String {
    let sidecar = path.with_extension("expect");
    if let Ok(text) = std::fs::read_to_string(&sidecar) {
        return text.trim().to_owned();
    }
    let bytes = std::fs::read(path).expect("read corpus file");
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = std::str::from_utf8(first).expect("first line is UTF-8");
    first
        .strip_prefix("# expect: ")
        .unwrap_or_else(|| panic!("{} lacks a `# expect:` first line", path.display()))
        .trim()
        .to_owned()
}

/// Loads `path` on another thread; fails if it takes more than 10 seconds.
fn load_promptly(path: &Path) -> Result<Spec, LoadError> {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(load(&p));
    });
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("loading {} did not return promptly", path.display()))
}

#[test]
fn every_invalid_spec_is_refused_with_a_useful_error() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("corpus dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 35, "only {} corpus files", files.len());

    let mut failures = Vec::new();
    for path in &files {
        let expect = expectation(path);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("file name");
        match load_promptly(path) {
            Ok(spec) => failures.push(format!("{name}: accepted: {spec:?}")),
            Err(err) => {
                let rendered = err.to_string();
                if !rendered.contains(name) {
                    failures.push(format!("{name}: error does not name the file:\n{rendered}"));
                }
                if !rendered.contains(&expect) {
                    failures.push(format!("{name}: error lacks {expect:?}:\n{rendered}"));
                }
                if rendered.contains(PLAINTEXT) || format!("{err:?}").contains(PLAINTEXT) {
                    failures.push(format!("{name}: error echoes the plaintext:\n{rendered}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn oversized_file_is_refused_before_parsing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("huge.yaml");
    let mut text = String::from("machines:\n");
    while text.len() <= 4 * 1024 * 1024 {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&path, text).expect("write");
    let err = load_promptly(&path).expect_err("huge file refused");
    assert!(err.to_string().contains("too large"), "{err}");
}

#[test]
fn fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("spec.yaml");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(status.success());
    let err = load_promptly(&fifo).expect_err("FIFO refused");
    assert!(err.to_string().contains("FIFO"), "{err}");
    // The same FIFO found while loading its directory.
    let err = load_promptly(dir.path()).expect_err("FIFO in directory refused");
    assert!(err.to_string().contains("FIFO"), "{err}");
}

#[test]
fn device_is_refused_without_reading() {
    for dev in ["/dev/zero", "/dev/null"] {
        if Path::new(dev).exists() {
            let err = load_promptly(Path::new(dev)).expect_err("device refused");
            assert!(err.to_string().contains("character device"), "{err}");
        }
    }
}

#[test]
fn directory_without_yaml_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), "hello").expect("write");
    std::fs::write(dir.path().join("spec.yml"), "machines: {}").expect("write");
    let err = load_promptly(dir.path()).expect_err("no yaml refused");
    let rendered = err.to_string();
    assert!(rendered.contains("no *.yaml files in"), "{rendered}");
    assert!(
        rendered.contains(&dir.path().display().to_string()),
        "{rendered}"
    );
}

#[test]
fn missing_file_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nope.yaml");
    let err = load_promptly(&path).expect_err("missing file refused");
    let rendered = err.to_string();
    assert!(rendered.contains("nope.yaml"), "{rendered}");
    assert!(rendered.contains("No such file"), "{rendered}");
}

#[test]
fn errors_are_collected_across_machines() {
    let text = "machines:
  a:
    distro: debian
    packages: [-x]
  b:
    distro: arch
    units:
      enable: [-y]
  c:
    distro: fedora
";
    let err = berth_schema::load_str(text, Path::new("spec.yaml")).expect_err("invalid");
    let fields: Vec<_> = err
        .diagnostics
        .iter()
        .filter_map(|d| d.field.clone())
        .collect();
    assert_eq!(
        fields,
        [
            "machines.a.release",
            "machines.a.packages[0]",
            "machines.b.units.enable[0]",
            "machines.c.release",
        ]
    );
}

#[test]
fn many_errors_are_capped_and_fast() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("many.yaml");
    let mut text = String::from("machines:\n  web:\n    distro: arch\n    packages:\n");
    while text.len() < 3 * 1024 * 1024 {
        text.push_str("      - -x\n");
    }
    std::fs::write(&path, &text).expect("write");
    let started = std::time::Instant::now();
    let err = load_promptly(&path).expect_err("refused");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(err.diagnostics.len() <= 101, "{}", err.diagnostics.len());
}

#[test]
fn many_machines_are_fast() {
    let mut text = String::from("machines:\n");
    for i in 0..20_000 {
        text.push_str(&format!("  m{i}: {{distro: arch, packages: [a, b, a]}}\n"));
    }
    let started = std::time::Instant::now();
    let result = berth_schema::load_str(&text, Path::new("many.yaml"));
    assert!(started.elapsed() < Duration::from_secs(8));
    // Either accepted or refused by the document budget; never slow.
    if let Ok(spec) = result {
        assert_eq!(spec.machines.len(), 20_000);
    }
}
