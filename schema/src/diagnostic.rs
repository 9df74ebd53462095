//! Diagnostics: what went wrong, where, and how it is shown.
//!
//! A [`Diagnostic`] names the file, the line and column (1-based), the field
//! path (`machines.web.units.enable[0]`) and carries the offending source line.
//! [`LoadError`] collects every diagnostic of one load.
//!
//! Source lines are stored sanitised: control characters other than tab are
//! replaced, and values of password-like keys are replaced by `(sensitive)`,
//! so a snippet can never echo a secret or drive a terminal.

use std::fmt;
use std::path::{Path, PathBuf};

/// What stands in for a value that must not be shown.
pub(crate) const SENSITIVE: &str = "(sensitive)";

/// Keys whose values are never shown in a snippet.
const SECRET_KEYS: &[&str] = &[
    "root_password",
    "credentials",
    "password",
    "passwd",
    "pass",
    "pw",
    "plain",
    "plaintext",
    "cleartext",
    "clear",
    "value",
    "secret",
    "hash",
];

/// Longest source line kept as a snippet, in characters.
const MAX_SNIPPET: usize = 200;

/// One problem found while loading a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The spec file (or directory) the problem is in.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column in characters, when known.
    pub column: Option<usize>,
    /// The field path, e.g. `machines.web.units.enable[0]` or `defaults.launcher`.
    pub field: Option<String>,
    /// What is wrong, for a person.
    pub message: String,
    /// The offending source line, sanitised (never holds a password).
    pub snippet: Option<String>,
}

impl Diagnostic {
    /// A diagnostic about a whole file or directory, with no position.
    pub fn file_level(file: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line: None,
            column: None,
            field: None,
            message: message.into(),
            snippet: None,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)?;
        if let (Some(snippet), Some(line)) = (&self.snippet, self.line) {
            let number = line.to_string();
            let pad = " ".repeat(number.len());
            let (shown, caret_at) = expand_tabs(snippet, self.column);
            write!(f, "\n{pad} |\n{number} | {shown}")?;
            if let Some(at) = caret_at {
                let width = token_width(&shown, at);
                write!(
                    f,
                    "\n{pad} | {}{}",
                    " ".repeat(at),
                    "^".repeat(width.max(1))
                )?;
            }
        }
        Ok(())
    }
}

/// Expands tabs to four spaces; returns the line and the caret's offset in
/// characters for a 1-based `column`.
fn expand_tabs(line: &str, column: Option<usize>) -> (String, Option<usize>) {
    let mut shown = String::with_capacity(line.len());
    let mut caret = None;
    let mut width = 0;
    for (i, c) in line.chars().enumerate() {
        if column == Some(i + 1) {
            caret = Some(width);
        }
        if c == '\t' {
            shown.push_str("    ");
            width += 4;
        } else {
            shown.push(c);
            width += 1;
        }
    }
    if caret.is_none() && column.is_some() {
        caret = Some(width);
    }
    (shown, caret)
}

/// How many characters to underline from `at`: a quoted string up to its
/// closing quote, else the token up to whitespace or a flow delimiter.
fn token_width(line: &str, at: usize) -> usize {
    let rest: Vec<char> = line.chars().skip(at).collect();
    match rest.first() {
        Some(&q @ ('"' | '\'')) => rest
            .iter()
            .skip(1)
            .position(|&c| c == q)
            .map_or(rest.len(), |p| p + 2),
        Some(_)
            if line
                .chars()
                .skip(at)
                .collect::<String>()
                .starts_with(SENSITIVE) =>
        {
            SENSITIVE.len()
        }
        Some(_) => rest
            .iter()
            .enumerate()
            .position(|(i, &c)| {
                let key_colon = c == ':' && rest.get(i + 1).is_none_or(|next| next.is_whitespace());
                key_colon || c.is_whitespace() || matches!(c, ',' | ']' | '}' | '#')
            })
            .unwrap_or(rest.len()),
        None => 1,
    }
}

