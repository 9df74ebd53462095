//! The machine's identity: its name, its hostname, and the `securetty`
//! entries of its consoles.

use super::messages::quote;
use super::{Token, check_token};

/// Longest machine name systemd accepts.
pub(crate) const MAX_MACHINE_NAME: usize = 64;

/// Longest hostname (Linux `HOST_NAME_MAX`).
pub(crate) const MAX_HOSTNAME: usize = 64;

/// Longest securetty entry accepted.
pub(crate) const MAX_SECURETTY: usize = 64;

/// A machine name: 1–64 of `[A-Za-z0-9._-]`, not starting with `-` or `.`, no `..`.
pub(crate) fn machine_name(name: &str) -> Result<(), String> {
    check_token(
        name,
        &Token {
            what: "machine name",
            max: MAX_MACHINE_NAME,
            allowed: |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'),
            allowed_desc: "letters, digits, `.`, `_`, `-`",
            path_like: false,
        },
    )?;
    if name.starts_with('.') {
        return Err(format!("machine name {} starts with `.`", quote(name)));
    }
    Ok(())
}

/// A hostname (RFC 1123): dot-separated labels of 1–63 `[A-Za-z0-9-]`, not
/// starting or ending with `-`, at most 64 characters in all.
pub(crate) fn hostname(name: &str) -> Result<(), String> {
    let q = quote(name);
    if name.is_empty() {
        return Err("hostname is empty".to_owned());
    }
    let len = name.chars().count();
    if len > MAX_HOSTNAME {
        return Err(format!(
            "hostname is {len} characters long; at most {MAX_HOSTNAME} are allowed"
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("hostname {q} has an empty label"));
        }
        if label.len() > 63 {
            return Err(format!(
                "hostname {q} has a label longer than 63 characters"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(format!(
                "hostname {q} contains {}, which is not allowed (allowed: letters, digits, `-`, and `.` between labels)",
                quote(&c.to_string())
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "hostname {q} has a label that starts or ends with `-`"
            ));
        }
    }
    Ok(())
}

/// A securetty entry: `[A-Za-z0-9/._:-]`, relative to /dev, no `..` segment.
pub(crate) fn securetty(name: &str) -> Result<(), String> {
    check_token(
        name,
        &Token {
            what: "securetty entry",
            max: MAX_SECURETTY,
            allowed: |c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | ':' | '-'),
            allowed_desc: "letters, digits, `/ . _ : -`",
            path_like: true,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names() {
        for ok in ["web", "web-1", "a.b_c", "A9", &"x".repeat(64)] {
            assert!(machine_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-web",
            ".web",
            "a..b",
            "a/b",
            "a b",
            "a\nb",
            "wéb",
            &"x".repeat(65),
        ] {
            assert!(machine_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hostnames() {
        for ok in ["web", "web-1", "a.example.org", "9x", &"a".repeat(63)] {
            assert!(hostname(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-web",
            "web-",
            "a..b",
            "a.",
            ".a",
            "web_1",
            "a b",
            &"a".repeat(64),
            &format!("{}.{}", "a".repeat(40), "b".repeat(30)),
        ] {
            assert!(hostname(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn securettys() {
        for ok in ["pts/0", "console", "ttyS0", "lxc/console", "hvc0"] {
            assert!(securetty(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/dev/tty1",
            "../x",
            "pts/../x",
            "a b",
            "-x",
            "a//b",
            "a/",
        ] {
            assert!(securetty(bad).is_err(), "{bad}");
        }
    }
}
