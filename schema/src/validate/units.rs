//! `units:`: enable, disable and mask lists, suffixed, no unit in two of them.

use std::collections::{HashMap, HashSet};

use super::{Field, Validator};
use crate::names::{self, quote};
use crate::raw::RawUnits;
use crate::spec::Units;

impl Validator<'_, '_> {
    /// `units:`: three lists of unit names, and no unit in two of them.
    pub(super) fn units(&mut self, raw: &RawUnits, field: &str) -> Field<Units> {
        let lists = [
            ("enable", raw.enable.as_deref().unwrap_or_default()),
            ("disable", raw.disable.as_deref().unwrap_or_default()),
            ("mask", raw.mask.as_deref().unwrap_or_default()),
        ];
        let mut checked = Vec::new();
        let mut bad = false;
        for (list, items) in lists {
            match self.list(
                items,
                &format!("{field}.{list}"),
                names::unit,
                names::unit_with_suffix,
            ) {
                Field::Valid(v) => checked.push(v),
                _ => {
                    bad = true;
                    checked.push(Vec::new());
                }
            }
        }
        // A unit in two lists: report it where it appears the second time.
        let mut seen: HashMap<String, &str> = HashMap::new();
        let mut reported: HashSet<(String, &str)> = HashSet::new();
        for (list, items) in lists {
            for (i, item) in items.iter().enumerate() {
                if names::unit(&item.value).is_err() {
                    continue;
                }
                let unit = names::unit_with_suffix(&item.value);
                match seen.get(&unit) {
                    None => {
                        seen.insert(unit, list);
                    }
                    Some(&first) if first != list => {
                        if reported.insert((unit.clone(), list)) {
                            self.error(
                                &item.referenced,
                                format!("{field}.{list}[{i}]"),
                                format!(
                                    "unit {} is in both units.{first} and units.{list}",
                                    quote(&unit)
                                ),
                            );
                        }
                        bad = true;
                    }
                    Some(_) => {}
                }
            }
        }
        if bad {
            return Field::Invalid;
        }
        let mut it = checked.into_iter();
        Field::Valid(Units {
            enable: it.next().unwrap_or_default(),
            disable: it.next().unwrap_or_default(),
            mask: it.next().unwrap_or_default(),
        })
    }
}
