//! `/etc/passwd`, `/etc/group` and a user's field of `/etc/shadow`: read
//! natively, and the shadow line of one user rewritten keeping every other
//! line and field exactly as it was.

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    /// The login name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
    /// Its home directory.
    pub home: String,
    /// Its login shell.
    pub shell: String,
}

/// One line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// The group name.
    pub name: String,
    /// Its gid.
    pub gid: u32,
    /// Its supplementary members.
    pub members: Vec<String>,
}

/// The entries of a passwd file; malformed lines (and NIS `+`/`-` lines) are skipped.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 7 || fields[0].is_empty() || fields[0].starts_with(['+', '-']) {
                return None;
            }
            Some(PasswdEntry {
                name: fields[0].to_owned(),
                uid: fields[2].parse().ok()?,
                gid: fields[3].parse().ok()?,
                home: fields[5].to_owned(),
                shell: fields[6].to_owned(),
            })
        })
        .collect()
}

/// The entries of a group file; malformed lines are skipped.
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 4 || fields[0].is_empty() || fields[0].starts_with(['+', '-']) {
                return None;
            }
            Some(GroupEntry {
                name: fields[0].to_owned(),
                gid: fields[2].parse().ok()?,
                members: fields[3]
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

/// The password field of `user`'s line in a shadow file, if there is one
/// (a line is `user`'s only when it starts with `user:`).
pub fn shadow_field<'a>(shadow: &'a str, user: &str) -> Option<&'a str> {
    shadow.split('\n').find_map(|line| {
        line.strip_prefix(user)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(|rest| rest.split(':').next().unwrap_or(""))
    })
}

/// `shadow` with `user`'s password field set to `hash` and its last-change
/// field to `days_since_epoch`; every other line and field byte for byte.
/// None when the file has no line for `user` (the guest's `useradd` makes
/// one: berth never invents an account line).
pub fn with_user_hash(
    shadow: &str,
    user: &str,
    hash: &str,
    days_since_epoch: u64,
) -> Option<String> {
    let mut out = String::with_capacity(shadow.len() + hash.len());
    let mut found = false;
    let days = days_since_epoch.to_string();
    for line in shadow.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        let mut fields: Vec<&str> = body.split(':').collect();
        if !found && fields.len() > 1 && fields[0] == user {
            found = true;
            fields[1] = hash;
            if fields.len() > 2 {
                fields[2] = &days;
            }
            out.push_str(&fields.join(":"));
            out.push('\n');
        } else {
            out.push_str(body);
            out.push_str(newline);
        }
    }
    found.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_and_group_lines_are_read_and_junk_skipped() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice,,,:/home/alice:/bin/sh\n\
                      broken\n+nis::::::\nbad:x:notanumber:1::/:/bin/sh\n";
        let entries = parse_passwd(passwd);
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[1],
            PasswdEntry {
                name: "alice".into(),
                uid: 1000,
                gid: 1000,
                home: "/home/alice".into(),
                shell: "/bin/sh".into(),
            }
        );
        let groups = parse_group("sudo:x:27:alice,bob\nalice:x:1000:\nusers:x:100:\n");
        assert_eq!(groups[0].members, ["alice", "bob"]);
        assert!(groups[1].members.is_empty());
    }

    #[test]
    fn a_users_hash_is_replaced_and_nothing_else() {
        let shadow = "root:*:19000:0:99999:7:::\nalice:!:19000:0:99999:7:::\nalicex:y:1::::::\n";
        assert_eq!(shadow_field(shadow, "alice"), Some("!"));
        assert_eq!(shadow_field(shadow, "ali"), None);
        let out = with_user_hash(shadow, "alice", "$6$s$h", 20000).unwrap();
        assert_eq!(
            out,
            "root:*:19000:0:99999:7:::\nalice:$6$s$h:20000:0:99999:7:::\nalicex:y:1::::::\n"
        );
        assert_eq!(
            with_user_hash(&out, "alice", "$6$s$h", 20000).as_deref(),
            Some(out.as_str())
        );
        assert_eq!(with_user_hash(shadow, "bob", "$6$s$h", 1), None);
    }
}
