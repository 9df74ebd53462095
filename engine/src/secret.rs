//! Root password sources resolved into something berth can compare and
//! write, without the plaintext ever reaching output, logs, state or a
//! command line.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use berth_schema::RootPassword;

use crate::model::warning::Warning;

/// Why a password source cannot be used. Never holds the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The `env:` variable is not set.
    #[error("environment variable {0} is not set")]
    EnvNotSet(String),
    /// The `env:` variable is not UTF-8.
    #[error("environment variable {0} is not valid UTF-8")]
    EnvNotUnicode(String),
    /// The `file:` cannot be read.
    #[error("cannot read {}: {source}", .path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The `file:` is a directory, a FIFO, ...
    #[error("{} is not a regular file", .0.display())]
    NotAFile(PathBuf),
    /// The source holds an empty password.
    #[error("{0} is empty")]
    Empty(String),
    /// The password holds a character `/etc/shadow` cannot take.
    #[error("{0} holds a newline, NUL or ':' (not allowed in a password)")]
    Forbidden(String),
    /// The plan sets the password, but no source was resolved for it.
    #[error("no password source was resolved")]
    Unresolved,
    /// Hashing failed.
    #[error("hashing the password: {0}")]
    Hashing(String),
}

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

/// Secrets resolved elsewhere (by the controller of a fleet, sent to
/// `berth agent` over ssh's stdin), by `env:` variable name: they stand in
/// for berth's environment, in memory only.
static PRESET: std::sync::OnceLock<std::collections::HashMap<String, Vec<u8>>> =
    std::sync::OnceLock::new();

/// Makes `values` the `env:` secrets of this process, in place of its
/// environment (once; `berth agent` calls it before planning). Never
/// written anywhere.
pub fn preset_env(values: std::collections::HashMap<String, Vec<u8>>) -> Result<(), String> {
    PRESET
        .set(values)
        .map_err(|_| "secrets were already given".to_owned())
}

/// The value of `env:` secret `var`: a preset one ([`preset_env`]) when
/// presets were given, else berth's environment variable.
pub fn env_value(var: &str) -> Option<std::ffi::OsString> {
    match PRESET.get() {
        Some(preset) => preset
            .get(var)
            .map(|v| <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(v.clone())),
        None => std::env::var_os(var),
    }
}

/// Reads the password source. Errors never contain the secret.
pub fn resolve(source: &RootPassword) -> Result<Resolved, SecretError> {
    match source {
        RootPassword::Hash(hash) => Ok(Resolved {
            secret: Secret::Hash(hash.clone()),
            warnings: Vec::new(),
        }),
        RootPassword::Env(var) => match env_value(var).map(std::ffi::OsString::into_string) {
            Some(Ok(value)) => plain(value, &format!("environment variable {var}"), Vec::new()),
            None => Err(SecretError::EnvNotSet(var.clone())),
            Some(Err(_)) => Err(SecretError::EnvNotUnicode(var.clone())),
        },
        RootPassword::File(path) => {
            let unreadable = |source| SecretError::Unreadable {
                path: path.clone(),
                source,
            };
            let meta = fs::metadata(path).map_err(unreadable)?;
            if !meta.is_file() {
                return Err(SecretError::NotAFile(path.clone()));
            }
            let mut warnings = Vec::new();
            if meta.permissions().mode() & 0o044 != 0 {
                warnings.push(Warning::SecretFileReadable {
                    path: path.display().to_string(),
                });
            }
            let text = fs::read_to_string(path).map_err(unreadable)?;
            // A trailing newline is how editors save files, not part of the password.
            let value = text.strip_suffix('\n').unwrap_or(&text);
            let value = value.strip_suffix('\r').unwrap_or(value).to_owned();
            plain(value, &format!("file {}", path.display()), warnings)
        }
    }
}

fn plain(value: String, what: &str, warnings: Vec<Warning>) -> Result<Resolved, SecretError> {
    if value.is_empty() {
        return Err(SecretError::Empty(what.to_owned()));
    }
    if value.contains(['\n', '\0', ':']) {
        return Err(SecretError::Forbidden(what.to_owned()));
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
    pub fn to_hash(&self) -> Result<String, SecretError> {
        match self {
            Secret::Hash(hash) => Ok(hash.clone()),
            Secret::Plain(pw) => {
                let params = sha_crypt::Sha512Params::new(sha_crypt::ROUNDS_DEFAULT)
                    .map_err(|e| SecretError::Hashing(format!("sha512 parameters: {e:?}")))?;
                sha_crypt::sha512_simple(pw, &params)
                    .map_err(|e| SecretError::Hashing(format!("{e:?}")))
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
