//! Reading spec files safely and parsing them: the one place serde-saphyr is
//! called.
//!
//! Files are checked with `metadata` before they are opened (no FIFO, device
//! or socket is ever opened), opened non-blocking, checked again on the open
//! handle, and read up to [`MAX_FILE_SIZE`]. Parsing runs under tight
//! serde-saphyr budgets (alias bombs, deep nesting, huge documents), refuses
//! duplicate keys, and wraps the deserializer with serde_path_to_error so type
//! and unknown-field errors carry a field path.

use std::fs::{self, File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_path_to_error::Segment;
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{
    DuplicateKeyPolicy, Error as YamlError, MessageFormatter, UserMessageFormatter,
};

use crate::diagnostic::{Diagnostic, LoadError, SourceText};
use crate::hosts::{self, Fleet};
use crate::raw::{self, RawFile};
use crate::spec::{Machine, Spec};
use crate::{names, validate};

/// Largest spec file accepted: 4 MiB.
pub const MAX_FILE_SIZE: u64 = 4 * 1024 * 1024;

/// Loads a spec file, or every `*.yaml` file of a directory (not recursive,
/// sorted by file name, hidden files skipped), and validates it.
///
/// Machine names must be unique across the files of a directory.
pub fn load(path: &Path) -> Result<Spec, LoadError> {
    let meta = fs::metadata(path).map_err(|e| LoadError::single(*read_error(path, &e)))?;
    if meta.is_dir() {
        return load_dir(path);
    }
    let text = read_spec_file(path, &meta).map_err(|d| LoadError::single(*d))?;
    load_str(&text, path)
}

/// Parses and validates `text` as if it had been read from `file`
/// (`file:` secrets resolve against `file`'s directory). Never touches the disk.
pub fn load_str(text: &str, file: &Path) -> Result<Spec, LoadError> {
    let (machines, fleet, _, moved) =
        load_one(text, file, false).map_err(|diagnostics| LoadError { diagnostics })?;
    let mut spec = Spec {
        fleet,
        ..Spec::default()
    };
    for m in machines {
        spec.machines.insert(m.name.clone(), m);
    }
    spec.moved = validate::moved::resolve(&spec.machines, moved)
        .map_err(|diagnostics| LoadError { diagnostics })?;
    Ok(spec)
}

/// Loads every `*.yaml` file of `dir`, collecting the problems of all of them.
fn load_dir(dir: &Path) -> Result<Spec, LoadError> {
    let entries = fs::read_dir(dir).map_err(|e| {
        LoadError::single(Diagnostic::file_level(
            dir,
            format!("cannot read directory: {}", io_reason(&e)),
        ))
    })?;
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            LoadError::single(Diagnostic::file_level(
                dir,
                format!("cannot read directory: {}", io_reason(&e)),
            ))
        })?;
        let name = entry.file_name();
        let name = name.as_encoded_bytes();
        if name.ends_with(b".yaml") && !name.starts_with(b".") {
            files.push(entry.path());
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    if files.is_empty() {
        return Err(LoadError::single(Diagnostic::file_level(
            dir,
            format!("no *.yaml files in {}", dir.display()),
        )));
    }

    let mut diagnostics = Vec::new();
    let mut spec = Spec::default();
    // `host:` names no file declared (yet): checked once all are read.
    let mut pending = Vec::new();
    let mut moved = Vec::new();
    for file in &files {
        let text = match fs::metadata(file)
            .map_err(|e| read_error(file, &e))
            .and_then(|meta| read_spec_file(file, &meta))
        {
            Ok(text) => text,
            Err(d) => {
                diagnostics.push(*d);
                continue;
            }
        };
        match load_one(&text, file, true) {
            Ok((machines, fleet, mut unknown, mut file_moved)) => {
                pending.append(&mut unknown);
                diagnostics.append(&mut spec.fleet.merge(fleet, file));
                moved.append(&mut file_moved);
                let src = SourceText::new(file, &text);
                for m in machines {
                    if let Some(first) = spec.machines.get(&m.name) {
                        diagnostics.push(src.at(
                            m.source.line,
                            m.source.column,
                            Some(format!("machines.{}", validate::path_key(&m.name))),
                            format!(
                                "machine {} is defined twice: also at {}",
                                names::quote(&m.name),
                                first.source
                            ),
                        ));
                    } else {
                        spec.machines.insert(m.name.clone(), m);
                    }
                }
            }
            Err(mut d) => diagnostics.append(&mut d),
        }
    }
    for (host, d) in pending {
        if host != hosts::LOCAL_HOST && !spec.fleet.hosts.contains_key(&host) {
            diagnostics.push(d);
        }
    }
    if diagnostics.is_empty() {
        spec.moved = validate::moved::resolve(&spec.machines, moved)
            .map_err(|diagnostics| LoadError { diagnostics })?;
        Ok(spec)
    } else {
        Err(LoadError { diagnostics })
    }
}

