//! `users:` and SSH authorized keys (a user's and root's, the machine's
//! `ssh_authorized_keys`): names, presence, groups, shell, home, password.

use std::collections::{HashMap, HashSet};

use serde_saphyr::{Location, Spanned};

use super::files::PRESENCE;
use super::{Field, Validator, optional, path_key};
use crate::names::{self, quote};
use crate::raw::{RawEntries, RawUser, position};
use crate::spec::{Source, User};

impl Validator<'_, '_> {
    /// `users:`: login names (not root), each present (with its settings)
    /// or absent (with at most `remove_home`).
    pub(super) fn users(
        &mut self,
        raw: &RawEntries<Option<RawUser>>,
        field: &str,
    ) -> Field<Vec<User>> {
        let before = self.count();
        let mut users = Vec::with_capacity(raw.0.len());
        let none = RawUser::default();
        for (name, entry) in &raw.0 {
            let at = format!("{field}.{}", path_key(&name.value));
            let name_ok = match names::login_name(&name.value) {
                Ok(()) => true,
                Err(msg) => {
                    self.error(&name.referenced, at.clone(), msg);
                    false
                }
            };
            let user = self.user(entry.as_ref().unwrap_or(&none), &at);
            if let (true, Some(mut user)) = (name_ok, user) {
                let (line, column) = position(&name.referenced);
                user.name.clone_from(&name.value);
                user.source = Source {
                    file: self.src.file.to_path_buf(),
                    line,
                    column,
                };
                users.push(user);
            }
        }
        if self.count() > before {
            return Field::Invalid;
        }
        Field::Valid(users)
    }

    /// One user's settings (name and source left empty), or `None` if
    /// anything was wrong.
    fn user(&mut self, raw: &RawUser, at: &str) -> Option<User> {
        let before = self.count();
        let state = self.choice(
            raw.state.as_ref(),
            &format!("{at}.state"),
            "state",
            PRESENCE,
        );
        let present = !matches!(state, Field::Valid(false));
        let system = self.boolean(raw.system.as_ref(), &format!("{at}.system"));
        let groups = match &raw.groups {
            None => Field::Absent,
            Some(g) => self.groups(&g.value, &format!("{at}.groups")),
        };
        let shell = self.scalar(raw.shell.as_ref(), &format!("{at}.shell"), names::shell);
        let home = self.parsed(raw.home.as_ref(), &format!("{at}.home"), |h| {
            names::home(h)?;
            names::absolute_path("home", h)
        });
        let keys = match &raw.ssh_authorized_keys {
            None => Field::Absent,
            Some(k) => self.ssh_keys(&k.value, &format!("{at}.ssh_authorized_keys")),
        };
        let password = match &raw.password {
            None => Field::Absent,
            Some(p) => self.password(p, &format!("{at}.password"), "password"),
        };
        let remove_home = self.boolean(raw.remove_home.as_ref(), &format!("{at}.remove_home"));

        if present {
            if let Some(r) = &raw.remove_home {
                self.error(
                    &r.referenced,
                    format!("{at}.remove_home"),
                    "remove_home is only for state: absent (it removes the home directory with the user)",
                );
            }
        } else {
            let settings: [(&str, Option<Location>); 6] = [
                ("system", raw.system.as_ref().map(|v| v.referenced)),
                ("groups", raw.groups.as_ref().map(|v| v.referenced)),
                ("shell", raw.shell.as_ref().map(|v| v.referenced)),
                ("home", raw.home.as_ref().map(|v| v.referenced)),
                (
                    "ssh_authorized_keys",
                    raw.ssh_authorized_keys.as_ref().map(|v| v.referenced),
                ),
                ("password", raw.password.as_ref().map(|v| v.referenced)),
            ];
            for (name, loc) in settings {
                if let Some(loc) = loc {
                    self.error(
                        &loc,
                        format!("{at}.{name}"),
                        format!(
                            "with state: absent only remove_home: may be given: {name} is for a user that is present"
                        ),
                    );
                }
            }
        }

        if self.count() > before {
            return None;
        }
        Some(User {
            name: String::new(),
            present,
            system: matches!(system, Field::Valid(true)),
            groups: optional(groups)?.unwrap_or_default(),
            shell: optional(shell)?,
            home: optional(home)?,
            ssh_authorized_keys: optional(keys)?,
            password: optional(password)?,
            remove_home: matches!(remove_home, Field::Valid(true)),
            source: Source::default(),
        })
    }

    /// A user's `groups:`: group names, each once.
    fn groups(&mut self, items: &[Spanned<String>], field: &str) -> Field<Vec<String>> {
        let before = self.count();
        let mut groups = Vec::with_capacity(items.len());
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{field}[{i}]");
            if let Err(msg) = names::group_name("group name", &item.value) {
                self.error(&item.referenced, at, msg);
            } else if let Some(first) = seen.get(item.value.as_str()) {
                self.error(
                    &item.referenced,
                    at,
                    format!(
                        "group {} is already listed as groups[{first}]",
                        quote(&item.value)
                    ),
                );
            } else {
                seen.insert(&item.value, i);
                groups.push(item.value.clone());
            }
        }
        if self.count() > before {
            return Field::Invalid;
        }
        Field::Valid(groups)
    }

    /// `ssh_authorized_keys:` (root's or a user's): public key lines, a
    /// line listed twice kept once. A private key is reported without
    /// showing it.
    pub(super) fn ssh_keys(
        &mut self,
        items: &[Spanned<String>],
        field: &str,
    ) -> Field<Vec<String>> {
        let before = self.count();
        let mut keys = Vec::with_capacity(items.len());
        let mut seen: HashSet<&str> = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{field}[{i}]");
            match names::ssh_key(&item.value) {
                Ok(()) => {
                    if seen.insert(&item.value) {
                        keys.push(item.value.clone());
                    }
                }
                Err(msg) if names::is_private_key(&item.value) => {
                    self.secret_error(&item.referenced, at, msg);
                }
                Err(msg) => self.error(&item.referenced, at, msg),
            }
        }
        if self.count() > before {
            return Field::Invalid;
        }
        Field::Valid(keys)
    }
}
