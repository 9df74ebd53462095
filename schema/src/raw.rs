//! The spec file as written: serde types mirroring the YAML, every value
//! validated later wrapped in [`Spanned`] so it keeps its line and column.
//!
//! Nothing here checks values; [`crate::validate`] does. These types also
//! describe the file for the JSON Schema.

use std::cell::RefCell;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use crate::names::{self, quote};
use crate::spec::{
    BootstrapperKind, DesiredState, Distro, Launcher, NetworkMode, PrivateUsers, Storage,
};

/// A berth spec file: machines, and defaults merged under each of them.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// An empty file is an empty spec: `null` is accepted as well as a mapping.
#[schemars(
    title = "berth spec",
    extend("additionalProperties" = false, "type" = ["object", "null"])
)]
pub(crate) struct RawFile {
    #[serde(default)]
    /// Fields merged under every machine of this file; a machine's own value
    /// wins, field by field (a machine's `units`, `bootstrap_options`,
    /// `network`, `binds`, `environment`, `resources`, `devices`,
    /// `nspawn_extra`, `files`, `users`, `ssh_authorized_keys` or
    /// `credentials` replaces the default one whole; `vars` merge key by key).
    pub defaults: Option<RawMachine>,
    /// Template variables for every machine of this file; `defaults`' and
    /// then each machine's own `vars` win over them, key by key.
    #[serde(default)]
    #[schemars(with = "Option<VarsSchema>")]
    pub vars: Option<RawEntries<serde_json::Value>>,
    /// The machines, by name, in order. A name is 1–64 of `[A-Za-z0-9._-]`,
    /// not starting with `-` or `.`.
    #[serde(default)]
    #[schemars(schema_with = "machines_schema")]
    pub machines: Option<RawMachines>,
    /// The hosts machines run on, by name (see `host` of a machine).
    #[serde(default)]
    #[schemars(schema_with = "crate::hosts::hosts_schema")]
    pub hosts: Option<RawEntries<Option<crate::hosts::RawHost>>>,
    /// The known_hosts file ssh checks host keys against, relative to the
    /// spec file's directory (default: the user's).
    #[schemars(with = "Option<String>", length(min = 1, max = 4096))]
    pub known_hosts: Option<Spanned<String>>,
    /// How ssh checks host keys: `strict` (default; only known keys) or
    /// `accept-new` (unknown hosts' keys are added, changed ones refused).
    #[schemars(with = "Option<crate::hosts::HostKeyChecking>")]
    pub host_key_checking: Option<Spanned<String>>,
    /// Machines renamed in the spec: berth renames the existing machine
    /// `from` to `to` (its root, `.nspawn` file, record and launcher
    /// registration) instead of destroying one and creating the other.
    /// `to` must be a machine of the spec, `from` must not be.
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawMoved>>")]
    pub moved: Option<Vec<Spanned<RawMoved>>>,
}

/// One `moved:` entry.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Moved", extend("additionalProperties" = false))]
pub(crate) struct RawMoved {
    /// The machine's old name.
    #[schemars(with = "MachineNameSchema")]
    pub from: Spanned<String>,
    /// The machine's new name: a machine of the spec.
    #[schemars(with = "MachineNameSchema")]
    pub to: Spanned<String>,
}

/// A machine name: 1–64 of `[A-Za-z0-9._-]`, not starting with `-` or `.`.
#[derive(JsonSchema)]
#[schemars(rename = "MachineName")]
#[allow(dead_code)]
struct MachineNameSchema(
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9._-]*$"),
        length(min = 1, max = 64)
    )]
    String,
);

/// The machine map, keeping each name's location.
#[derive(Debug, Default)]
pub(crate) struct RawMachines(pub Vec<(Spanned<String>, RawMachine)>);