/// Returned with the file's machines and hosts: each `host:` naming no host
/// of the file, with its diagnostic (with `defer_hosts`; otherwise they are
/// errors at once).
type Pending = Vec<(String, Diagnostic)>;

/// One file's machines, hosts, pending `host:` names and `moved:` entries
/// (checked against the whole spec later).
type Loaded = (
    Vec<Machine>,
    Fleet,
    Pending,
    Vec<validate::moved::PlacedMoved>,
);

/// Parses and validates one file's text; `defer_hosts` for a file of a
/// spec directory, whose hosts may be declared in another file.
fn load_one(text: &str, file: &Path, defer_hosts: bool) -> Result<Loaded, Vec<Diagnostic>> {
    let src = SourceText::new(file, text);
    if text.len() as u64 > MAX_FILE_SIZE {
        return Err(vec![*too_large(file, text.len() as u64)]);
    }
    if let Some(at) = text.find('\0') {
        let (line, column) = line_column(text, at);
        return Err(vec![src.at(
            Some(line),
            Some(column),
            None,
            "the file contains a NUL byte",
        )]);
    }
    let mut raw = parse(&src).map_err(|d| vec![*d])?;
    let moved = raw.moved.take().unwrap_or_default();
    let mut host_diags = Vec::new();
    let mut pending = Vec::new();
    let fleet = hosts::validate(&raw, &src, &mut host_diags, &mut pending);
    if !defer_hosts {
        host_diags.extend(pending.drain(..).map(|(_, d)| d));
    }
    let machines = validate::validate(raw, &src);
    let moved = validate::moved::read(moved, &src);
    let (mut machines, moved) = match (machines, moved) {
        (Ok(machines), Ok(moved)) if host_diags.is_empty() => (machines, moved),
        (machines, moved) => {
            let mut all = machines.err().unwrap_or_default();
            all.extend(moved.err().unwrap_or_default());
            if !host_diags.is_empty() {
                all.append(&mut host_diags);
                all.sort_by_key(|d| (d.line.unwrap_or(usize::MAX), d.column.unwrap_or(0)));
            }
            return Err(all);
        }
    };
    machines
        .iter_mut()
        .for_each(|m| m.source.file = file.to_path_buf());
    Ok((machines, fleet, pending, moved))
}

/// Deserializes the text; an empty document is an empty spec.
fn parse(src: &SourceText<'_>) -> Result<RawFile, Box<Diagnostic>> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(MAX_FILE_SIZE as usize),
            max_events: 200_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_recorded_anchor_events: 100_000,
            max_recorded_anchor_bytes: 4 * 1024 * 1024,
            max_depth: 32,
            flow_nesting_limit: 32,
            max_documents: 1,
            max_nodes: 100_000,
            max_total_scalar_bytes: 8 * 1024 * 1024,
            max_merge_keys: 1_000,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 1_000,
        },
        duplicate_keys: DuplicateKeyPolicy::Error,
        with_snippet: false,
    };
    raw::reset_current_machine();
    let mut track = serde_path_to_error::Track::new();
    let result = serde_saphyr::with_deserializer_from_str_with_options(src.text, options, |de| {
        Option::<RawFile>::deserialize(serde_path_to_error::Deserializer::new(de, &mut track))
    });
    match result {
        Ok(raw) => Ok(raw.unwrap_or_default()),
        Err(err) => Err(Box::new(yaml_error(src, &err, &track.path()))),
    }
}

/// A diagnostic from a serde-saphyr error, with its location and field path.
fn yaml_error(
    src: &SourceText<'_>,
    err: &YamlError,
    path: &serde_path_to_error::Path,
) -> Diagnostic {
    let err = err.without_snippet();
    let (line, column) = err.location().map_or((None, None), |l| raw::position(&l));
    let field = field_path(path);
    let message = yaml_message(err, field.as_deref(), in_nspawn_extra(path));
    src.at(line, column, field, message)
}

