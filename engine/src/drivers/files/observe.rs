//! What is at each path the spec's `files:` manage, read confined to the
//! root: nothing, a file (mode, owner, size and, for a diff, its contents),
//! a directory, a link (its target) or a special file. For a `secret:`
//! entry only whether the file holds the secret is kept: never its bytes,
//! nor a hash of them (the observation is fingerprinted into saved plans).

use std::collections::BTreeSet;

use berth_schema::Machine;

use super::FileBytes;
use super::accounts::{self, Accounts};
use crate::confined::{ConfinedError, FileKind, MAX_READ_SIZE, Root};
use crate::error::EngineError;
use crate::inputs::{Inputs, Wanted};

/// The managed paths of one root, in the spec's order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilesObservation {
    /// One per `files:` entry, in spec order.
    pub entries: Vec<EntryObservation>,
    /// The base uid and gid of a root shifted for private users.
    pub shift: Option<(u32, u32)>,
    /// The guest's accounts the spec's owners and groups name, and those
    /// owning the paths found (not the whole files).
    pub accounts: Accounts,
}

/// One managed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryObservation {
    /// The path inside the machine.
    pub path: String,
    /// Whether its parent directory exists (berth never creates parents
    /// the spec does not list).
    pub parent_exists: bool,
    /// What is there.
    pub found: Found,
}

/// What is at a managed path (its last component not followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Nothing.
    Absent,
    /// A regular file.
    File {
        /// Permission bits.
        mode: u32,
        /// Owner, as stored on the host.
        uid: u32,
        /// Group, as stored on the host.
        gid: u32,
        /// Size in bytes.
        size: u64,
        /// Hard links to it.
        nlink: u64,
        /// Its contents as far as the plan needs them.
        contents: Contents,
    },
    /// A directory.
    Directory {
        /// Permission bits.
        mode: u32,
        /// Owner, as stored on the host.
        uid: u32,
        /// Group, as stored on the host.
        gid: u32,
        /// Whether it has no entries.
        empty: bool,
    },
    /// A symbolic link.
    Link {
        /// Its target, verbatim.
        target: String,
    },
    /// A FIFO, socket or device node.
    Special,
    /// The path cannot be reached inside the root (a parent is not a
    /// directory, or crosses a mount): why.
    Unreachable(String),
}

/// A file's contents, as far as the plan needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contents {
    /// Read, for comparison and the diff.
    Read(FileBytes),
    /// Larger than berth reads: always rewritten.
    TooLarge,
    /// A secret's file: only whether it holds the secret.
    Secret {
        /// Whether it holds exactly the resolved secret.
        matches: bool,
    },
    /// Not needed (the spec wants no file there).
    NotRead,
}

/// Observes `machine`'s managed paths in `root`, comparing secrets with
/// the resolved `inputs`.
pub fn observe(
    root: &Root,
    machine: &Machine,
    inputs: &Inputs,
) -> Result<FilesObservation, EngineError> {
    if machine.files.is_empty() {
        return Ok(FilesObservation::default());
    }
    let shift = accounts::shift_of(root)?;
    let base = shift
        .map(|(uid, gid)| (Some(uid), Some(gid)))
        .unwrap_or_default();
    let mut entries = Vec::new();
    let mut uids = BTreeSet::new();
    let mut gids = BTreeSet::new();
    for (i, file) in machine.files.iter().enumerate() {
        let path = file.path.to_string_lossy().into_owned();
        let wanted = inputs.files.get(i);
        let found = match observe_path(root, &path, wanted) {
            Ok(found) => found,
            Err(EngineError::Confined(
                e @ (ConfinedError::NotADirectory { .. } | ConfinedError::CrossesMount { .. }),
            )) => Found::Unreachable(e.to_string()),
            Err(e) => return Err(e),
        };
        if let Found::File { uid, gid, .. } | Found::Directory { uid, gid, .. } = &found {
            uids.insert(accounts::to_guest(*uid, base.0));
            gids.insert(accounts::to_guest(*gid, base.1));
        }
        let parent = file
            .path
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".to_owned());
        let parent_exists = match &found {
            Found::Absent => match root.exists(&parent) {
                Ok(exists) => exists,
                Err(ConfinedError::NotADirectory { .. }) => false,
                Err(e) => return Err(e.into()),
            },
            Found::Unreachable(_) => false,
            _ => true,
        };
        entries.push(EntryObservation {
            path,
            parent_exists,
            found,
        });
    }
    // Only the accounts that matter: those named, and those found.
    let all = Accounts::read(root)?;
    let named: BTreeSet<&str> = machine
        .files
        .iter()
        .flat_map(|f| [f.owner.as_deref(), f.group.as_deref()])
        .flatten()
        .chain([super::DEFAULT_OWNER])
        .collect();
    let accounts = Accounts {
        users: all
            .users
            .into_iter()
            .filter(|(name, id)| named.contains(name.as_str()) || uids.contains(id))
            .collect(),
        groups: all
            .groups
            .into_iter()
            .filter(|(name, id)| named.contains(name.as_str()) || gids.contains(id))
            .collect(),
    };
    Ok(FilesObservation {
        entries,
        shift,
        accounts,
    })
}

/// What is at `path`; a file's contents are read when the spec wants a
/// file there (compared, for a secret).
fn observe_path(root: &Root, path: &str, wanted: Option<&Wanted>) -> Result<Found, EngineError> {
    let Some(stat) = root.lstat(path)? else {
        return Ok(Found::Absent);
    };
    Ok(match stat.kind {
        FileKind::File => {
            let contents = match wanted {
                Some(Wanted::Bytes(_)) if stat.size > MAX_READ_SIZE => Contents::TooLarge,
                Some(Wanted::Bytes(_)) => match root.read(path) {
                    Ok(Some(bytes)) => Contents::Read(FileBytes::new(bytes)),
                    Ok(None) => return Ok(Found::Absent),
                    Err(ConfinedError::TooLarge { .. }) => Contents::TooLarge,
                    Err(e) => return Err(e.into()),
                },
                Some(Wanted::Secret(secret)) => Contents::Secret {
                    matches: stat.size <= MAX_READ_SIZE
                        && root.read(path)?.is_some_and(|bytes| secret.matches(&bytes)),
                },
                _ => Contents::NotRead,
            };
            Found::File {
                mode: stat.mode,
                uid: stat.uid,
                gid: stat.gid,
                size: stat.size,
                nlink: stat.nlink,
                contents,
            }
        }
        FileKind::Dir => Found::Directory {
            mode: stat.mode,
            uid: stat.uid,
            gid: stat.gid,
            empty: root.list_dir(path)?.is_none_or(|names| names.is_empty()),
        },
        FileKind::Symlink => Found::Link {
            target: root
                .read_link(path)?
                .map(|t| t.display().to_string())
                .unwrap_or_default(),
        },
        FileKind::Other => Found::Special,
    })
}
