//! `credentials:`: systemd credential names, each from exactly one of
//! `env` or `file`. A value may be a plaintext secret written by mistake,
//! so no diagnostic here shows it.

use serde_saphyr::Spanned;

use super::{Field, Validator, path_key};
use crate::names;
use crate::raw::{RawEntries, RawSecret};
use crate::spec::Credential;

impl Validator<'_, '_> {
    /// `credentials:`: names and their sources, in order.
    pub(super) fn credentials(
        &mut self,
        raw: &RawEntries<Spanned<RawSecret>>,
        field: &str,
    ) -> Field<Vec<Credential>> {
        let before = self.count();
        let mut credentials = Vec::with_capacity(raw.0.len());
        for (name, value) in &raw.0 {
            let at = format!("{field}.{}", path_key(&name.value));
            if let Err(msg) = names::credential_name(&name.value) {
                // The line may hold a plaintext value: shown only when the
                // value is a mapping of sources alone.
                let safe = matches!(&value.value, RawSecret::Map(entries)
                    if entries.iter().all(|(k, _)| matches!(k.value.as_str(), "env" | "file")));
                if safe {
                    self.error(&name.referenced, at.clone(), msg);
                } else {
                    self.secret_error(&name.referenced, at.clone(), msg);
                }
            }
            let what = format!("credentials.{}", path_key(&name.value));
            if let Field::Valid(source) = self.secret_source(value, &at, &what) {
                credentials.push(Credential {
                    name: name.value.clone(),
                    source,
                });
            }
        }
        if self.count() > before {
            return Field::Invalid;
        }
        Field::Valid(credentials)
    }
}
