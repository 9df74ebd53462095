//! `credentials:`: systemd credential names.

use super::messages::quote;

/// Longest credential name (a file name under `$CREDENTIALS_DIRECTORY`).
const MAX_CREDENTIAL: usize = 255;

/// A systemd credential name: 1–255 of `[A-Za-z0-9_.-]`, not `.` or `..`
/// (it is a file name under `$CREDENTIALS_DIRECTORY`).
pub(crate) fn credential_name(name: &str) -> Result<(), String> {
    let q = quote(name);
    if name.is_empty() {
        return Err("credential name is empty".to_owned());
    }
    let len = name.chars().count();
    if len > MAX_CREDENTIAL {
        return Err(format!(
            "credential name is {len} characters long; at most {MAX_CREDENTIAL} are allowed"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "credential name {q} contains {}, which is not allowed (allowed: letters, digits, `_ . -`)",
            quote(&c.to_string())
        ));
    }
    if name == "." || name == ".." {
        return Err(format!(
            "credential name {q} is not a file name: services read credentials as files of $CREDENTIALS_DIRECTORY"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_names() {
        for ok in ["db-password", "a", "A.b_c-9", "..a", "-x", &"x".repeat(255)] {
            assert!(credential_name(ok).is_ok(), "{ok}");
        }
        for (bad, part) in [
            ("", "is empty"),
            (".", "not a file name"),
            ("..", "not a file name"),
            ("a/b", "contains `/`"),
            ("a b", "contains ` `"),
            ("a\nb", "contains `\\n`"),
            ("é", "contains `é`"),
        ] {
            let msg = credential_name(bad).expect_err(bad);
            assert!(msg.contains(part), "{bad:?}: {msg}");
        }
        assert!(credential_name(&"x".repeat(256)).is_err());
    }
}