/// Whether the last segment of `path` is a key right under `nspawn_extra:`
/// (a section name).
fn in_nspawn_extra(path: &serde_path_to_error::Path) -> bool {
    let segments: Vec<&Segment> = path
        .iter()
        .filter(|s| !matches!(s, Segment::Map { key } if key == "value"))
        .collect();
    segments.len() >= 2
        && matches!(
            segments.get(segments.len() - 2),
            Some(Segment::Map { key }) if key == "nspawn_extra"
        )
}

/// The fields whose keys are names or paths read with their locations,
/// which serde_path_to_error cannot see ([`raw::current_entry`] names them).
const ENTRY_MAPS: &[&str] = &[
    "environment",
    "vars",
    "files",
    "users",
    "credentials",
    "hosts",
];

/// The field path of a serde_path_to_error path: machine names filled in,
/// `Spanned`'s inner `value` and unknown trailing segments dropped.
fn field_path(path: &serde_path_to_error::Path) -> Option<String> {
    let mut out = String::new();
    let segments: Vec<&Segment> = path.iter().collect();
    for (i, seg) in segments.iter().enumerate() {
        let part = match seg {
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                continue;
            }
            Segment::Map { key } if key == "value" && i > 0 => continue,
            Segment::Map { key } | Segment::Enum { variant: key } => validate::path_key(key),
            Segment::Unknown => {
                let under_machines = i == 1
                    && matches!(segments.first(), Some(Segment::Map { key }) if key == "machines");
                // `environment` is read through `Spanned`, whose `value` comes between.
                let under_entries = segments
                    .get(..i)
                    .unwrap_or_default()
                    .iter()
                    .rev()
                    .find(|s| !matches!(s, Segment::Map { key } if key == "value"))
                    .is_some_and(
                        |s| matches!(s, Segment::Map { key } if ENTRY_MAPS.contains(&key.as_str())),
                    );
                match (raw::current_machine(), raw::current_entry()) {
                    (Some(name), _) if under_machines => validate::path_key(&name),
                    (_, Some(name)) if under_entries => validate::path_key(&name),
                    _ => break,
                }
            }
        };
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&part);
    }
    (!out.is_empty()).then_some(out)
}

/// The message for a serde-saphyr error, without location (we print our
/// own); `section` when the error is about a key under `nspawn_extra:`.
fn yaml_message(err: &YamlError, field: Option<&str>, section: bool) -> String {
    match err {
        YamlError::AliasError { error, .. } | YamlError::WithSnippet { error, .. } => {
            yaml_message(error, field, section)
        }
        YamlError::SerdeUnknownField { field: name, .. } if section => {
            if let Some(owner) = names::section_of(name) {
                return format!(
                    "{} is a key of [{owner}], not a section: write it under `{owner}:`",
                    names::quote(name)
                );
            }
            let mut msg = format!(
                "unknown section {}: systemd.nspawn(5) sections here are {}",
                names::quote(name),
                names::one_of(names::SECTION_NAMES)
            );
            if let Some(s) = names::suggest(name, names::SECTION_NAMES) {
                msg.push_str(&format!(" (did you mean `{s}`?)"));
            }
            msg
        }
        YamlError::SerdeUnknownField {
            field: name,
            expected,
            ..
        } => {
            let mut msg = format!(
                "unknown field {}: expected one of {}",
                names::quote(name),
                names::one_of(expected)
            );
            if let Some(s) = names::suggest(name, expected) {
                msg.push_str(&format!(" (did you mean `{s}`?)"));
            }
            msg
        }
        YamlError::Budget {
            breach: BudgetBreach::Documents { .. },
            ..
        }
        | YamlError::MultipleDocuments { .. } => {
            "a spec file holds one YAML document: remove the `---` separator or split the file"
                .to_owned()
        }
        YamlError::Budget { breach, .. } => format!(
            "the document is too large or too complex ({})",
            budget_reason(breach)
        ),
        _ => {
            let msg = UserMessageFormatter.format_message(err).into_owned();
            let shape = if msg.contains("expected sequence") {
                Some("a list")
            } else if msg.contains("expected mapping") {
                Some("a mapping")
            } else if msg.contains("expected string") {
                Some("a string")
            } else {
                None
            };
            let env_value = field.is_some_and(|f| f.rsplit('.').nth(1) == Some("environment"));
            // A var's value may be anything but a mapping key that is not a string.
            let in_vars = field.is_some_and(|f| {
                f.starts_with("vars.")
                    || f.starts_with("defaults.vars.")
                    || raw::current_machine().is_some_and(|m| {
                        f.starts_with(&format!("machines.{}.vars.", validate::path_key(&m)))
                    })
            });
            match (field, shape) {
                (Some("machines"), Some("a string")) => {
                    format!("{msg}: machine names must be strings")
                }
                (Some(_), Some("a string")) if env_value => format!(
                    "{msg}: an environment value must be a string (numbers and booleans are taken as their text)"
                ),
                (Some(_), Some("a string")) if in_vars => format!(
                    "{msg}: a variable's value may hold mappings, but their keys must be strings"
                ),
                (Some(f), Some(shape)) => format!("{msg}: `{}` must be {shape}", last_segment(f)),
                (None, Some("a mapping")) => format!(
                    "{msg}: a spec file is a mapping with `machines:` (and optionally `defaults:`)"
                ),
                _ => msg,
            }
        }
    }
}

