//! Files, directories and links the spec manages in a root (`files:`): the
//! payloads of their plan actions, how they describe themselves, reading
//! them ([`observe`]), the guest's accounts their owners resolve against
//! ([`accounts`]), and making the changes ([`apply`]).
//!
//! Contents travel as [`FileBytes`] (their `Debug` is a size and a SHA-256,
//! so plans and observations stay small when printed or fingerprinted);
//! a secret's value is a [`SecretBytes`], which is never shown, hashed,
//! serialised or kept in an action: apply reads it again from its source.

pub mod accounts;
pub mod apply;
pub mod observe;

use std::fmt;
use std::fmt::Write as _;

use berth_schema::{FileContent, Machine};
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::model::action::Effect;

/// The default mode of a file the spec manages.
pub const DEFAULT_FILE_MODE: u32 = 0o644;
/// The default mode of a secret file (`secret:`).
pub const DEFAULT_SECRET_MODE: u32 = 0o600;
/// The default mode of a directory.
pub const DEFAULT_DIR_MODE: u32 = 0o755;
/// The owner and group of an entry whose spec names none.
pub const DEFAULT_OWNER: &str = "root";

/// A file's contents. `Debug` shows the size and SHA-256, never the bytes.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct FileBytes(Vec<u8>);

impl FileBytes {
    /// Wraps `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        FileBytes(bytes)
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// The size in bytes.
    pub fn len(&self) -> u64 {
        self.0.len() as u64
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The SHA-256 of the bytes, in hex.
    pub fn sha256(&self) -> String {
        let mut out = String::with_capacity(64);
        for byte in Sha256::digest(&self.0) {
            let _ = write!(out, "{byte:02x}");
        }
        out
    }

    /// The contents as text, when they are text: UTF-8 without NUL bytes.
    pub fn as_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.0)
            .ok()
            .filter(|text| !text.contains('\0'))
    }
}

impl fmt::Debug for FileBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FileBytes(size {}, sha256 {})",
            self.len(),
            self.sha256()
        )
    }
}

/// A secret file's value. `Debug` never shows it; it is neither
/// serialised nor hashed, and lives only as long as one plan or apply.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }

    /// The value.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Whether `other` holds exactly this value (compared in constant time
    /// for equal lengths).
    pub fn matches(&self, other: &[u8]) -> bool {
        self.0.len() == other.len()
            && self
                .0
                .iter()
                .zip(other)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<sensitive>)")
    }
}

/// `0640` for `0o640`.
pub fn octal(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

fn serialize_mode<S: Serializer>(mode: &u32, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&octal(*mode))
}

/// The mode, owner and group an entry gets. Owner and group are names (or
/// numeric ids) as the spec gives them, resolved in the guest's
/// `/etc/passwd` and `/etc/group` when apply runs (a user the same apply
/// creates is known by then).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attributes {
    /// The permission bits (`"0640"` in JSON).
    #[serde(serialize_with = "serialize_mode")]
    pub mode: u32,
    /// The owner.
    pub owner: String,
    /// The group.
    pub group: String,
}

impl fmt::Display for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mode {}, owner {}, group {}",
            octal(self.mode),
            self.owner,
            self.group
        )
    }
}

/// What a file write carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentKind {
    /// Text (UTF-8 without NUL bytes): shown as a diff.
    Text,
    /// Anything else: shown as its size and SHA-256.
    Binary,
    /// A secret: never shown, hashed or stored.
    Secret,
}

/// What is at a managed path before the change (for the plan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Existing {
    /// Nothing.
    Absent,
    /// A regular file.
    File {
        /// Its size (None for a secret's file).
        #[serde(skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
        /// Its SHA-256 (None for a secret's file, and for text, whose diff shows).
        #[serde(skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
    },
    /// A directory.
    Directory {
        /// Whether it is empty.
        empty: bool,
    },
    /// A symbolic link.
    Link {
        /// Its target, verbatim.
        target: String,
    },
    /// A FIFO, socket or device node.
    Special {
        /// What it is (`a FIFO`, ...).
        what: String,
    },
    /// The root does not exist yet: whatever its base holds there.
    Unknown,
}