/// A machine. Any field may instead come from `defaults`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Machine", extend("additionalProperties" = false))]
pub(crate) struct RawMachine {
    /// The distribution to bootstrap (required, here or under `defaults`).
    #[schemars(with = "Option<Distro>")]
    pub distro: Option<Spanned<String>>,
    /// The release: a suite for Debian/Ubuntu (`bookworm`), a version for
    /// Fedora (`40`). Required for debian, ubuntu and fedora.
    #[schemars(with = "Option<ReleaseName>")]
    pub release: Option<Spanned<String>>,
    /// The mirror to bootstrap from: an `http://`, `https://` or `file:/` URL.
    #[schemars(
        with = "Option<String>",
        regex(pattern = r"^(https?://[^\s/?#]+|file:/)\S*$")
    )]
    pub mirror: Option<Spanned<String>>,
    /// Packages to install at bootstrap.
    #[schemars(with = "Option<Vec<PackageName>>")]
    pub packages: Option<Vec<Spanned<String>>>,
    /// The hostname (RFC 1123); defaults to the machine name.
    #[schemars(with = "Option<String>", length(min = 1, max = 64))]
    pub hostname: Option<Spanned<String>>,
    /// Units to enable, disable and mask. A name without a type suffix means
    /// `.service`.
    pub units: Option<RawUnits>,
    /// Where the root password comes from: exactly one of `hash`, `env`,
    /// `file`. Plaintext passwords are refused.
    #[schemars(with = "Option<RootPasswordSchema>")]
    pub root_password: Option<Spanned<RawSecret>>,
    /// Entries that must be in `/etc/securetty`, relative to /dev (`pts/0`).
    #[schemars(with = "Option<Vec<SecurettyName>>")]
    pub securetty: Option<Vec<Spanned<String>>>,
    /// How the machine is started and stopped.
    #[schemars(with = "Option<Launcher>")]
    pub launcher: Option<Spanned<String>>,
    /// Whether the machine should be running.
    #[schemars(with = "Option<DesiredState>")]
    pub state: Option<Spanned<String>>,
    /// The bootstrap tool; default: the distro's (mmdebstrap when installed,
    /// else debootstrap, for Debian and Ubuntu; pacstrap for Arch; dnf for
    /// Fedora). It must fit the distro.
    #[schemars(with = "Option<BootstrapperKind>")]
    pub bootstrapper: Option<Spanned<String>>,
    /// Options for the bootstrap tool, each used where the tool has it.
    pub bootstrap_options: Option<RawBootstrapOptions>,
    /// A pacman.conf for pacstrap (`-C`), relative to the spec file's
    /// directory. Arch only.
    #[schemars(with = "Option<String>", length(min = 1))]
    pub pacman_conf: Option<Spanned<String>>,
    /// Extra dnf repositories (`--repofrompath`). Fedora only.
    #[schemars(with = "Option<Vec<RawRepo>>")]
    pub repos: Option<Spanned<Vec<Spanned<RawRepo>>>>,
    /// Start the machine when the host boots (`machinectl enable`); unset
    /// leaves boot integration alone.
    #[schemars(with = "Option<bool>")]
    pub autostart: Option<Spanned<RawBool>>,
    /// Refuse to destroy the machine or replace its root: `berth destroy`,
    /// `berth plan --destroy` and a plan that replaces the root fail while
    /// it is set (berth records it at every apply, so destroy without a
    /// spec refuses too). Remove it from the spec to allow them.
    #[schemars(with = "Option<bool>")]
    pub prevent_destroy: Option<Spanned<RawBool>>,
    /// The machine's network.
    #[schemars(with = "Option<RawNetwork>")]
    pub network: Option<Spanned<RawNetwork>>,
    /// Host directories bound into the machine: `HOST`, `HOST:MACHINE`,
    /// `HOST:MACHINE:ro` or a mapping.
    #[schemars(with = "Option<Vec<BindSchema>>")]
    pub binds: Option<Vec<Spanned<RawBind>>>,
    /// User namespacing (`PrivateUsers=`).
    #[schemars(with = "Option<PrivateUsers>")]
    pub private_users: Option<Spanned<String>>,
    /// Capabilities granted beyond systemd-nspawn's default set
    /// (`Capability=`): `CAP_...` names, or `all`.
    #[schemars(with = "Option<Vec<CapabilityOrAll>>")]
    pub capabilities: Option<Vec<Spanned<String>>>,
    /// Capabilities dropped from systemd-nspawn's default set (`DropCapability=`).
    #[schemars(with = "Option<Vec<Capability>>")]
    pub drop_capabilities: Option<Vec<Spanned<String>>>,
    /// Environment variables for the machine's init (`Environment=`), in
    /// order. Numbers and booleans are taken as their text.
    // `schema_with` hides the `Option` from schemars, which would then list
    // the field as required; `default` keeps it optional (a no-op for serde).
    #[serde(default)]
    #[schemars(schema_with = "environment_schema")]
    pub environment: Option<Spanned<RawEnvironment>>,
    /// How the root is stored (default `copy`): `copy` clones the cached
    /// base (a btrfs snapshot, a reflink copy, or a full copy); `overlay`
    /// mounts an overlayfs with the base read-only below and the machine's
    /// own changes above, so a machine costs only what it changes. Not with
    /// `private_users: pick`. Changing it replaces the root.
    #[schemars(with = "Option<Storage>")]
    pub storage: Option<Spanned<String>>,
    /// Resource limits (cgroup properties), applied to the running machine
    /// and kept for its next start. Unset limits are left to the kernel.
    pub resources: Option<RawResources>,
    /// Host devices made available in the machine: the node is bound in
    /// (`Bind=`) and access to it allowed (`DeviceAllow=`). Each path once.
    #[schemars(with = "Option<Vec<RawDevice>>")]
    pub devices: Option<Spanned<Vec<Spanned<RawDevice>>>>,
    /// Extra keys for the machine's `.nspawn` file, by section (`Exec`,
    /// `Files`, `Network`): a key given here replaces every line berth would
    /// write for it in that section. Values are strings, numbers, booleans
    /// (written `yes`/`no`) or lists of those (the key once per item).
    pub nspawn_extra: Option<RawNspawnExtra>,
    /// Template variables (`{{ domain }}` in a `template:` file): names to
    /// any YAML values. Merged key by key: the machine's win over
    /// `defaults`', which win over the file's top-level `vars`.
    #[schemars(with = "Option<VarsSchema>")]
    pub vars: Option<RawEntries<serde_json::Value>>,
    /// Files, directories and links berth manages in the root, by absolute
    /// path inside the machine, each with exactly one of `content`,
    /// `source`, `template`, `secret`, `type: directory`, `link` or
    /// `state: absent`.
    #[schemars(with = "Option<FilesSchema>")]
    pub files: Option<RawEntries<Option<RawManagedFile>>>,
    /// Users berth manages in the root, by login name (`root` is managed
    /// by `root_password` and `ssh_authorized_keys`).
    #[schemars(with = "Option<UsersSchema>")]
    pub users: Option<RawEntries<Option<RawUser>>>,
    /// root's SSH authorized keys (`/root/.ssh/authorized_keys`), one
    /// public key line each; berth writes exactly these. Left out, the
    /// file is left alone.
    #[schemars(with = "Option<Vec<SshKey>>")]
    pub ssh_authorized_keys: Option<Vec<Spanned<String>>>,
    /// systemd credentials handed to the machine at start, by name (its
    /// services import them with `LoadCredential=NAME` or
    /// `ImportCredential=`); never written into the root. Each value is
    /// exactly one of `env` or `file`.
    #[schemars(with = "Option<CredentialsSchema>")]
    pub credentials: Option<RawEntries<Spanned<RawSecret>>>,
    /// The host the machine runs on: a name under the top-level `hosts:`
    /// (default `local`, the machine berth runs on).
    #[schemars(
        with = "Option<String>",
        regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9._-]*$"),
        length(min = 1, max = 64)
    )]
    pub host: Option<Spanned<String>>,
    /// Snapshots berth takes on its own: `before_apply: true` takes one
    /// before every apply that changes the root (not for a create or a mere
    /// start or stop) and keeps the newest `keep` of them (default 3).
    pub snapshots: Option<RawSnapshots>,
    /// Health checks run in the guest after an apply changed the running
    /// machine (and after `apply --upgrade`): the system must not be
    /// `failed`, `units` must be active and `command` must exit 0, all
    /// retried until they pass or `timeout` ends. A failure fails the
    /// machine's apply and rolls back to a snapshot taken for it.
    #[schemars(with = "Option<RawHealth>")]
    pub health: Option<Spanned<RawHealth>>,
}

/// `health:`: what must hold in the running guest after an apply.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Health", extend("additionalProperties" = false))]
pub(crate) struct RawHealth {
    /// Units that must be active (`systemctl is-active`); a name without
    /// a type suffix means `.service`.
    #[schemars(with = "Option<Vec<UnitName>>")]
    pub units: Option<Vec<Spanned<String>>>,
    /// A command run in the guest (no shell: the program and its
    /// arguments) that must exit 0.
    #[schemars(with = "Option<Vec<CommandArg>>", length(min = 1))]
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
    /// How long the checks may take to pass: seconds, or a whole number
    /// with `s`, `m` or `h` (`90s`, `2m`). Default `60s`.
    #[schemars(with = "Option<HealthTimeout>")]
    pub timeout: Option<Spanned<String>>,
}

/// An argument of a health check's command.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct CommandArg(#[schemars(length(max = 4096))] String);

/// A duration: seconds (a number), or a whole number with `s`, `m` or `h`.
struct HealthTimeout;

impl JsonSchema for HealthTimeout {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["string", "integer"],
            "pattern": "^[0-9]+(s|m|h)?$",
            "minimum": 1
        })
    }
}

