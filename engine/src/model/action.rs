//! The typed steps a plan is made of. Each action describes itself (for the
//! human plan and `--json`); executing it is `apply`'s job.

use std::collections::BTreeMap;

use berth_schema::{BootstrapperKind, Launcher, Storage};
use serde::Serialize;

use crate::drivers::files::{AttributeChange, DirectoryCreation, FileWrite, LinkChange, Removal};
use crate::drivers::network::address::Peer;
use crate::drivers::resources::{DeviceRule, Knob, ResourceChange, ResourceWrites, Value};
use crate::drivers::upgrade::{PackageUpgrade, UpgradeManager};

/// One change to one machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Create the root with a bootstrapper.
    Bootstrap {
        /// The distribution.
        distro: String,
        /// The release.
        release: Option<String>,
        /// The tool (`debootstrap`, ...).
        bootstrapper: BootstrapperKind,
        /// The package set passed to the tool.
        packages: Vec<String>,
        /// The exact command line that will run.
        command: Vec<String>,
        /// How the machine's root is made from the new base.
        #[serde(skip_serializing_if = "Storage::is_copy")]
        storage: Storage,
    },
    /// Create the root as a clone of a cached base (no bootstrap tool runs).
    Clone {
        /// The distribution.
        distro: String,
        /// The release.
        release: Option<String>,
        /// The bootstrapper that made the base.
        bootstrapper: BootstrapperKind,
        /// The cache entry id.
        base: String,
        /// A clone of the base, or an overlay on it.
        #[serde(skip_serializing_if = "Storage::is_copy")]
        storage: Storage,
    },
    /// Remove the root and bootstrap it again (distro, release or bootstrapper changed).
    Replace {
        /// What the root is now (`debian bookworm (debootstrap)`).
        from: String,
        /// What it will be.
        to: String,
    },
    /// Install packages the spec added, with the distribution's package manager.
    InstallPackages {
        /// The packages.
        packages: Vec<String>,
        /// The package manager (`apt-get`, ...).
        via: String,
        /// The commands that run, in order.
        #[serde(skip)]
        commands: Vec<Vec<String>>,
        /// Their environment (inside the guest, or on the host).
        #[serde(skip)]
        env: Vec<(String, String)>,
        /// Whether they run in the guest (its own package manager) or on the
        /// host against the root (a root without one).
        #[serde(skip)]
        in_guest: bool,
    },
    /// Remove packages berth installed that left the spec.
    RemovePackages {
        /// The packages.
        packages: Vec<String>,
        /// The package manager.
        via: String,
        /// The commands that run, in order.
        #[serde(skip)]
        commands: Vec<Vec<String>>,
        /// Their environment.
        #[serde(skip)]
        env: Vec<(String, String)>,
        /// Whether they run in the guest or on the host.
        #[serde(skip)]
        in_guest: bool,
    },
    /// Upgrade the guest's packages (`--upgrade`), with its own package
    /// manager, to exactly the versions the plan lists: apply asks the
    /// package manager again first, and anything else is a stale plan.
    UpgradePackages {
        /// How (`apt-get dist-upgrade`).
        via: String,
        /// Each package with its version now (`from`; null: new) and after
        /// (`to`; null: removed).
        packages: Vec<PackageUpgrade>,
        /// The package manager.
        #[serde(skip)]
        manager: UpgradeManager,
    },
    /// Write `/etc/hostname`.
    SetHostname {
        /// The current contents' hostname, if the file exists.
        from: Option<String>,
        /// The hostname the spec asks for.
        to: String,
    },
    /// `systemctl --root enable`.
    EnableUnit {
        /// The unit.
        unit: String,
        /// Its current state (`disabled`, ...), when the root exists.
        from: Option<String>,
    },
    /// `systemctl --root disable`.
    DisableUnit {
        /// The unit.
        unit: String,
        /// Its current state, when the root exists.
        from: Option<String>,
    },
    /// `systemctl --root mask`.
    MaskUnit {
        /// The unit.
        unit: String,
        /// Its current state, when the root exists.
        from: Option<String>,
    },
    /// `systemctl --root unmask`, before enabling or disabling a masked unit.
    UnmaskUnit {
        /// The unit.
        unit: String,
    },
    /// Set root's password field in `/etc/shadow`. The value is never shown.
    SetRootPassword {
        /// Where the password comes from: `hash`, `env` or `file`.
        source: String,
        /// Always true: the value is sensitive and never rendered.
        sensitive: bool,
    },
    /// Append missing entries to `/etc/securetty`.
    AddSecuretty {
        /// The entries to add.
        entries: Vec<String>,
        /// The file's current contents (None: absent), for the diff.
        #[serde(skip)]
        before: Option<String>,
        /// The contents after the change, for the diff.
        #[serde(skip)]
        after: String,
    },
    /// Remove entries berth added to `/etc/securetty` that left the spec
    /// (entries it did not add are never removed).
    RemoveSecuretty {
        /// The entries to remove.
        entries: Vec<String>,
        /// The file's current contents, for the diff.
        #[serde(skip)]
        before: String,
        /// The contents after the change, for the diff.
        #[serde(skip)]
        after: String,
    },
    /// Create or update a file the spec manages (`files:`): its contents,
    /// mode, owner and group (a secret's value is read again when applied).
    WriteFile(FileWrite),
    /// Set only the mode, owner or group of a managed file or directory.
    SetFileAttributes(AttributeChange),
    /// Create a managed directory.
    MakeDirectory(DirectoryCreation),
    /// Make or change a managed symbolic link.
    MakeLink(LinkChange),
    /// Remove a managed path (`state: absent`).
    RemoveFile(Removal),
    /// Write the machine's `.nspawn` settings file.
    WriteSettings {
        /// The file on the host (filled in when rendered).
        path: String,
        /// Its current contents (None: absent), for the diff.
        #[serde(skip)]
        before: Option<String>,
        /// Its new contents, for the diff.
        #[serde(skip)]
        after: String,
    },
    /// Record the machine's address in berth's record: unique on the host
    /// (`auto`: drawn from the pool). apply checks again that no other
    /// machine holds it.
    AllocateAddress {
        /// The address with its prefix (`10.0.0.5/24`).
        address: String,
        /// The address recorded until now, if another.
        from: Option<String>,
        /// The pool it was drawn from (`auto`).
        pool: Option<String>,
    },
    /// Write the guest's networkd file for `host0` (address, gateway, DNS).
    WriteNetworkConfig {
        /// The file inside the root.
        path: String,
        /// The address.
        address: String,
        /// The gateway.
        gateway: String,
        /// Its current contents (None: absent), for the diff.
        #[serde(skip)]
        before: Option<String>,
        /// Its new contents, for the diff.
        #[serde(skip)]
        after: String,
    },
    /// Remove the guest's networkd file berth wrote and release the
    /// machine's address (the spec no longer asks for one).
    RemoveNetworkConfig {
        /// The file inside the root.
        path: String,
        /// The address released.
        address: Option<String>,
        /// The file's current contents (None: already gone), for the diff.
        #[serde(skip)]
        before: Option<String>,
    },
    /// Write berth's block of the spec's other machines into the guest's
    /// `/etc/hosts` (or remove it: `network.hosts` left the spec).
    WriteHosts {
        /// The machines listed.
        peers: Vec<Peer>,
        /// Whether the block is removed.
        remove: bool,
        /// The file's current contents (None: absent), for the diff.
        #[serde(skip)]
        before: Option<String>,
        /// Its new contents, for the diff.
        #[serde(skip)]
        after: String,
    },
    /// Configure the host side of a running machine's link, found missing
    /// or wrong.
    ConfigureHostLink {
        /// The interface (`ve-NAME`, `vz-ZONE`).
        interface: String,
        /// What is missing or wrong.
        problems: Vec<String>,
        /// The `ip` commands that run.
        #[serde(skip)]
        commands: Vec<Vec<String>>,
    },
    /// Masquerade the machine's outbound traffic (berth's nftables table).
    AddNat {
        /// The machine's address.
        address: String,
        /// Whether IPv4 forwarding is turned on too (it is off now).
        enable_forwarding: bool,
    },
    /// Remove the machine's masquerade rules (`nat:` left the spec, or its
    /// address did).
    RemoveNat {
        /// The addresses they masquerade.
        addresses: Vec<String>,
    },
    /// Forward host ports to the machine's address with DNAT rules in
    /// berth's nftables table (or remove its forwards).
    ForwardPorts {
        /// The machine's address (None: the machine's forwards are removed).
        address: Option<String>,
        /// The forwards, `tcp:8080:80` (host port, machine port).
        ports: Vec<String>,
        /// The forwards found now, as their rules' comments.
        #[serde(skip)]
        before: Vec<String>,
        /// The forwards that are set.
        #[serde(skip)]
        forwards: Vec<berth_schema::Port>,
    },
    /// Make the machine start (or not) at host boot.
    SetAutostart {
        /// Start at boot or not.
        enabled: bool,
        /// The launcher whose boot integration is used.
        launcher: Launcher,
    },
    /// Restart the running machine so new settings take effect.
    Restart {
        /// The launcher that runs it.
        launcher: Launcher,
        /// Why, when it is not the `.nspawn` settings (a credential changed).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        reasons: Vec<String>,
    },
    /// Start the machine.
    Start {
        /// The launcher that starts it.
        launcher: Launcher,
    },
    /// Stop the machine.
    Stop {
        /// The launcher that started it.
        launcher: Launcher,
    },
    /// Remove a machine berth manages: its root, its `.nspawn` file, its
    /// boot integration and berth's record (`berth destroy`).
    Destroy {
        /// The root on the host.
        root: String,
        /// Why, when no one named the machine: `not-in-spec` (prune).
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<crate::model::plan::DestroyReason>,
    },
    /// Rename the machine berth manages as `from` to `to` (a `moved:`
    /// entry): stop it if it runs, rename its root, `.nspawn` file, record
    /// and logs; what else carried the old name (its unit's drop-ins,
    /// credentials, NAT rules, boot integration) is removed, and the rest
    /// of the plan sets it up under the new name.
    Rename {
        /// The old name.
        from: String,
        /// The new name.
        to: String,
        /// The launcher it runs under, when it is stopped first.
        #[serde(skip_serializing_if = "Option::is_none")]
        stop: Option<Launcher>,
    },
    /// Create a user with the guest's `useradd` (its home from `/etc/skel`,
    /// its password locked until one is set).
    CreateUser {
        /// The login name.
        name: String,
        /// Its supplementary groups.
        groups: Vec<String>,
        /// Its login shell, when the spec sets one.
        #[serde(skip_serializing_if = "Option::is_none")]
        shell: Option<String>,
        /// Its home, when the spec sets one.
        #[serde(skip_serializing_if = "Option::is_none")]
        home: Option<String>,
        /// A system user.
        system: bool,
        /// The command that runs in the machine.
        #[serde(skip)]
        command: Vec<String>,
    },
    /// Change a user with the guest's `usermod` and `gpasswd`.
    ChangeUser {
        /// The login name.
        name: String,
        /// What changes.
        changes: Vec<UserChange>,
        /// The commands that run in the machine.
        #[serde(skip)]
        commands: Vec<Vec<String>>,
    },
    /// Remove a user with the guest's `userdel` (`state: absent`).
    RemoveUser {
        /// The login name.
        name: String,
        /// Whether its home goes too (`remove_home: true`).
        remove_home: bool,
        /// The command that runs in the machine.
        #[serde(skip)]
        command: Vec<String>,
    },
    /// Set a user's password field in `/etc/shadow`. The value is never shown.
    SetUserPassword {
        /// The user.
        user: String,
        /// Where the password comes from: `hash`, `env` or `file`.
        source: String,
        /// Always true: the value is sensitive and never rendered.
        sensitive: bool,
    },
    /// Write a user's `~/.ssh/authorized_keys` (0600, `~/.ssh` 0700, owned
    /// by the user).
    WriteAuthorizedKeys {
        /// The user (`root` for the machine's `ssh_authorized_keys`).
        user: String,
        /// The file inside the root.
        path: String,
        /// How many keys it holds.
        keys: usize,
        /// What is wrong with the file or its directory besides the content.
        problems: Vec<String>,
        /// Its current contents (None: absent), for the diff.
        #[serde(skip)]
        before: Option<String>,
        /// Its new contents, for the diff (public keys: not sensitive).
        #[serde(skip)]
        after: String,
    },
    /// Write credential values (read from their sources at apply, never
    /// shown) into the machine's directory on the host, and remove the
    /// ones that left the spec.
    WriteCredentials {
        /// The directory (`/run/berth/credentials/NAME`).
        dir: String,
        /// The credentials written.
        write: Vec<String>,
        /// The credentials removed.
        remove: Vec<String>,
        /// Always true: the values are sensitive and never rendered.
        sensitive: bool,
    },
    /// Write (or remove) berth's drop-in that hands the credentials to
    /// `systemd-nspawn@NAME.service`, then reload systemd.
    WriteCredentialDropIn {
        /// The drop-in file.
        path: String,
        /// The credentials it passes.
        credentials: Vec<String>,
        /// Its current contents (None: absent), for the diff.
        #[serde(skip)]
        before: Option<String>,
        /// Its new contents (None: it is removed).
        #[serde(skip)]
        after: Option<String>,
    },
    /// Set resource limits: in the running machine's cgroup at once
    /// (`live`), and where its next start takes them from.
    SetResources {
        /// The launcher the limits are kept for.
        launcher: Launcher,
        /// Whether the running machine gets them now, without a restart.
        live: bool,
        /// The limits that change.
        changes: Vec<ResourceChange>,
        /// The exact writes.
        writes: ResourceWrites,
        /// The limits berth manages afterwards (its record).
        managed: BTreeMap<Knob, Value>,
    },
    /// Allow the spec's devices in the machine's unit: berth's
    /// `DeviceAllow=` drop-in, then `systemctl daemon-reload` (which applies
    /// it to the running unit too).
    SetDeviceAllow {
        /// The launcher (machinectl or nspawn-unit).
        launcher: Launcher,
        /// berth's drop-in.
        path: String,
        /// Entries allowed now.
        add: Vec<DeviceRule>,
        /// Entries no longer allowed.
        remove: Vec<DeviceRule>,
        /// Whether the running machine gets the change now.
        live: bool,
        /// The drop-in's current contents (None: absent), for the diff.
        #[serde(skip)]
        before: Option<String>,
        /// Its new contents (None: it is removed).
        #[serde(skip)]
        after: Option<String>,
    },
    /// Take a snapshot of the root before the actions that change it
    /// (`snapshots: {before_apply: true}`), then keep the newest `keep`
    /// snapshots of that origin.
    Snapshot {
        /// The machine.
        machine: String,
        /// The tag; None: generated from the origin and the time.
        #[serde(skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        /// How many snapshots of this origin to keep.
        keep: u32,
        /// Why it is taken.
        origin: crate::drivers::snapshot::SnapshotOrigin,
    },
}

