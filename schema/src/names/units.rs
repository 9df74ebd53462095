//! Unit names under `units:` and the type suffix they get.

use super::messages::quote;
use super::{Token, check_token};

/// Longest unit name systemd accepts (with its suffix).
pub(crate) const MAX_UNIT: usize = 255;

/// Unit type suffixes systemd knows.
pub(crate) const UNIT_SUFFIXES: &[&str] = &[
    "service",
    "socket",
    "target",
    "timer",
    "path",
    "mount",
    "automount",
    "swap",
    "slice",
    "scope",
    "device",
];

/// A unit name as written in the spec (before suffixing): `[A-Za-z0-9:_.\@-]`,
/// not starting with `-`, `.` or `@`, no `/`, at most one `@`.
pub(crate) fn unit(name: &str) -> Result<(), String> {
    check_token(
        name,
        &Token {
            what: "unit name",
            max: MAX_UNIT,
            allowed: |c| {
                c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '.' | '\\' | '@' | '-')
            },
            allowed_desc: "letters, digits, `: _ . \\ @ -`",
            path_like: false,
        },
    )?;
    let q = quote(name);
    if name.starts_with('.') || name.starts_with('@') {
        return Err(format!(
            "unit name {q} must start with a letter, digit, `:`, `_` or `\\`"
        ));
    }
    if name.matches('@').count() > 1 {
        return Err(format!("unit name {q} contains more than one `@`"));
    }
    let full = unit_with_suffix(name);
    if full.len() > MAX_UNIT {
        return Err(format!(
            "unit name {q} is longer than {MAX_UNIT} characters once suffixed"
        ));
    }
    Ok(())
}

/// The unit name with its type suffix: names without a known suffix get `.service`.
pub(crate) fn unit_with_suffix(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, suffix)) if !stem.is_empty() && UNIT_SUFFIXES.contains(&suffix) => {
            name.to_owned()
        }
        _ => format!("{name}.service"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        for ok in [
            "sshd",
            "foo@bar",
            "fstrim.timer",
            "dev-sda1.device",
            "a\\x2db",
        ] {
            assert!(unit(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-rf",
            "../../etc/passwd",
            "a/b",
            "a\nb",
            ".hidden",
            "@x",
            "a@b@c",
            "a b",
            &"a".repeat(250),
        ] {
            assert!(unit(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unit_suffixes() {
        assert_eq!(unit_with_suffix("sshd"), "sshd.service");
        assert_eq!(unit_with_suffix("foo@bar"), "foo@bar.service");
        assert_eq!(unit_with_suffix("fstrim.timer"), "fstrim.timer");
        assert_eq!(unit_with_suffix("foo.bar"), "foo.bar.service");
        assert_eq!(unit_with_suffix("x.socket"), "x.socket");
        assert_eq!(unit_with_suffix("a.service"), "a.service");
    }
}
