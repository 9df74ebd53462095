//! The hooks of overlay storage into apply, start, stop, replacement and
//! destroy (see `drivers/storage.rs`): the root is mounted while berth
//! works on it or the machine runs, and unmounted when apply leaves it
//! stopped.

use crate::confined::mounts;
use crate::drivers::{launcher, storage};
use crate::engine::Engine;
use crate::error::EngineError;

impl Engine {
    /// The layers of machine `name` if berth's record says it is an overlay.
    pub(crate) fn overlay_layers(
        &self,
        name: &str,
    ) -> Result<Option<storage::Layers>, EngineError> {
        let host = self.host();
        match host.state().load(name)? {
            Some(record) => storage::Layers::of_record(host.paths(), &record),
            None => Ok(None),
        }
    }

    /// Mounts an overlay machine's root (and keeps its boot units current)
    /// before berth writes into it or starts it; nothing for copied roots.
    pub(crate) fn mount_overlay(&self, name: &str) -> Result<(), EngineError> {
        let Some(layers) = self.overlay_layers(name)? else {
            return Ok(());
        };
        let host = self.host();
        if !host.paths().machine_root(name).is_dir() {
            return Ok(());
        }
        storage::write_boot_units(host, name, &layers)?;
        storage::ensure_mounted(host, &layers)
    }

    /// Unmounts an overlay machine's root unless the machine runs (berth's
    /// recorded launch, or its unit started it since).
    pub(crate) fn unmount_overlay_if_stopped(&self, name: &str) -> Result<(), EngineError> {
        let host = self.host();
        let Some(record) = host.state().load(name)? else {
            return Ok(());
        };
        let Some(layers) = storage::Layers::of_record(host.paths(), &record)? else {
            return Ok(());
        };
        let running = record
            .launch
            .as_ref()
            .and_then(|launch| launcher::refresh(host, name, launch))
            .is_some()
            || crate::observe::run_state(host, name, Some(&record)).is_running();
        if running {
            return Ok(());
        }
        storage::unmount(host, &layers)
    }

    /// Unmounts and removes an overlay machine's layers and boot units
    /// (destroy, replacement); the root's mount point is left to the caller.
    /// Refuses while anything else is mounted inside the overlay root.
    pub(crate) fn discard_overlay(&self, name: &str) -> Result<(), EngineError> {
        let Some(layers) = self.overlay_layers(name)? else {
            return Ok(());
        };
        if layers.root.is_dir() {
            let inside: Vec<String> = mounts::mounts_under(&layers.root)
                .map_err(|e| EngineError::io("reading /proc/self/mountinfo", e))?
                .into_iter()
                .filter(|p| *p != layers.root)
                .map(|p| p.display().to_string())
                .collect();
            if !inside.is_empty() {
                return Err(EngineError::Refused {
                    machine: name.to_owned(),
                    message: format!(
                        "something is mounted inside the root: {}; unmount it first",
                        inside.join(", ")
                    ),
                });
            }
        }
        storage::discard(self.host(), name, &layers)
    }
}
