//! Plan warnings: things the user should know that are not errors. Typed,
//! so front ends match on the kind; shown (and serialised) as one line.

use std::fmt;

use serde::{Serialize, Serializer};

/// Something the user should know about a machine's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// Debian's PAM stack ignores `/etc/securetty`.
    SecurettyIgnored,
    /// No securetty entry of the spec matches the pty `machinectl login`
    /// gets (nspawn gives the container's console `pts/0`, so a login lands
    /// on `pts/1` or later): where PAM checks `/etc/securetty`, root cannot
    /// log in that way.
    SecurettyMissesLoginPty {
        /// The spec's entries.
        entries: Vec<String>,
        /// The first pty `machinectl login` gets (`pts/1`).
        pty: String,
        /// The launcher that registers the machine with machined.
        launcher: berth_schema::Launcher,
    },
    /// The machine runs, started outside berth; berth neither stops nor
    /// starts it, and changes inside go into its running guest.
    Foreign {
        /// How it was started, as far as can be told.
        how: String,
        /// Whether the spec wants it stopped.
        wants_stopped: bool,
    },
    /// A package left the spec but came with the bootstrap: never removed.
    BasePackageKept {
        /// The package.
        package: String,
    },
    /// The guest's networkd or resolved runs on the host's network.
    GuestNetworkOnHost {
        /// The units the spec enables among systemd-networkd and systemd-resolved.
        units: Vec<String>,
    },
    /// Port forwards on a host where nothing gives the guest an address.
    PortsWithoutAddress,
    /// The root password file is readable by group or others.
    SecretFileReadable {
        /// The file.
        path: String,
    },
    /// A secret file of `files:` is readable by group or others.
    FileSecretReadable {
        /// The managed path it is written to.
        target: String,
        /// The secret file.
        path: String,
    },
    /// A user's password file or a credential file is readable by group or
    /// others.
    AccountSecretReadable {
        /// The field it comes from (`credentials db: file`).
        field: String,
        /// The secret file.
        path: String,
    },
    /// Resource limits cannot be read or set in the running machine's
    /// cgroup; they take effect at its next start.
    ResourcesAtNextStart {
        /// The limits (`memory_max`, ...).
        knobs: Vec<String>,
        /// Why.
        why: String,
    },
    /// A machine to prune has `prevent_destroy` recorded: `apply --prune`
    /// refuses it.
    PruneRefused {
        /// berth's record of it.
        record: String,
    },
}

/// The guest's network manager.
pub const NETWORKD: &str = "systemd-networkd.service";
/// The guest's resolver.
pub const RESOLVED: &str = "systemd-resolved.service";

impl Warning {
    /// Whether this warning reports a machine berth does not control.
    pub fn is_foreign(&self) -> bool {
        matches!(self, Warning::Foreign { .. })
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::SecurettyIgnored => f.write_str(
                "Debian no longer honours /etc/securetty (pam_securetty is not in its PAM stack); \
                 berth writes the entries, but they do not restrict root logins",
            ),
            Warning::SecurettyMissesLoginPty {
                entries,
                pty,
                launcher,
            } => write!(
                f,
                "securetty lists {} but `machinectl login` gets {pty} or later (under {launcher}, \
                 systemd-nspawn gives the container's console pts/0): where PAM checks \
                 /etc/securetty, root cannot log in with machinectl login; add {pty}",
                entries.join(", ")
            ),
            Warning::Foreign { how, wants_stopped } => write!(
                f,
                "the machine runs, started outside berth ({how}); berth does not fight it: it \
                 neither stops, starts nor restarts it (changes inside go into the running \
                 guest); to hand it to berth, stop it the way it was started, then apply{}",
                if *wants_stopped {
                    " (the spec wants it stopped)"
                } else {
                    ""
                }
            ),
            Warning::BasePackageKept { package } => write!(
                f,
                "package {package} left the spec but was part of the bootstrap: berth never removes base packages"
            ),
            Warning::GuestNetworkOnHost { units } => {
                write!(
                    f,
                    "{} enabled under host networking: the guest shares the host's network",
                    units.join(" and ")
                )?;
                if units.iter().any(|u| u == NETWORKD) {
                    f.write_str(
                        "; its systemd-networkd can reconfigure the host's interfaces, addresses and routes",
                    )?;
                }
                if units.iter().any(|u| u == RESOLVED) {
                    f.write_str(
                        "; its systemd-resolved binds 127.0.0.53:53 and 127.0.0.54:53, and LLMNR on port                          5355 of every address, in the host's namespace (and has no upstream DNS server                          there: berth gives the guest the host's /etc/resolv.conf instead)",
                    )?;
                }
                f.write_str("; set network.mode: veth or a zone, or leave them disabled")
            }
            Warning::PortsWithoutAddress => f.write_str(
                "network.ports: systemd-nspawn forwards them to the guest's IPv4 address on host0, \
                 and nothing on this host gives it one (no host networkd serves DHCP to containers): \
                 unless the guest configures host0 itself, set network.address (an address, or auto)",
            ),
            Warning::SecretFileReadable { path } => write!(
                f,
                "root_password file {path} is readable by group or others (chmod 600 it)"
            ),
            Warning::FileSecretReadable { target, path } => write!(
                f,
                "files {target}: secret file {path} is readable by group or others (chmod 600 it)"
            ),
            Warning::AccountSecretReadable { field, path } => write!(
                f,
                "{field} {path} is readable by group or others (chmod 600 it)"
            ),
            Warning::ResourcesAtNextStart { knobs, why } => write!(
                f,
                "resources: {} cannot be applied to the running machine ({why}); \
                 they take effect at its next start",
                knobs.join(", ")
            ),
            Warning::PruneRefused { record } => write!(
                f,
                "prevent_destroy is set (recorded at the last apply in {record}): apply --prune \
                 refuses to destroy it; to let it go, add it back to the spec without \
                 prevent_destroy and apply, then remove it"
            ),
        }
    }
}

impl Serialize for Warning {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