/// `snapshots:`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Snapshots", extend("additionalProperties" = false))]
pub(crate) struct RawSnapshots {
    /// Take a snapshot before an apply changes the root (default false).
    #[schemars(with = "Option<bool>")]
    pub before_apply: Option<Spanned<RawBool>>,
    /// How many `before_apply` snapshots to keep, the oldest deleted first
    /// (1–1000, default 3).
    #[schemars(with = "Option<SnapshotKeep>")]
    pub keep: Option<Spanned<String>>,
}

/// How many snapshots to keep, 1–1000.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct SnapshotKeep(#[schemars(range(min = 1, max = 1000))] u64);

/// A path berth manages in the root: exactly one of `content`, `source`,
/// `template`, `secret`, `type: directory`, `link` or `state: absent`,
/// with its mode, owner and group.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    rename = "ManagedFile",
    extend(
        "additionalProperties" = false,
        "oneOf" = [
            {"required": ["content"]},
            {"required": ["source"]},
            {"required": ["template"]},
            {"required": ["secret"]},
            {"required": ["type"]},
            {"required": ["link"], "not": {"required": ["mode"]}},
            {"required": ["state"], "properties": {"state": {"const": "absent"}}}
        ],
        "if" = {"required": ["state"], "properties": {"state": {"const": "absent"}}},
        "then" = {"propertyNames": {"enum": ["state", "replace"]}}
    )
)]
pub(crate) struct RawManagedFile {
    /// The file's text, written as is (no NUL character). A number or
    /// boolean is taken as written.
    #[schemars(with = "Option<ContentText>")]
    pub content: Option<Spanned<String>>,
    /// A file copied as is, binary or not: relative to the spec file's
    /// directory, or absolute.
    #[schemars(with = "Option<String>", length(min = 1, max = 4096))]
    pub source: Option<Spanned<String>>,
    /// A minijinja template rendered into the file: relative to the spec
    /// file's directory, or absolute. It sees the machine's merged `vars`,
    /// each by its name and all as `vars`, and `machine` (its `name`,
    /// `hostname`, `distro`, `release`).
    #[schemars(with = "Option<String>", length(min = 1, max = 4096))]
    pub template: Option<Spanned<String>>,
    /// A secret written into the file, never shown nor kept in berth's
    /// state: exactly one of `env` or `file`.
    #[schemars(with = "Option<SecretSourceSchema>")]
    pub secret: Option<Spanned<RawSecret>>,
    /// `directory`: a directory (what is inside is left alone).
    #[serde(rename = "type")]
    #[schemars(with = "Option<FileType>")]
    pub kind: Option<Spanned<String>>,
    /// A symbolic link to this target, absolute or relative.
    #[schemars(with = "Option<String>", length(min = 1, max = 4096))]
    pub link: Option<Spanned<String>>,
    /// `present` (default) or `absent` (removed if there; with `absent`
    /// only `replace` may be given).
    #[schemars(with = "Option<Presence>")]
    pub state: Option<Spanned<String>>,
    /// The permission bits: a quoted string of 3 or 4 octal digits
    /// (`"0640"`; unquoted, YAML reads a number). Default `0644` for files,
    /// `0755` for directories; links have none.
    #[schemars(with = "Option<FileMode>")]
    pub mode: Option<Spanned<RawMode>>,
    /// The owner: a user name or a numeric id (default root), resolved in
    /// the machine's /etc/passwd.
    #[schemars(with = "Option<OwnerId>")]
    pub owner: Option<Spanned<String>>,
    /// The group: a group name or a numeric id (default root), resolved in
    /// the machine's /etc/group.
    #[schemars(with = "Option<OwnerId>")]
    pub group: Option<Spanned<String>>,
    /// Replace what is there if it is of another kind (a directory where a
    /// file should be, or the other way round); otherwise that is an error.
    /// Default false.
    #[schemars(with = "Option<bool>")]
    pub replace: Option<Spanned<RawBool>>,
}

/// A file mode as written: only a string is a mode; a number is kept (as
/// text) to say that it must be quoted.
#[derive(Debug)]
pub(crate) enum RawMode {
    /// A string.
    Text(String),
    /// A YAML number (`0640` unquoted), as its value's text.
    Number(String),
    /// Something else: what it was, for messages (`a list`).
    Other(String),
}

/// A user berth manages in the root: present (the default), with its
/// settings, or absent.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    rename = "User",
    extend(
        "additionalProperties" = false,
        "if" = {"required": ["state"], "properties": {"state": {"const": "absent"}}},
        "then" = {"propertyNames": {"enum": ["state", "remove_home"]}},
        "else" = {"not": {"required": ["remove_home"]}}
    )
)]
pub(crate) struct RawUser {
    /// `present` (default) or `absent` (removed if there; with `absent`
    /// only `remove_home` may be given).
    #[schemars(with = "Option<Presence>")]
    pub state: Option<Spanned<String>>,
    /// A system user (`useradd --system`: a uid from the system range, no
    /// password aging). Default false.
    #[schemars(with = "Option<bool>")]
    pub system: Option<Spanned<RawBool>>,
    /// Supplementary groups, which must exist in the machine; each once.
    #[schemars(with = "Option<Vec<GroupName>>", extend("uniqueItems" = true))]
    pub groups: Option<Spanned<Vec<Spanned<String>>>>,
    /// The login shell, an absolute path (default: the machine's
    /// `useradd` default).
    #[schemars(
        with = "Option<String>",
        regex(pattern = r"^/[^:\s\x00-\x1f\x7f-\x9f]*$"),
        length(max = 4096)
    )]
    pub shell: Option<Spanned<String>>,
    /// The home directory, an absolute normalised path (default
    /// `/home/NAME`).
    #[schemars(with = "Option<HomePath>")]
    pub home: Option<Spanned<String>>,
    /// The user's SSH authorized keys (`~/.ssh/authorized_keys`), one
    /// public key line each; berth writes exactly these. Left out, the
    /// file is left alone.
    #[schemars(with = "Option<Vec<SshKey>>")]
    pub ssh_authorized_keys: Option<Spanned<Vec<Spanned<String>>>>,
    /// The password, as `root_password`: exactly one of `hash`, `env`,
    /// `file`; never plaintext. Left out: left alone (a new user's is
    /// locked).
    #[schemars(with = "Option<PasswordSchema>")]
    pub password: Option<Spanned<RawSecret>>,
    /// With `state: absent`: remove the home directory too. Default false.
    #[schemars(with = "Option<bool>")]
    pub remove_home: Option<Spanned<RawBool>>,
}

/// Entries of a mapping keyed by a name or path (`vars`, `files`,
/// `users`, `credentials`), in order, each key with its location.
#[derive(Debug)]
pub(crate) struct RawEntries<V>(pub Vec<(Spanned<String>, V)>);

impl<V> Default for RawEntries<V> {
    fn default() -> Self {
        RawEntries(Vec::new())
    }
}

