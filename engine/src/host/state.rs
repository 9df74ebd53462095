//! berth's records of the machines it manages, one JSON file each under the
//! state dir. A record is what makes a machine "managed": destroy refuses
//! anything without one. Records never hold secrets.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use berth_schema::{BootstrapperKind, Launcher, Storage};
use serde::{Deserialize, Serialize};

use crate::drivers::resources::{Knob, Value};
use crate::error::EngineError;
use crate::host::paths::Paths;

/// What berth knows about a machine it created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineRecord {
    /// The machine name.
    pub name: String,
    /// The distribution it was bootstrapped from.
    pub distro: String,
    /// The release it was bootstrapped from.
    pub release: Option<String>,
    /// The bootstrapper that made the root (`debootstrap`, ...).
    pub bootstrapper: BootstrapperKind,
    /// Seconds since the epoch when berth created it.
    pub created_at: u64,
    /// Whether the spec had `prevent_destroy: true` at the last apply:
    /// `berth destroy` without a spec then refuses.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prevent_destroy: bool,
    /// How it was last started by berth, while berth believes it runs.
    #[serde(default)]
    pub launch: Option<LaunchRecord>,
    /// The package set the root was bootstrapped with (berth never removes these).
    #[serde(default)]
    pub bootstrap_packages: Vec<String>,
    /// The cache entry the root was cloned from.
    #[serde(default)]
    pub base: Option<String>,
    /// Packages berth installed after the bootstrap because the spec asked:
    /// the only ones it removes when they leave the spec.
    #[serde(default)]
    pub added_packages: Vec<String>,
    /// Entries berth added to `/etc/securetty` because the spec asked: the
    /// only ones it removes when they leave the spec.
    #[serde(default)]
    pub securetty_added: Vec<String>,
    /// How the root is stored: a clone of `base`, or an overlay on it
    /// (absent in records written before overlays: copy).
    #[serde(default, skip_serializing_if = "Storage::is_copy")]
    pub storage: Storage,
    /// The machine's address on its link (`10.0.0.5/24`), static or
    /// allocated from a pool: no other machine on the host gets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The resource limits berth set, by knob: the only ones it resets
    /// when they leave the spec. The nspawn launcher applies them to the
    /// machine's cgroup at every start.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<Knob, Value>,
    /// The spec it was last applied from: the canonical path of `-f FILE`,
    /// or of the directory given with `-f DIR`. `berth plan` of that spec
    /// offers to prune the machine once it is gone from it; a record
    /// without one (written before berth recorded it) is never pruned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<std::path::PathBuf>,
}

/// How berth started a machine, so it is always controlled the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchRecord {
    /// The launcher that started it (`nspawn`, ...; never `auto`).
    pub launcher: Launcher,
    /// The process id of the supervising process (systemd-nspawn for the nspawn launcher).
    pub pid: i32,
    /// That process's start time in clock ticks since boot (`/proc/PID/stat` field 22),
    /// so a recycled pid is never mistaken for the machine.
    pub start_time: u64,
    /// The fingerprint of the nspawn settings it was started with, so a
    /// settings change plans a restart.
    #[serde(default)]
    pub settings: Option<String>,
}

/// Reads and writes machine records.
#[derive(Debug, Clone)]
pub struct StateStore {
    paths: Paths,
}

impl StateStore {
    /// A store over `paths.state_dir`.
    pub fn new(paths: &Paths) -> Self {
        StateStore {
            paths: paths.clone(),
        }
    }

    /// The record of `name`, if berth manages it.
    pub fn load(&self, name: &str) -> Result<Option<MachineRecord>, EngineError> {
        let path = self.paths.record_file(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(EngineError::io(format!("reading {}", path.display()), e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            EngineError::State(format!(
                "{} is not a valid berth record: {e}",
                path.display()
            ))
        })
    }

    /// Writes `record` atomically (temp file + rename).
    pub fn save(&self, record: &MachineRecord) -> Result<(), EngineError> {
        let path = self.paths.record_file(&record.name);
        let mut text = serde_json::to_vec_pretty(record)
            .map_err(|e| EngineError::State(format!("serialising record: {e}")))?;
        text.push(b'\n');
        write_file_atomic(&path, &text)
            .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))
    }

    /// Every record, in name order (unreadable ones are skipped).
    pub fn all(&self) -> Result<Vec<MachineRecord>, EngineError> {
        let dir = self.paths.records_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(EngineError::io(format!("reading {}", dir.display()), e)),
        };
        let mut out: Vec<MachineRecord> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let name = name.strip_suffix(".json")?.to_owned();
                self.load(&name).ok().flatten()
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Forgets `name`.
    pub fn remove(&self, name: &str) -> Result<(), EngineError> {
        let path = self.paths.record_file(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(EngineError::io(format!("removing {}", path.display()), e)),
        }
    }
}

/// Writes a host file (in berth's own state dir, never inside a machine root)
/// atomically: a temp file in the same directory, fsynced, renamed over the target.
pub(crate) fn write_file_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no parent"))?;
    fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        remove_stale_temps(dir, &file_name.to_string_lossy());
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes `.NAME.tmp-PID` files of earlier writes of `name` in `dir`, left
/// by a berth killed between writing one and renaming it. Writers hold the
/// state lock, so any such file is stale. Best effort.
fn remove_stale_temps(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else {
            continue;
        };
        if file
            .strip_prefix(&prefix)
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
            && entry.file_type().is_ok_and(|t| t.is_file())
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}
