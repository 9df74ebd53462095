//! Root password sources resolved into something berth can compare and
//! write, without the plaintext ever reaching output, logs, state or a
//! command line.

use crate::model::warning::Warning;
use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;

use berth_schema::RootPassword;

/// A resolved root password. `Debug` never shows the value.
#[derive(Clone)]
pub enum Secret {
    /// A crypt(3) hash from the spec, written as is.
    Hash(String),
    /// A plaintext password from an env var or file; berth hashes it.
    Plain(String),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Hash(_) => f.write_str("Secret::Hash(<sensitive>)"),
            Secret::Plain(_) => f.write_str("Secret::Plain(<sensitive>)"),
        }
    }
}

/// The outcome of resolving a source, with warnings to show the user.
#[derive(Debug)]
pub struct Resolved {
    /// The secret.
    pub secret: Secret,
    /// Things the user should know (e.g. a secret file readable by others).
    pub warnings: Vec<Warning>,
}

/// Reads the password source. Errors never contain the secret.
pub fn resolve(source: &RootPassword) -> Result<Resolved, String> {
    match source {
        RootPassword::Hash(hash) => Ok(Resolved {
            secret: Secret::Hash(hash.clone()),
            warnings: Vec::new(),
        }),
        RootPassword::Env(var) => match std::env::var(var) {
            Ok(value) => plain(value, &format!("environment variable {var}"), Vec::new()),
            Err(std::env::VarError::NotPresent) => {
                Err(format!("environment variable {var} is not set"))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(format!("environment variable {var} is not valid UTF-8"))
            }
        },
        RootPassword::File(path) => {
            let meta =
                fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if !meta.is_file() {
                return Err(format!("{} is not a regular file", path.display()));
            }
            let mut warnings = Vec::new();
            if meta.permissions().mode() & 0o044 != 0 {
                warnings.push(Warning::SecretFileReadable {
                    path: path.display().to_string(),
                });
            }
            let text = fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            // A trailing newline is how editors save files, not part of the password.
            let value = text.strip_suffix('\n').unwrap_or(&text);
            let value = value.strip_suffix('\r').unwrap_or(value).to_owned();
            plain(value, &format!("file {}", path.display()), warnings)
        }
    }
}

fn plain(value: String, what: &str, warnings: Vec<Warning>) -> Result<Resolved, String> {
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if value.contains(['\n', '\0', ':']) {
        return Err(format!(
            "{what} holds a newline, NUL or ':' (not allowed in a password)"
        ));
    }
    Ok(Resolved {
        secret: Secret::Plain(value),
        warnings,
    })
}

impl Secret {
    /// Whether `stored` (the hash field of /etc/shadow) already satisfies this secret.
    /// A plaintext secret is satisfied when it verifies against the stored hash;
    /// hashes in schemes berth cannot verify count as drift (apply rewrites them).
    pub fn satisfied_by(&self, stored: &str) -> bool {
        match self {
            Secret::Hash(hash) => hash == stored,
            Secret::Plain(pw) => {
                if stored.starts_with("$6$") {
                    sha_crypt::sha512_check(pw, stored).is_ok()
                } else if stored.starts_with("$5$") {
                    sha_crypt::sha256_check(pw, stored).is_ok()
                } else {
                    false
                }
            }
        }
    }

    /// The hash to write into /etc/shadow: the spec's hash, or SHA-512 crypt
    /// of the plaintext with a random salt.
    pub fn to_hash(&self) -> Result<String, String> {
        match self {
            Secret::Hash(hash) => Ok(hash.clone()),
            Secret::Plain(pw) => {
                let params = sha_crypt::Sha512Params::new(sha_crypt::ROUNDS_DEFAULT)
                    .map_err(|e| format!("sha512 parameters: {e:?}"))?;
                sha_crypt::sha512_simple(pw, &params).map_err(|e| format!("hashing: {e:?}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_secret_verifies_its_own_hash_and_not_another() {
        let secret = Secret::Plain("r00tpw".into());
        let hash = secret.to_hash().unwrap();
        assert!(hash.starts_with("$6$"));
        assert!(secret.satisfied_by(&hash));
        assert!(!Secret::Plain("other".into()).satisfied_by(&hash));
        assert!(!secret.satisfied_by("*"));
        assert!(!secret.satisfied_by("$y$j9T$abc$def"));
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = format!("{:?}", Secret::Plain("r00tpw".into()));
        assert!(!s.contains("r00tpw"));
    }
}
