//! Saved plans: `berth plan --out FILE` writes the plan together with
//! fingerprints of what it was made from; `berth apply FILE` re-reads the
//! spec, observes the machines again and runs the plan only when nothing
//! changed since ("plan is stale: ..." otherwise), so what was reviewed is
//! what runs.
//!
//! The file is JSON. It never holds a secret: the spec fingerprint covers
//! the password's *source* (a hash, an `env:` variable name, a `file:` path),
//! never a value read from the environment or a file; the observed
//! fingerprint hashes (SHA-256) a rendering of what was observed, which
//! includes root's salted hash from `/etc/shadow`, but only the digest is
//! stored.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use berth_schema::Machine;
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::EngineError;
use crate::model::observed::{Observed, sha256};
use crate::planner::{MachinePlan, Plan};

/// The `format` field of every saved plan.
pub const FORMAT: &str = "berth-plan";
/// The version of the file format written.
pub const VERSION: u32 = 1;
/// The largest saved plan read (a plan file is small; this bounds a hostile one).
pub const MAX_SIZE: u64 = 64 * 1024 * 1024;

/// A plan written by `berth plan --out FILE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPlan {
    /// Always [`FORMAT`]: tells a plan file from anything else.
    pub format: String,
    /// The file format version ([`VERSION`]).
    pub version: u32,
    /// The berth version that wrote it.
    pub berth_version: String,
    /// The spec the plan was made from (absolute): a file or a directory.
    pub spec: PathBuf,
    /// The machines planned, in spec order (after patterns and excludes).
    pub targets: Vec<String>,
    /// One entry per target: what its plan was made against.
    pub machines: Vec<MachineFingerprint>,
    /// The plan, as `berth plan --json` prints it, for review.
    pub plan: serde_json::Value,
    /// The machines the plan prunes (applied from this spec, gone from
    /// it): `berth apply FILE --prune` destroys exactly these, plain
    /// `berth apply FILE` keeps them, like `berth apply`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prune: Vec<PruneFingerprint>,
}

/// What the prune of one machine was planned against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneFingerprint {
    /// The machine name.
    pub name: String,
    /// SHA-256 of berth's record of it.
    pub observed: BTreeMap<String, String>,
}

/// What one machine's plan was made against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineFingerprint {
    /// The machine name.
    pub name: String,
    /// SHA-256 of the machine's validated spec (where it was declared left out).
    pub spec: String,
    /// SHA-256 of each part of what was observed: `root`, `record`, `run`,
    /// `settings`, `autostart`.
    pub observed: BTreeMap<String, String>,
    /// SHA-256 of the machine's full plan, file diffs included.
    pub plan: String,
}

/// The fingerprint of a machine's spec: its validated form (defaults merged,
/// secret sources resolved to variable names and paths, never values),
/// without the file position it was declared at, so editing a comment does
/// not make a plan stale.
pub fn spec_fingerprint(machine: &Machine) -> String {
    let mut canonical = machine.clone();
    canonical.source = berth_schema::Source::default();
    // Paths resolved against a relative spec path: made absolute, so the
    // spec loaded again from its absolute path fingerprints the same.
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    if let Some(berth_schema::RootPassword::File(path)) = &mut canonical.root_password {
        *path = absolute(path);
    }
    if let Some(conf) = &mut canonical.pacman_conf {
        *conf = absolute(conf);
    }
    for user in &mut canonical.users {
        user.source = berth_schema::Source::default();
        if let Some(berth_schema::RootPassword::File(path)) = &mut user.password {
            *path = absolute(path);
        }
    }
    for credential in &mut canonical.credentials {
        if let berth_schema::SecretSource::File(path) = &mut credential.source {
            *path = absolute(path);
        }
    }
    sha256(&format!("{canonical:?}"))
}

/// The fingerprints of what was observed of a machine, part by part.
pub fn observed_fingerprint(observed: &Observed) -> BTreeMap<String, String> {
    observed.fingerprint()
}

/// Why a saved plan was not applied.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    /// The spec, a machine or the host changed since the plan was made.
    #[error("plan is stale: {0}")]
    Stale(String),
    /// Planning again failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

fn plan_fingerprint(plan: &MachinePlan) -> String {
    sha256(&format!("{plan:?}"))
}

