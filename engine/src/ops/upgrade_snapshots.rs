//! The snapshots upgrades and health checks use, through the snapshot API
//! of [`crate::ops::snapshot`] (kept in one place so the executor does not
//! depend on its details). apply holds berth's state lock throughout.

use berth_schema::Machine;

use crate::engine::Engine;
use crate::error::EngineError;
use crate::ops::snapshot::{self, SnapshotOrigin};
use crate::report::Reporter;

/// The snapshot to take before upgrading `machine`: None when this apply
/// already took one (its `before_apply` snapshot, moments ago, of the same
/// root); else a new one of origin `before-upgrade`, the oldest of that
/// origin beyond `snapshots.keep` (default 3) deleted. Returns the tag.
pub(crate) fn before_upgrade(
    engine: &Engine,
    machine: &Machine,
) -> Result<(String, bool), EngineError> {
    let name = &machine.name;
    if let Some(tag) = engine.snapshot_taken(name) {
        return Ok((tag, false));
    }
    let info = snapshot::take_locked(engine, name, None, SnapshotOrigin::BeforeUpgrade)?;
    snapshot::prune_to(
        engine,
        name,
        machine.snapshots.keep as usize,
        SnapshotOrigin::BeforeUpgrade,
    )?;
    Ok((info.tag, true))
}

/// The snapshot this apply took of machine `name` before changing it (its
/// `before_apply` or `before-upgrade` snapshot), if any.
pub(crate) fn taken(engine: &Engine, name: &str) -> Option<String> {
    engine.snapshot_taken(name)
}

/// Rolls machine `name` back to snapshot `tag` under the lock apply
/// holds; returns the tag the replaced root is kept as.
pub(crate) fn roll_back(
    engine: &Engine,
    name: &str,
    tag: &str,
    reporter: &dyn Reporter,
) -> Result<String, EngineError> {
    snapshot::rollback_locked(engine, name, tag, reporter).map(|report| report.kept_as)
}
