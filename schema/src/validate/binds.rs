//! `binds:`: both forms, paths normalised, no machine path bound twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};

use super::{Field, Validator, normalize};
use crate::names::{self, quote};
use crate::raw::RawBind;
use crate::spec::Bind;

impl Validator<'_, '_> {
    /// `binds:`: absolute paths nspawn's `Bind=` can take, never over the
    /// machine's `/`, no machine path bound twice.
    pub(super) fn binds(&mut self, items: &[Spanned<RawBind>], field: &str) -> Field<Vec<Bind>> {
        let before = self.count();
        let mut binds = Vec::with_capacity(items.len());
        let mut seen: HashMap<PathBuf, usize> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{field}[{i}]");
            let Some((bind, machine_loc, machine_field)) = self.bind(item, &at) else {
                continue;
            };
            if bind.machine == Path::new("/") {
                self.error(
                    &machine_loc,
                    machine_field,
                    "a bind cannot cover the machine's root `/`: bind to a directory inside it",
                );
            } else if let Some(first) = seen.get(&bind.machine) {
                self.error(
                    &machine_loc,
                    machine_field,
                    format!(
                        "machine path {} is already bound by binds[{first}]",
                        quote(&bind.machine.to_string_lossy())
                    ),
                );
            } else {
                seen.insert(bind.machine.clone(), i);
                binds.push(bind);
            }
        }
        if self.count() > before {
            return Field::Invalid;
        }
        Field::Valid(binds)
    }

    /// One bind, in either form; with where its machine path was written.
    fn bind(&mut self, item: &Spanned<RawBind>, at: &str) -> Option<(Bind, Location, String)> {
        match &item.value {
            RawBind::Short(text) => {
                let parts: Vec<&str> = text.split(':').collect();
                let (host, machine, read_only) = match parts.as_slice() {
                    [host] => (*host, *host, false),
                    [host, opt @ ("ro" | "rw")] => {
                        let msg = format!(
                            "bind {} has no machine path: to bind {} at the same place, write {}",
                            quote(text),
                            quote(host),
                            quote(&format!("{host}:{host}:{opt}"))
                        );
                        self.error(&item.referenced, at.to_owned(), msg);
                        return None;
                    }
                    [host, machine] => (*host, *machine, false),
                    [host, machine, "ro"] => (*host, *machine, true),
                    [host, machine, "rw"] => (*host, *machine, false),
                    [_, _, opt] => {
                        let msg = format!(
                            "bind option {} in {} must be `ro` or `rw`",
                            quote(opt),
                            quote(text)
                        );
                        self.error(&item.referenced, at.to_owned(), msg);
                        return None;
                    }
                    _ => {
                        let msg = format!(
                            "bind {} has too many `:`: write HOST, HOST:MACHINE or HOST:MACHINE:ro (paths cannot contain `:`)",
                            quote(text)
                        );
                        self.error(&item.referenced, at.to_owned(), msg);
                        return None;
                    }
                };
                let mut ok = true;
                let paths: &[(&str, &str)] = if parts.len() == 1 {
                    &[("bind path", host)]
                } else {
                    &[("host path", host), ("machine path", machine)]
                };
                for &(what, path) in paths {
                    if let Err(msg) = names::bind_path(what, path) {
                        self.error(&item.referenced, at.to_owned(), msg);
                        ok = false;
                    }
                }
                ok.then(|| {
                    (
                        Bind {
                            host: normalize(host),
                            machine: normalize(machine),
                            read_only,
                        },
                        item.referenced,
                        at.to_owned(),
                    )
                })
            }
            RawBind::Long(map) => {
                let Some(host) = &map.host else {
                    self.error(&item.referenced, at.to_owned(), "a bind needs `host:`");
                    return None;
                };
                let host_ok = self.bind_path(host, "host path", &format!("{at}.host"));
                let machine_field = format!(
                    "{at}.{}",
                    if map.machine.is_some() {
                        "machine"
                    } else {
                        "host"
                    }
                );
                let machine = map.machine.as_ref().unwrap_or(host);
                let machine_ok = map.machine.is_none()
                    || self.bind_path(machine, "machine path", &machine_field);
                let read_only = self.boolean(map.read_only.as_ref(), &format!("{at}.read_only"));
                // An invalid read_only is reported; the paths are still checked.
                let read_only = matches!(read_only, Field::Valid(true));
                (host_ok && machine_ok).then(|| {
                    (
                        Bind {
                            host: normalize(&host.value),
                            machine: normalize(&machine.value),
                            read_only,
                        },
                        machine.referenced,
                        machine_field,
                    )
                })
            }
        }
    }

    /// One path of a bind's mapping form; whether it is valid.
    fn bind_path(&mut self, path: &Spanned<String>, what: &str, field: &str) -> bool {
        match names::bind_path(what, &path.value) {
            Ok(()) => true,
            Err(msg) => {
                self.error(&path.referenced, field.to_owned(), msg);
                false
            }
        }
    }
}
