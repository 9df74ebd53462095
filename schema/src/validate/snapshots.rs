//! `snapshots:`: `before_apply` a boolean, `keep` a whole number 1–1000.

use super::{Field, Validator};
use crate::names::quote;
use crate::raw::RawSnapshots;
use crate::spec::Snapshots;

/// The most snapshots `keep` may ask for.
const MAX_KEEP: u32 = 1000;

impl Validator<'_, '_> {
    /// `snapshots:`; unset keys take their defaults.
    pub(super) fn snapshots(&mut self, raw: &RawSnapshots, field: &str) -> Field<Snapshots> {
        let before = self.count();
        let before_apply =
            self.boolean(raw.before_apply.as_ref(), &format!("{field}.before_apply"));
        let keep = self.parsed(raw.keep.as_ref(), &format!("{field}.keep"), keep);
        if self.count() > before {
            return Field::Invalid;
        }
        let defaults = Snapshots::default();
        Field::Valid(Snapshots {
            before_apply: match before_apply {
                Field::Valid(b) => b,
                _ => defaults.before_apply,
            },
            keep: match keep {
                Field::Valid(n) => n,
                _ => defaults.keep,
            },
        })
    }
}

/// `keep`: a whole number of snapshots, 1–1000.
fn keep(text: &str) -> Result<u32, String> {
    let q = quote(text);
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "keep {q} must be a whole number of snapshots (1–{MAX_KEEP})"
        ));
    }
    match text.parse::<u32>() {
        Ok(n) if (1..=MAX_KEEP).contains(&n) => Ok(n),
        _ => Err(format!("keep {q} is out of range (1–{MAX_KEEP})")),
    }
}

impl Validator<'_, '_> {
    /// `snapshots: {before_apply: true}` with `storage: overlay`: berth
    /// snapshots copied roots only. The error points at `storage:`.
    pub(super) fn fits_snapshots(&mut self, machine: &str, merged: &super::Checked) {
        if let (Field::Valid(storage), Field::Valid(snapshots)) =
            (&merged.storage, &merged.snapshots)
            && storage.value == crate::spec::Storage::Overlay
            && snapshots.before_apply
        {
            let whose = if storage.field.starts_with("defaults.") {
                format!(" (machine {})", quote(machine))
            } else {
                String::new()
            };
            let msg = format!(
                "storage: overlay does not go with snapshots: {{before_apply: true}}{whose}: berth \
                 snapshots only copied roots (an overlay root is a mount of its base and its own \
                 layer); use storage: copy, or leave before_apply out"
            );
            self.error(&storage.loc, storage.field.clone(), msg);
        }
    }
}