impl Existing {
    /// `directory /srv/x`, `link /etc/x -> /y`, ... for "replace ..." lines.
    fn replaced(&self, path: &str) -> String {
        match self {
            Existing::Directory { empty: true } => format!("empty directory {path}"),
            Existing::Directory { empty: false } => {
                format!("directory {path} (and everything in it)")
            }
            Existing::Link { target } => format!("link {path} -> {target}"),
            Existing::Special { what } => format!("{what} {path}"),
            Existing::File { .. } => format!("file {path}"),
            Existing::Absent | Existing::Unknown => path.to_owned(),
        }
    }

    /// Whether nothing is there (or nothing is known yet).
    fn is_new(&self) -> bool {
        matches!(self, Existing::Absent | Existing::Unknown)
    }
}

/// Create or update a managed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileWrite {
    /// The path inside the machine.
    pub path: String,
    /// Text, binary or secret.
    pub kind: ContentKind,
    /// True for a secret: its value is never shown.
    pub sensitive: bool,
    /// The new size (None for a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The new SHA-256 (None for a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Mode, owner and group it gets.
    #[serde(flatten)]
    pub attributes: Attributes,
    /// What is there now.
    pub existing: Existing,
    /// The attributes of an existing file that change (`mode 0644 -> 0640`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attribute_changes: Vec<String>,
    /// The new contents (None for a secret: apply reads it from its source).
    #[serde(skip)]
    pub contents: Option<FileBytes>,
    /// The current contents of a file, for the diff (None for a secret).
    #[serde(skip)]
    pub before: Option<FileBytes>,
}

/// Change only the mode, owner or group of a managed file or directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttributeChange {
    /// The path inside the machine.
    pub path: String,
    /// The attributes it gets.
    #[serde(flatten)]
    pub attributes: Attributes,
    /// What changes (`mode 0644 -> 0640`, `group root -> www-data`).
    pub changes: Vec<String>,
    /// Whether it is a directory (else a regular file).
    pub directory: bool,
}

/// Create a managed directory (or replace what is there with one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectoryCreation {
    /// The path inside the machine.
    pub path: String,
    /// The attributes it gets.
    #[serde(flatten)]
    pub attributes: Attributes,
    /// What is there now.
    pub existing: Existing,
}

/// Make or change a managed symbolic link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkChange {
    /// The path inside the machine.
    pub path: String,
    /// The link's target, verbatim.
    pub target: String,
    /// What is there now.
    pub existing: Existing,
}

/// Remove a managed path (`state: absent`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removal {
    /// The path inside the machine.
    pub path: String,
    /// What is there now.
    pub existing: Existing,
    /// A directory goes with everything in it (`replace: true`).
    pub recursive: bool,
}

impl FileWrite {
    /// `create /etc/app.conf (mode 0640, owner root, group www-data)`, ...
    pub fn describe(&self) -> String {
        let mut details = Vec::new();
        let binary = self.kind == ContentKind::Binary
            || self
                .before
                .as_ref()
                .is_some_and(|before| before.as_text().is_none());
        match self.kind {
            ContentKind::Secret => details.push("sensitive".to_owned()),
            _ if binary => {
                let new = format!(
                    "size {}, sha256 {}",
                    self.size.unwrap_or(0),
                    self.sha256.as_deref().unwrap_or("")
                );
                match &self.before {
                    Some(before) => details.push(format!(
                        "binary: size {}, sha256 {} -> {new}",
                        before.len(),
                        before.sha256()
                    )),
                    None => details.push(format!("binary: {new}")),
                }
            }
            _ => {}
        }
        if self.existing.is_new() || !matches!(self.existing, Existing::File { .. }) {
            details.push(self.attributes.to_string());
        } else {
            details.extend(self.attribute_changes.iter().cloned());
        }
        let what = match &self.existing {
            Existing::Absent | Existing::Unknown => format!("create {}", self.path),
            Existing::File { .. } => format!("update {}", self.path),
            other => format!("replace {} with a file", other.replaced(&self.path)),
        };
        if details.is_empty() {
            what
        } else {
            format!("{what} ({})", details.join("; "))
        }
    }

