//! Secret sources: crypt(3) hashes, variable names and files, for
//! `root_password`, a user's `password`, a file's `secret` and
//! `credentials`. No message here ever echoes the value; `what` names the
//! source in messages (`root_password.hash`).

use super::{MAX_ENV, local_file};

/// Longest crypt(3) hash accepted.
const MAX_HASH: usize = 512;

/// crypt(3) method identifiers accepted in a `hash:` source.
const CRYPT_IDS: &[&str] = &[
    "1", "5", "6", "y", "gy", "7", "2a", "2b", "2y", "sha1", "md5",
];

/// A crypt(3) hash: `$ID$SALT$HASH` (or more `$` fields), ID one of
/// [`CRYPT_IDS`], characters `[A-Za-z0-9./$=,]`. The message never echoes the value.
pub(crate) fn crypt_hash(what: &str, hash: &str) -> Result<(), String> {
    let ids = CRYPT_IDS.join(", ");
    let refuse = || {
        Err(format!(
            "{what} is not a crypt(3) hash (`$ID$SALT$HASH` with ID one of {ids}); \
             generate one with `mkpasswd -m sha-512` or `openssl passwd -6`"
        ))
    };
    if hash.len() > MAX_HASH {
        return refuse();
    }
    if !hash
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '$' | '=' | ','))
    {
        return refuse();
    }
    let fields: Vec<&str> = hash.split('$').collect();
    // "$id$salt$hash" splits into ["", id, salt, hash].
    let shaped = fields.len() >= 4
        && fields.first().is_some_and(|f| f.is_empty())
        && fields.get(1).is_some_and(|id| CRYPT_IDS.contains(id))
        && fields.get(2).is_some_and(|f| !f.is_empty())
        && fields.last().is_some_and(|f| !f.is_empty());
    if shaped { Ok(()) } else { refuse() }
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`. The message never echoes the value.
pub(crate) fn env_var(what: &str, name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = name.len() <= MAX_ENV
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} must be an environment variable name (`[A-Za-z_][A-Za-z0-9_]*`)"
        ))
    }
}

/// A secret file path: non-empty, no NUL or line breaks. The message never echoes the value.
pub(crate) fn secret_file(what: &str, path: &str) -> Result<(), String> {
    local_file(what, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crypt_hashes() {
        for ok in [
            "$6$salt$hash",
            "$6$rounds=5000$salt$abc./",
            "$y$j9T$salt$hash",
            "$2b$12$abcdefghijklmnopqrstuv",
            "$1$x$y",
        ] {
            assert!(crypt_hash("root_password.hash", ok).is_ok(), "{ok}");
        }
        for bad in [
            "r00tpw",
            "",
            "$6$",
            "$6$salt$",
            "$9$salt$hash",
            "$6$salt:x$hash",
            "$6$sa lt$hash",
            "6$salt$hash",
        ] {
            let e = crypt_hash("password.hash", bad).expect_err("refused");
            assert!(bad.is_empty() || !e.contains(bad), "{e}");
            assert!(e.starts_with("password.hash is not a crypt(3) hash"), "{e}");
        }
    }

    #[test]
    fn env_vars() {
        assert!(env_var("root_password.env", "ROOT_PW").is_ok());
        assert!(env_var("root_password.env", "_x1").is_ok());
        for bad in ["", "1X", "A-B", "A B", "r00tpw!"] {
            let e = env_var("secret.env", bad).expect_err("refused");
            assert!(bad.is_empty() || !e.contains(bad), "{e}");
            assert!(e.starts_with("secret.env must be"), "{e}");
        }
    }

    #[test]
    fn secret_files() {
        assert!(secret_file("root_password.file", "./secret").is_ok());
        assert!(secret_file("root_password.file", "").is_err());
        assert!(secret_file("root_password.file", "a\0b").is_err());
        assert!(secret_file("root_password.file", "a\nb").is_err());
    }
}