impl Engine {
    /// Plans `machines` like [`Engine::plan`], and the saved form of that
    /// plan, made from the spec at `spec` (stored absolute).
    pub fn plan_for_saving<'a>(
        &self,
        spec: &Path,
        machines: impl IntoIterator<Item = &'a Machine>,
    ) -> Result<(Plan, SavedPlan), Vec<EngineError>> {
        let machines: Vec<&Machine> = machines.into_iter().collect();
        let run = self.network_run(&machines).map_err(|e| vec![e])?;
        let mut plans = Vec::new();
        let mut prints = Vec::new();
        let mut errors = Vec::new();
        for machine in machines {
            match self.plan_observed(machine, &run) {
                Ok((plan, _secret, observed)) => {
                    prints.push(MachineFingerprint {
                        name: machine.name.clone(),
                        spec: spec_fingerprint(machine),
                        observed: observed_fingerprint(&observed),
                        plan: plan_fingerprint(&plan),
                    });
                    plans.push(plan);
                }
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let spec = std::path::absolute(spec).map_err(|e| {
            vec![EngineError::io(
                format!("resolving the spec path {}", spec.display()),
                e,
            )]
        })?;
        let plan = Plan::new(plans);
        let json = serde_json::to_value(&plan)
            .map_err(|e| vec![EngineError::State(format!("serialising the plan: {e}"))])?;
        let saved = SavedPlan {
            format: FORMAT.to_owned(),
            version: VERSION,
            berth_version: env!("CARGO_PKG_VERSION").to_owned(),
            spec,
            targets: prints.iter().map(|p| p.name.clone()).collect(),
            machines: prints,
            plan: json,
            prune: Vec::new(),
        };
        Ok((plan, saved))
    }

    /// Plans `machines` (the saved plan's targets, in its order, loaded
    /// from its spec) again and returns the plan when it is exactly the
    /// saved one: same spec, same observed state, same actions. Otherwise an
    /// error whose message begins with `plan is stale: ` and says what changed.
    pub fn check_saved_plan(
        &self,
        saved: &SavedPlan,
        machines: &[&Machine],
    ) -> Result<Plan, SavedPlanError> {
        let stale = SavedPlanError::Stale;
        if saved.version != VERSION {
            return Err(stale(format!(
                "it was written in format version {} by berth {}, this berth reads version {VERSION}",
                saved.version, saved.berth_version
            )));
        }
        if machines.len() != saved.machines.len() {
            return Err(stale(
                "the spec no longer has the same machines; plan again".into(),
            ));
        }
        let run = self.network_run(machines)?;
        let mut plans = Vec::new();
        for (machine, print) in machines.iter().zip(&saved.machines) {
            let name = &print.name;
            if machine.name != *name {
                return Err(stale(format!(
                    "machine {name} is no longer in the spec at {}",
                    saved.spec.display()
                )));
            }
            if spec_fingerprint(machine) != print.spec {
                return Err(stale(format!(
                    "the spec of machine {name} changed since the plan was made (in {}); plan again",
                    saved.spec.display()
                )));
            }
            let (plan, _secret, observed) = self.plan_observed(machine, &run)?;
            if let Some(what) = observed.changed_since(&print.observed) {
                return Err(stale(format!(
                    "machine {name} changed since the plan was made: {what}; plan again"
                )));
            }
            if plan_fingerprint(&plan) != print.plan {
                return Err(stale(format!(
                    "the plan for machine {name} would now differ (the host's tools or the root \
                     password's secret changed); plan again"
                )));
            }
            plans.push(plan);
        }
        Ok(Plan::new(plans))
    }
}

/// Writes `saved` to `path` as pretty JSON, atomically.
pub fn write(path: &Path, saved: &SavedPlan) -> Result<(), EngineError> {
    let mut text = serde_json::to_vec_pretty(saved)
        .map_err(|e| EngineError::State(format!("serialising the plan: {e}")))?;
    text.push(b'\n');
    let path = if path.parent().is_some_and(|p| p.as_os_str().is_empty()) {
        Path::new(".").join(path)
    } else {
        path.to_owned()
    };
    crate::host::state::write_file_atomic(&path, &text)
        .map_err(|e| EngineError::io(format!("writing the plan to {}", path.display()), e))
}

/// Reads a saved plan. `Ok(None)`: the file exists but is not a berth plan
/// (not JSON, or no `"format": "berth-plan"`); an error: it cannot be read,
/// or it is a berth plan that does not parse.
pub fn read(path: &Path) -> Result<Option<SavedPlan>, EngineError> {
    let file = fs::File::open(path)
        .map_err(|e| EngineError::io(format!("opening {}", path.display()), e))?;
    let mut bytes = Vec::new();
    file.take(MAX_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| EngineError::io(format!("reading {}", path.display()), e))?;
    if bytes.len() as u64 > MAX_SIZE {
        return Ok(None);
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Ok(None);
    };
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Ok(None);
    }
    serde_json::from_value(value).map(Some).map_err(|e| {
        EngineError::State(format!(
            "{} is a berth plan but cannot be read: {e}",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_fingerprint_ignores_where_a_machine_was_declared() {
        let spec = berth_schema::load_str(
            "machines:\n  web:\n    distro: debian\n    release: bookworm\n",
            Path::new("a.yaml"),
        )
        .unwrap();
        let moved = berth_schema::load_str(
            "# a comment\n\nmachines:\n  web:\n    distro: debian\n    release: bookworm\n",
            Path::new("b.yaml"),
        )
        .unwrap();
        let changed = berth_schema::load_str(
            "machines:\n  web:\n    distro: debian\n    release: trixie\n",
            Path::new("a.yaml"),
        )
        .unwrap();
        let fp = |s: &berth_schema::Spec| spec_fingerprint(&s.machines["web"]);
        assert_eq!(fp(&spec), fp(&moved));
        assert_ne!(fp(&spec), fp(&changed));
        assert!(fp(&spec).starts_with("sha256:"));
    }

    #[test]
    fn a_file_that_is_not_a_plan_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        fs::write(&path, "machines: {}\n").unwrap();
        assert_eq!(read(&path).unwrap(), None);
        fs::write(&path, "{\"format\": \"other\"}").unwrap();
        assert_eq!(read(&path).unwrap(), None);
        fs::write(&path, "{\"format\": \"berth-plan\"}").unwrap();
        assert!(read(&path).is_err());
    }
}
