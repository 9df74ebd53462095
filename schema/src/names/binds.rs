//! `binds:`: host and machine paths.

use super::messages::quote;

/// Longest bind path accepted (`PATH_MAX`).
pub(crate) const MAX_BIND_PATH: usize = 4096;

/// A bind path (`what` is `host path` or `machine path`): absolute, no `..`
/// component, no `:` (nspawn's `Bind=` separator), no `\`, no whitespace or
/// control characters, at most [`MAX_BIND_PATH`] bytes.
pub(crate) fn bind_path(what: &str, path: &str) -> Result<(), String> {
    let q = quote(path);
    if path.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if path.len() > MAX_BIND_PATH {
        return Err(format!("{what} is longer than {MAX_BIND_PATH} bytes"));
    }
    if path.chars().any(char::is_control) {
        return Err(format!("{what} {q} contains a control character"));
    }
    if path.chars().any(char::is_whitespace) {
        return Err(format!("{what} {q} contains whitespace"));
    }
    if !path.starts_with('/') {
        return Err(format!("{what} {q} must be absolute (start with `/`)"));
    }
    if path.split('/').any(|s| s == "..") {
        return Err(format!("{what} {q} contains a `..` component"));
    }
    if path.contains(':') {
        return Err(format!(
            "{what} {q} contains `:`, which systemd-nspawn's Bind= uses as a separator"
        ));
    }
    if path.contains('\\') {
        return Err(format!(
            "{what} {q} contains `\\`, which systemd-nspawn would read as an escape"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_paths() {
        for ok in ["/", "/srv/www", "/srv/www/", "/a/./b", "/é"] {
            assert!(bind_path("host path", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "srv",
            "./srv",
            "/a/../b",
            "/..",
            "/a:b",
            "/a b",
            "/a\nb",
            "/a\\b",
            &format!("/{}", "a".repeat(4096)),
        ] {
            assert!(bind_path("host path", bad).is_err(), "{bad:?}");
        }
    }
}
