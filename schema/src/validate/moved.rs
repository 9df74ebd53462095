//! The top-level `moved:` list: `{from: old-web, to: web}` renames the
//! machine berth knows as `old-web`. Each file's entries are checked on
//! their own (names, `from` = `to`) by [`read`]; once every file of a spec
//! is loaded, [`resolve`] checks them against the spec's machines and each
//! other: `to` must be a machine of the spec, `from` must not be, no name is
//! moved twice and no entry continues another (no chains).

use indexmap::IndexMap;
use serde_saphyr::Spanned;

use crate::diagnostic::{Diagnostic, SourceText};
use crate::names::{machine_name, quote};
use crate::raw::{RawMoved, position};
use crate::spec::{Machine, Moved, Source};

/// One entry of one file, with where its parts are (for diagnostics made
/// after every file is loaded).
#[derive(Debug, Clone)]
pub(crate) struct PlacedMoved {
    /// The entry.
    moved: Moved,
    /// Its index in its file's list (for the field path).
    index: usize,
    /// Where `from` is, and its source line.
    from_at: (Source, Option<String>),
    /// Where `to` is, and its source line.
    to_at: (Source, Option<String>),
}

/// Checks one file's `moved:` entries on their own: valid machine names,
/// `from` other than `to`.
pub(crate) fn read(
    entries: Vec<Spanned<RawMoved>>,
    src: &SourceText<'_>,
) -> Result<Vec<PlacedMoved>, Vec<Diagnostic>> {
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let place = |value: &Spanned<String>| {
            let (line, column) = position(&value.referenced);
            (
                Source {
                    file: src.file.to_path_buf(),
                    line,
                    column,
                },
                line.and_then(|l| src.line(l)),
            )
        };
        let raw = entry.value;
        let (entry_line, entry_column) = position(&entry.referenced);
        let from_at = place(&raw.from);
        let to_at = place(&raw.to);
        let mut ok = true;
        for (what, value, at) in [("from", &raw.from, &from_at), ("to", &raw.to, &to_at)] {
            if let Err(message) = machine_name(&value.value) {
                ok = false;
                diags.push(diagnostic(at, format!("moved[{index}].{what}"), message));
            }
        }
        if ok && raw.from.value == raw.to.value {
            ok = false;
            diags.push(diagnostic(
                &to_at,
                format!("moved[{index}].to"),
                format!(
                    "moved: from and to are the same machine {}",
                    quote(&raw.to.value)
                ),
            ));
        }
        if ok {
            out.push(PlacedMoved {
                moved: Moved {
                    from: raw.from.value,
                    to: raw.to.value,
                    source: Source {
                        file: src.file.to_path_buf(),
                        line: entry_line,
                        column: entry_column,
                    },
                },
                index,
                from_at,
                to_at,
            });
        }
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

/// Checks every file's entries against the spec's `machines` and each
/// other, in order.
pub(crate) fn resolve(
    machines: &IndexMap<String, Machine>,
    entries: Vec<PlacedMoved>,
) -> Result<Vec<Moved>, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut out: Vec<&PlacedMoved> = Vec::new();
    for entry in &entries {
        let Moved { from, to, .. } = &entry.moved;
        let field = |what: &str| format!("moved[{}].{what}", entry.index);
        if !machines.contains_key(to) {
            diags.push(diagnostic(
                &entry.to_at,
                field("to"),
                format!(
                    "moved: {} is not a machine of the spec; `to` must name the machine's new name under machines:",
                    quote(to)
                ),
            ));
            continue;
        }
        if machines.contains_key(from) {
            diags.push(diagnostic(
                &entry.from_at,
                field("from"),
                format!(
                    "moved: {} is still a machine of the spec; `from` must be the old name, gone from machines:",
                    quote(from)
                ),
            ));
            continue;
        }
        let earlier = |pick: fn(&Moved) -> &String, name: &String| {
            out.iter()
                .find(|e| pick(&e.moved) == name)
                .map(|e| e.moved.source.to_string())
        };
        if let Some(at) = earlier(|m| &m.from, from) {
            diags.push(diagnostic(
                &entry.from_at,
                field("from"),
                format!("moved: {} is moved twice (also at {at})", quote(from)),
            ));
            continue;
        }
        if let Some(at) = earlier(|m| &m.to, to) {
            diags.push(diagnostic(
                &entry.to_at,
                field("to"),
                format!(
                    "moved: two machines are moved to {} (also at {at})",
                    quote(to)
                ),
            ));
            continue;
        }
        out.push(entry);
    }
    // A chain (a -> b, b -> c) cannot pass the checks above (b would be
    // both in the spec and not); said plainly anyway for `to` = another `from`.
    if diags.is_empty() {
        Ok(out.into_iter().map(|e| e.moved.clone()).collect())
    } else {
        diags.sort_by(|a, b| {
            (&a.file, a.line.unwrap_or(usize::MAX), a.column.unwrap_or(0)).cmp(&(
                &b.file,
                b.line.unwrap_or(usize::MAX),
                b.column.unwrap_or(0),
            ))
        });
        Err(diags)
    }
}

fn diagnostic(
    at: &(Source, Option<String>),
    field: String,
    message: impl Into<String>,
) -> Diagnostic {
    Diagnostic {
        file: at.0.file.clone(),
        line: at.0.line,
        column: at.0.column,
        field: Some(field),
        message: message.into(),
        snippet: at.1.clone(),
    }
}
