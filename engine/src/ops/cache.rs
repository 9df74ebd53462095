//! `berth cache list|prune`: the cached bases and the machines made from them.

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
    /// with `all`); returns the ids removed.
    pub fn prune_cache(&self, all: bool) -> Result<Vec<String>, EngineError> {
        let records = self.host.state().all()?;
        Cache::new(&self.host.paths().cache_dir).prune(|entry| {
            !all && records
                .iter()
                .any(|r| r.base.as_deref() == Some(entry.id.as_str()))
        })
    }
}