/// Options for the bootstrap tool.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "BootstrapOptions", extend("additionalProperties" = false))]
pub(crate) struct RawBootstrapOptions {
    /// Share the host's package cache (pacstrap `-c`; apt's and dnf's caches
    /// for the others). Default false.
    #[schemars(with = "Option<bool>")]
    pub host_cache: Option<Spanned<RawBool>>,
    /// debootstrap/mmdebstrap `--variant` (default `minbase`).
    #[schemars(
        with = "Option<String>",
        regex(pattern = r"^[a-z][a-z0-9-]*$"),
        length(max = 32)
    )]
    pub variant: Option<Spanned<String>>,
    /// debootstrap/mmdebstrap `--components` (default `main`; Ubuntu
    /// `main,universe`).
    #[schemars(with = "Option<Vec<ComponentName>>")]
    pub components: Option<Vec<Spanned<String>>>,
    /// dnf: install weak dependencies. Default false.
    #[schemars(with = "Option<bool>")]
    pub install_weak_deps: Option<Spanned<RawBool>>,
}

/// A dnf repository (`--repofrompath=ID,URL`).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    rename = "Repo",
    extend("additionalProperties" = false, "required" = ["id", "url"])
)]
pub(crate) struct RawRepo {
    /// The repository id, unique within `repos`.
    #[schemars(
        with = "String",
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"),
        length(max = 64)
    )]
    pub id: Option<Spanned<String>>,
    /// Its base URL: `http://`, `https://` or `file:/`, without `,`.
    #[schemars(
        with = "String",
        regex(pattern = r"^(https?://[^\s/?#,]+|file:/)[^\s,]*$")
    )]
    pub url: Option<Spanned<String>>,
    /// Check package signatures. Default true.
    #[schemars(with = "Option<bool>")]
    pub gpgcheck: Option<Spanned<RawBool>>,
}

/// The machine's network.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Network", extend("additionalProperties" = false))]
pub(crate) struct RawNetwork {
    /// `host` shares the host's network, `private` gives only loopback,
    /// `veth` a private network with a veth link to the host. Left out:
    /// the launcher's default (veth under machinectl and nspawn-unit, as
    /// systemd-nspawn@.service does; the host's network under nspawn).
    #[schemars(with = "Option<NetworkMode>")]
    pub mode: Option<Spanned<String>>,
    /// Join the veth link to the zone bridge `vz-ZONE` (`Zone=`); implies
    /// `veth`. Not with `bridge`.
    #[schemars(
        with = "Option<String>",
        regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_-]*$"),
        length(min = 1, max = 12)
    )]
    pub zone: Option<Spanned<String>>,
    /// Join the veth link to this host bridge (`Bridge=`); implies `veth`.
    /// Not with `zone`.
    #[schemars(
        with = "Option<String>",
        regex(pattern = r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*$"),
        length(min = 1, max = 15),
        extend("not" = {"enum": [".", ".."]})
    )]
    pub bridge: Option<Spanned<String>>,
    /// Port forwards from the host (`Port=`): `PROTOCOL:HOST:MACHINE` or
    /// `HOST:MACHINE` (tcp). They need a veth link: not with mode `host` or
    /// `private`.
    #[schemars(with = "Option<Vec<PortForward>>")]
    pub ports: Option<Spanned<Vec<Spanned<String>>>>,
    /// The machine's IPv4 address on its link (`host0`), with its prefix
    /// (8–30): `10.0.0.5/24`; or `auto`, a free address from `pool` that
    /// berth picks and records. Left out: addressing is left to DHCP. Needs
    /// a veth link: not with mode `host` or `private`.
    #[schemars(with = "Option<NetworkAddress>")]
    pub address: Option<Spanned<String>>,
    /// Where `address: auto` draws from: an IPv4 network with prefix 8–28
    /// and its host bits zero (default `10.231.0.0/16`). Only with
    /// `address: auto`.
    #[schemars(with = "Option<NetworkPool>")]
    pub pool: Option<Spanned<String>>,
    /// The machine's default gateway: an IPv4 address in the network of a
    /// static `address`, other than the address itself (default: the host
    /// side of the link, the network's first address).
    #[schemars(with = "Option<Ipv4Address>")]
    pub gateway: Option<Spanned<String>>,
    /// Masquerade the machine's outbound traffic behind the host's address
    /// (an nftables table berth owns). Needs `address`. Default false.
    #[schemars(with = "Option<bool>")]
    pub nat: Option<Spanned<RawBool>>,
    /// Write the spec's other machines on this host, with their addresses,
    /// into the machine's `/etc/hosts`. Default false.
    #[schemars(with = "Option<bool>")]
    pub hosts: Option<Spanned<RawBool>>,
}

/// Resource limits (cgroup properties).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Resources", extend("additionalProperties" = false))]
pub(crate) struct RawResources {
    /// The hard memory limit (`MemoryMax=`): bytes, a whole number with K,
    /// M, G or T (powers of 1024: `512M`, `2G`), or `infinity`.
    #[schemars(with = "Option<Size>")]
    pub memory_max: Option<Spanned<String>>,
    /// The memory throttling threshold (`MemoryHigh=`), written as
    /// `memory_max`; not above `memory_max`.
    #[schemars(with = "Option<Size>")]
    pub memory_high: Option<Spanned<String>>,
    /// CPU time as a whole percentage of one CPU (`CPUQuota=`): `150%` is
    /// 1.5 CPUs; 1%–100000%.
    #[schemars(with = "Option<CpuQuota>")]
    pub cpu_quota: Option<Spanned<String>>,
    /// The CPU weight against other groups (`CPUWeight=`): 1–10000, default 100.
    #[schemars(with = "Option<Weight>")]
    pub cpu_weight: Option<Spanned<String>>,
    /// The I/O weight against other groups (`IOWeight=`): 1–10000, default 100.
    #[schemars(with = "Option<Weight>")]
    pub io_weight: Option<Spanned<String>>,
    /// The most tasks (processes and threads) at once (`TasksMax=`): a
    /// positive number, or `infinity`.
    #[schemars(with = "Option<TasksMax>")]
    pub tasks_max: Option<Spanned<String>>,
}

/// A host device made available in the machine.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    rename = "Device",
    extend("additionalProperties" = false, "required" = ["path"])
)]
pub(crate) struct RawDevice {
    /// The device node, under `/dev/` (`/dev/fuse`); the same path inside.
    #[schemars(with = "DevicePath")]
    pub path: Option<Spanned<String>>,
    /// The access granted: some of `r` (read), `w` (write), `m` (mknod),
    /// each once. Default `rwm`.
    #[schemars(with = "Option<DeviceAccess>")]
    pub access: Option<Spanned<String>>,
}