/// All the diagnostics of a failed load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// Every problem found, in file order then source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadError {
    /// A load error with one diagnostic.
    pub fn single(diagnostic: Diagnostic) -> Self {
        LoadError {
            diagnostics: vec![diagnostic],
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// The source text of one file, to build diagnostics with snippets.
pub(crate) struct SourceText<'a> {
    /// The file the text came from.
    pub file: &'a Path,
    /// The text.
    pub text: &'a str,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
}

impl<'a> SourceText<'a> {
    /// Indexes `text`'s lines.
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceText {
            file,
            text,
            line_starts,
        }
    }

    /// Source line `line` (1-based) as is, without its line break.
    fn raw_line(&self, line: usize) -> Option<&'a str> {
        let start = *self.line_starts.get(line.checked_sub(1)?)?;
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |next| next.saturating_sub(1));
        let text: &'a str = self.text;
        let raw = text.get(start..end.max(start))?;
        Some(raw.strip_suffix('\r').unwrap_or(raw))
    }

    /// The sanitised source line `line` (1-based), if it exists.
    pub(crate) fn line(&self, line: usize) -> Option<String> {
        let raw = self.raw_line(line)?;
        Some(redact_secret_keys(&sanitize(raw)))
    }

    /// A diagnostic at `line:column` with the source line as snippet.
    pub(crate) fn at(
        &self,
        line: Option<usize>,
        column: Option<usize>,
        field: Option<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            field,
            message: message.into(),
            snippet: line.and_then(|l| self.line(l)),
        }
    }

    /// A diagnostic about a value that may be a password: the snippet shows the
    /// line only up to the value, followed by `(sensitive)`, or no snippet at all
    /// when that cannot be done safely.
    pub(crate) fn at_sensitive(
        &self,
        line: Option<usize>,
        column: Option<usize>,
        field: Option<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        let snippet = match (line, column) {
            (Some(l), Some(c)) => self.sensitive_line(l, c),
            _ => None,
        };
        Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            field,
            message: message.into(),
            snippet,
        }
    }

    /// The line cut at `column` and completed with `(sensitive)`, when what
    /// comes before the value is only indentation, a list dash and a key.
    fn sensitive_line(&self, line: usize, column: usize) -> Option<String> {
        let raw = self.raw_line(line)?;
        let prefix: String = raw.chars().take(column.checked_sub(1)?).collect();
        let body = prefix.trim_start().trim_start_matches("- ").trim();
        let safe = body.is_empty()
            || body.strip_suffix(':').is_some_and(|key| {
                !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
        safe.then(|| format!("{}{SENSITIVE}", sanitize(&prefix)))
    }
}

/// Replaces control characters other than tab, so a snippet cannot drive a
/// terminal, and cuts overlong lines.
pub(crate) fn sanitize(line: &str) -> String {
    let mut out: String = line
        .chars()
        .take(MAX_SNIPPET)
        .map(|c| {
            if c != '\t' && c.is_control() {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    if line.chars().nth(MAX_SNIPPET).is_some() {
        out.push('…');
    }
    out
}

/// Replaces whatever follows a password-like key (`password: ...`,
/// `root_password: ...`, `hash: ...`) on a line by `(sensitive)`.
fn redact_secret_keys(line: &str) -> String {
    for (i, _) in line.match_indices(':') {
        let before = &line[..i];
        let key_start = before
            .rfind(|c: char| c.is_whitespace() || matches!(c, '{' | ',' | '[' | '-'))
            .map_or(0, |p| p + 1);
        let key = before[key_start..]
            .trim_matches(|c| c == '"' || c == '\'')
            .to_ascii_lowercase();
        if SECRET_KEYS.contains(&key.as_str()) {
            let after = &line[i + 1..];
            let after_trim = after.trim();
            if after_trim.is_empty() || after_trim.starts_with('#') {
                continue;
            }
            return format!("{}: {SENSITIVE}", &line[..i]);
        }
    }
    line.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_full() {
        let d = Diagnostic {
            file: "spec.yaml".into(),
            line: Some(3),
            column: Some(16),
            field: Some("machines.web.packages[0]".into()),
            message: "bad".into(),
            snippet: Some("    packages: [-x, y]".into()),
        };
        assert_eq!(
            d.to_string(),
            "spec.yaml:3:16: machines.web.packages[0]: bad\n  |\n3 |     packages: [-x, y]\n  |                ^^"
        );
    }

    #[test]
    fn display_minimal() {
        let d = Diagnostic::file_level(Path::new("dir"), "no *.yaml files in dir");
        assert_eq!(d.to_string(), "dir: no *.yaml files in dir");
    }

    #[test]
    fn tabs_expand_and_caret_follows() {
        let d = Diagnostic {
            file: "f".into(),
            line: Some(1),
            column: Some(2),
            field: None,
            message: "m".into(),
            snippet: Some("\ta: \"x y\"".into()),
        };
        let s = d.to_string();
        assert!(s.ends_with("1 |     a: \"x y\"\n  |     ^"), "{s}");
    }

    #[test]
    fn secrets_redacted() {
        assert_eq!(
            redact_secret_keys("    root_password: r00tpw"),
            "    root_password: (sensitive)"
        );
        assert_eq!(
            redact_secret_keys("  x: {password: r00tpw}"),
            "  x: {password: (sensitive)"
        );
        assert_eq!(
            redact_secret_keys("    root_password:"),
            "    root_password:"
        );
        assert_eq!(redact_secret_keys("  distro: debian"), "  distro: debian");
        assert_eq!(
            redact_secret_keys("    credentials: {db: hunter2"),
            "    credentials: (sensitive)"
        );
    }

    #[test]
    fn sensitive_lines() {
        let text =
            "a:\n  root_password: r00tpw\n  root_password: {plain: r00tpw, password: r00tpw}\n";
        let src = SourceText::new(Path::new("f"), text);
        assert_eq!(
            src.sensitive_line(2, 18).as_deref(),
            Some("  root_password: (sensitive)")
        );
        assert_eq!(src.sensitive_line(3, 44), None);
        assert!(!src.line(3).unwrap_or_default().contains("r00tpw"));
    }

    #[test]
    fn control_chars_sanitised() {
        assert_eq!(sanitize("a\u{1b}[2Jb\tc"), "a\u{fffd}[2Jb\tc");
    }
}
