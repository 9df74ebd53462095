//! The guest's accounts, which owners and groups of managed files resolve
//! against: its own `/etc/passwd` and `/etc/group` (read confined to the
//! root), never the host's; and the ownership shift of a root that
//! systemd-nspawn shifted for private users.

use std::collections::BTreeMap;

use crate::confined::Root;
use crate::error::EngineError;

/// The size of the UID/GID range systemd-nspawn gives a container.
pub const USERNS_RANGE: u32 = 0x10000;

/// Names to ids, from the guest's `/etc/passwd` and `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accounts {
    /// User names to uids.
    pub users: BTreeMap<String, u32>,
    /// Group names to gids.
    pub groups: BTreeMap<String, u32>,
}

/// `name -> id` from a passwd or group file (`name:x:ID:...`); malformed
/// lines are skipped, and the first line of a name wins (as NSS reads it).
pub fn parse_ids(text: &str) -> BTreeMap<String, u32> {
    let mut ids = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if name.is_empty() || name.starts_with(['#', '+', '-']) {
            continue;
        }
        if let Ok(id) = id.trim().parse::<u32>() {
            ids.entry(name.to_owned()).or_insert(id);
        }
    }
    ids
}

/// A numeric owner or group (`1000`).
pub fn numeric(name: &str) -> Option<u32> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

impl Accounts {
    /// Reads the guest's `/etc/passwd` and `/etc/group` (missing files: no accounts).
    pub fn read(root: &Root) -> Result<Accounts, EngineError> {
        Ok(Accounts {
            users: parse_ids(&root.read_string("/etc/passwd")?.unwrap_or_default()),
            groups: parse_ids(&root.read_string("/etc/group")?.unwrap_or_default()),
        })
    }

    /// The uid of owner `name` (a name or a number; `root` is 0 even in a
    /// root without `/etc/passwd`).
    pub fn uid(&self, name: &str) -> Option<u32> {
        numeric(name)
            .or_else(|| self.users.get(name).copied())
            .or_else(|| (name == "root").then_some(0))
    }

    /// The gid of group `name` (a name or a number; `root` is 0).
    pub fn gid(&self, name: &str) -> Option<u32> {
        numeric(name)
            .or_else(|| self.groups.get(name).copied())
            .or_else(|| (name == "root").then_some(0))
    }

    /// The name of `uid`, or the number.
    pub fn user_name(&self, uid: u32) -> String {
        name_of(&self.users, uid)
    }

    /// The name of `gid`, or the number.
    pub fn group_name(&self, gid: u32) -> String {
        name_of(&self.groups, gid)
    }
}

/// The first name of `id` (0 is `root` when the file does not say), or the number.
fn name_of(ids: &BTreeMap<String, u32>, id: u32) -> String {
    ids.iter()
        .find(|(_, i)| **i == id)
        .map(|(name, _)| name.clone())
        .or_else(|| (id == 0).then(|| "root".to_owned()))
        .unwrap_or_else(|| id.to_string())
}

/// The base uid and gid of a root whose ownership systemd-nspawn shifted
/// for private users (its `/` is owned by the range's base, not 0); None
/// for an unshifted root.
pub fn shift_of(root: &Root) -> Result<Option<(u32, u32)>, EngineError> {
    Ok(root.owner("/")?.filter(|(uid, _)| *uid != 0))
}

/// The id the guest sees for `host_id` stored in a root shifted by `base`.
pub fn to_guest(host_id: u32, base: Option<u32>) -> u32 {
    match base {
        Some(base) if host_id >= base && host_id - base < USERNS_RANGE => host_id - base,
        _ => host_id,
    }
}

/// The id to store on the host for `guest_id` in a root shifted by `base`;
/// None when it lies outside the container's range.
pub fn to_host(guest_id: u32, base: Option<u32>) -> Option<u32> {
    match base {
        None => Some(guest_id),
        Some(_) if guest_id >= USERNS_RANGE => None,
        Some(base) => base.checked_add(guest_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_guest_files_and_shift_with_the_root() {
        let ids = parse_ids(
            "root:x:0:0:root:/root:/bin/bash\n# comment\nbad\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\nroot:x:7:7::/:/bin/sh\n",
        );
        assert_eq!(ids.get("root"), Some(&0));
        assert_eq!(ids.get("www-data"), Some(&33));
        assert_eq!(ids.len(), 2);
        let accounts = Accounts {
            users: ids.clone(),
            groups: ids,
        };
        assert_eq!(accounts.uid("www-data"), Some(33));
        assert_eq!(accounts.uid("1000"), Some(1000));
        assert_eq!(accounts.uid("nobody"), None);
        assert_eq!(accounts.user_name(33), "www-data");
        assert_eq!(accounts.group_name(4242), "4242");
        assert_eq!(to_guest(0x5000_0021, Some(0x5000_0000)), 33);
        assert_eq!(to_host(33, Some(0x5000_0000)), Some(0x5000_0021));
        assert_eq!(to_host(70000, Some(0x5000_0000)), None);
        assert_eq!((to_guest(33, None), to_host(33, None)), (33, Some(33)));
    }
}
