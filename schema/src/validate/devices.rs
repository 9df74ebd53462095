//! `devices:`: device node paths under `/dev/`, access letters, no path twice.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_saphyr::Spanned;

use super::{Field, Validator};
use crate::names::{self, quote};
use crate::raw::RawDevice;
use crate::spec::Device;

/// The access a device gets when the spec gives none.
const DEFAULT_ACCESS: &str = "rwm";

impl Validator<'_, '_> {
    /// `devices:`: each a path under `/dev/` (normalised) and an access
    /// (default `rwm`, stored in `rwm` order); a path listed twice is
    /// reported at the second.
    pub(super) fn devices(
        &mut self,
        raw: &Spanned<Vec<Spanned<RawDevice>>>,
        field: &str,
    ) -> Field<Vec<Device>> {
        let before = self.count();
        let mut devices = Vec::with_capacity(raw.value.len());
        let mut seen: HashMap<PathBuf, usize> = HashMap::new();
        for (i, item) in raw.value.iter().enumerate() {
            let at = format!("{field}[{i}]");
            let device = &item.value;
            if device.path.is_none() {
                self.error(&item.referenced, at.clone(), "a device needs `path:`");
            }
            let path = self.parsed(
                device.path.as_ref(),
                &format!("{at}.path"),
                names::device_path,
            );
            let access = self.parsed(
                device.access.as_ref(),
                &format!("{at}.access"),
                names::device_access,
            );
            let (Field::Valid(path), Some(written)) = (path, &device.path) else {
                continue;
            };
            if let Some(first) = seen.get(&path) {
                self.error(
                    &written.referenced,
                    format!("{at}.path"),
                    format!(
                        "device {} is already listed as devices[{first}]",
                        quote(&path.to_string_lossy())
                    ),
                );
                continue;
            }
            seen.insert(path.clone(), i);
            let access = match access {
                Field::Valid(a) => a,
                Field::Absent => DEFAULT_ACCESS.to_owned(),
                Field::Invalid => continue,
            };
            devices.push(Device { path, access });
        }
        if self.count() > before {
            return Field::Invalid;
        }
        Field::Valid(devices)
    }
}
