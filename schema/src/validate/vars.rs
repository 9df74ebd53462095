//! `vars:` (at the top of a file, under `defaults:` and per machine):
//! variable names, any values, merged key by key.

use std::collections::BTreeMap;

use super::{Field, Validator, clone, path_key};
use crate::names;
use crate::raw::RawEntries;

/// Template variables by name.
pub(super) type Vars = BTreeMap<String, serde_json::Value>;

impl Validator<'_, '_> {
    /// `vars:`: names a template can use; values as written.
    pub(super) fn vars(&mut self, raw: &RawEntries<serde_json::Value>, field: &str) -> Field<Vars> {
        let before = self.count();
        let mut vars = Vars::new();
        for (name, value) in &raw.0 {
            match names::var_name(&name.value) {
                Ok(()) => {
                    vars.insert(name.value.clone(), value.clone());
                }
                Err(msg) => self.error(
                    &name.referenced,
                    format!("{field}.{}", path_key(&name.value)),
                    msg,
                ),
            }
        }
        if self.count() > before {
            return Field::Invalid;
        }
        Field::Valid(vars)
    }
}

/// `own` variables over `under`'s, key by key (an invalid one on either
/// side, already reported, makes the merge invalid).
pub(super) fn merge_vars(own: Field<Vars>, under: &Field<Vars>) -> Field<Vars> {
    match (own, under) {
        (Field::Invalid, _) | (_, Field::Invalid) => Field::Invalid,
        (Field::Absent, under) => clone(under),
        (own @ Field::Valid(_), Field::Absent) => own,
        (Field::Valid(own), Field::Valid(under)) => {
            let mut all = under.clone();
            all.extend(own);
            Field::Valid(all)
        }
    }
}