/// The last name of a field path (`packages` in `machines.web.packages`).
fn last_segment(field: &str) -> &str {
    field.rsplit('.').next().unwrap_or(field)
}

/// A short reason for a budget breach.
fn budget_reason(breach: &BudgetBreach) -> String {
    match breach {
        BudgetBreach::Depth { .. } => "nested too deeply".to_owned(),
        BudgetBreach::Aliases { .. }
        | BudgetBreach::Anchors { .. }
        | BudgetBreach::AliasAnchorRatio { .. }
        | BudgetBreach::RecordedAnchorEvents { .. }
        | BudgetBreach::RecordedAnchorBytes { .. } => "too many aliases or anchors".to_owned(),
        BudgetBreach::Events { .. } | BudgetBreach::ScalarBytes { .. } => {
            "too much content".to_owned()
        }
        BudgetBreach::Nodes { .. } => "too many nodes".to_owned(),
        other => format!("limit reached: {other:?}"),
    }
}

/// Reads a regular file of at most [`MAX_FILE_SIZE`] bytes, as UTF-8.
///
/// `meta` comes from `fs::metadata(path)`: anything but a regular file is
/// refused before opening. The file is opened non-blocking (a FIFO swapped in
/// meanwhile cannot block the open), and checked again through the handle.
fn read_spec_file(path: &Path, meta: &Metadata) -> Result<String, Box<Diagnostic>> {
    check_regular(path, meta)?;
    if meta.len() > MAX_FILE_SIZE {
        return Err(too_large(path, meta.len()));
    }
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| read_error(path, &e))?;
    let meta = file.metadata().map_err(|e| read_error(path, &e))?;
    check_regular(path, &meta)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| read_error(path, &e))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(too_large(path, bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let valid = String::from_utf8_lossy(bytes.get(..at).unwrap_or_default());
        let (line, column) = line_column(&valid, valid.len());
        let bad = bytes.get(at).copied().unwrap_or_default();
        let lossy = String::from_utf8_lossy(bytes);
        let src = SourceText::new(path, &lossy);
        Box::new(src.at(
            Some(line),
            Some(column),
            None,
            format!("the file is not valid UTF-8 (byte 0x{bad:02x})"),
        ))
    })
}

/// Refuses anything but a regular file, naming what it is.
fn check_regular(path: &Path, meta: &Metadata) -> Result<(), Box<Diagnostic>> {
    let ft = meta.file_type();
    if ft.is_file() {
        return Ok(());
    }
    let what = if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    };
    Err(Box::new(Diagnostic::file_level(
        path,
        format!("cannot read spec: it is {what}, not a regular file"),
    )))
}

/// The error for a file over [`MAX_FILE_SIZE`].
fn too_large(path: &Path, size: u64) -> Box<Diagnostic> {
    Box::new(Diagnostic::file_level(
        path,
        format!(
            "the file is too large ({size} bytes; spec files are limited to {} MiB)",
            MAX_FILE_SIZE / 1024 / 1024
        ),
    ))
}

/// The diagnostic for a file that cannot be read.
fn read_error(path: &Path, e: &std::io::Error) -> Box<Diagnostic> {
    Box::new(Diagnostic::file_level(
        path,
        format!("cannot read spec: {}", io_reason(e)),
    ))
}

/// An I/O error without the `(os error N)` noise.
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// 1-based line and character column of byte offset `at` in `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    let column = before.get(line_start..).unwrap_or_default().chars().count() + 1;
    (line, column)
}
