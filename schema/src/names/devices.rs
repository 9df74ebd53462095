//! `devices:`: device node paths and access letters.

use std::path::PathBuf;

use super::binds::MAX_BIND_PATH;
use super::messages::quote;

/// The access letters, in the order they are stored.
const ACCESS_LETTERS: [char; 3] = ['r', 'w', 'm'];

/// A device path: absolute, under `/dev/`, no `..` and no empty component
/// (`//`, a trailing `/`), no `:` or `\` (nspawn's `Bind=` would read them),
/// no whitespace or control characters. Returned with `.` components dropped.
pub(crate) fn device_path(path: &str) -> Result<PathBuf, String> {
    let q = quote(path);
    const WHAT: &str = "device path";
    if path.is_empty() {
        return Err(format!("{WHAT} is empty"));
    }
    if path.len() > MAX_BIND_PATH {
        return Err(format!("{WHAT} is longer than {MAX_BIND_PATH} bytes"));
    }
    if path.chars().any(char::is_control) {
        return Err(format!("{WHAT} {q} contains a control character"));
    }
    if path.chars().any(char::is_whitespace) {
        return Err(format!("{WHAT} {q} contains whitespace"));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!(
            "{WHAT} {q} must be absolute, under `/dev/` (e.g. `/dev/fuse`)"
        ));
    };
    if path.contains(':') {
        return Err(format!(
            "{WHAT} {q} contains `:`, which systemd-nspawn's Bind= uses as a separator"
        ));
    }
    if path.contains('\\') {
        return Err(format!(
            "{WHAT} {q} contains `\\`, which systemd-nspawn would read as an escape"
        ));
    }
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.contains(&"..") {
        return Err(format!("{WHAT} {q} contains a `..` component"));
    }
    if parts.contains(&"") {
        return Err(format!(
            "{WHAT} {q} contains an empty component (`//` or a trailing `/`)"
        ));
    }
    let kept: Vec<&str> = parts.into_iter().filter(|p| *p != ".").collect();
    match kept.as_slice() {
        ["dev", _, ..] => Ok(PathBuf::from(format!("/{}", kept.join("/")))),
        ["dev"] => Err(format!(
            "{WHAT} {q} is `/dev` itself: name a device node under it (e.g. `/dev/fuse`)"
        )),
        _ => Err(format!(
            "{WHAT} {q} is not under `/dev/`: only device nodes can be made available (e.g. `/dev/fuse`)"
        )),
    }
}

/// A device's access: a non-empty subset of `r` (read), `w` (write), `m`
/// (mknod), each at most once; returned in `rwm` order.
pub(crate) fn device_access(access: &str) -> Result<String, String> {
    let q = quote(access);
    if access.is_empty() {
        return Err(
            "device access is empty: give some of `r` (read), `w` (write), `m` (mknod), or leave it out for `rwm`"
                .to_owned(),
        );
    }
    let mut seen = [false; 3];
    for c in access.chars() {
        let Some(i) = ACCESS_LETTERS.iter().position(|&l| l == c) else {
            return Err(format!(
                "device access {q} contains {}: only `r` (read), `w` (write) and `m` (mknod) are allowed",
                quote(&c.to_string())
            ));
        };
        if let Some(slot) = seen.get_mut(i) {
            if *slot {
                return Err(format!("device access {q} gives `{c}` twice"));
            }
            *slot = true;
        }
    }
    Ok(ACCESS_LETTERS
        .iter()
        .zip(seen)
        .filter(|(_, on)| *on)
        .map(|(c, _)| *c)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_paths() {
        for (ok, normal) in [
            ("/dev/fuse", "/dev/fuse"),
            ("/dev/net/tun", "/dev/net/tun"),
            ("/dev/./kvm", "/dev/kvm"),
            ("/./dev/dri/card0", "/dev/dri/card0"),
        ] {
            assert_eq!(device_path(ok), Ok(PathBuf::from(normal)), "{ok}");
        }
        for (bad, part) in [
            ("", "is empty"),
            ("dev/fuse", "must be absolute"),
            ("/dev", "`/dev` itself"),
            ("/dev/", "empty component"),
            ("/dev/.", "`/dev` itself"),
            ("/dev//fuse", "empty component"),
            ("/dev/fuse/", "empty component"),
            ("/dev/../etc/passwd", "`..`"),
            ("/dev/net/..", "`..`"),
            ("/sys/class", "not under `/dev/`"),
            ("/devices/x", "not under `/dev/`"),
            ("/dev/a:b", "contains `:`"),
            ("/dev/a\\b", "contains `\\`"),
            ("/dev/a b", "whitespace"),
            ("/dev/a\nb", "control character"),
        ] {
            let msg = device_path(bad).expect_err(bad);
            assert!(msg.contains(part), "{bad:?}: {msg}");
        }
    }

    #[test]
    fn access() {
        for (ok, normal) in [
            ("rwm", "rwm"),
            ("mwr", "rwm"),
            ("r", "r"),
            ("wr", "rw"),
            ("m", "m"),
        ] {
            assert_eq!(device_access(ok).as_deref(), Ok(normal), "{ok}");
        }
        for (bad, part) in [
            ("", "is empty"),
            ("rr", "gives `r` twice"),
            ("rx", "contains `x`"),
            ("RW", "contains `R`"),
            ("r w", "contains ` `"),
        ] {
            let msg = device_access(bad).expect_err(bad);
            assert!(msg.contains(part), "{bad:?}: {msg}");
        }
    }
}
