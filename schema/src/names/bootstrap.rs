//! What bootstraps a machine: package names, the release, the mirror,
//! debootstrap/mmdebstrap variants and components, dnf repositories and
//! pacstrap's pacman.conf.

use super::messages::quote;
use super::{Token, check_token, local_file};

/// Longest package name accepted.
pub(crate) const MAX_PACKAGE: usize = 128;

/// Longest release name accepted.
pub(crate) const MAX_RELEASE: usize = 64;

/// Longest mirror URL accepted.
pub(crate) const MAX_MIRROR: usize = 2048;

/// Longest bootstrap variant or component name accepted.
pub(crate) const MAX_DEB_WORD: usize = 32;

/// Longest dnf repository id accepted.
pub(crate) const MAX_REPO_ID: usize = 64;

/// A package name: `[A-Za-z0-9][A-Za-z0-9+._@:~-]*`.
pub(crate) fn package(name: &str) -> Result<(), String> {
    check_token(
        name,
        &Token {
            what: "package name",
            max: MAX_PACKAGE,
            allowed: |c| {
                c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '_' | '@' | ':' | '~' | '-')
            },
            allowed_desc: "letters, digits, `+ . _ @ : ~ -`",
            path_like: false,
        },
    )?;
    first_alnum("package name", name)
}

/// A release: `[A-Za-z0-9][A-Za-z0-9._-]*`, at most 64 characters.
pub(crate) fn release(name: &str) -> Result<(), String> {
    check_token(
        name,
        &Token {
            what: "release",
            max: MAX_RELEASE,
            allowed: |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'),
            allowed_desc: "letters, digits, `. _ -`",
            path_like: false,
        },
    )?;
    first_alnum("release", name)
}

/// Refuses a value whose first character is not a letter or digit.
fn first_alnum(what: &str, name: &str) -> Result<(), String> {
    match name.chars().next() {
        Some(c) if c.is_ascii_alphanumeric() => Ok(()),
        _ => Err(format!(
            "{what} {} must start with a letter or digit",
            quote(name)
        )),
    }
}

/// A mirror URL: `http://HOST...`, `https://HOST...` or `file:/PATH`, with no
/// whitespace or control characters.
pub(crate) fn mirror(url: &str) -> Result<(), String> {
    base_url("mirror", url)
}

/// A dnf repository URL: like a mirror, and without `,` (dnf's
/// `--repofrompath=ID,URL` splits at the first one).
pub(crate) fn repo_url(url: &str) -> Result<(), String> {
    base_url("repository url", url)?;
    if url.contains(',') {
        return Err(format!(
            "repository url {} contains `,`, which dnf's --repofrompath=ID,URL cannot take (write it as %2C)",
            quote(url)
        ));
    }
    Ok(())
}

/// An `http://HOST...`, `https://HOST...` or `file:/PATH` URL, with no
/// whitespace or control characters; `what` names it in messages.
fn base_url(what: &str, url: &str) -> Result<(), String> {
    let q = quote(url);
    if url.is_empty() {
        return Err(format!("{what} is empty"));
    }
    let len = url.chars().count();
    if len > MAX_MIRROR {
        return Err(format!(
            "{what} is {len} characters long; at most {MAX_MIRROR} are allowed"
        ));
    }
    if url.chars().any(char::is_control) {
        return Err(format!("{what} {q} contains a control character"));
    }
    if url.chars().any(char::is_whitespace) {
        return Err(format!("{what} {q} contains whitespace"));
    }
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if url.starts_with("file:/") {
        return Ok(());
    } else {
        return Err(format!(
            "{what} {q} must be an `http://`, `https://` or `file:/` URL"
        ));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("{what} {q} has no host"));
    }
    Ok(())
}

/// A pacman.conf path: non-empty, no NUL or line breaks.
pub(crate) fn pacman_conf(path: &str) -> Result<(), String> {
    local_file("pacman_conf", path)
}

/// A debootstrap/mmdebstrap word (`--variant`, a component):
/// `[a-z][a-z0-9-]*`, at most [`MAX_DEB_WORD`] characters.
fn deb_word(what: &'static str, value: &str) -> Result<(), String> {
    check_token(
        value,
        &Token {
            what,
            max: MAX_DEB_WORD,
            allowed: |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
            allowed_desc: "lowercase letters, digits, `-`",
            path_like: false,
        },
    )?;
    match value.chars().next() {
        Some(c) if c.is_ascii_lowercase() => Ok(()),
        _ => Err(format!(
            "{what} {} must start with a lowercase letter",
            quote(value)
        )),
    }
}

/// A bootstrap variant (`minbase`, `buildd`, ...).
pub(crate) fn variant(value: &str) -> Result<(), String> {
    deb_word("bootstrap variant", value)
}

/// An archive component (`main`, `universe`, ...).
pub(crate) fn component(value: &str) -> Result<(), String> {
    deb_word("component", value)
}

/// A dnf repository id: `[A-Za-z0-9][A-Za-z0-9._:-]*`, at most [`MAX_REPO_ID`].
pub(crate) fn repo_id(id: &str) -> Result<(), String> {
    check_token(
        id,
        &Token {
            what: "repository id",
            max: MAX_REPO_ID,
            allowed: |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'),
            allowed_desc: "letters, digits, `. _ : -`",
            path_like: false,
        },
    )?;
    first_alnum("repository id", id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages() {
        for ok in [
            "systemd",
            "libc6:amd64",
            "g++",
            "foo~1",
            "python3.11",
            "x@y",
        ] {
            assert!(package(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-oAPT::x", "a b", "../x", "a/b", "+x", ".x", "a\tb", "a..b",
        ] {
            assert!(package(bad).is_err(), "{bad}");
        }
        let msg = package("-oAPT::x").expect_err("refused");
        assert!(msg.contains("option"), "{msg}");
    }

    #[test]
    fn releases() {
        for ok in ["bookworm", "24.04", "40", "rawhide", "jammy-updates"] {
            assert!(release(ok).is_ok(), "{ok}");
        }
        for bad in ["", "--foo", "a/b", "..", "a b", "_x", &"a".repeat(65)] {
            assert!(release(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mirrors() {
        for ok in [
            "http://deb.debian.org/debian",
            "https://mirror.example/x",
            "file:/srv/mirror",
            "file:///srv/mirror",
        ] {
            assert!(mirror(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ftp://x",
            "-http://x",
            "http://",
            "http://a b",
            "http://a\tb",
            "/srv/mirror",
        ] {
            assert!(mirror(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bootstrap_words_and_repos() {
        assert!(variant("minbase").is_ok() && component("non-free-firmware").is_ok());
        for bad in ["", "Main", "1x", "-x", "a/b", "a b", &"a".repeat(33)] {
            assert!(component(bad).is_err(), "{bad}");
        }
        assert!(repo_id("updates:x86_64.1").is_ok());
        for bad in ["", "a b", "-a", ".a", "a/b", &"a".repeat(65)] {
            assert!(repo_id(bad).is_err(), "{bad}");
        }
        assert!(repo_url("https://example.org/f/40").is_ok());
        assert!(repo_url("file:///srv/repo").is_ok());
        for bad in ["", "http://a,b", "ftp://a", "http://", "http://a b"] {
            assert!(repo_url(bad).is_err(), "{bad}");
        }
    }
}