/// `nspawn_extra:`: keys for the `.nspawn` file, by section.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "NspawnExtra", extend("additionalProperties" = false))]
pub(crate) struct RawNspawnExtra {
    /// `[Exec]` keys: systemd.nspawn(5)'s, in their exact case.
    #[serde(rename = "Exec")]
    #[schemars(with = "Option<ExecSection>")]
    pub exec: Option<RawSection>,
    /// `[Files]` keys: systemd.nspawn(5)'s, in their exact case.
    #[serde(rename = "Files")]
    #[schemars(with = "Option<FilesSection>")]
    pub files: Option<RawSection>,
    /// `[Network]` keys: systemd.nspawn(5)'s, in their exact case.
    #[serde(rename = "Network")]
    #[schemars(with = "Option<NetworkSection>")]
    pub network: Option<RawSection>,
}

/// One section of `nspawn_extra:` as written: keys and values, in order.
#[derive(Debug, Default)]
pub(crate) struct RawSection(pub Vec<(Spanned<String>, Spanned<RawExtraValue>)>);

/// A value under `nspawn_extra.SECTION.KEY` as written. Never fails to read:
/// what cannot be a value is kept (as a description) for validation to
/// report with its location.
#[derive(Debug)]
pub(crate) enum RawExtraValue {
    /// A string, a number (its decimal text) or a boolean (`yes`/`no`).
    Scalar(String),
    /// A list of values.
    List(Vec<Spanned<RawExtraValue>>),
    /// `null` or nothing.
    Null,
    /// Something else: what it was, for messages (`a mapping`).
    Other(String),
}

/// A bind as written: a string (`HOST`, `HOST:MACHINE`, `HOST:MACHINE:ro`) or
/// a mapping.
#[derive(Debug)]
pub(crate) enum RawBind {
    /// The string form.
    Short(String),
    /// The mapping form.
    Long(Box<RawBindMap>),
}

/// A bind's mapping form.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    rename = "Bind",
    extend("additionalProperties" = false, "required" = ["host"])
)]
pub(crate) struct RawBindMap {
    /// The absolute host path.
    #[schemars(with = "BindPath")]
    pub host: Option<Spanned<String>>,
    /// The absolute path inside the machine; default: the host path.
    #[schemars(with = "Option<BindPath>")]
    pub machine: Option<Spanned<String>>,
    /// Bind read-only. Default false.
    #[schemars(with = "Option<bool>")]
    pub read_only: Option<Spanned<RawBool>>,
}

/// `environment:` as written: names and values in order (`None`: no value).
#[derive(Debug, Default)]
pub(crate) struct RawEnvironment(pub Vec<(Spanned<String>, Option<Spanned<String>>)>);

/// A boolean as written. Only YAML booleans are accepted; anything else is
/// kept (as a description) for validation to report with its location.
#[derive(Debug)]
pub(crate) enum RawBool {
    /// `true` or `false`.
    Bool(bool),
    /// Something else: what it was, for messages (`the string "yes"`).
    Other(String),
}

/// Units to enable, disable and mask.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Units", extend("additionalProperties" = false))]
pub(crate) struct RawUnits {
    /// Units that must be enabled.
    #[schemars(with = "Option<Vec<UnitName>>")]
    pub enable: Option<Vec<Spanned<String>>>,
    /// Units that must be disabled.
    #[schemars(with = "Option<Vec<UnitName>>")]
    pub disable: Option<Vec<Spanned<String>>>,
    /// Units that must be masked.
    #[schemars(with = "Option<Vec<UnitName>>")]
    pub mask: Option<Vec<Spanned<String>>>,
}

/// A package name.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct PackageName(
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9+._@:~-]*$"),
        length(max = 128)
    )]
    String,
);

/// A release: a suite name, or a version that YAML reads as a number
/// (`release: 40`), which is taken as its text.
struct ReleaseName;

impl JsonSchema for ReleaseName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ReleaseName".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["string", "number"],
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$",
            "maxLength": 64,
            "minimum": 0
        })
    }
}

/// A unit name; without a type suffix it means `.service`.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct UnitName(
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9:_\\][A-Za-z0-9:_.\\@-]*$"),
        length(max = 255)
    )]
    String,
);

/// A tty relative to /dev, e.g. `pts/0`.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct SecurettyName(
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9._:][A-Za-z0-9/._:-]*$"),
        length(max = 64)
    )]
    String,
);

/// An archive component.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct ComponentName(#[schemars(regex(pattern = r"^[a-z][a-z0-9-]*$"), length(max = 32))] String);

/// A port forward: `PROTOCOL:HOST:MACHINE` or `HOST:MACHINE` (tcp), ports 1–65535.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct PortForward(#[schemars(regex(pattern = r"^((tcp|udp):)?[0-9]{1,5}:[0-9]{1,5}$"))] String);

/// An absolute path without `..` components, `:`, `\`, whitespace or control characters.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct BindPath(#[schemars(regex(pattern = r"^/[^:\\\s]*$"), length(min = 1, max = 4096))] String);

/// A capability name.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct Capability(#[schemars(regex(pattern = r"^CAP_[A-Z_]+$"), length(max = 64))] String);

/// A capability name, or `all`.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct CapabilityOrAll(
    #[schemars(regex(pattern = r"^(CAP_[A-Z_]+|all)$"), length(max = 64))] String,
);

/// The pattern of one IPv4 address, without anchors.
macro_rules! ipv4_pattern {
    () => {
        r"((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
    };
}

/// An IPv4 address with a prefix length 8–30 (`10.0.0.5/24`), or `auto`.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct NetworkAddress(
    #[schemars(regex(pattern = concat!("^(auto|", ipv4_pattern!(), "/([89]|[12][0-9]|30))$")))]
    String,
);

/// An IPv4 network with a prefix length 8–28 (`10.231.0.0/16`).
#[derive(JsonSchema)]
#[allow(dead_code)]
struct NetworkPool(
    #[schemars(regex(pattern = concat!("^", ipv4_pattern!(), "/([89]|1[0-9]|2[0-8])$")))] String,
);

/// An IPv4 address (`10.0.0.1`).
#[derive(JsonSchema)]
#[allow(dead_code)]
struct Ipv4Address(#[schemars(regex(pattern = concat!("^", ipv4_pattern!(), "$")))] String);

/// A size: bytes, a whole number with K, M, G or T (powers of 1024), or
/// `infinity`.
struct Size;

impl JsonSchema for Size {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Size".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A size in bytes: a number, a whole number with K, M, G or T (powers of 1024: `512M`, `2G`), or `infinity`.",
            "type": ["integer", "string"],
            "minimum": 1,
            "pattern": "^([0-9]+[KMGT]?|infinity)$"
        })
    }
}

/// A whole percentage of one CPU (`150%`), 1%–100000%.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct CpuQuota(#[schemars(regex(pattern = r"^[1-9][0-9]{0,5}%$"))] String);

