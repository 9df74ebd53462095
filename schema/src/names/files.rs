//! `files:`: the paths berth manages in the root, their modes, owners,
//! link targets and inline content.

use std::path::PathBuf;

use super::MAX_FILE;
use super::messages::quote;
use super::users::group_name;

/// Longest path component (`NAME_MAX`).
const MAX_COMPONENT: usize = 255;

/// Trees of the root that are mounted over when the machine boots, with
/// what is mounted there.
const MOUNTED_AT_BOOT: &[(&str, &str)] = &[
    ("/proc", "the kernel's proc filesystem"),
    ("/sys", "the kernel's sysfs"),
    ("/dev", "systemd-nspawn's own /dev"),
    ("/run", "a fresh tmpfs"),
    ("/tmp", "a fresh tmpfs"),
];

/// An absolute, normalised path (`what`: `home`, ...): starts with `/`, no
/// empty (`//`, a trailing `/`), `.` or `..` component, no control
/// character, at most [`MAX_FILE`] bytes, components of at most 255. `/`
/// itself is accepted.
pub(crate) fn absolute_path(what: &str, path: &str) -> Result<PathBuf, String> {
    let q = quote(path);
    if path.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if path.len() > MAX_FILE {
        return Err(format!("{what} is longer than {MAX_FILE} bytes"));
    }
    if path.chars().any(char::is_control) {
        return Err(format!("{what} {q} contains a control character"));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("{what} {q} must be absolute (start with `/`)"));
    };
    if rest.is_empty() {
        return Ok(PathBuf::from("/"));
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let normal = || {
        let kept: Vec<&str> = parts
            .iter()
            .copied()
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        format!("/{}", kept.join("/"))
    };
    if parts.contains(&"..") {
        return Err(format!(
            "{what} {q} contains a `..` component: write the path it stands for"
        ));
    }
    if parts.iter().any(|p| p.is_empty() || *p == ".") {
        return Err(format!(
            "{what} {q} is not normalised (`//`, `/./` or a trailing `/`): write {}",
            quote(&normal())
        ));
    }
    if parts.iter().any(|p| p.len() > MAX_COMPONENT) {
        return Err(format!(
            "{what} {q} has a component longer than {MAX_COMPONENT} bytes"
        ));
    }
    Ok(PathBuf::from(path))
}

/// A path under `files:`: [`absolute_path`], not `/`, and not under a tree
/// that is mounted over at boot (`/proc`, `/sys`, `/dev`, `/run`, `/tmp`),
/// where a file of the root would be hidden.
pub(crate) fn managed_path(path: &str) -> Result<PathBuf, String> {
    let checked = absolute_path("file path", path)?;
    let q = quote(path);
    if path == "/" {
        return Err(format!(
            "file path {q} is the machine's root itself: name a path inside it"
        ));
    }
    for (tree, what) in MOUNTED_AT_BOOT {
        let under = path
            .strip_prefix(tree)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        if under {
            return Err(format!(
                "file path {q} is under `{tree}`, which is not part of the root: {what} is mounted \
                 over it when the machine boots, hiding whatever berth would write there \
                 (for files made at boot, manage a systemd-tmpfiles line in /etc/tmpfiles.d/ instead)"
            ));
        }
    }
    Ok(checked)
}

/// A file mode: a string of 3 or 4 octal digits (`0640`, `755`), at most
/// `07777`; returned as its value.
pub(crate) fn file_mode(mode: &str) -> Result<u32, String> {
    let q = quote(mode);
    let shaped = (3..=4).contains(&mode.len()) && mode.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(mode, 8) {
        Ok(value) if shaped && value <= 0o7777 => Ok(value),
        _ => Err(format!(
            "mode {q} must be 3 or 4 octal digits, such as `\"0640\"` or `\"755\"`"
        )),
    }
}

/// A file's owner or group (`what`: `owner` or `group`): a name
/// (`[a-z_][a-z0-9_.-]*$?`, at most 32) or a numeric id (not 4294967295,
/// which is -1).
pub(crate) fn owner(what: &'static str, value: &str) -> Result<(), String> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return match value.parse::<u32>() {
            Ok(id) if id != u32::MAX => Ok(()),
            _ => Err(format!(
                "{what} {} is not a valid numeric id (0–4294967294)",
                quote(value)
            )),
        };
    }
    let name = if what == "owner" {
        "owner name"
    } else {
        "group name"
    };
    group_name(name, value).map_err(|why| format!("{why}; or give a numeric id"))
}