    /// A new file is created; a directory or special file is replaced; the
    /// rest changes.
    pub fn effect(&self) -> Effect {
        match self.existing {
            Existing::Absent | Existing::Unknown => Effect::Create,
            Existing::Directory { .. } | Existing::Special { .. } => Effect::Replace,
            Existing::File { .. } | Existing::Link { .. } => Effect::Change,
        }
    }

    /// (path, old, new) for a diff, when both sides are text (never for a secret).
    pub fn file_change(&self) -> Option<(String, String, String)> {
        if self.kind != ContentKind::Text {
            return None;
        }
        let new = self.contents.as_ref()?.as_text()?;
        let old = match &self.before {
            Some(before) => before.as_text()?,
            None => "",
        };
        Some((self.path.clone(), old.to_owned(), new.to_owned()))
    }
}

impl AttributeChange {
    /// `set mode 0644 -> 0640, group root -> www-data on /etc/app.conf`.
    pub fn describe(&self) -> String {
        format!(
            "set {} on {}{}",
            self.changes.join(", "),
            if self.directory { "directory " } else { "" },
            self.path
        )
    }
}

impl DirectoryCreation {
    /// `create directory /srv/app (mode 0755, owner root, group root)`.
    pub fn describe(&self) -> String {
        match &self.existing {
            Existing::Absent | Existing::Unknown => {
                format!("create directory {} ({})", self.path, self.attributes)
            }
            other => format!(
                "replace {} with a directory ({})",
                other.replaced(&self.path),
                self.attributes
            ),
        }
    }

    /// Created, or something else replaced.
    pub fn effect(&self) -> Effect {
        if self.existing.is_new() {
            Effect::Create
        } else {
            Effect::Replace
        }
    }
}

impl LinkChange {
    /// `link /etc/app/current -> /srv/app/v2`, ...
    pub fn describe(&self) -> String {
        match &self.existing {
            Existing::Absent | Existing::Unknown => {
                format!("link {} -> {}", self.path, self.target)
            }
            Existing::Link { target } => {
                format!(
                    "change link {} -> {target} to -> {}",
                    self.path, self.target
                )
            }
            other => format!(
                "replace {} with a link -> {}",
                other.replaced(&self.path),
                self.target
            ),
        }
    }

    /// Created, changed, or a directory replaced.
    pub fn effect(&self) -> Effect {
        match self.existing {
            Existing::Absent | Existing::Unknown => Effect::Create,
            Existing::Directory { .. } => Effect::Replace,
            _ => Effect::Change,
        }
    }
}

impl Removal {
    /// `remove file /etc/motd`, ...
    pub fn describe(&self) -> String {
        match &self.existing {
            Existing::Unknown => format!("remove {} if the new root has it", self.path),
            Existing::Directory { empty: false } => {
                format!("remove directory {} and everything in it", self.path)
            }
            other => format!("remove {}", other.replaced(&self.path)),
        }
    }
}

/// The unit directories a unit file written by `files:` can provide a
/// unit from.
fn in_unit_dir(path: &str, unit: &str) -> bool {
    let template = unit.split_once('@').and_then(|(prefix, rest)| {
        let (_, suffix) = rest.rsplit_once('.')?;
        Some(format!("{prefix}@.{suffix}"))
    });
    crate::drivers::units::UNIT_DIRS.iter().any(|dir| {
        std::iter::once(unit)
            .chain(template.as_deref())
            .any(|name| path == format!("{dir}/{name}"))
    })
}