/// A weight, 1–10000 (default 100).
#[derive(JsonSchema)]
#[allow(dead_code)]
struct Weight(#[schemars(range(min = 1, max = 10000))] u64);

/// A number of tasks, or `infinity`.
struct TasksMax;

impl JsonSchema for TasksMax {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TasksMax".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A positive number of tasks, or `infinity`.",
            "type": ["integer", "string"],
            "minimum": 1,
            "pattern": "^([0-9]+|infinity)$"
        })
    }
}

/// A device node path under `/dev/`, without `..`, empty components, `:`,
/// `\`, whitespace or control characters.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct DevicePath(
    #[schemars(
        regex(pattern = r"^/dev(/[^/:\\\s]+)+$"),
        length(max = 4096),
        extend("not" = {"pattern": r"(^|/)\.\.(/|$)"})
    )]
    String,
);

/// Device access: some of `r`, `w`, `m`, each once.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct DeviceAccess(
    #[schemars(regex(pattern = r"^(r|w|m|rw|wr|rm|mr|wm|mw|rwm|rmw|wrm|wmr|mrw|mwr)$"))] String,
);

/// The schema of one `nspawn_extra` section: its keys, each a value or a
/// list of values.
fn section_schema(section: &str, keys: &[&str]) -> Schema {
    json_schema!({
        "description": format!("Keys of the `.nspawn` file's [{section}] section (systemd.nspawn(5)), each a string, number, boolean (written `yes`/`no`) or a list of those (the key once per item)."),
        "type": "object",
        "propertyNames": {"enum": keys},
        "additionalProperties": {
            "oneOf": [
                {"type": ["string", "number", "boolean"]},
                {
                    "type": "array",
                    "items": {"type": ["string", "number", "boolean"]},
                    "minItems": 1
                }
            ]
        }
    })
}

/// The schema of `nspawn_extra.Exec`.
struct ExecSection;

/// The schema of `nspawn_extra.Files`.
struct FilesSection;

/// The schema of `nspawn_extra.Network`.
struct NetworkSection;

impl JsonSchema for ExecSection {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NspawnExec".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        section_schema("Exec", names::EXEC_KEYS)
    }
}

impl JsonSchema for FilesSection {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NspawnFiles".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        section_schema("Files", names::FILES_KEYS)
    }
}

impl JsonSchema for NetworkSection {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NspawnNetwork".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        section_schema("Network", names::NETWORK_KEYS)
    }
}

/// The JSON Schema of a bind: a string or a mapping.
struct BindSchema;

impl JsonSchema for BindSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BindEntry".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let map = generator.subschema_for::<RawBindMap>();
        json_schema!({
            "description": "A host directory bound into the machine: `HOST` (same path inside), `HOST:MACHINE`, `HOST:MACHINE:ro` / `:rw`, or a mapping.",
            "oneOf": [
                {
                    "type": "string",
                    "pattern": "^/[^:\\\\\\s]*(:/[^:\\\\\\s]*(:(ro|rw))?)?$"
                },
                map
            ]
        })
    }
}

/// The schema of `environment`: variable names to scalar values.
fn environment_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "Environment variables for the machine's init (`Environment=`), in order. Numbers and booleans are taken as their text.",
        "type": ["object", "null"],
        "propertyNames": {
            "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
            "maxLength": 255
        },
        "additionalProperties": {
            "type": ["string", "number", "boolean"]
        }
    })
}

/// The JSON Schema of `root_password`: exactly one of hash, env, file.
struct RootPasswordSchema;

impl JsonSchema for RootPasswordSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RootPassword".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        password_schema(
            "Where the root password comes from: exactly one of `hash`, `env`, `file`. Plaintext passwords are refused.",
        )
    }
}

/// The JSON Schema of a user's `password`: as `root_password`.
struct PasswordSchema;

impl JsonSchema for PasswordSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Password".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        password_schema(
            "Where the user's password comes from, as for `root_password`: exactly one of `hash`, `env`, `file`. Plaintext passwords are refused.",
        )
    }
}

/// A password's sources: exactly one of hash, env, file.
fn password_schema(description: &str) -> Schema {
    json_schema!({
        "description": description,
        "type": "object",
        "properties": {
            "hash": {
                "description": "A crypt(3) hash (`$6$SALT$HASH`, `$y$...`), written to /etc/shadow as is.",
                "type": "string",
                "pattern": "^\\$(1|5|6|y|gy|7|2a|2b|2y|sha1|md5)\\$[A-Za-z0-9./$=,]+\\$[A-Za-z0-9./=,]+$"
            },
            "env": {
                "description": "The name of an environment variable holding the password.",
                "type": "string",
                "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"
            },
            "file": {
                "description": "A file holding the password, relative to the spec file's directory.",
                "type": "string",
                "minLength": 1
            }
        },
        "additionalProperties": false,
        "minProperties": 1,
        "maxProperties": 1
    })
}

/// The JSON Schema of a secret's source (a file's `secret`, a credential):
/// exactly one of env, file.
struct SecretSourceSchema;

impl JsonSchema for SecretSourceSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretSource".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Where a secret comes from: exactly one of `env`, `file`. Plaintext values are refused.",
            "type": "object",
            "properties": {
                "env": {
                    "description": "The name of an environment variable of berth's holding the value.",
                    "type": "string",
                    "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                    "maxLength": 255
                },
                "file": {
                    "description": "A file holding the value, relative to the spec file's directory, or absolute.",
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 4096
                }
            },
            "additionalProperties": false,
            "minProperties": 1,
            "maxProperties": 1
        })
    }
}

/// The JSON Schema of `vars`: variable names to any values.
struct VarsSchema;

impl JsonSchema for VarsSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Vars".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Template variables: names (`[A-Za-z_][A-Za-z0-9_]*`, not `vars` or `machine`) to any YAML values (strings, numbers, booleans, lists, mappings).",
            "type": "object",
            "propertyNames": {
                "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                "maxLength": 255,
                "not": {"enum": names::RESERVED_VARS}
            }
        })
    }
}

/// The pattern of a path berth may manage: absolute, normalised, no
/// control characters (what it may not be under is [`files_schema`]'s).
const MANAGED_PATH_PATTERN: &str = "^(/[^/\\x00-\\x1f\\x7f-\\x9f]+)+$";

/// The JSON Schema of `files`: absolute paths to managed files.
struct FilesSchema;

impl JsonSchema for FilesSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Files".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let file = generator.subschema_for::<RawManagedFile>();
        json_schema!({
            "description": "Files, directories and links berth manages in the root, by absolute normalised path inside the machine (not under /proc, /sys, /dev, /run or /tmp, which are mounted over at boot).",
            "type": "object",
            "propertyNames": {
                "pattern": MANAGED_PATH_PATTERN,
                "maxLength": 4096,
                "not": {
                    "anyOf": [
                        {"pattern": "/\\.\\.?(/|$)"},
                        {"pattern": "^/(proc|sys|dev|run|tmp)(/|$)"}
                    ]
                }
            },
            "additionalProperties": file
        })
    }
}

