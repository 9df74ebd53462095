//! Where berth looks and writes on the host. Every path is overridable so
//! tests never touch the real `/var/lib/machines`.

use std::path::{Path, PathBuf};

/// The host directories berth works in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Where machine roots live (`/var/lib/machines`).
    pub machines_dir: PathBuf,
    /// berth's own state: records of managed machines, logs, the lock (`/var/lib/berth`).
    pub state_dir: PathBuf,
    /// Where `.nspawn` settings files go (`/etc/systemd/nspawn`).
    pub nspawn_dir: PathBuf,
    /// The base cache (`/var/cache/berth`).
    pub cache_dir: PathBuf,
}

impl Paths {
    /// The root directory of machine `name`.
    pub fn machine_root(&self, name: &str) -> PathBuf {
        self.machines_dir.join(name)
    }

    /// The staging directory a bootstrap writes into before it is renamed
    /// into place. Hidden (leading dot), so machinectl and berth never take a
    /// half-made root for a machine.
    pub fn staging_root(&self, name: &str) -> PathBuf {
        self.machines_dir.join(format!(".{name}.berth-staging"))
    }

    /// The directory holding one JSON record per managed machine.
    pub fn records_dir(&self) -> PathBuf {
        self.state_dir.join("machines")
    }

    /// The record of machine `name`.
    pub fn record_file(&self, name: &str) -> PathBuf {
        self.records_dir().join(format!("{name}.json"))
    }

    /// The directory of per-machine logs.
    pub fn logs_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }

    /// The log a bootstrap of `name` writes its output to.
    pub fn bootstrap_log(&self, name: &str) -> PathBuf {
        self.logs_dir().join(format!("{name}.bootstrap.log"))
    }

    /// The log of commands berth ran inside machine `name` (package installs, ...).
    pub fn machine_log(&self, name: &str) -> PathBuf {
        self.logs_dir().join(format!("{name}.log"))
    }

    /// The console log of machine `name` under the nspawn launcher.
    pub fn console_log(&self, name: &str) -> PathBuf {
        self.logs_dir().join(format!("{name}.console.log"))
    }

    /// The `.nspawn` settings file of machine `name`.
    pub fn settings_file(&self, name: &str) -> PathBuf {
        self.nspawn_dir.join(format!("{name}.nspawn"))
    }

    /// The lock file serialising applies and destroys.
    pub fn lock_file(&self) -> PathBuf {
        self.state_dir.join("lock")
    }
}

/// Whether the host was booted with systemd as PID 1 (`/run/systemd/system` exists).
pub fn host_booted_with_systemd() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Whether the host's systemd-networkd runs (it keeps its state in
/// `/run/systemd/netif/state` while it does).
pub fn host_networkd_runs() -> bool {
    host_booted_with_systemd() && Path::new("/run/systemd/netif/state").is_file()
}
