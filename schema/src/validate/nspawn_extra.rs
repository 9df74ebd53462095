//! `nspawn_extra:`: keys systemd.nspawn(5) knows in each section, and
//! values a `.nspawn` line can hold.

use serde_saphyr::Spanned;

use super::{Field, Validator, path_key};
use crate::names::{self, quote};
use crate::raw::{RawExtraValue, RawNspawnExtra, RawSection};
use crate::spec::NspawnExtra;

impl Validator<'_, '_> {
    /// `nspawn_extra:`: each section's keys and values, in order, lists
    /// expanded to one pair per item.
    pub(super) fn nspawn_extra(&mut self, raw: &RawNspawnExtra, field: &str) -> Field<NspawnExtra> {
        let before = self.count();
        let extra = NspawnExtra {
            exec: self.section(raw.exec.as_ref(), "Exec", field),
            files: self.section(raw.files.as_ref(), "Files", field),
            network: self.section(raw.network.as_ref(), "Network", field),
        };
        if self.count() > before {
            return Field::Invalid;
        }
        Field::Valid(extra)
    }

    /// One section's keys and values.
    fn section(
        &mut self,
        raw: Option<&RawSection>,
        section: &str,
        field: &str,
    ) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        let Some(raw) = raw else {
            return pairs;
        };
        for (key, value) in &raw.0 {
            let at = format!("{field}.{section}.{}", path_key(&key.value));
            if let Err(msg) = names::nspawn_key(section, &key.value) {
                self.error(&key.referenced, at, msg);
                continue;
            }
            match &value.value {
                RawExtraValue::List(items) if items.is_empty() => {
                    self.error(
                        &value.referenced,
                        at,
                        format!(
                            "{} is given an empty list, which writes no line: give at least one value, `\"\"` for an empty assignment, or remove the key",
                            quote(&key.value)
                        ),
                    );
                }
                RawExtraValue::List(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(v) =
                            self.extra_value(&key.value, item, &format!("{at}[{i}]"), true)
                        {
                            pairs.push((key.value.clone(), v));
                        }
                    }
                }
                _ => {
                    if let Some(v) = self.extra_value(&key.value, value, &at, false) {
                        pairs.push((key.value.clone(), v));
                    }
                }
            }
        }
        pairs
    }

    /// One value of `key` (an item of a list when `in_list`), as `.nspawn` text.
    fn extra_value(
        &mut self,
        key: &str,
        value: &Spanned<RawExtraValue>,
        at: &str,
        in_list: bool,
    ) -> Option<String> {
        let k = quote(key);
        let problem = match &value.value {
            RawExtraValue::Scalar(text) => match names::nspawn_value(key, text) {
                Ok(()) => return Some(text.clone()),
                Err(msg) => msg,
            },
            RawExtraValue::Null => {
                format!("{k} has no value: write one, or `\"\"` for an empty assignment")
            }
            RawExtraValue::List(_) if in_list => {
                format!("a value of {k} is a list inside a list: write the items in one list")
            }
            RawExtraValue::List(_) => {
                format!("{k} must be a string, number, boolean or a list of those")
            }
            RawExtraValue::Other(what) => {
                format!("{k} must be a string, number, boolean or a list of those, not {what}")
            }
        };
        self.error(&value.referenced, at.to_owned(), problem);
        None
    }
}