/// Whether the spec's `files:` write a unit file for `unit` (so enabling
/// it in the same apply is not an error, though the root lacks it now).
pub fn provides_unit(machine: &Machine, unit: &str) -> bool {
    machine.files.iter().any(|file| {
        !matches!(file.content, FileContent::Absent | FileContent::Directory)
            && in_unit_dir(&file.path.to_string_lossy(), unit)
    })
}

/// Whether a change at `path` is one the guest's systemd must reload for
/// (a unit file, drop-in or link under its unit directories).
pub fn is_systemd_path(path: &str) -> bool {
    [
        "/etc/systemd/",
        "/usr/lib/systemd/",
        "/lib/systemd/",
        "/usr/local/lib/systemd/",
    ]
    .iter()
    .any(|dir| path.starts_with(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(
        kind: ContentKind,
        existing: Existing,
        before: Option<&[u8]>,
        after: &[u8],
    ) -> FileWrite {
        let after = FileBytes::new(after.to_vec());
        FileWrite {
            path: "/etc/app.conf".into(),
            kind,
            sensitive: kind == ContentKind::Secret,
            size: (kind != ContentKind::Secret).then(|| after.len()),
            sha256: (kind != ContentKind::Secret).then(|| after.sha256()),
            attributes: Attributes {
                mode: 0o640,
                owner: "root".into(),
                group: "www-data".into(),
            },
            existing,
            attribute_changes: Vec::new(),
            contents: (kind != ContentKind::Secret).then_some(after),
            before: before.map(|b| FileBytes::new(b.to_vec())),
        }
    }

    #[test]
    fn text_shows_a_diff_binary_a_size_and_hash_and_a_secret_nothing() {
        let text = write(ContentKind::Text, Existing::Absent, None, b"a\n");
        assert_eq!(
            text.describe(),
            "create /etc/app.conf (mode 0640, owner root, group www-data)"
        );
        assert_eq!(
            text.file_change(),
            Some(("/etc/app.conf".into(), String::new(), "a\n".into()))
        );
        let binary = write(
            ContentKind::Binary,
            Existing::File {
                size: Some(1),
                sha256: None,
            },
            Some(b"\0"),
            b"\0\x01",
        );
        let shown = binary.describe();
        assert!(
            shown.starts_with("update /etc/app.conf (binary: size 1, sha256 6e340b9c")
                && shown.contains("-> size 2, sha256 "),
            "{shown}"
        );
        assert_eq!(binary.file_change(), None);
        let secret = write(ContentKind::Secret, Existing::Absent, None, b"s3cret");
        assert_eq!(
            secret.describe(),
            "create /etc/app.conf (sensitive; mode 0640, owner root, group www-data)"
        );
        assert_eq!(secret.file_change(), None);
        let json = serde_json::to_string(&secret).unwrap();
        assert!(
            !json.contains("s3cret") && !json.contains("sha256"),
            "{json}"
        );
        assert!(json.contains("\"mode\":\"0640\""), "{json}");
        assert!(!format!("{secret:?}").contains("s3cret"));
    }

    #[test]
    fn a_unit_file_in_a_unit_dir_provides_the_unit() {
        assert!(in_unit_dir(
            "/etc/systemd/system/hello.service",
            "hello.service"
        ));
        assert!(in_unit_dir(
            "/usr/lib/systemd/system/getty@.service",
            "getty@tty1.service"
        ));
        assert!(!in_unit_dir("/etc/hello.service", "hello.service"));
        assert!(is_systemd_path("/etc/systemd/system/x.service"));
        assert!(!is_systemd_path("/etc/systemd"));
    }

    #[test]
    fn secrets_never_show_and_compare_exactly() {
        let secret = SecretBytes::new(b"pw".to_vec());
        assert_eq!(format!("{secret:?}"), "SecretBytes(<sensitive>)");
        assert!(secret.matches(b"pw") && !secret.matches(b"pw\n") && !secret.matches(b"pX"));
        assert_eq!(
            format!("{:?}", FileBytes::new(b"abc".to_vec())),
            "FileBytes(size 3, sha256 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad)"
        );
    }
}
