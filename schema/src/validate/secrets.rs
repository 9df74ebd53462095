//! Secrets: `root_password:`, a user's `password:`, a file's `secret:` and
//! `credentials:` values. Exactly one source each, never a plaintext value;
//! no message or snippet here ever shows a value.

use std::path::Path;

use serde_saphyr::Spanned;

use super::{Field, Validator, path_key, resolve};
use crate::names::{self, quote};
use crate::raw::{RawSecret, SecretValue};
use crate::spec::{RootPassword, SecretSource};

/// The sources of a password (`root_password`, a user's `password`).
const PASSWORD_SOURCES: &[&str] = &["hash", "env", "file"];

/// The sources of other secrets (a file's `secret`, a credential).
const SECRET_SOURCES: &[&str] = &["env", "file"];

impl Validator<'_, '_> {
    /// `root_password:` or a user's `password:` (`what` names it in
    /// messages): exactly one of hash, env, file.
    pub(super) fn password(
        &mut self,
        raw: &Spanned<RawSecret>,
        field: &str,
        what: &str,
    ) -> Field<RootPassword> {
        self.secret(raw, field, what, PASSWORD_SOURCES, "passwords")
    }

    /// A file's `secret:` or a credential (`what` names it in messages):
    /// exactly one of env, file.
    pub(super) fn secret_source(
        &mut self,
        raw: &Spanned<RawSecret>,
        field: &str,
        what: &str,
    ) -> Field<SecretSource> {
        match self.secret(raw, field, what, SECRET_SOURCES, "secrets") {
            Field::Valid(RootPassword::Env(name)) => Field::Valid(SecretSource::Env(name)),
            Field::Valid(RootPassword::File(path)) => Field::Valid(SecretSource::File(path)),
            Field::Absent => Field::Absent,
            // A hash is not among the sources: reported as unknown.
            Field::Valid(RootPassword::Hash(_)) | Field::Invalid => Field::Invalid,
        }
    }

    /// A secret: exactly one of `sources` (a subset of hash, env, file);
    /// never a plaintext value (`plural` names such values: `passwords`).
    /// No message or snippet here ever shows a value.
    fn secret(
        &mut self,
        raw: &Spanned<RawSecret>,
        field: &str,
        what: &str,
        sources: &[&str],
        plural: &str,
    ) -> Field<RootPassword> {
        let listed = sources
            .iter()
            .map(|s| format!("{s}:"))
            .collect::<Vec<_>>()
            .join(", ");
        let listed = match listed.rsplit_once(", ") {
            Some((head, last)) => format!("{head} or {last}"),
            None => listed,
        };
        let plaintext = format!("plaintext {plural} are not allowed in a spec: use {listed}");
        let entries = match &raw.value {
            RawSecret::Scalar => {
                self.secret_error(&raw.referenced, field.to_owned(), plaintext);
                return Field::Invalid;
            }
            RawSecret::Sequence => {
                self.secret_error(
                    &raw.referenced,
                    field.to_owned(),
                    format!("{what} must be a mapping with exactly one of {listed}"),
                );
                return Field::Invalid;
            }
            RawSecret::Map(entries) => entries,
        };
        let before = self.count();
        let mut found = Vec::new();
        for (key, value) in entries {
            let k = key.value.as_str();
            if sources.contains(&k) {
                found.push((key, value));
            } else if PLAINTEXT_KEYS.contains(&k.to_ascii_lowercase().as_str()) {
                self.secret_error(
                    &value.referenced,
                    format!("{field}.{}", path_key(k)),
                    plaintext.clone(),
                );
            } else {
                let mut msg = format!(
                    "unknown field {} in {what}: expected exactly one of {}",
                    quote(k),
                    names::one_of(sources)
                );
                if let Some(s) = names::suggest(k, sources) {
                    msg.push_str(&format!(" (did you mean `{s}`?)"));
                }
                self.secret_error(&value.referenced, format!("{field}.{}", path_key(k)), msg);
            }
        }
        if self.count() > before {
            return Field::Invalid;
        }
        let (key, value) = match found.as_slice() {
            [] => {
                self.secret_error(
                    &raw.referenced,
                    field.to_owned(),
                    format!("{what} needs exactly one of {listed}"),
                );
                return Field::Invalid;
            }
            [one] => *one,
            [_, second, ..] => {
                let names: Vec<&str> = found.iter().map(|(k, _)| k.value.as_str()).collect();
                self.secret_error(
                    &second.1.referenced,
                    field.to_owned(),
                    format!(
                        "{what} has several sources ({}): use exactly one",
                        names.join(", ")
                    ),
                );
                return Field::Invalid;
            }
        };
        let sub = format!("{field}.{}", key.value);
        let source = format!("{what}.{}", key.value);
        let SecretValue::Text(text) = &value.value else {
            self.secret_error(&value.referenced, sub, format!("{source} must be a string"));
            return Field::Invalid;
        };
        let checked = match key.value.as_str() {
            "hash" => names::crypt_hash(&source, text).map(|()| RootPassword::Hash(text.clone())),
            "env" => names::env_var(&source, text).map(|()| RootPassword::Env(text.clone())),
            _ => names::secret_file(&source, text)
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

/// Keys under a secret that would hold a plaintext value.
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
