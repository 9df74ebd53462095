//! `berth cache list|prune`: the cached bases and the machines made from them.

use berth_schema::Storage;

use crate::drivers::cache::{Cache, Entry};
use crate::error::EngineError;

impl crate::engine::Engine {
    /// The cached bases, each with the managed machines made from it.
    pub fn cache_entries(&self) -> Result<Vec<(Entry, Vec<String>)>, EngineError> {
        let records = self.host.state().all()?;
        let cache = Cache::new(&self.host.paths().cache_dir);
        Ok(cache
            .list()?
            .into_iter()
            .map(|entry| {
                let users = records
                    .iter()
                    .filter(|r| r.base.as_deref() == Some(entry.id.as_str()))
                    .map(|r| r.name.clone())
                    .collect();
                (entry, users)
            })
            .collect())
    }

    /// Removes cached bases no managed machine was made from (every one
    /// with `all`), but never the base of an overlay machine (its lower
    /// layer), not even with `all`.
    pub fn prune_cache(&self, all: bool) -> Result<Pruned, EngineError> {
        let records = self.host.state().all()?;
        let uses = |entry: &Entry, overlay_only: bool| -> Vec<String> {
            records
                .iter()
                .filter(|r| r.base.as_deref() == Some(entry.id.as_str()))
                .filter(|r| !overlay_only || r.storage == Storage::Overlay)
                .map(|r| r.name.clone())
                .collect()
        };
        let cache = Cache::new(&self.host.paths().cache_dir);
        let held: Vec<(String, Vec<String>)> = cache
            .list()?
            .iter()
            .map(|entry| (entry.id.clone(), uses(entry, true)))
            .filter(|(_, overlays)| !overlays.is_empty())
            .collect();
        let removed = cache.prune(|entry| {
            !uses(entry, true).is_empty() || (!all && !uses(entry, false).is_empty())
        })?;
        Ok(Pruned { removed, held })
    }
}

/// What `berth cache prune` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pruned {
    /// The ids removed.
    pub removed: Vec<String>,
    /// Bases kept because overlay machines mount them as their lower
    /// layer: (id, those machines).
    pub held: Vec<(String, Vec<String>)>,
}
