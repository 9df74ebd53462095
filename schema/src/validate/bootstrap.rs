//! `bootstrap_options:` and dnf `repos:`.

use std::collections::HashMap;

use serde_saphyr::Spanned;

use super::{Field, Placed, Validator, optional, valid_or};
use crate::names::{self, quote};
use crate::raw::{RawBootstrapOptions, RawRepo};
use crate::spec::{BootstrapOptions, Repo};

impl Validator<'_, '_> {
    /// `bootstrap_options:`.
    pub(super) fn bootstrap_options(
        &mut self,
        raw: &RawBootstrapOptions,
        field: &str,
    ) -> Field<BootstrapOptions> {
        let host_cache = self.boolean(raw.host_cache.as_ref(), &format!("{field}.host_cache"));
        let variant = self.scalar(
            raw.variant.as_ref(),
            &format!("{field}.variant"),
            names::variant,
        );
        let components = match &raw.components {
            None => Field::Absent,
            Some(items) => self.list(
                items,
                &format!("{field}.components"),
                names::component,
                str::to_owned,
            ),
        };
        let install_weak_deps = self.boolean(
            raw.install_weak_deps.as_ref(),
            &format!("{field}.install_weak_deps"),
        );
        let options = || {
            Some(BootstrapOptions {
                host_cache: valid_or(host_cache, false)?,
                variant: optional(variant)?,
                components: valid_or(components, Vec::new())?,
                install_weak_deps: valid_or(install_weak_deps, false)?,
            })
        };
        options().map_or(Field::Invalid, Field::Valid)
    }

    /// `repos:`: each with a valid, unique id and a URL dnf can take.
    pub(super) fn repos(
        &mut self,
        raw: &Spanned<Vec<Spanned<RawRepo>>>,
        field: &str,
    ) -> Field<Placed<Vec<Repo>>> {
        let before = self.count();
        let mut repos = Vec::with_capacity(raw.value.len());
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, item) in raw.value.iter().enumerate() {
            let at = format!("{field}[{i}]");
            let repo = &item.value;
            for (key, present) in [("id", repo.id.is_some()), ("url", repo.url.is_some())] {
                if !present {
                    self.error(
                        &item.referenced,
                        at.clone(),
                        format!("a repository needs `{key}:`"),
                    );
                }
            }
            let id = self.scalar(repo.id.as_ref(), &format!("{at}.id"), names::repo_id);
            if let (Field::Valid(_), Some(written)) = (&id, &repo.id) {
                if let Some(first) = seen.get(written.value.as_str()) {
                    self.error(
                        &written.referenced,
                        format!("{at}.id"),
                        format!(
                            "repository id {} is already used by repos[{first}]",
                            quote(&written.value)
                        ),
                    );
                } else {
                    seen.insert(written.value.as_str(), i);
                }
            }
            let url = self.scalar(repo.url.as_ref(), &format!("{at}.url"), names::repo_url);
            let gpgcheck = self.boolean(repo.gpgcheck.as_ref(), &format!("{at}.gpgcheck"));
            if let (Field::Valid(id), Field::Valid(url), Some(gpgcheck)) =
                (id, url, valid_or(gpgcheck, true))
            {
                repos.push(Repo { id, url, gpgcheck });
            }
        }
        if self.count() > before {
            return Field::Invalid;
        }
        Field::Valid(Placed {
            value: repos,
            loc: raw.referenced,
            field: field.to_owned(),
        })
    }
}