/// The JSON Schema of `users`: login names to users.
struct UsersSchema;

impl JsonSchema for UsersSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Users".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let user = generator.subschema_for::<Option<RawUser>>();
        json_schema!({
            "description": "Users berth manages in the root, by login name (`[a-z_][a-z0-9_-]*$?`, at most 32; not `root`).",
            "type": "object",
            "propertyNames": {
                "pattern": "^[a-z_][a-z0-9_-]*\\$?$",
                "maxLength": 32,
                "not": {"const": "root"}
            },
            "additionalProperties": user
        })
    }
}

/// The JSON Schema of `credentials`: credential names to sources.
struct CredentialsSchema;

impl JsonSchema for CredentialsSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Credentials".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let source = generator.subschema_for::<SecretSourceSchema>();
        json_schema!({
            "description": "systemd credentials by name (1–255 of `[A-Za-z0-9_.-]`, not `.` or `..`), each from exactly one of `env` or `file`.",
            "type": "object",
            "propertyNames": {
                "pattern": "^[A-Za-z0-9_.-]+$",
                "maxLength": 255,
                "not": {"enum": [".", ".."]}
            },
            "additionalProperties": source
        })
    }
}

/// `directory`, the one `type` of a managed path.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum FileType {
    /// A directory.
    Directory,
}

/// Whether something should be there.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum Presence {
    /// There (the default).
    Present,
    /// Not there: removed if it is.
    Absent,
}

/// A file's text; a number or boolean is taken as written.
struct ContentText;

impl JsonSchema for ContentText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ContentText".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": ["string", "number", "boolean"]})
    }
}

/// A file mode: a string of 3 or 4 octal digits (`"0640"`).
#[derive(JsonSchema)]
#[allow(dead_code)]
struct FileMode(#[schemars(regex(pattern = r"^[0-7]{3,4}$"))] String);

/// An owner or group: a name or a numeric id.
struct OwnerId;

impl JsonSchema for OwnerId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OwnerId".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A user or group name (`[a-z_][a-z0-9_.-]*$?`, at most 32) or a numeric id.",
            "type": ["string", "integer"],
            "pattern": "^([a-z_][a-z0-9_.-]*\\$?|[0-9]+)$",
            "maxLength": 32,
            "minimum": 0,
            "maximum": 4294967294u64
        })
    }
}

/// A group name.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct GroupName(#[schemars(regex(pattern = r"^[a-z_][a-z0-9_.-]*\$?$"), length(max = 32))] String);

/// An absolute normalised path (`/` included), without `:`.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct HomePath(
    #[schemars(
        regex(pattern = r"^(/|(/[^/:\x00-\x1f\x7f-\x9f]+)+)$"),
        length(max = 4096),
        extend("not" = {"pattern": r"/\.\.?(/|$)"})
    )]
    String,
);

/// An SSH public key line (`ssh-ed25519 AAAA... user@host`), possibly
/// after authorized_keys options.
struct SshKey;

impl JsonSchema for SshKey {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SshKey".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let types = names::KEY_TYPES
            .iter()
            .map(|t| t.replace('.', "\\."))
            .collect::<Vec<_>>()
            .join("|");
        json_schema!({
            "description": "An SSH public key line (`ssh-ed25519 AAAA... user@host`, the line of a `.pub` file), possibly after authorized_keys options.",
            "type": "string",
            "minLength": 1,
            "maxLength": 16384,
            "pattern": format!("(^| )({types}) +[A-Za-z0-9+/]+=*( |$)"),
            "not": {"pattern": "[\\x00-\\x1f\\x7f-\\x9f]|^ *#|PRIVATE KEY"}
        })
    }
}

/// The schema of the machine map: names as property names, machines as values.
fn machines_schema(generator: &mut SchemaGenerator) -> Schema {
    let machine = generator.subschema_for::<Option<RawMachine>>();
    json_schema!({
        "description": "The machines, by name, in order.",
        "type": ["object", "null"],
        "propertyNames": {
            "pattern": "^[A-Za-z0-9_][A-Za-z0-9._-]*$",
            "maxLength": 64
        },
        "additionalProperties": machine
    })
}

thread_local! {
    /// The machine whose fields are being read, to name it in error paths
    /// (serde_path_to_error cannot see the name through `Spanned`).
    static CURRENT_MACHINE: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The key of the `environment:`, `vars:`, `files:`, `users:` or
    /// `credentials:` entry whose value is being read, for the same reason.
    static CURRENT_ENTRY: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The name of the machine being deserialized when an error stopped it.
pub(crate) fn current_machine() -> Option<String> {
    CURRENT_MACHINE.with(|c| c.borrow().clone())
}

/// The key of the entry (an `environment:` variable, a `files:` path, ...)
/// being deserialized when an error stopped it.
pub(crate) fn current_entry() -> Option<String> {
    CURRENT_ENTRY.with(|c| c.borrow().clone())
}

/// Forgets the machine and entry being deserialized (before a new parse).
pub(crate) fn reset_current_machine() {
    set_current_machine(None);
    set_current_entry(None);
}

fn set_current_entry(name: Option<String>) {
    CURRENT_ENTRY.with(|c| *c.borrow_mut() = name);
}

fn set_current_machine(name: Option<String>) {
    CURRENT_MACHINE.with(|c| *c.borrow_mut() = name);
}

impl<'de> Deserialize<'de> for RawMachines {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MachinesVisitor;

        impl<'de> Visitor<'de> for MachinesVisitor {
            type Value = RawMachines;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of machine names to machines")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut machines = Vec::new();
                loop {
                    set_current_machine(None);
                    let Some(name) = map.next_key::<Spanned<String>>()? else {
                        break;
                    };
                    set_current_machine(Some(name.value.clone()));
                    let machine = map.next_value::<Option<RawMachine>>()?;
                    machines.push((name, machine.unwrap_or_default()));
                }
                set_current_machine(None);
                Ok(RawMachines(machines))
            }
        }

        deserializer.deserialize_map(MachinesVisitor)
    }
}

/// A secret's source as written (`root_password`, a user's `password`, a
/// file's `secret`, a credential), read without ever failing on (and so
/// without ever echoing) its values: checks happen in validation.
#[derive(Debug)]
pub(crate) enum RawSecret {
    /// A bare scalar: a plaintext password (its value is dropped).
    Scalar,
    /// A sequence: not a valid form.
    Sequence,
    /// A mapping: its keys and values, in order.
    Map(Vec<(Spanned<String>, Spanned<SecretValue>)>),
}