/// One change to a user: `shell /bin/sh -> /bin/bash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserChange {
    /// What changes: `shell`, `home` or `groups`.
    pub field: String,
    /// The value now.
    pub from: String,
    /// The value after.
    pub to: String,
}

impl std::fmt::Display for UserChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &str| {
            if v.is_empty() {
                "(none)".to_owned()
            } else {
                v.to_owned()
            }
        };
        write!(
            f,
            "{} {} -> {}",
            self.field,
            show(&self.from),
            show(&self.to)
        )
    }
}

/// How an action changes the machine, for the `+`/`~`/`-` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Creates something (`+`).
    Create,
    /// Changes something in place (`~`).
    Change,
    /// Removes or turns something off (`-`).
    Remove,
    /// Destroys and recreates (`-/+`).
    Replace,
}

impl Action {
    /// The kebab-case name used in `--json` (`set-hostname`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Action::Bootstrap { .. } => "bootstrap",
            Action::Clone { .. } => "clone",
            Action::Replace { .. } => "replace",
            Action::InstallPackages { .. } => "install-packages",
            Action::RemovePackages { .. } => "remove-packages",
            Action::UpgradePackages { .. } => "upgrade-packages",
            Action::SetHostname { .. } => "set-hostname",
            Action::EnableUnit { .. } => "enable-unit",
            Action::DisableUnit { .. } => "disable-unit",
            Action::MaskUnit { .. } => "mask-unit",
            Action::UnmaskUnit { .. } => "unmask-unit",
            Action::SetRootPassword { .. } => "set-root-password",
            Action::AddSecuretty { .. } => "add-securetty",
            Action::RemoveSecuretty { .. } => "remove-securetty",
            Action::WriteFile(_) => "write-file",
            Action::SetFileAttributes(_) => "set-file-attributes",
            Action::MakeDirectory(_) => "make-directory",
            Action::MakeLink(_) => "make-link",
            Action::RemoveFile(_) => "remove-file",
            Action::WriteSettings { .. } => "write-settings",
            Action::AllocateAddress { .. } => "allocate-address",
            Action::WriteNetworkConfig { .. } => "write-network-config",
            Action::RemoveNetworkConfig { .. } => "remove-network-config",
            Action::WriteHosts { .. } => "write-hosts",
            Action::ConfigureHostLink { .. } => "configure-host-link",
            Action::AddNat { .. } => "add-nat",
            Action::RemoveNat { .. } => "remove-nat",
            Action::ForwardPorts { .. } => "forward-ports",
            Action::SetAutostart { .. } => "set-autostart",
            Action::Restart { .. } => "restart",
            Action::Start { .. } => "start",
            Action::Stop { .. } => "stop",
            Action::Destroy { .. } => "destroy",
            Action::Rename { .. } => "rename",
            Action::SetResources { .. } => "set-resources",
            Action::SetDeviceAllow { .. } => "set-device-allow",
            Action::CreateUser { .. } => "create-user",
            Action::ChangeUser { .. } => "change-user",
            Action::RemoveUser { .. } => "remove-user",
            Action::SetUserPassword { .. } => "set-user-password",
            Action::WriteAuthorizedKeys { .. } => "write-authorized-keys",
            Action::WriteCredentials { .. } => "write-credentials",
            Action::WriteCredentialDropIn { .. } => "write-credential-dropin",
            Action::Snapshot { .. } => "snapshot",
        }
    }

    /// Whether this creates, changes or removes.
    pub fn effect(&self) -> Effect {
        match self {
            Action::Bootstrap { .. }
            | Action::Clone { .. }
            | Action::Start { .. }
            | Action::EnableUnit { .. }
            | Action::InstallPackages { .. }
            | Action::Snapshot { .. } => Effect::Create,
            Action::Replace { .. } => Effect::Replace,
            Action::WriteFile(write) => write.effect(),
            Action::MakeDirectory(dir) => dir.effect(),
            Action::MakeLink(link) => link.effect(),
            Action::SetFileAttributes(_) | Action::Rename { .. } => Effect::Change,
            Action::RemoveFile(_) => Effect::Remove,
            Action::AddSecuretty { before: None, .. } => Effect::Create,
            Action::SetHostname { from: None, .. } => Effect::Create,
            Action::DisableUnit { .. }
            | Action::MaskUnit { .. }
            | Action::Stop { .. }
            | Action::RemovePackages { .. }
            | Action::RemoveSecuretty { .. }
            | Action::Destroy { .. } => Effect::Remove,
            Action::WriteSettings { before: None, .. } => Effect::Create,
            Action::AllocateAddress { from: None, .. }
            | Action::WriteNetworkConfig { before: None, .. }
            | Action::WriteHosts {
                before: None,
                remove: false,
                ..
            }
            | Action::AddNat { .. } => Effect::Create,
            Action::RemoveNetworkConfig { .. }
            | Action::WriteHosts { remove: true, .. }
            | Action::RemoveNat { .. } => Effect::Remove,
            Action::ForwardPorts { address: None, .. } => Effect::Remove,
            Action::ForwardPorts { before, .. } if before.is_empty() => Effect::Create,
            Action::ForwardPorts { .. } => Effect::Change,
            Action::AllocateAddress { .. }
            | Action::WriteNetworkConfig { .. }
            | Action::WriteHosts { .. }
            | Action::ConfigureHostLink { .. } => Effect::Change,
            Action::SetAutostart { enabled: true, .. } => Effect::Create,
            Action::SetAutostart { enabled: false, .. } => Effect::Remove,
            Action::SetResources { changes, .. } if changes.iter().all(|c| c.reset) => {
                Effect::Remove
            }
            Action::SetResources { changes, .. }
                if changes.iter().all(|c| c.from.is_none() && !c.reset) =>
            {
                Effect::Create
            }
            Action::SetDeviceAllow { remove, .. } if remove.is_empty() => Effect::Create,
            Action::SetDeviceAllow { add, .. } if add.is_empty() => Effect::Remove,
            Action::SetResources { .. } | Action::SetDeviceAllow { .. } => Effect::Change,
            Action::CreateUser { .. } => Effect::Create,
            Action::RemoveUser { .. } => Effect::Remove,
            Action::WriteAuthorizedKeys { before: None, .. } => Effect::Create,
            Action::WriteCredentials { write, .. } if write.is_empty() => Effect::Remove,
            Action::WriteCredentialDropIn { before: None, .. } => Effect::Create,
            Action::WriteCredentialDropIn { after: None, .. } => Effect::Remove,
            Action::ChangeUser { .. }
            | Action::SetUserPassword { .. }
            | Action::WriteAuthorizedKeys { .. }
            | Action::WriteCredentials { .. }
            | Action::WriteCredentialDropIn { .. } => Effect::Change,
            Action::SetHostname { .. }
            | Action::UpgradePackages { .. }
            | Action::WriteSettings { .. }
            | Action::Restart { .. }
            | Action::AddSecuretty { .. }
            | Action::UnmaskUnit { .. }
            | Action::SetRootPassword { .. } => Effect::Change,
        }
    }

    /// A one-line description, e.g. `enable unit systemd-networkd.service (now disabled)`.
    pub fn describe(&self) -> String {
        let was = |from: &Option<String>| match from {
            Some(state) => format!(" (now {state})"),
            None => String::new(),
        };
        match self {
            Action::Bootstrap {
                distro,
                release,
                bootstrapper,
                storage,
                ..
            } => format!(
                "bootstrap {distro}{} with {bootstrapper}{}",
                release
                    .as_deref()
                    .map(|r| format!(" {r}"))
                    .unwrap_or_default(),
                if storage.is_copy() {
                    ""
                } else {
                    " (the root: an overlay on the new base)"
                }
            ),
            Action::Clone {
                distro,
                release,
                bootstrapper,
                base,
                storage,
            } => format!(
                "create {distro}{} as {} cached base {base} (made by {bootstrapper})",
                release
                    .as_deref()
                    .map(|r| format!(" {r}"))
                    .unwrap_or_default(),
                if storage.is_copy() {
                    "a clone of"
                } else {
                    "an overlay on"
                }
            ),
            Action::Replace { from, to } => {
                format!("replace {from} with {to} (destroys the root)")
            }
            Action::InstallPackages { packages, via, .. } => {
                format!("install {} with {via}", packages.join(", "))
            }
            Action::RemovePackages { packages, via, .. } => {
                format!("remove {} with {via}", packages.join(", "))
            }
            Action::UpgradePackages { packages, via, .. } => format!(
                "upgrade packages ({via}): {}",
                packages
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Action::SetHostname {
                from: Some(from),
                to,
            } => {
                format!("set hostname {from:?} -> {to:?}")
            }
            Action::SetHostname { from: None, to } => format!("set hostname {to:?}"),
            Action::EnableUnit { unit, from } => format!("enable unit {unit}{}", was(from)),
            Action::DisableUnit { unit, from } => format!("disable unit {unit}{}", was(from)),
            Action::MaskUnit { unit, from } => format!("mask unit {unit}{}", was(from)),
            Action::UnmaskUnit { unit } => format!("unmask unit {unit}"),
            Action::SetRootPassword { source, .. } => {
                format!("set root password from {source} (sensitive)")
            }
            Action::AddSecuretty { entries, .. } => {
                format!("add {} to /etc/securetty", entries.join(", "))
            }
            Action::RemoveSecuretty { entries, .. } => {
                format!("remove {} from /etc/securetty", entries.join(", "))
            }
            Action::WriteFile(write) => write.describe(),
            Action::SetFileAttributes(change) => change.describe(),
            Action::MakeDirectory(dir) => dir.describe(),
            Action::MakeLink(link) => link.describe(),
            Action::RemoveFile(removal) => removal.describe(),
            Action::WriteSettings { path, .. } => {
                if path.is_empty() {
                    "write the .nspawn settings".to_owned()
                } else {
                    format!("write {path}")
                }
            }
            Action::AllocateAddress {
                address,
                from,
                pool,
            } => {
                let mut text = match pool {
                    Some(pool) => format!("allocate address {address} from pool {pool}"),
                    None => format!("record address {address} as the machine's"),
                };
                if let Some(from) = from {
                    text.push_str(&format!(" (was {from})"));
                }
                text
            }
            Action::WriteNetworkConfig {
                path,
                address,
                gateway,
                ..
            } => format!("write {path} (address {address}, gateway {gateway})"),
            Action::RemoveNetworkConfig {
                path,
                address,
                before,
            } => match (before, address) {
                (Some(_), Some(address)) => format!("remove {path} and release address {address}"),
                (Some(_), None) => format!("remove {path}"),
                (None, Some(address)) => format!("release address {address}"),
                (None, None) => "release the machine's address".to_owned(),
            },
            Action::WriteHosts { remove: true, .. } => {
                "remove berth's block of machines from /etc/hosts".to_owned()
            }
            Action::WriteHosts { peers, .. } => {
                let names: Vec<&str> = peers.iter().map(|p| p.name.as_str()).collect();
                format!(
                    "write the spec's machines into /etc/hosts ({})",
                    if names.is_empty() {
                        "none has an address yet".to_owned()
                    } else {
                        names.join(", ")
                    }
                )
            }
            Action::ConfigureHostLink {
                interface,
                problems,
                ..
            } => format!(
                "configure the host side of the link, {interface} ({})",
                problems.join("; ")
            ),
            Action::AddNat {
                address,
                enable_forwarding,
            } => format!(
                "masquerade outbound traffic from {address} (nftables table ip berth){}",
                if *enable_forwarding {
                    "; turn IPv4 forwarding on (net.ipv4.ip_forward is 0)"
                } else {
                    ""
                }
            ),
            Action::ForwardPorts {
                address: Some(address),
                ports,
                ..
            } => format!(
                "forward host port{} {} to {address} (nftables table ip berth)",
                if ports.len() == 1 { "" } else { "s" },
                ports.join(", ")
            ),
            Action::ForwardPorts { address: None, .. } => {
                "remove the machine's port forwards (nftables table ip berth)".to_owned()
            }
            Action::RemoveNat { addresses } => format!(
                "remove the masquerade rule for {} (nftables table ip berth)",
                addresses.join(", ")
            ),
            Action::SetAutostart {
                enabled: true,
                launcher,
            } => format!("start at host boot ({launcher})"),
            Action::SetAutostart {
                enabled: false,
                launcher,
            } => format!("do not start at host boot ({launcher})"),
            Action::Restart { launcher, reasons } if reasons.is_empty() => {
                format!("restart machine so new settings take effect ({launcher})")
            }
            Action::Restart { launcher, reasons } => {
                format!("restart machine: {} ({launcher})", reasons.join("; "))
            }
            Action::CreateUser {
                name,
                groups,
                shell,
                home,
                system,
                ..
            } => {
                let mut parts = Vec::new();
                if *system {
                    parts.push("system user".to_owned());
                }
                if !groups.is_empty() {
                    parts.push(format!("groups {}", groups.join(", ")));
                }
                if let Some(shell) = shell {
                    parts.push(format!("shell {shell}"));
                }
                if let Some(home) = home {
                    parts.push(format!("home {home}"));
                }
                if parts.is_empty() {
                    format!("create user {name}")
                } else {
                    format!("create user {name} ({})", parts.join(", "))
                }
            }
            Action::ChangeUser { name, changes, .. } => format!(
                "change user {name}: {}",
                changes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Action::RemoveUser {
                name, remove_home, ..
            } => format!(
                "remove user {name} ({})",
                if *remove_home {
                    "home removed"
                } else {
                    "home kept"
                }
            ),
            Action::SetUserPassword { user, source, .. } => {
                format!("set password of user {user} from {source} (sensitive)")
            }
            Action::WriteAuthorizedKeys {
                path,
                keys,
                problems,
                ..
            } => {
                let mut text = format!(
                    "write {path} ({keys} key{})",
                    if *keys == 1 { "" } else { "s" }
                );
                if !problems.is_empty() {
                    text.push_str(&format!("; {}", problems.join("; ")));
                }
                text
            }
            Action::WriteCredentials {
                dir, write, remove, ..
            } => {
                let mut parts = Vec::new();
                if !write.is_empty() {
                    parts.push(format!(
                        "hand credential{} {} to the machine (sensitive; values in {dir})",
                        if write.len() == 1 { "" } else { "s" },
                        write.join(", ")
                    ));
                }
                if !remove.is_empty() {
                    parts.push(format!(
                        "remove credential{} {} from {dir}",
                        if remove.len() == 1 { "" } else { "s" },
                        remove.join(", ")
                    ));
                }
                parts.join("; ")
            }
            Action::WriteCredentialDropIn {
                path,
                credentials,
                after,
                ..
            } => match after {
                Some(_) => format!(
                    "write {path} (LoadCredential= and --load-credential= for {})",
                    credentials.join(", ")
                ),
                None => format!("remove {path}"),
            },
            Action::Start { launcher } => format!("start machine ({launcher})"),
            Action::Stop { launcher } => format!("stop machine ({launcher})"),
            Action::Rename { from, to, stop } => match stop {
                Some(launcher) => format!("rename {from} -> {to} (stopped first, {launcher})"),
                None => format!("rename {from} -> {to}"),
            },
            Action::Snapshot {
                machine,
                tag,
                keep,
                origin,
            } => format!(
                "snapshot {machine}{} ({}; keeping {keep})",
                tag.as_deref()
                    .map(|t| format!(" as {t}"))
                    .unwrap_or_default(),
                origin.as_str().replace('-', " ")
            ),
            Action::Destroy { root, reason: None } => {
                format!("destroy machine: remove {root}, its .nspawn file and berth's record")
            }
            Action::Destroy {
                root,
                reason: Some(reason),
            } => {
                let name = std::path::Path::new(root)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| root.clone());
                format!("destroy {name} ({reason})")
            }
            Action::SetResources { live, changes, .. } => format!(
                "set resources: {} ({})",
                changes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                if *live { "live" } else { "at the next start" }
            ),
            Action::SetDeviceAllow {
                add, remove, live, ..
            } => {
                let list = |rules: &[DeviceRule]| {
                    rules
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                // A device in both lists changes its access.
                let changed: Vec<String> = add
                    .iter()
                    .filter_map(|a| {
                        let old = remove.iter().find(|r| r.path == a.path)?;
                        Some(format!("{} {} -> {}", a.path, old.access, a.access))
                    })
                    .collect();
                let only = |rules: &[DeviceRule], other: &[DeviceRule]| -> Vec<DeviceRule> {
                    rules
                        .iter()
                        .filter(|r| !other.iter().any(|o| o.path == r.path))
                        .cloned()
                        .collect()
                };
                let (add, remove) = (only(add, remove), only(remove, add));
                let mut parts = Vec::new();
                if !add.is_empty() {
                    parts.push(format!("allow device {}", list(&add)));
                }
                if !changed.is_empty() {
                    parts.push(format!("change device {}", changed.join(", ")));
                }
                if !remove.is_empty() {
                    parts.push(format!("stop allowing device {}", list(&remove)));
                }
                if parts.is_empty() {
                    parts.push("rewrite berth's drop-in".to_owned());
                }
                format!(
                    "{} (DeviceAllow=, {})",
                    parts.join("; "),
                    if *live { "live" } else { "at the next start" }
                )
            }
        }
    }

    /// For actions that rewrite a non-secret file: (path in the root, old, new) for a diff.
    pub fn file_change(&self) -> Option<(String, String, String)> {
        match self {
            Action::WriteFile(write) => write.file_change(),
            Action::SetHostname { from, to } => Some((
                "/etc/hostname".to_owned(),
                from.as_ref().map(|f| format!("{f}\n")).unwrap_or_default(),
                format!("{to}\n"),
            )),
            Action::AddSecuretty { before, after, .. } => Some((
                "/etc/securetty".to_owned(),
                before.clone().unwrap_or_default(),
                after.clone(),
            )),
            Action::RemoveSecuretty { before, after, .. } => {
                Some(("/etc/securetty".to_owned(), before.clone(), after.clone()))
            }
            Action::WriteSettings {
                path,
                before,
                after,
            }
            | Action::WriteNetworkConfig {
                path,
                before,
                after,
                ..
            } => Some((
                path.clone(),
                before.clone().unwrap_or_default(),
                after.clone(),
            )),
            Action::RemoveNetworkConfig {
                path,
                before: Some(before),
                ..
            } => Some((path.clone(), before.clone(), String::new())),
            Action::WriteHosts { before, after, .. } => Some((
                "/etc/hosts".to_owned(),
                before.clone().unwrap_or_default(),
                after.clone(),
            )),
            Action::SetDeviceAllow {
                path,
                before,
                after,
                ..
            }
            | Action::WriteCredentialDropIn {
                path,
                before,
                after,
                ..
            } => Some((
                path.clone(),
                before.clone().unwrap_or_default(),
                after.clone().unwrap_or_default(),
            )),
            Action::WriteAuthorizedKeys {
                path,
                before,
                after,
                ..
            } => Some((
                path.clone(),
                before.clone().unwrap_or_default(),
                after.clone(),
            )),
            _ => None,
        }
    }

    /// The commands the action runs, as a user would type them (for
    /// `--verbose`; the bootstrap's is always shown). Unit changes name the
    /// root `ROOT`.
    pub fn commands(&self) -> Vec<String> {
        let unit = |verb: &str, unit: &str| vec![format!("systemctl --root=ROOT {verb} -- {unit}")];
        match self {
            Action::InstallPackages { commands, .. } | Action::RemovePackages { commands, .. } => {
                commands.iter().map(|c| c.join(" ")).collect()
            }
            Action::UpgradePackages { manager, .. } => manager.commands(),
            Action::EnableUnit { unit: u, .. } => unit("enable", u),
            Action::DisableUnit { unit: u, .. } => unit("disable", u),
            Action::MaskUnit { unit: u, .. } => unit("mask", u),
            Action::UnmaskUnit { unit: u } => unit("unmask", u),
            Action::ConfigureHostLink { commands, .. } => {
                commands.iter().map(|c| c.join(" ")).collect()
            }
            Action::SetResources { writes, .. } => writes.commands(),
            Action::SetDeviceAllow { .. } | Action::WriteCredentialDropIn { .. } => {
                vec!["systemctl daemon-reload".to_owned()]
            }
            Action::CreateUser { command, .. } | Action::RemoveUser { command, .. } => {
                vec![command.join(" ")]
            }
            Action::ChangeUser { commands, .. } => commands.iter().map(|c| c.join(" ")).collect(),
            _ => Vec::new(),
        }
    }

    /// What the action acts on, ignoring the observed "before" values: two
    /// plans of the same machine agree when their actions' keys agree.
    pub fn key(&self) -> String {
        match self {
            Action::EnableUnit { unit, .. }
            | Action::DisableUnit { unit, .. }
            | Action::MaskUnit { unit, .. }
            | Action::UnmaskUnit { unit } => format!("{} {unit}", self.name()),
            Action::SetHostname { to, .. } => format!("{} {to}", self.name()),
            // Whatever is there now: the path ends up as the spec says.
            Action::WriteFile(FileWrite { path, .. })
            | Action::SetFileAttributes(AttributeChange { path, .. })
            | Action::MakeDirectory(DirectoryCreation { path, .. })
            | Action::MakeLink(LinkChange { path, .. }) => format!("file {path}"),
            Action::RemoveFile(Removal { path, .. }) => format!("{} {path}", self.name()),
            Action::InstallPackages { packages, .. } | Action::RemovePackages { packages, .. } => {
                format!("{} {}", self.name(), packages.join(","))
            }
            Action::Start { launcher }
            | Action::Stop { launcher }
            | Action::Restart { launcher, .. } => format!("{} {}", self.name(), launcher.as_str()),
            Action::UpgradePackages { packages, .. } => format!(
                "{} {}",
                self.name(),
                packages
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Action::CreateUser { name, .. }
            | Action::ChangeUser { name, .. }
            | Action::RemoveUser { name, .. }
            | Action::SetUserPassword { user: name, .. }
            | Action::WriteAuthorizedKeys { user: name, .. } => format!("{} {name}", self.name()),
            Action::SetAutostart { enabled, launcher } => {
                format!("{} {enabled} {}", self.name(), launcher.as_str())
            }
            // Whether the root is bootstrapped or cloned depends on the
            // cache at that moment (another machine may just have filled it).
            Action::Bootstrap { .. } | Action::Clone { .. } => "create-root".to_owned(),
            _ => self.name().to_owned(),
        }
    }
}
