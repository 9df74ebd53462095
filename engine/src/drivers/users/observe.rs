//! Reading a root's accounts natively and confined: `/etc/passwd`,
//! `/etc/group`, the password fields of the users whose password the spec
//! manages (kept out of sight), and each managed `authorized_keys` with the
//! mode and owner of the file and of its `~/.ssh`.

use std::collections::BTreeMap;
use std::fmt;

use berth_schema::Machine;

use super::passwd::{self, GroupEntry, PasswdEntry};
use crate::confined::Root;
use crate::confined::owned::Meta;
use crate::error::EngineError;

/// A user's password field of `/etc/shadow`. `Debug` never shows it; the
/// planner only asks whether a secret verifies against it.
#[derive(Clone, PartialEq, Eq)]
pub struct ShadowField(pub(crate) String);

impl fmt::Debug for ShadowField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShadowField(<sensitive>)")
    }
}

impl ShadowField {
    /// The stored field, for [`crate::secret::Secret::satisfied_by`].
    pub fn stored(&self) -> &str {
        &self.0
    }
}

/// The accounts found in a root.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accounts {
    /// `/etc/passwd`.
    pub passwd: Vec<PasswdEntry>,
    /// `/etc/group`.
    pub groups: Vec<GroupEntry>,
    /// The password field of each user whose password the spec manages
    /// (None: no line in `/etc/shadow`).
    pub passwords: BTreeMap<String, Option<ShadowField>>,
    /// Each managed `authorized_keys` of an existing user, by user name.
    pub keys: BTreeMap<String, KeysFile>,
    /// The owner of the root directory: not 0:0 in a root systemd-nspawn
    /// shifted for private users (the range's base, added to every id).
    pub root_owner: (u32, u32),
}

impl Accounts {
    /// The passwd entry of `name`.
    pub fn user(&self, name: &str) -> Option<&PasswdEntry> {
        self.passwd.iter().find(|e| e.name == name)
    }

    /// Whether group `name` exists.
    pub fn has_group(&self, name: &str) -> bool {
        self.groups.iter().any(|g| g.name == name)
    }

    /// The supplementary groups `user` is a member of, sorted.
    pub fn memberships(&self, user: &str) -> Vec<String> {
        let mut groups: Vec<String> = self
            .groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == user))
            .map(|g| g.name.clone())
            .collect();
        groups.sort();
        groups
    }

    /// The name of the group with id `gid`.
    pub fn group_name(&self, gid: u32) -> Option<&str> {
        self.groups
            .iter()
            .find(|g| g.gid == gid)
            .map(|g| g.name.as_str())
    }

    /// The host uid and gid of a guest's `uid` and `gid` in this root (the
    /// private users shift added).
    pub fn host_ids(&self, uid: u32, gid: u32) -> (u32, u32) {
        shifted(self.root_owner, uid, gid)
    }
}

/// `uid`:`gid` shifted by a root owned by `base` (no shift for 0:0).
pub fn shifted(base: (u32, u32), uid: u32, gid: u32) -> (u32, u32) {
    if base.0 == 0 || uid >= USERNS_RANGE || gid >= USERNS_RANGE {
        (uid, gid)
    } else {
        (
            base.0.checked_add(uid).unwrap_or(uid),
            base.1.checked_add(gid).unwrap_or(gid),
        )
    }
}

/// The size of the UID/GID range systemd-nspawn gives a container.
const USERNS_RANGE: u32 = 0x10000;

/// A user's `authorized_keys` as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysFile {
    /// The file (`/home/alice/.ssh/authorized_keys`).
    pub path: String,
    /// Its home directory, as `lstat` sees it (None: absent).
    pub home: Option<Meta>,
    /// `~/.ssh` (None: absent).
    pub dir: Option<Meta>,
    /// The file (None: absent).
    pub file: Option<Meta>,
    /// Its contents, when it is a readable text file.
    pub content: Option<String>,
}

/// The `.ssh` directory of a keys file path.
pub fn ssh_dir(path: &str) -> &str {
    path.rsplit_once('/').map_or("/", |(dir, _)| dir)
}

/// Reads the accounts of `root` that `machine` manages; None when the spec
/// manages no user and no keys (nothing is read then).
pub fn read_root(root: &Root, machine: &Machine) -> Result<Option<Accounts>, EngineError> {
    if machine.users.is_empty() && machine.ssh_authorized_keys.is_none() {
        return Ok(None);
    }
    let passwd = passwd::parse_passwd(&root.read_string("/etc/passwd")?.unwrap_or_default());
    let groups = passwd::parse_group(&root.read_string("/etc/group")?.unwrap_or_default());
    let managed: Vec<&str> = machine
        .users
        .iter()
        .filter(|u| u.present && u.password.is_some())
        .map(|u| u.name.as_str())
        .collect();
    let mut passwords = BTreeMap::new();
    if !managed.is_empty() {
        let shadow = root.read_string("/etc/shadow")?.unwrap_or_default();
        for name in managed {
            passwords.insert(
                name.to_owned(),
                passwd::shadow_field(&shadow, name).map(|f| ShadowField(f.to_owned())),
            );
        }
    }
    let root_owner = root.owner("/")?.unwrap_or((0, 0));
    let mut accounts = Accounts {
        passwd,
        groups,
        passwords,
        keys: BTreeMap::new(),
        root_owner,
    };
    let mut wanted: Vec<&str> = machine
        .users
        .iter()
        .filter(|u| u.present && u.ssh_authorized_keys.is_some())
        .map(|u| u.name.as_str())
        .collect();
    if machine.ssh_authorized_keys.is_some() {
        wanted.push("root");
    }
    for name in wanted {
        let Some(entry) = accounts.user(name) else {
            continue;
        };
        let home = entry.home.trim_end_matches('/').to_owned();
        let path = format!("{home}/.ssh/authorized_keys");
        let file = root.meta(&path).unwrap_or(None);
        let content = match file {
            Some(meta) if meta.kind == crate::confined::FileKind::File => {
                root.read_string(&path).unwrap_or(None)
            }
            _ => None,
        };
        let keys = KeysFile {
            home: root.meta(&home).unwrap_or(None),
            dir: root.meta(ssh_dir(&path)).unwrap_or(None),
            file,
            content,
            path,
        };
        accounts.keys.insert(name.to_owned(), keys);
    }
    Ok(Some(accounts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_shift_only_in_a_shifted_root() {
        assert_eq!(shifted((0, 0), 1000, 1000), (1000, 1000));
        assert_eq!(
            shifted((0x50000, 0x50000), 1000, 100),
            (0x50000 + 1000, 0x50000 + 100)
        );
        assert_eq!(ssh_dir("/home/a/.ssh/authorized_keys"), "/home/a/.ssh");
        assert_eq!(
            format!("{:?}", ShadowField("$6$x".into())),
            "ShadowField(<sensitive>)"
        );
    }
}
