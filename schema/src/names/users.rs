//! `users:`: login and group names, shells, and SSH authorized keys (also
//! root's, the machine's `ssh_authorized_keys`).

use super::messages::quote;
use super::{MAX_FILE, Token, check_token};

/// Longest user or group name (shadow-utils' default `LOGIN_NAME_MAX` use).
pub(crate) const MAX_NAME: usize = 32;

/// Longest authorized_keys line accepted: 16 KiB.
const MAX_KEY_LINE: usize = 16 * 1024;

/// Key types sshd accepts in an authorized_keys line.
pub(crate) const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// A name under `users:`: `[a-z_][a-z0-9_-]*$?`, at most 32 characters,
/// not `root` (root's password is `root_password`, its keys the machine's
/// `ssh_authorized_keys`).
pub(crate) fn login_name(name: &str) -> Result<(), String> {
    account_name("user name", name, false)?;
    if name == "root" {
        return Err(
            "root is not managed under users: its password is the machine's root_password and \
             its SSH keys the machine's ssh_authorized_keys"
                .to_owned(),
        );
    }
    Ok(())
}

/// A group name (`what`: `group name`, `owner name`): `[a-z_][a-z0-9_.-]*$?`,
/// at most 32 characters.
pub(crate) fn group_name(what: &'static str, name: &str) -> Result<(), String> {
    account_name(what, name, true)
}

/// A user or group name: `[a-z_]`, then `[a-z0-9_-]` (and `.` if `dot`),
/// then `$` at most once at the end; at most 32 characters.
fn account_name(what: &'static str, name: &str, dot: bool) -> Result<(), String> {
    let token = if dot {
        Token {
            what,
            max: MAX_NAME,
            allowed: |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-' | '$')
            },
            allowed_desc: "lowercase letters, digits, `_ . -`, and `$` at the end",
            path_like: false,
        }
    } else {
        Token {
            what,
            max: MAX_NAME,
            allowed: |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '$')
            },
            allowed_desc: "lowercase letters, digits, `_`, `-`, and `$` at the end",
            path_like: false,
        }
    };
    check_token(name, &token)?;
    let q = quote(name);
    if !name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
    {
        return Err(format!(
            "{what} {q} must start with a lowercase letter or `_`"
        ));
    }
    if name.trim_end_matches('$').contains('$') || name.ends_with("$$") {
        return Err(format!("{what} {q} may only end with `$`, not contain it"));
    }
    Ok(())
}

/// A login shell: an absolute path, no `:` (the /etc/passwd separator), no
/// whitespace or control character, at most [`MAX_FILE`] bytes.
pub(crate) fn shell(path: &str) -> Result<(), String> {
    let q = quote(path);
    if path.is_empty() {
        return Err("shell is empty".to_owned());
    }
    if path.len() > MAX_FILE {
        return Err(format!("shell is longer than {MAX_FILE} bytes"));
    }
    if path.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "shell {q} contains whitespace or a control character"
        ));
    }
    if !path.starts_with('/') {
        return Err(format!(
            "shell {q} must be an absolute path (such as `/bin/bash`)"
        ));
    }
    if path.contains(':') {
        return Err(format!(
            "shell {q} contains `:`, which separates the fields of /etc/passwd"
        ));
    }
    Ok(())
}

/// A home directory: no `:` (the /etc/passwd separator); the path itself is
/// checked by `files::absolute_path`.
pub(crate) fn home(path: &str) -> Result<(), String> {
    if path.contains(':') {
        return Err(format!(
            "home {} contains `:`, which separates the fields of /etc/passwd",
            quote(path)
        ));
    }
    Ok(())
}

/// Whether `line` holds a private key, which must never be shown or kept.
pub(crate) fn is_private_key(line: &str) -> bool {
    line.contains("PRIVATE KEY")
}

