//! The snapshots upgrades and health checks use, through the snapshot API
//! of `ops::snapshot` (kept in one place so the executor does not depend
//! on its details).

use crate::engine::Engine;
use crate::error::EngineError;
use crate::report::Reporter;

/// Takes a snapshot of machine `name` before an upgrade (origin
/// `before-upgrade`), under the lock apply already holds; returns its tag.
pub(crate) fn before_upgrade(_engine: &Engine, name: &str) -> Result<String, EngineError> {
    Err(EngineError::Refused {
        machine: name.to_owned(),
        message: "snapshots are not available in this build".into(),
    })
}

/// The newest snapshot of machine `name` taken for the apply that started
/// at `since` (seconds since the epoch): origin `before-apply` or
/// `before-upgrade`, made at or after `since`.
pub(crate) fn taken_since(
    _engine: &Engine,
    _name: &str,
    _since: u64,
) -> Result<Option<String>, EngineError> {
    Ok(None)
}

/// Rolls machine `name` back to snapshot `tag` under the lock apply
/// holds; returns the tag the replaced root is kept as.
pub(crate) fn roll_back(
    _engine: &Engine,
    name: &str,
    _tag: &str,
    _reporter: &dyn Reporter,
) -> Result<String, EngineError> {
    Err(EngineError::Refused {
        machine: name.to_owned(),
        message: "snapshots are not available in this build".into(),
    })
}