/// A symbolic link's target: absolute or relative, not empty, no control
/// character, at most [`MAX_FILE`] bytes.
pub(crate) fn link_target(target: &str) -> Result<(), String> {
    if target.is_empty() {
        return Err("link target is empty".to_owned());
    }
    if target.len() > MAX_FILE {
        return Err(format!("link target is longer than {MAX_FILE} bytes"));
    }
    if target.chars().any(char::is_control) {
        return Err(format!(
            "link target {} contains a control character",
            quote(target)
        ));
    }
    Ok(())
}

/// Inline content: any text without NUL. Never echoes the content.
pub(crate) fn content(text: &str) -> Result<(), String> {
    if text.contains('\0') {
        return Err(
            "content contains a NUL character: give binary files with source: instead".to_owned(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_paths() {
        for ok in [
            "/etc/motd",
            "/etc/nginx/conf.d/site.conf",
            "/srv/www",
            "/a b/c:d",
            "/etc/é",
            "/runner",
            "/devices",
            "/var/tmp/x",
            "/.hidden",
            "/a/..b",
        ] {
            assert_eq!(managed_path(ok), Ok(PathBuf::from(ok)), "{ok}");
        }
        for (bad, part) in [
            ("", "is empty"),
            ("etc/motd", "must be absolute"),
            ("./etc", "must be absolute"),
            ("/", "the machine's root itself"),
            ("//", "not normalised"),
            ("/etc//motd", "write `/etc/motd`"),
            ("/etc/motd/", "write `/etc/motd`"),
            ("/etc/./motd", "write `/etc/motd`"),
            ("/etc/../shadow", "`..` component"),
            ("/..", "`..` component"),
            ("/etc/a\nb", "control character"),
            ("/etc/a\u{85}b", "control character"),
            ("/proc", "is under `/proc`"),
            ("/proc/sys/x", "is under `/proc`"),
            ("/sys/x", "the kernel's sysfs"),
            ("/dev/null", "systemd-nspawn's own /dev"),
            ("/run/x", "a fresh tmpfs"),
            ("/tmp", "is under `/tmp`"),
            ("/tmp/a/b", "/etc/tmpfiles.d/"),
        ] {
            let msg = managed_path(bad).expect_err(bad);
            assert!(msg.contains(part), "{bad:?}: {msg}");
        }
        let long = format!("/{}", "a".repeat(256));
        assert!(managed_path(&long).is_err());
        let deep = "/a".repeat(2049);
        assert!(managed_path(&deep).is_err());
        assert_eq!(absolute_path("home", "/"), Ok(PathBuf::from("/")));
    }

    #[test]
    fn modes() {
        for (ok, value) in [
            ("0640", 0o640),
            ("755", 0o755),
            ("0000", 0),
            ("7777", 0o7777),
            ("1777", 0o1777),
            ("000", 0),
        ] {
            assert_eq!(file_mode(ok), Ok(value), "{ok}");
        }
        for bad in [
            "",
            "64",
            "06400",
            "0648",
            "rw-r--r--",
            "0x1f",
            "+644",
            "-644",
            " 644",
            "u+x",
        ] {
            let msg = file_mode(bad).expect_err(bad);
            assert!(msg.contains("3 or 4 octal digits"), "{bad:?}: {msg}");
        }
    }

    #[test]
    fn owners() {
        for ok in [
            "root",
            "www-data",
            "_apt",
            "a.b",
            "machine$",
            "0",
            "33",
            "4294967294",
        ] {
            assert!(owner("owner", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Root",
            "1abc",
            "-x",
            "a b",
            "a$b",
            "4294967295",
            "99999999999",
            "a\nb",
            &"a".repeat(33),
        ] {
            assert!(owner("group", bad).is_err(), "{bad:?}");
        }
        assert!(
            owner("owner", "4294967295")
                .expect_err("-1")
                .contains("0–4294967294")
        );
    }

    #[test]
    fn links_and_content() {
        for ok in ["/usr/share/zoneinfo/UTC", "../lib/x", "x", "a b"] {
            assert!(link_target(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a\nb", "\u{1b}[2J"] {
            assert!(link_target(bad).is_err(), "{bad:?}");
        }
        assert!(content("").is_ok() && content("a\n\tb\r\n").is_ok());
        let msg = content("s3cr3t\0").expect_err("NUL");
        assert!(!msg.contains("s3cr3t"), "{msg}");
    }
}
