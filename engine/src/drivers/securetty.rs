//! `/etc/securetty`: entries that must be present.

/// The entries of a securetty file (comments and blank lines skipped).
pub fn entries(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// The wanted entries missing from `current` (None: the file does not exist).
pub fn missing<'a>(current: Option<&str>, wanted: &'a [String]) -> Vec<&'a str> {
    let have = current.map(entries).unwrap_or_default();
    wanted
        .iter()
        .map(String::as_str)
        .filter(|w| !have.contains(w))
        .collect()
}

/// `current` with `add` appended, one per line, keeping everything else.
pub fn with_entries(current: Option<&str>, add: &[&str]) -> String {
    let mut out = current.unwrap_or("").to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for entry in add {
        out.push_str(entry);
        out.push('\n');
    }
    out
}

/// `current` without the lines whose entry is one of `remove`, keeping
/// everything else (comments, blank lines, other entries) as it is.
pub fn without_entries(current: &str, remove: &[&str]) -> String {
    let mut out = String::with_capacity(current.len());
    for line in current.split_inclusive('\n') {
        let entry = line.trim();
        if !entry.starts_with('#') && remove.contains(&entry) {
            continue;
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_only_missing_entries() {
        let wanted = vec!["pts/0".to_string(), "console".to_string()];
        let current = "# comment\nconsole\ntty1";
        let add = missing(Some(current), &wanted);
        assert_eq!(add, vec!["pts/0"]);
        assert_eq!(
            with_entries(Some(current), &add),
            "# comment\nconsole\ntty1\npts/0\n"
        );
        assert_eq!(missing(None, &wanted), vec!["pts/0", "console"]);
        assert_eq!(with_entries(None, &["pts/0"]), "pts/0\n");
    }

    #[test]
    fn removes_only_the_named_entries() {
        let current = "# pts/0 stays in a comment\nconsole\npts/0\ntty1\npts/1";
        assert_eq!(
            without_entries(current, &["pts/0", "pts/1"]),
            "# pts/0 stays in a comment\nconsole\ntty1\n"
        );
        assert_eq!(without_entries(current, &[]), current);
    }
}
