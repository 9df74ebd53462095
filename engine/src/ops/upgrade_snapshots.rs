//! The snapshots upgrades and health checks use, through the snapshot API
//! of [`crate::ops::snapshot`] (kept in one place so the executor does not
//! depend on its details). apply holds berth's state lock throughout.

use crate::engine::Engine;
use crate::error::EngineError;
use crate::ops::snapshot::{self, SnapshotOrigin};
use crate::report::Reporter;

/// Takes a snapshot of machine `name` before an upgrade (origin
/// `before-upgrade`), under the lock apply already holds; returns its tag.
pub(crate) fn before_upgrade(engine: &Engine, name: &str) -> Result<String, EngineError> {
    snapshot::take_locked(engine, name, None, SnapshotOrigin::BeforeUpgrade).map(|info| info.tag)
}

/// The newest snapshot of machine `name` taken for the apply that started
/// at `since` (seconds since the epoch): origin `before-apply` or
/// `before-upgrade`, made at or after `since`.
pub(crate) fn taken_since(
    engine: &Engine,
    name: &str,
    since: u64,
) -> Result<Option<String>, EngineError> {
    if engine.host().state().load(name)?.is_none() {
        return Ok(None);
    }
    Ok(engine
        .snapshots(Some(name))?
        .into_iter()
        .filter(|s| {
            s.created_at >= since
                && matches!(
                    s.origin,
                    SnapshotOrigin::BeforeApply | SnapshotOrigin::BeforeUpgrade
                )
        })
        .max_by_key(|s| s.created_at)
        .map(|s| s.tag))
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