/// An authorized_keys line: one line (no control character), at most 16
/// KiB, with a key type of [`KEY_TYPES`] (possibly after options) followed
/// by the base64 key. A private key is refused without being echoed.
pub(crate) fn ssh_key(line: &str) -> Result<(), String> {
    if is_private_key(line) {
        return Err(
            "this is a private key: never put one in a spec; give the public key (the line of the `.pub` file)"
                .to_owned(),
        );
    }
    let q = quote(line);
    if line.trim().is_empty() {
        return Err("SSH key is empty".to_owned());
    }
    if line.trim_start().starts_with('#') {
        return Err(format!(
            "SSH key {q} is a comment: give the key line itself"
        ));
    }
    if line.len() > MAX_KEY_LINE {
        return Err(format!(
            "SSH key is longer than {} KiB",
            MAX_KEY_LINE / 1024
        ));
    }
    if line.chars().any(char::is_control) {
        return Err(format!(
            "SSH key {q} contains a line break or another control character: give one key per list item"
        ));
    }
    let tokens: Vec<&str> = line.split(' ').filter(|t| !t.is_empty()).collect();
    let Some(at) = tokens.iter().position(|t| KEY_TYPES.contains(t)) else {
        return Err(format!(
            "SSH key {q} has no key type: expected a line such as `ssh-ed25519 AAAA... user@host` \
             (the line of a `.pub` file; types: {})",
            KEY_TYPES.join(", ")
        ));
    };
    let base64 = tokens.get(at + 1).is_some_and(|key| {
        key.trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    });
    if !base64 {
        return Err(format!(
            "SSH key {q} has no base64 key after its type `{}`",
            tokens.get(at).copied().unwrap_or_default()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_names() {
        for ok in [
            "alice",
            "svc",
            "_apt",
            "www-data",
            "a1",
            "host$",
            &"a".repeat(32),
        ] {
            assert!(login_name(ok).is_ok(), "{ok}");
        }
        for (bad, part) in [
            ("", "is empty"),
            ("root", "root_password"),
            ("Alice", "contains `A`"),
            ("1alice", "must start with a lowercase letter or `_`"),
            ("-x", "could be read as an option"),
            ("a.b", "contains `.`"),
            ("a$b", "only end with `$`"),
            ("a$$", "only end with `$`"),
            ("a b", "whitespace"),
            ("a/b", "`/`"),
            ("a\nb", "control character"),
        ] {
            let msg = login_name(bad).expect_err(bad);
            assert!(msg.contains(part), "{bad:?}: {msg}");
        }
        assert!(login_name(&"a".repeat(33)).is_err());
    }

    #[test]
    fn group_names() {
        for ok in ["sudo", "www-data", "a.b", "_x", "g$"] {
            assert!(group_name("group name", ok).is_ok(), "{ok}");
        }
        for (bad, part) in [
            ("Sudo", "group name `Sudo` contains `S`"),
            ("9x", "group name `9x` must start"),
            ("", "group name is empty"),
            ("a..b", "`..`"),
        ] {
            let msg = group_name("group name", bad).expect_err(bad);
            assert!(msg.contains(part), "{bad:?}: {msg}");
        }
    }

    #[test]
    fn shells_and_homes() {
        assert!(shell("/bin/bash").is_ok() && shell("/usr/sbin/nologin").is_ok());
        for bad in ["", "bash", "/bin/ba sh", "/bin/a:b", "/bin/a\nb"] {
            assert!(shell(bad).is_err(), "{bad:?}");
        }
        assert!(home("/home/alice").is_ok());
        assert!(home("/home/a:b").is_err());
    }

    #[test]
    fn ssh_keys() {
        for ok in [
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB alice@laptop",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB",
            "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== bob",
            "ecdsa-sha2-nistp256 AAAAE2VjZHNh+/x=",
            "sk-ssh-ed25519@openssh.com AAAAGnNr",
            "sk-ecdsa-sha2-nistp256@openssh.com AAAAInNr x@y",
            "from=\"10.0.0.0/8\",no-pty ssh-ed25519 AAAAC3Nz a b c",
        ] {
            assert!(ssh_key(ok).is_ok(), "{ok}");
        }
        for (bad, part) in [
            ("", "is empty"),
            ("   ", "is empty"),
            ("AAAAC3NzaC1lZDI1NTE5 alice", "has no key type"),
            ("ssh-ed25519", "no base64 key after its type `ssh-ed25519`"),
            ("ssh-ed25519 not*base64", "no base64 key"),
            (
                "ssh-ed25519 AAAA\nssh-rsa AAAA",
                "give one key per list item",
            ),
            ("ssh-ed25519\tAAAA", "control character"),
            ("# ssh-ed25519 is nice", "is a comment"),
        ] {
            let msg = ssh_key(bad).expect_err(bad);
            assert!(msg.contains(part), "{bad:?}: {msg}");
        }
        let long = format!("ssh-rsa {}", "A".repeat(16 * 1024));
        assert!(ssh_key(&long).expect_err("long").contains("16 KiB"));
        let private = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\n";
        let msg = ssh_key(private).expect_err("private");
        assert!(
            !msg.contains("b3Blbn") && msg.contains("private key"),
            "{msg}"
        );
    }
}
