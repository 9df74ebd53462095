//! `nspawn_extra:`: the `.nspawn` sections and the keys systemd.nspawn(5)
//! knows in each (systemd 252 and later additions), and their values.

use std::fmt::Write as _;

use super::messages::{quote, suggest};

/// `[Exec]` keys.
pub(crate) const EXEC_KEYS: &[&str] = &[
    "Boot",
    "Ephemeral",
    "ProcessTwo",
    "Parameters",
    "Environment",
    "User",
    "WorkingDirectory",
    "PivotRoot",
    "Capability",
    "DropCapability",
    "AmbientCapability",
    "NoNewPrivileges",
    "KillSignal",
    "Personality",
    "MachineID",
    "PrivateUsers",
    "NotifyReady",
    "SystemCallFilter",
    "LimitCPU",
    "LimitFSIZE",
    "LimitDATA",
    "LimitSTACK",
    "LimitCORE",
    "LimitRSS",
    "LimitNOFILE",
    "LimitAS",
    "LimitNPROC",
    "LimitMEMLOCK",
    "LimitLOCKS",
    "LimitSIGPENDING",
    "LimitMSGQUEUE",
    "LimitNICE",
    "LimitRTPRIO",
    "LimitRTTIME",
    "OOMScoreAdjust",
    "CPUAffinity",
    "Hostname",
    "ResolvConf",
    "Timezone",
    "LinkJournal",
    "SuppressSync",
];

/// `[Files]` keys.
pub(crate) const FILES_KEYS: &[&str] = &[
    "ReadOnly",
    "Volatile",
    "Bind",
    "BindReadOnly",
    "BindUser",
    "TemporaryFileSystem",
    "Inaccessible",
    "Overlay",
    "OverlayReadOnly",
    "PrivateUsersOwnership",
];

/// `[Network]` keys.
pub(crate) const NETWORK_KEYS: &[&str] = &[
    "Private",
    "VirtualEthernet",
    "VirtualEthernetExtra",
    "Interface",
    "MACVLAN",
    "IPVLAN",
    "Bridge",
    "Zone",
    "Port",
];

/// The sections, as written in the spec and in the `.nspawn` file, with their keys.
pub(crate) const SECTIONS: &[(&str, &[&str])] = &[
    ("Exec", EXEC_KEYS),
    ("Files", FILES_KEYS),
    ("Network", NETWORK_KEYS),
];

/// The section names only, for messages.
pub(crate) const SECTION_NAMES: &[&str] = &["Exec", "Files", "Network"];

/// The section `key` belongs to, if systemd.nspawn(5) knows it (exact case).
pub(crate) fn section_of(key: &str) -> Option<&'static str> {
    SECTIONS
        .iter()
        .find(|(_, keys)| keys.contains(&key))
        .map(|(name, _)| *name)
}

/// A key of `[section]`: one systemd.nspawn(5) knows there, in its exact
/// case. Otherwise the message says where it belongs, or suggests the key
/// it most likely is.
pub(crate) fn nspawn_key(section: &str, key: &str) -> Result<(), String> {
    let own: &[&str] = SECTIONS
        .iter()
        .find(|(name, _)| *name == section)
        .map_or(&[], |(_, keys)| *keys);
    if own.contains(&key) {
        return Ok(());
    }
    let mut msg = format!("systemd.nspawn(5) has no key {} in [{section}]", quote(key));
    if let Some(other) = section_of(key) {
        let _ = write!(msg, ": it belongs in [{other}]");
        return Err(msg);
    }
    if let Some(s) = suggest(key, own) {
        let _ = write!(msg, " (did you mean `{s}`?)");
        return Err(msg);
    }
    for (other, keys) in SECTIONS.iter().filter(|(name, _)| *name != section) {
        if let Some(s) = suggest(key, keys) {
            let _ = write!(msg, " (did you mean `{s}`? it belongs in [{other}])");
            return Err(msg);
        }
    }
    Err(msg)
}

/// A value for `key`: no line break or other control character (tab
/// included), which a `.nspawn` line cannot hold. Never echoes the value
/// (`Environment=` may carry a token).
pub(crate) fn nspawn_value(key: &str, value: &str) -> Result<(), String> {
    if value.chars().any(char::is_control) {
        return Err(format!(
            "the value of {} contains a control character (line break, tab, ...), which a .nspawn file cannot hold",
            quote(key)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_known_per_section() {
        assert!(nspawn_key("Exec", "Boot").is_ok());
        assert!(nspawn_key("Files", "PrivateUsersOwnership").is_ok());
        assert!(nspawn_key("Network", "MACVLAN").is_ok());
        assert_eq!(
            nspawn_key("Exec", "Foo"),
            Err("systemd.nspawn(5) has no key `Foo` in [Exec]".to_owned())
        );
        assert_eq!(
            nspawn_key("Exec", "Bind"),
            Err("systemd.nspawn(5) has no key `Bind` in [Exec]: it belongs in [Files]".to_owned())
        );
        let msg = nspawn_key("Exec", "boot").expect_err("case");
        assert!(msg.ends_with("(did you mean `Boot`?)"), "{msg}");
        let msg = nspawn_key("Exec", "Hostnme").expect_err("typo");
        assert!(msg.ends_with("(did you mean `Hostname`?)"), "{msg}");
        let msg = nspawn_key("Exec", "bind").expect_err("case, other section");
        assert!(
            msg.ends_with("(did you mean `Bind`? it belongs in [Files])"),
            "{msg}"
        );
        // Every key is in exactly one section.
        let all: Vec<&str> = SECTIONS
            .iter()
            .flat_map(|(_, k)| k.iter().copied())
            .collect();
        for key in &all {
            assert_eq!(all.iter().filter(|k| *k == key).count(), 1, "{key}");
        }
        assert_eq!(all.len(), 41 + 10 + 9);
    }

    #[test]
    fn values() {
        assert!(nspawn_value("Hostname", "web").is_ok());
        assert!(nspawn_value("Parameters", "").is_ok());
        for bad in ["a\nb", "a\tb", "a\rb", "\u{1b}[2J", "a\0b"] {
            let msg = nspawn_value("Environment", bad).expect_err("refused");
            assert!(!msg.contains(bad), "{msg}");
            assert!(msg.contains("`Environment`"), "{msg}");
        }
    }
}
