//! `root_password:`: exactly one source, never a plaintext password; no
//! message or snippet here ever shows a value.

use std::path::Path;

use serde_saphyr::Spanned;

use super::{Field, Validator, path_key, resolve};
use crate::names::{self, quote};
use crate::raw::{RawRootPassword, SecretValue};
use crate::spec::RootPassword;

impl Validator<'_, '_> {
    /// `root_password:`: exactly one of hash, env, file; never a plaintext value.
    /// No message or snippet here ever shows a value.
    pub(super) fn root_password(
        &mut self,
        raw: &Spanned<RawRootPassword>,
        field: &str,
    ) -> Field<RootPassword> {
        let entries = match &raw.value {
            RawRootPassword::Scalar => {
                self.secret_error(&raw.referenced, field.to_owned(), PLAINTEXT);
                return Field::Invalid;
            }
            RawRootPassword::Sequence => {
                self.secret_error(
                    &raw.referenced,
                    field.to_owned(),
                    "root_password must be a mapping with exactly one of hash:, env: or file:",
                );
                return Field::Invalid;
            }
            RawRootPassword::Map(entries) => entries,
        };
        let before = self.count();
        let mut sources = Vec::new();
        for (key, value) in entries {
            let k = key.value.as_str();
            if SOURCES.contains(&k) {
                sources.push((key, value));
            } else if PLAINTEXT_KEYS.contains(&k.to_ascii_lowercase().as_str()) {
                self.secret_error(
                    &value.referenced,
                    format!("{field}.{}", path_key(k)),
                    PLAINTEXT,
                );
            } else {
                let mut msg = format!(
                    "unknown field {} in root_password: expected exactly one of {}",
                    quote(k),
                    names::one_of(SOURCES)
                );
                if let Some(s) = names::suggest(k, SOURCES) {
                    msg.push_str(&format!(" (did you mean `{s}`?)"));
                }
                self.secret_error(&value.referenced, format!("{field}.{}", path_key(k)), msg);
            }
        }
        if self.count() > before {
            return Field::Invalid;
        }
        let (key, value) = match sources.as_slice() {
            [] => {
                self.secret_error(
                    &raw.referenced,
                    field.to_owned(),
                    "root_password needs exactly one of hash:, env: or file:",
                );
                return Field::Invalid;
            }
            [one] => *one,
            [_, second, ..] => {
                let names: Vec<&str> = sources.iter().map(|(k, _)| k.value.as_str()).collect();
                self.secret_error(
                    &second.1.referenced,
                    field.to_owned(),
                    format!(
                        "root_password has several sources ({}): use exactly one",
                        names.join(", ")
                    ),
                );
                return Field::Invalid;
            }
        };
        let sub = format!("{field}.{}", key.value);
        let SecretValue::Text(text) = &value.value else {
            self.secret_error(
                &value.referenced,
                sub,
                format!("root_password.{} must be a string", key.value),
            );
            return Field::Invalid;
        };
        let checked = match key.value.as_str() {
            "hash" => names::crypt_hash(text).map(|()| RootPassword::Hash(text.clone())),
            "env" => names::env_var(text).map(|()| RootPassword::Env(text.clone())),
            _ => names::secret_file(text)
                .map(|()| RootPassword::File(resolve(self.src.file, Path::new(text)))),
        };
        match checked {
            Ok(rp) => Field::Valid(rp),
            Err(msg) => {
                self.secret_error(&value.referenced, sub, msg);
                Field::Invalid
            }
        }
    }
}

/// Keys under `root_password:` that would hold a plaintext password.
const PLAINTEXT_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pw",
    "plain",
    "plaintext",
    "cleartext",
    "clear",
    "value",
    "secret",
];

/// The message for any plaintext password.
const PLAINTEXT: &str = "plaintext passwords are not allowed in a spec: use hash:, env: or file:";

/// The sources `root_password` accepts.
const SOURCES: &[&str] = &["hash", "env", "file"];
