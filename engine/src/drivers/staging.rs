//! New roots: a staging directory discarded safely (unmounting what an
//! interrupted bootstrap left inside), and a fresh machine-id for every root
//! made from a base.

use std::fs;

use crate::confined::Root;
use crate::confined::{mounts, remove};
use crate::error::EngineError;

/// Gives a new root its own machine-id: 128 random bits, never a copy of
/// another machine's (nor the host's). A real id rather than an empty file,
/// so the first boot does not run `systemctl preset-all`, which would undo
/// the units the spec disables.
pub(crate) fn fresh_machine_id(root_path: &std::path::Path) -> Result<(), EngineError> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(|e| EngineError::io("reading /dev/urandom", e))?;
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let root = Root::open(root_path)?;
    root.write_atomic("/etc/machine-id", format!("{id}\n").as_bytes(), 0o444)?;
    // D-Bus keeps its own copy on older systems.
    if root.kind("/var/lib/dbus/machine-id")?.is_some() {
        root.remove_file("/var/lib/dbus/machine-id")?;
    }
    Ok(())
}

/// Removes a staging directory, first detaching anything an interrupted
/// bootstrap left mounted inside it (debootstrap mounts /proc and /sys).
pub(crate) fn discard_staging(staging: &std::path::Path) -> Result<(), EngineError> {
    if fs::symlink_metadata(staging).is_err() {
        return Ok(());
    }
    let mut inside = mounts::mounts_under(staging)
        .map_err(|e| EngineError::io("reading /proc/self/mountinfo", e))?;
    // Deepest first.
    inside.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for mount in inside {
        nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH)
            .map_err(|e| EngineError::io(format!("unmounting {}", mount.display()), e.into()))?;
    }
    remove::remove_tree(staging).map_err(|e| {
        EngineError::State(format!(
            "removing the leftover staging directory {}: {e}",
            staging.display()
        ))
    })
}
