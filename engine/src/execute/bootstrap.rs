//! Creating a root: from the base cache, bootstrapping the base into it
//! first with the approved command when the cache lacks it.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_schema::{Machine, Storage};
use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};

use crate::drivers::bootstrap::{self, Bootstrapper};
use crate::drivers::cache::{self, BaseKey, Cache};
use crate::drivers::staging::{discard_staging, fresh_machine_id};
use crate::drivers::storage;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::host::state::MachineRecord;
use crate::host::{Cmd, log_tail};
use crate::model::action::Action;
use crate::report::{Event, Reporter};

impl Engine {
    /// Makes the root of `machine` for a `Bootstrap` or `Clone` action: the
    /// base comes from the cache (bootstrapped into it first, with the
    /// action's command, when missing; another machine may just have made
    /// it), is cloned into staging, gets a fresh machine-id, and is renamed
    /// into place and recorded.
    pub(super) fn create_root(
        &self,
        machine: &Machine,
        action: &Action,
        reporter: &dyn Reporter,
    ) -> Result<(), EngineError> {
        let name = &machine.name;
        let host = self.host();
        let paths = host.paths();
        let (kind, command, storage) = match action {
            Action::Bootstrap {
                bootstrapper,
                command,
                storage,
                ..
            } => (*bootstrapper, Some(command.as_slice()), *storage),
            Action::Clone {
                bootstrapper,
                storage,
                ..
            } => (*bootstrapper, None, *storage),
            other => {
                return Err(EngineError::State(format!(
                    "{} does not create a root",
                    other.name()
                )));
            }
        };
        let bootstrapper =
            bootstrap::for_kind(machine, kind).map_err(|message| EngineError::Plan {
                machine: name.clone(),
                message,
            })?;
        let staging = paths.staging_root(name);
        let target = paths.machine_root(name);
        fs::create_dir_all(&paths.machines_dir).map_err(|e| {
            EngineError::io(format!("creating {}", paths.machines_dir.display()), e)
        })?;
        // A staging dir left by an interrupted bootstrap is ours to discard
        // (an interrupted overlay creation may have left a mount in it).
        storage::release_staging(host, &staging)?;
        discard_staging(&staging)?;
        let key = BaseKey::of(machine, &*bootstrapper)?;
        let cache = Cache::new(&paths.cache_dir);
        let entry = cache.get_or_make(host, &key, |into| {
            let argv = match command {
                Some(argv) => argv.to_vec(),
                // Planned as a clone, but the base went away since: bootstrap it.
                None => bootstrapper
                    .command(host, machine, into)
                    .map_err(|message| EngineError::Plan {
                        machine: name.clone(),
                        message,
                    })?,
            };
            self.run_bootstrapper(machine, &*bootstrapper, &argv, into, reporter)
        })?;
        let created_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let record = MachineRecord {
            name: name.clone(),
            distro: machine.distro.to_string(),
            release: machine.release.clone(),
            bootstrapper: kind,
            created_at,
            launch: None,
            bootstrap_packages: machine.packages.clone(),
            base: Some(entry.id.clone()),
            added_packages: Vec::new(),
            securetty_added: Vec::new(),
            storage,
            address: None,
            resources: Default::default(),
            prevent_destroy: machine.prevent_destroy.is_some(),
            spec: self.spec_path().map(ToOwned::to_owned),
        };
        if storage == Storage::Overlay {
            // The layers first, then the record, then the mount point: an
            // interruption before the record leaves no root (the next
            // apply discards the layers); after it, no mount point (the
            // next apply plans a create again).
            storage::create_layers(host, name, &entry.root, &staging)?;
            host.state().save(&record)?;
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&target)
                .map_err(|e| EngineError::io(format!("creating {}", target.display()), e))?;
            let layers = storage::Layers::of(paths, name, &entry.id);
            storage::write_boot_units(host, name, &layers)?;
            return storage::ensure_mounted(host, &layers);
        }
        if let Err(e) = cache::clone_tree(host, &entry.root, &staging) {
            let _ = discard_staging(&staging);
            return Err(e);
        }
        if let Err(e) = fresh_machine_id(&staging) {
            let _ = discard_staging(&staging);
            return Err(e);
        }
        renameat2(
            AT_FDCWD,
            &staging,
            AT_FDCWD,
            &target,
            RenameFlags::RENAME_NOREPLACE,
        )
        .map_err(|e| {
            EngineError::io(
                format!("moving {} to {}", staging.display(), target.display()),
                e.into(),
            )
        })?;
        host.state().save(&record)
    }

    /// Runs the approved bootstrap command into `target`, its output to the
    /// machine's bootstrap log; on failure `target` is removed and the error
    /// carries the log's tail.
    fn run_bootstrapper(
        &self,
        machine: &Machine,
        bootstrapper: &dyn Bootstrapper,
        argv: &[String],
        target: &Path,
        reporter: &dyn Reporter,
    ) -> Result<(), EngineError> {
        let name = &machine.name;
        let host = self.host();
        if let Some(missing) = bootstrap::missing_requirement(host, bootstrapper) {
            return Err(EngineError::MissingTool {
                tool: missing.program.to_owned(),
                package: missing.package.to_owned(),
            });
        }
        // (On btrfs the target already exists: an empty subvolume.)
        if bootstrapper.needs_existing_target() && fs::symlink_metadata(target).is_err() {
            fs::DirBuilder::new()
                .mode(0o755)
                .create(target)
                .map_err(|e| EngineError::io(format!("creating {}", target.display()), e))?;
        }
        let log_path = host.paths().bootstrap_log(name);
        if let Some(dir) = log_path.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        }
        // A fresh log for this bootstrap.
        fs::File::create(&log_path)
            .map_err(|e| EngineError::io(format!("creating {}", log_path.display()), e))?;
        reporter.report(Event::Command {
            machine: name,
            argv,
        });
        // In its own PID namespace under `unshare --kill-child`: when berth
        // dies, unshare dies (PDEATHSIG), its child (the namespace's init)
        // gets SIGKILL, and with it every process the tool forked. PDEATHSIG
        // alone reached only the tool's first process: mmdebstrap's forked
        // workers went on writing after a SIGKILL (tests/faults.rs).
        let mut full = vec![
            "unshare".to_owned(),
            "--pid".into(),
            "--fork".into(),
            "--kill-child".into(),
            "--".into(),
        ];
        full.extend(argv.iter().cloned());
        let cmd = Cmd::new(full)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .envs(bootstrapper.env(machine))
            .append_to(log_path.clone())
            .die_with_berth();
        let out = host.run(&cmd)?;
        if !out.success() {
            let _ = discard_staging(target);
            return Err(EngineError::Command {
                what: argv.join(" "),
                status: out.status,
                output: log_tail(&log_path, 20),
            });
        }
        Ok(())
    }
}
