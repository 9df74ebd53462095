//! `files:`: paths inside the root, exactly one kind of content each, modes,
//! owners, and no path inside another that is not a directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};

use super::{Field, Validator, optional, path_key, resolve};
use crate::names::{self, quote};
use crate::raw::{RawEntries, RawManagedFile, RawMode, position};
use crate::spec::{FileContent, ManagedFile, Source};

/// What a path may hold, for messages.
const KINDS: &str =
    "content:, source:, template:, secret:, type: directory, link: or state: absent";

/// `state` spellings of files and users: whether the thing is present.
pub(super) const PRESENCE: &[(&str, bool)] = &[("present", true), ("absent", false)];

impl Validator<'_, '_> {
    /// `files:`: each path absolute and normalised, outside the trees
    /// mounted at boot, with exactly one kind of content; no path inside
    /// another that is managed as something else than a directory.
    pub(super) fn files(
        &mut self,
        raw: &RawEntries<Option<RawManagedFile>>,
        field: &str,
    ) -> Field<Vec<ManagedFile>> {
        let before = self.count();
        let mut files = Vec::with_capacity(raw.0.len());
        let mut placed: Vec<(Location, String)> = Vec::with_capacity(raw.0.len());
        // Nothing written under a path: it is told what it needs.
        let none = RawManagedFile::default();
        for (key, entry) in &raw.0 {
            let at = format!("{field}.{}", path_key(&key.value));
            let path = match names::managed_path(&key.value) {
                Ok(p) => Some(p),
                Err(msg) => {
                    self.error(&key.referenced, at.clone(), msg);
                    None
                }
            };
            let entry = entry.as_ref().unwrap_or(&none);
            if let Some(file) = self.managed_file(entry, &at, key, path) {
                files.push(file);
                placed.push((key.referenced, at));
            }
        }
        self.no_path_inside_a_non_directory(&files, &placed);
        if self.count() > before {
            return Field::Invalid;
        }
        Field::Valid(files)
    }

    /// One entry of `files:` (at `at`, its key `key`, the checked `path`
    /// if valid), or `None` if anything was wrong.
    fn managed_file(
        &mut self,
        entry: &RawManagedFile,
        at: &str,
        key: &Spanned<String>,
        path: Option<PathBuf>,
    ) -> Option<ManagedFile> {
        let before = self.count();
        let state = self.choice(
            entry.state.as_ref(),
            &format!("{at}.state"),
            "state",
            PRESENCE,
        );
        let absent = matches!(state, Field::Valid(false));
        let given: Vec<(&str, &str, Location)> = [
            (
                "content",
                "content:",
                entry.content.as_ref().map(|v| v.referenced),
            ),
            (
                "source",
                "source:",
                entry.source.as_ref().map(|v| v.referenced),
            ),
            (
                "template",
                "template:",
                entry.template.as_ref().map(|v| v.referenced),
            ),
            (
                "secret",
                "secret:",
                entry.secret.as_ref().map(|v| v.referenced),
            ),
            ("type", "type:", entry.kind.as_ref().map(|v| v.referenced)),
            ("link", "link:", entry.link.as_ref().map(|v| v.referenced)),
            (
                "state",
                "state: absent",
                entry
                    .state
                    .as_ref()
                    .filter(|_| absent)
                    .map(|v| v.referenced),
            ),
        ]
        .into_iter()
        .filter_map(|(name, shown, loc)| loc.map(|l| (name, shown, l)))
        .collect();
        match given.as_slice() {
            [] => {
                // An invalid `state` is already reported.
                if !matches!(state, Field::Invalid) {
                    self.error(
                        &key.referenced,
                        at.to_owned(),
                        format!("{} needs one of {KINDS}", quote(&key.value)),
                    );
                }
            }
            [_] => {}
            [_, (name, _, loc), ..] => {
                let shown: Vec<&str> = given.iter().map(|(_, shown, _)| *shown).collect();
                self.error(
                    loc,
                    format!("{at}.{name}"),
                    format!(
                        "{} cannot be given together: a path holds one thing, one of {KINDS}",
                        join_and(&shown)
                    ),
                );
            }
        }

        let content = self.file_content(entry, at);
        let mode = self.file_mode(entry.mode.as_ref(), &format!("{at}.mode"));
        let owner = self.scalar(entry.owner.as_ref(), &format!("{at}.owner"), |v| {
            names::owner("owner", v)
        });
        let group = self.scalar(entry.group.as_ref(), &format!("{at}.group"), |v| {
            names::owner("group", v)
        });
        let replace = self.boolean(entry.replace.as_ref(), &format!("{at}.replace"));

        if absent {
            for (name, loc) in [
                ("mode", entry.mode.as_ref().map(|v| v.referenced)),
                ("owner", entry.owner.as_ref().map(|v| v.referenced)),
                ("group", entry.group.as_ref().map(|v| v.referenced)),
            ] {
                if let Some(loc) = loc {
                    self.error(
                        &loc,
                        format!("{at}.{name}"),
                        format!(
                            "with state: absent only replace: may be given: a path that is removed has no {name}"
                        ),
                    );
                }
            }
        }
        if let (Some(_), Some(mode)) = (&entry.link, &entry.mode) {
            self.error(
                &mode.referenced,
                format!("{at}.mode"),
                "a link has no mode of its own (its target's counts): remove mode:",
            );
        }

        if self.count() > before {
            return None;
        }
        let content = if absent {
            FileContent::Absent
        } else {
            content?
        };
        let (line, column) = position(&key.referenced);
        Some(ManagedFile {
            path: path?,
            content,
            mode: optional(mode)?,
            owner: optional(owner)?,
            group: optional(group)?,
            replace: matches!(replace, Field::Valid(true)),
            source: Source {
                file: self.src.file.to_path_buf(),
                line,
                column,
            },
        })
    }

