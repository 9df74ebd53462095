//! `health:`: units suffixed and deduplicated, a command that can be run,
//! a timeout parsed from a duration.

use serde_saphyr::Spanned;

use super::{Field, Validator};
use crate::names;
use crate::raw::{RawHealth, position};
use crate::spec::{Health, Source};

impl Validator<'_, '_> {
    /// `health:`: `units` (suffixed, no duplicates), `command` (a non-empty
    /// argv, its program not empty), `timeout` (default 60 s).
    pub(super) fn health(&mut self, raw: &Spanned<RawHealth>, field: &str) -> Field<Health> {
        let before = self.count();
        let units = match &raw.value.units {
            None => Field::Absent,
            Some(items) => self.list(
                items,
                &format!("{field}.units"),
                names::unit,
                names::unit_with_suffix,
            ),
        };
        let command_field = format!("{field}.command");
        let mut command = None;
        if let Some(argv) = &raw.value.command {
            if argv.value.is_empty() {
                self.error(
                    &argv.referenced,
                    command_field.clone(),
                    "the command is empty: give the program and its arguments, e.g. [systemctl, is-active, nginx]",
                );
            }
            for (i, arg) in argv.value.iter().enumerate() {
                if let Err(msg) = names::command_arg(i == 0, &arg.value) {
                    self.error(&arg.referenced, format!("{command_field}[{i}]"), msg);
                }
            }
            command = Some(argv.value.iter().map(|a| a.value.clone()).collect());
        }
        let timeout = self.parsed(
            raw.value.timeout.as_ref(),
            &format!("{field}.timeout"),
            |t| names::duration("timeout", t),
        );
        if self.count() > before {
            return Field::Invalid;
        }
        let (line, column) = position(&raw.referenced);
        Field::Valid(Health {
            units: match units {
                Field::Valid(u) => u,
                _ => Vec::new(),
            },
            command,
            timeout: match timeout {
                Field::Valid(t) => t,
                _ => Health::DEFAULT_TIMEOUT,
            },
            source: Source {
                file: self.src.file.to_path_buf(),
                line,
                column,
            },
        })
    }
}
