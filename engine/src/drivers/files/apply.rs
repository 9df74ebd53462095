//! Making the approved `files:` changes, through the confined writer only:
//! parents resolved inside the root, the final component never followed,
//! files and links replaced by `rename`, directories removed without
//! following a link or entering another mount. Owners and groups resolve
//! now, in the guest's own accounts (a user this apply created is there),
//! shifted for a root with private users.

use std::borrow::Cow;

use super::accounts::{self, Accounts};
use super::{
    AttributeChange, Attributes, DirectoryCreation, Existing, FileWrite, LinkChange, Removal,
    SecretBytes,
};
use crate::confined::{FileKind, Root};
use crate::error::EngineError;

/// The host uid and gid for `attributes` in `root`.
fn host_ids(
    machine: &str,
    root: &Root,
    path: &str,
    attributes: &Attributes,
) -> Result<(u32, u32), EngineError> {
    let err = |message: String| EngineError::Plan {
        machine: machine.to_owned(),
        message: format!("files {path}: {message}"),
    };
    let guest = Accounts::read(root)?;
    let uid = guest.uid(&attributes.owner).ok_or_else(|| {
        err(format!(
            "owner {} does not exist in the guest's /etc/passwd",
            attributes.owner
        ))
    })?;
    let gid = guest.gid(&attributes.group).ok_or_else(|| {
        err(format!(
            "group {} does not exist in the guest's /etc/group",
            attributes.group
        ))
    })?;
    root_ids(machine, root, path, uid, gid)
}

/// Guest ids `uid`/`gid` as stored on the host (shifted roots).
fn root_ids(
    machine: &str,
    root: &Root,
    path: &str,
    uid: u32,
    gid: u32,
) -> Result<(u32, u32), EngineError> {
    let shift = accounts::shift_of(root)?;
    match (
        accounts::to_host(uid, shift.map(|s| s.0)),
        accounts::to_host(gid, shift.map(|s| s.1)),
    ) {
        (Some(uid), Some(gid)) => Ok((uid, gid)),
        _ => Err(EngineError::Plan {
            machine: machine.to_owned(),
            message: format!(
                "files {path}: uid {uid} or gid {gid} lies outside the machine's range of \
                 private users (0-{})",
                accounts::USERNS_RANGE - 1
            ),
        }),
    }
}

/// Writes a file: the approved contents, or a secret read again now.
pub fn write(
    machine: &str,
    root: &Root,
    write: &FileWrite,
    secret: impl FnOnce() -> Result<SecretBytes, EngineError>,
) -> Result<(), EngineError> {
    let (uid, gid) = host_ids(machine, root, &write.path, &write.attributes)?;
    let secret_value;
    let contents: &[u8] = match &write.contents {
        Some(bytes) => bytes.as_slice(),
        None => {
            secret_value = secret()?;
            secret_value.expose()
        }
    };
    // A directory there was approved for replacement (replace: true).
    if let Existing::Directory { .. } = write.existing {
        root.remove_entry(&write.path, true)?;
    }
    root.write_file_as(&write.path, contents, write.attributes.mode, uid, gid)?;
    Ok(())
}

/// Sets a file's or directory's mode, owner and group. A file with more
/// than one hard link is written anew instead (same contents, a new
/// inode), so a link shared with a file elsewhere never changes.
pub fn set_attributes(
    machine: &str,
    root: &Root,
    change: &AttributeChange,
) -> Result<(), EngineError> {
    let (uid, gid) = host_ids(machine, root, &change.path, &change.attributes)?;
    let mode = change.attributes.mode;
    match root.lstat(&change.path)? {
        Some(stat) if stat.kind == FileKind::File && stat.nlink > 1 => {
            let contents: Cow<'_, [u8]> = root.read(&change.path)?.unwrap_or_default().into();
            root.write_file_as(&change.path, &contents, mode, uid, gid)?;
        }
        _ => root.set_attributes(&change.path, mode, uid, gid)?,
    }
    Ok(())
}

/// Makes a directory (replacing an approved file, link or special file).
pub fn make_directory(
    machine: &str,
    root: &Root,
    dir: &DirectoryCreation,
) -> Result<(), EngineError> {
    let (uid, gid) = host_ids(machine, root, &dir.path, &dir.attributes)?;
    if matches!(
        dir.existing,
        Existing::File { .. } | Existing::Link { .. } | Existing::Special { .. }
    ) {
        root.remove_entry(&dir.path, false)?;
    }
    root.make_dir_as(&dir.path, dir.attributes.mode, uid, gid)?;
    Ok(())
}

/// Makes a link, owned by the guest's root (replacing an approved directory).
pub fn make_link(machine: &str, root: &Root, link: &LinkChange) -> Result<(), EngineError> {
    let (uid, gid) = root_ids(machine, root, &link.path, 0, 0)?;
    if let Existing::Directory { .. } = link.existing {
        root.remove_entry(&link.path, true)?;
    }
    root.make_link(&link.path, std::path::Path::new(&link.target), uid, gid)?;
    Ok(())
}

/// Removes a path (a directory with everything in it only when approved).
pub fn remove(root: &Root, removal: &Removal) -> Result<(), EngineError> {
    root.remove_entry(&removal.path, removal.recursive)?;
    Ok(())
}