    /// The content an entry gives, checked (`None` if none or invalid; when
    /// several are given, the first).
    fn file_content(&mut self, entry: &RawManagedFile, at: &str) -> Option<FileContent> {
        let mut found = None;
        let mut keep = |c: FileContent| {
            found.get_or_insert(c);
        };
        if let Field::Valid(text) = self.scalar(
            entry.content.as_ref(),
            &format!("{at}.content"),
            names::content,
        ) {
            keep(FileContent::Content(text));
        }
        if let Field::Valid(p) = self.scalar(entry.source.as_ref(), &format!("{at}.source"), |p| {
            names::local_file("source", p)
        }) {
            keep(FileContent::Source(resolve(self.src.file, Path::new(&p))));
        }
        if let Field::Valid(p) =
            self.scalar(entry.template.as_ref(), &format!("{at}.template"), |p| {
                names::local_file("template", p)
            })
        {
            keep(FileContent::Template(resolve(self.src.file, Path::new(&p))));
        }
        if let Some(secret) = &entry.secret
            && let Field::Valid(s) = self.secret_source(secret, &format!("{at}.secret"), "secret")
        {
            keep(FileContent::Secret(s));
        }
        if let Some(kind) = &entry.kind {
            if kind.value == "directory" {
                keep(FileContent::Directory);
            } else {
                let mut msg = format!(
                    "unknown type {}: expected `directory` (a file is given by content:, source:, template: or secret:, a link by link:)",
                    quote(&kind.value)
                );
                if names::suggest(&kind.value.to_ascii_lowercase(), &["directory", "dir"]).is_some()
                {
                    msg.push_str(" (did you mean `directory`?)");
                }
                self.error(&kind.referenced, format!("{at}.type"), msg);
            }
        }
        if let Field::Valid(target) = self.scalar(
            entry.link.as_ref(),
            &format!("{at}.link"),
            names::link_target,
        ) {
            keep(FileContent::Link(PathBuf::from(target)));
        }
        found
    }

    /// `mode:`: a quoted string of 3 or 4 octal digits; a YAML number is
    /// refused with the hint to quote it.
    fn file_mode(&mut self, value: Option<&Spanned<RawMode>>, field: &str) -> Field<u32> {
        let Some(value) = value else {
            return Field::Absent;
        };
        let checked = match &value.value {
            RawMode::Text(text) => names::file_mode(text),
            RawMode::Number(n) => Err(format!(
                "mode must be quoted, as in `mode: \"0640\"`: unquoted, YAML reads it as the \
                 number {n}, not as octal digits"
            )),
            RawMode::Other(what) => Err(format!(
                "mode must be a quoted string of octal digits such as `\"0640\"`, not {what}"
            )),
        };
        match checked {
            Ok(mode) => Field::Valid(mode),
            Err(msg) => {
                self.error(&value.referenced, field.to_owned(), msg);
                Field::Invalid
            }
        }
    }

    /// No managed path inside another managed path that is not a
    /// directory (a file, a link, or a path removed): reported at the inner
    /// path. `placed` holds each file's key location and field path.
    fn no_path_inside_a_non_directory(
        &mut self,
        files: &[ManagedFile],
        placed: &[(Location, String)],
    ) {
        let kinds: HashMap<&Path, &FileContent> = files
            .iter()
            .map(|f| (f.path.as_path(), &f.content))
            .collect();
        for (file, (loc, at)) in files.iter().zip(placed) {
            let outer = file.path.ancestors().skip(1).find_map(|a| {
                kinds
                    .get(a)
                    .filter(|c| !matches!(c, FileContent::Directory))
                    .map(|c| (a, *c))
            });
            if let Some((outer, content)) = outer {
                let what = match content {
                    FileContent::Link(_) => "a link",
                    FileContent::Absent => "a path to remove (state: absent)",
                    _ => "a file",
                };
                self.error(
                    loc,
                    at.clone(),
                    format!(
                        "{} is inside {}, which files: manages as {what}: only a directory (type: directory) can hold other paths",
                        quote(&file.path.to_string_lossy()),
                        quote(&outer.to_string_lossy())
                    ),
                );
            }
        }
    }
}

/// `a`, `a and b`, `a, b and c`.
fn join_and(words: &[&str]) -> String {
    match words.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => words.join(""),
    }
}
