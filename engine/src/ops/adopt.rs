//! `berth adopt`: take a root made by hand under berth's management.

use berth_schema::Machine;

use crate::engine::Engine;
use crate::error::EngineError;

impl Engine {
    /// Takes an existing root (made by hand, as in the article) under
    /// berth's management, without changing anything inside it. The root's
    /// `/etc/os-release` must match the spec's distro and release; the
    /// spec's packages already installed count as its base (never removed).
    pub fn adopt(&self, machine: &Machine) -> Result<(), EngineError> {
        let name = &machine.name;
        let refuse = |message: String| EngineError::Refused {
            machine: name.clone(),
            message,
        };
        let paths = &self.host.paths();
        let store = self.host.state();
        if store.load(name)?.is_some() {
            return Err(refuse("berth already manages it".into()));
        }
        let root = crate::ops::existing::open(paths, name)?;
        let os_release = crate::ops::existing::OsRelease::read(&root)?;
        let field = |key: &str| os_release.field(key);
        let id = field("ID").unwrap_or_default();
        if id != machine.distro.as_str() {
            return Err(refuse(format!(
                "its /etc/os-release says ID={id:?}, the spec says distro: {}",
                machine.distro
            )));
        }
        if let Some(release) = &machine.release {
            let found = [field("VERSION_CODENAME"), field("VERSION_ID")];
            if !found.iter().flatten().any(|v| v == release) {
                return Err(refuse(format!(
                    "its /etc/os-release says release {}, the spec says release: {release}",
                    found
                        .iter()
                        .flatten()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("/")
                )));
            }
        }
        let bootstrapper =
            crate::drivers::bootstrap::for_machine(self.host(), machine).map_err(|message| {
                EngineError::Plan {
                    machine: name.clone(),
                    message,
                }
            })?;
        let installed = bootstrapper
            .package_manager()
            .installed(self.host(), &root)?;
        let created_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        store.save(&crate::host::state::MachineRecord {
            storage: berth_schema::Storage::Copy,
            name: name.clone(),
            distro: machine.distro.to_string(),
            release: machine.release.clone(),
            bootstrapper: bootstrapper.kind(),
            created_at,
            launch: None,
            bootstrap_packages: machine
                .packages
                .iter()
                .filter(|p| installed.contains(*p))
                .cloned()
                .collect(),
            base: None,
            added_packages: Vec::new(),
            securetty_added: Vec::new(),
            address: None,
            resources: Default::default(),
            prevent_destroy: machine.prevent_destroy.is_some(),
            spec: None,
        })?;
        // A hand-written .nspawn file that says what the spec says becomes
        // berth's own, so the first plan has nothing to rewrite.
        crate::ops::import::adopt_settings(self.host(), machine)?;
        Ok(())
    }
}
