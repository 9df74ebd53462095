//! `environment:`: names, values, no name twice.

use super::{Field, Validator, path_key};
use crate::names::{self, quote};
use crate::raw::RawEnvironment;

impl Validator<'_, '_> {
    /// `environment:`: names and values, in order.
    pub(super) fn environment(
        &mut self,
        raw: &RawEnvironment,
        field: &str,
    ) -> Field<Vec<(String, String)>> {
        let before = self.count();
        let mut vars = Vec::with_capacity(raw.0.len());
        for (name, value) in &raw.0 {
            let at = format!("{field}.{}", path_key(&name.value));
            if let Err(msg) = names::env_name(&name.value) {
                self.error(&name.referenced, at.clone(), msg);
            }
            let Some(value) = value else {
                self.error(
                    &name.referenced,
                    at,
                    format!(
                        "environment variable {} has no value: write `\"\"` for an empty one",
                        quote(&name.value)
                    ),
                );
                continue;
            };
            if let Err(msg) = names::env_value(&name.value, &value.value) {
                self.error(&value.referenced, at, msg);
                continue;
            }
            vars.push((name.value.clone(), value.value.clone()));
        }
        if self.count() > before {
            return Field::Invalid;
        }
        Field::Valid(vars)
    }
}