/// A value under a secret's source (`root_password:`, ...), kept only as
/// far as validation needs.
#[derive(Debug)]
pub(crate) enum SecretValue {
    /// A scalar, as text.
    Text(String),
    /// `null` or nothing.
    Null,
    /// A sequence or mapping.
    Collection,
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for RawEntries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(std::marker::PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = RawEntries<V>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                loop {
                    set_current_entry(None);
                    let Some(key) = map.next_key::<Spanned<String>>()? else {
                        break;
                    };
                    set_current_entry(Some(key.value.clone()));
                    let value = map.next_value::<V>()?;
                    entries.push((key, value));
                }
                set_current_entry(None);
                Ok(RawEntries(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor(std::marker::PhantomData))
    }
}

impl<'de> Deserialize<'de> for RawMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ModeVisitor;

        impl<'de> Visitor<'de> for ModeVisitor {
            type Value = RawMode;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a quoted string of octal digits")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(RawMode::Other(format!("the boolean {v}")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawMode::Number(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(RawMode::Number(v.to_string()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
                Ok(RawMode::Number(v.to_string()))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
                Ok(RawMode::Number(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(RawMode::Number(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawMode::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(RawMode::Text(v))
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
                Ok(RawMode::Other("binary data".to_owned()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(RawMode::Other("null".to_owned()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(RawMode::Other("null".to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RawMode::Other("a list".to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(RawMode::Other("a mapping".to_owned()))
            }
        }

        deserializer.deserialize_any(ModeVisitor)
    }
}

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SourceVisitor;

        impl<'de> Visitor<'de> for SourceVisitor {
            type Value = RawSecret;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping with one of hash, env, file")
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(RawSecret::Scalar)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(RawSecret::Scalar)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(RawSecret::Scalar)
            }
            fn visit_i128<E: de::Error>(self, _: i128) -> Result<Self::Value, E> {
                Ok(RawSecret::Scalar)
            }
            fn visit_u128<E: de::Error>(self, _: u128) -> Result<Self::Value, E> {
                Ok(RawSecret::Scalar)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(RawSecret::Scalar)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(RawSecret::Scalar)
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
                Ok(RawSecret::Scalar)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(RawSecret::Map(Vec::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(RawSecret::Map(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RawSecret::Sequence)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value = map.next_value::<Spanned<SecretValue>>()?;
                    entries.push((key, value));
                }
                Ok(RawSecret::Map(entries))
            }
        }

        deserializer.deserialize_any(SourceVisitor)
    }
}

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;

        impl<'de> Visitor<'de> for SecretVisitor {
            type Value = SecretValue;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(SecretValue::Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(SecretValue::Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(SecretValue::Text(v.to_string()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
                Ok(SecretValue::Text(v.to_string()))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
                Ok(SecretValue::Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(SecretValue::Text(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(SecretValue::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(SecretValue::Text(v))
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
                Ok(SecretValue::Collection)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(SecretValue::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(SecretValue::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(SecretValue::Collection)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(SecretValue::Collection)
            }
        }

        deserializer.deserialize_any(SecretVisitor)
    }
}

impl<'de> Deserialize<'de> for RawBind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BindVisitor;

        impl<'de> Visitor<'de> for BindVisitor {
            type Value = RawBind;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path (`HOST`, `HOST:MACHINE`, `HOST:MACHINE:ro`) or a mapping with host:, machine:, read_only:")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawBind::Short(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(RawBind::Short(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawBindMap::deserialize(MapAccessDeserializer::new(map))
                    .map(|m| RawBind::Long(Box::new(m)))
            }
        }

        deserializer.deserialize_any(BindVisitor)
    }
}

impl<'de> Deserialize<'de> for RawEnvironment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvironmentVisitor;

        impl<'de> Visitor<'de> for EnvironmentVisitor {
            type Value = RawEnvironment;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of variable names to values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                loop {
                    set_current_entry(None);
                    let Some(name) = map.next_key::<Spanned<String>>()? else {
                        break;
                    };
                    set_current_entry(Some(name.value.clone()));
                    let value = map.next_value::<Option<Spanned<String>>>()?;
                    entries.push((name, value));
                }
                set_current_entry(None);
                Ok(RawEnvironment(entries))
            }
        }

        deserializer.deserialize_map(EnvironmentVisitor)
    }
}

impl<'de> Deserialize<'de> for RawSection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SectionVisitor;

        impl<'de> Visitor<'de> for SectionVisitor {
            type Value = RawSection;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of systemd.nspawn(5) keys to values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value = map.next_value::<Spanned<RawExtraValue>>()?;
                    entries.push((key, value));
                }
                Ok(RawSection(entries))
            }
        }

        deserializer.deserialize_map(SectionVisitor)
    }
}

impl<'de> Deserialize<'de> for RawExtraValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ExtraVisitor;

        impl<'de> Visitor<'de> for ExtraVisitor {
            type Value = RawExtraValue;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number, boolean or list of those")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(RawExtraValue::Scalar(
                    if v { "yes" } else { "no" }.to_owned(),
                ))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawExtraValue::Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(RawExtraValue::Scalar(v.to_string()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
                Ok(RawExtraValue::Scalar(v.to_string()))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
                Ok(RawExtraValue::Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(RawExtraValue::Scalar(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawExtraValue::Scalar(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(RawExtraValue::Scalar(v))
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
                Ok(RawExtraValue::Other("binary data".to_owned()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(RawExtraValue::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(RawExtraValue::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<RawExtraValue>>()? {
                    items.push(item);
                }
                Ok(RawExtraValue::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(RawExtraValue::Other("a mapping".to_owned()))
            }
        }

        deserializer.deserialize_any(ExtraVisitor)
    }
}

impl<'de> Deserialize<'de> for RawBool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoolVisitor;

        impl<'de> Visitor<'de> for BoolVisitor {
            type Value = RawBool;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`true` or `false`")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(RawBool::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawBool::Other(format!("the number {v}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(RawBool::Other(format!("the number {v}")))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
                Ok(RawBool::Other(format!("the number {v}")))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
                Ok(RawBool::Other(format!("the number {v}")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(RawBool::Other(format!("the number {v}")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawBool::Other(format!("the string {}", quote(v))))
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
                Ok(RawBool::Other("binary data".to_owned()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(RawBool::Other("null".to_owned()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(RawBool::Other("null".to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RawBool::Other("a list".to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(RawBool::Other("a mapping".to_owned()))
            }
        }

        deserializer.deserialize_any(BoolVisitor)
    }
}

/// A location as `(line, column)`, `None` when unknown.
pub(crate) fn position(location: &Location) -> (Option<usize>, Option<usize>) {
    let line = usize::try_from(location.line()).ok().filter(|&l| l > 0);
    let column = usize::try_from(location.column())
        .ok()
        .filter(|&c| c > 0 && line.is_some());
    (line, column)
}
