//! Words for messages: quoting a value safely, listing choices, and
//! "did you mean" suggestions.

use std::fmt::Write as _;

/// `value` in backquotes, control characters and non-ASCII whitespace escaped,
/// cut to a readable length.
pub(crate) fn quote(value: &str) -> String {
    const SHOWN: usize = 80;
    let mut out = String::from("`");
    for (i, c) in value.chars().enumerate() {
        if i == SHOWN {
            out.push('…');
            break;
        }
        if c == ' ' || !(c.is_control() || c.is_whitespace()) {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out.push('`');
    out
}

/// Edit distance between two short strings, for "did you mean" hints.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            let del = prev[j + 1] + 1;
            let ins = cur[j] + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest of `candidates` to `word`, if close enough to be a likely
/// typo; a candidate that differs only in ASCII case comes first.
pub(crate) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    if word.chars().count() > 64 {
        return None;
    }
    if let Some(same) = candidates.iter().find(|c| c.eq_ignore_ascii_case(word)) {
        return Some(same);
    }
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `a, b or c` from a list of words.
pub(crate) fn one_of(words: &[&str]) -> String {
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push_str(if i + 1 == words.len() { " or " } else { ", " });
        }
        let _ = write!(out, "`{w}`");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_controls() {
        assert_eq!(quote("a\nb\u{1b}"), "`a\\nb\\u{1b}`");
        assert!(quote(&"x".repeat(200)).ends_with("…`"));
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("pakages", &["packages", "distro"]),
            Some("packages")
        );
        assert_eq!(suggest("zzz", &["packages", "distro"]), None);
        // Case alone: suggested even when far by edit distance.
        assert_eq!(suggest("EXEC", &["Exec", "Files"]), Some("Exec"));
        assert_eq!(
            suggest("privateusersownership", &["PrivateUsersOwnership"]),
            Some("PrivateUsersOwnership")
        );
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
