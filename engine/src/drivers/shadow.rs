//! `/etc/shadow`: read the root hash, replace it keeping every other line
//! and field exactly as it was.

/// The password field of root's line, if there is one.
/// Lines are split exactly as [`with_root_hash`] splits them, and only a line
/// starting `root:` is root's (a bare `root` line is not: found by fuzzing,
/// it made berth append a root line on every apply and never converge).
pub fn root_hash(shadow: &str) -> Option<&str> {
    shadow.split('\n').find_map(|line| {
        line.strip_prefix("root:")
            .map(|rest| rest.split(':').next().unwrap_or(""))
    })
}

/// `shadow` with root's password field set to `hash` (and the last-change
/// field set to `days_since_epoch`). Every other line and field is kept
/// byte for byte; a missing root line is appended.
pub fn with_root_hash(shadow: &str, hash: &str, days_since_epoch: u64) -> String {
    let mut out = String::with_capacity(shadow.len() + hash.len());
    let mut found = false;
    for line in shadow.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        if !found && body.split(':').next() == Some("root") && body.contains(':') {
            found = true;
            let mut fields: Vec<&str> = body.split(':').collect();
            let days = days_since_epoch.to_string();
            if fields.len() > 1 {
                fields[1] = hash;
            }
            if fields.len() > 2 {
                fields[2] = &days;
            }
            out.push_str(&fields.join(":"));
            // A last line without a newline gets one; shadow is line-oriented.
            out.push('\n');
            let _ = newline;
        } else {
            out.push_str(body);
            out.push_str(newline);
        }
    }
    if !found {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("root:{hash}:{days_since_epoch}:0:99999:7:::\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHADOW: &str = "root:*:20000:0:99999:7:::\ndaemon:*:20000:0:99999:7:::\n";

    #[test]
    fn reads_root_hash() {
        assert_eq!(root_hash(SHADOW), Some("*"));
        assert_eq!(root_hash("daemon:x:1::::::\n"), None);
        assert_eq!(root_hash("rootx:$6$a$b:1::::::\n"), None);
    }

    #[test]
    fn replaces_only_roots_hash_and_date() {
        let out = with_root_hash(SHADOW, "$6$salt$hash", 20500);
        assert_eq!(
            out,
            "root:$6$salt$hash:20500:0:99999:7:::\ndaemon:*:20000:0:99999:7:::\n"
        );
        assert_eq!(root_hash(&out), Some("$6$salt$hash"));
    }

    #[test]
    fn a_bare_root_line_is_not_roots_entry_and_a_rewrite_converges() {
        // fuzz/artifacts/state_readers: `root` without a colon.
        for text in ["root", "root\n", "root\r\nroot:*:1::::::\n", "x:y\nroot"] {
            let updated = with_root_hash(text, "$6$s$h", 20_000);
            assert_eq!(root_hash(&updated), Some("$6$s$h"), "{text:?}");
            let again = with_root_hash(&updated, "$6$s$h", 20_000);
            assert_eq!(again, updated, "{text:?}: a second write changed the file");
        }
        assert_eq!(root_hash("root"), None);
        assert_eq!(root_hash("rootx:y"), None);
    }

    #[test]
    fn appends_missing_root_line() {
        let out = with_root_hash("daemon:*:1:0:99999:7:::", "$6$a$b", 5);
        assert_eq!(out, "daemon:*:1:0:99999:7:::\nroot:$6$a$b:5:0:99999:7:::\n");
    }
}
