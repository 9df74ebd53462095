//! Executing a plan. Apply re-observes and re-plans each machine right
//! before touching it, and refuses when the fresh plan holds an action that
//! was not approved.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_schema::{Launcher, Machine};
use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};

use crate::model::action::Action;
use crate::drivers::bootstrap::{self, Bootstrapper};
use crate::drivers::cache::{self, BaseKey, Cache};
use crate::confined::Root;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::drivers::guest;
use crate::host;
use crate::drivers::launcher;
use crate::confined::mounts;
use crate::planner::MachinePlan;
use crate::confined::remove;
use crate::report::{Event, Reporter};
use crate::secret::Secret;
use crate::drivers::securetty;
use crate::drivers::settings;
use crate::drivers::shadow;
use crate::host::state::{MachineRecord, StateStore};
use crate::drivers::staging::{discard_staging, fresh_machine_id};
use crate::drivers::units;

/// How long a guest may take to boot before apply gives up.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a clean poweroff may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

impl Engine {
    /// Applies the approved plan of one machine. A plan that replaces the
    /// root runs only with `allow_replace`.
    pub fn apply_machine(
        &self,
        machine: &Machine,
        approved: &MachinePlan,
        allow_replace: bool,
        reporter: &dyn Reporter,
    ) -> Result<(), EngineError> {
        let (fresh, secret) = self.plan_with_secret(machine)?;
        check_approved(&machine.name, approved, &fresh.actions)?;
        let mut actions = fresh.actions.into_iter().peekable();
        if let Some(Action::Replace { .. }) = actions.peek() {
            if !allow_replace {
                return Err(EngineError::Refused {
                    machine: machine.name.clone(),
                    message: format!(
                        "the plan replaces the root, which destroys it; pass --replace {} to allow it",
                        machine.name
                    ),
                });
            }
            let action = actions.next().expect("peeked");
            self.step(machine, &action, reporter, || {
                self.discard_root(&machine.name)
            })?;
        }
        if let Some(Action::Bootstrap { .. } | Action::Clone { .. }) = actions.peek() {
            let action = actions.next().expect("peeked");
            self.step(machine, &action, reporter, || {
                self.bootstrap(machine, reporter)
            })?;
            // The root now exists: plan its configuration against what the
            // bootstrap really produced.
            let (after, secret) = self.plan_with_secret(machine)?;
            check_approved(&machine.name, approved, &after.actions)?;
            return self.run_actions(machine, after.actions, secret.as_ref(), reporter);
        }
        self.run_actions(machine, actions.collect(), secret.as_ref(), reporter)
    }

    /// Runs `work` for `action`, reporting its start and end.
    fn step(
        &self,
        machine: &Machine,
        action: &Action,
        reporter: &dyn Reporter,
        work: impl FnOnce() -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        reporter.report(Event::Started {
            machine: &machine.name,
            action,
        });
        work()?;
        reporter.report(Event::Finished {
            machine: &machine.name,
            action,
        });
        Ok(())
    }

    fn run_actions(
        &self,
        machine: &Machine,
        actions: Vec<Action>,
        secret: Option<&Secret>,
        reporter: &dyn Reporter,
    ) -> Result<(), EngineError> {
        let mut units_changed = false;
        for (i, action) in actions.iter().enumerate() {
            crate::interrupt::check(&machine.name, &actions[..i], &actions[i..])?;
            if matches!(action, Action::Start { .. } | Action::Stop { .. }) && units_changed {
                units_changed = false;
                self.reload_running_guest(machine);
            }
            units_changed |= matches!(
                action,
                Action::EnableUnit { .. }
                    | Action::DisableUnit { .. }
                    | Action::MaskUnit { .. }
                    | Action::UnmaskUnit { .. }
            );
            self.step(machine, action, reporter, || {
                self.execute(machine, action, secret, reporter)
            })?;
        }
        if units_changed {
            self.reload_running_guest(machine);
        }
        Ok(())
    }

    fn execute(
        &self,
        machine: &Machine,
        action: &Action,
        secret: Option<&Secret>,
        reporter: &dyn Reporter,
    ) -> Result<(), EngineError> {
        let name = &machine.name;
        let root_path = self.host.paths.machine_root(name);
        match action {
            Action::Bootstrap { .. } | Action::Clone { .. } => self.bootstrap(machine, reporter),
            Action::Replace { .. } => self.discard_root(name),
            Action::InstallPackages { packages, .. } => {
                self.change_packages(machine, packages, true)
            }
            Action::RemovePackages { packages, .. } => {
                self.change_packages(machine, packages, false)
            }
            Action::SetHostname { to, .. } => {
                Root::open(&root_path)?.write_atomic(
                    "/etc/hostname",
                    format!("{to}\n").as_bytes(),
                    0o644,
                )?;
                if let Some(leader) = self.running_leader(name)? {
                    // The running guest picks the new name up too (its UTS namespace).
                    let _ = Command::new("nsenter")
                        .arg(format!("--target={leader}"))
                        .args(["--uts", "--", "hostname", to])
                        .stdin(Stdio::null())
                        .output();
                }
                Ok(())
            }
            Action::EnableUnit { unit, .. } => {
                units::change(&root_path, "enable", unit)?;
                keep_shifted_ownership(&Root::open(&root_path)?)
            }
            Action::DisableUnit { unit, .. } => units::change(&root_path, "disable", unit),
            Action::MaskUnit { unit, .. } => {
                units::change(&root_path, "mask", unit)?;
                keep_shifted_ownership(&Root::open(&root_path)?)
            }
            Action::UnmaskUnit { unit } => units::change(&root_path, "unmask", unit),
            Action::SetRootPassword { .. } => {
                let secret = secret.ok_or_else(|| EngineError::Secret {
                    machine: name.clone(),
                    message: "no password source resolved".into(),
                })?;
                let hash = secret.to_hash().map_err(|message| EngineError::Secret {
                    machine: name.clone(),
                    message,
                })?;
                let root = Root::open(&root_path)?;
                let current = root.read_string("/etc/shadow")?.unwrap_or_default();
                let days = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs() / 86_400)
                    .unwrap_or(0);
                let updated = shadow::with_root_hash(&current, &hash, days);
                root.write_atomic("/etc/shadow", updated.as_bytes(), 0o640)?;
                Ok(())
            }
            Action::AddSecuretty { .. } => {
                // Recompute against the file as it is now, not as it was at plan time.
                let root = Root::open(&root_path)?;
                let current = root.read_string("/etc/securetty")?;
                let add = securetty::missing(current.as_deref(), &machine.securetty);
                if !add.is_empty() {
                    let text = securetty::with_entries(current.as_deref(), &add);
                    root.write_atomic("/etc/securetty", text.as_bytes(), 0o644)?;
                }
                Ok(())
            }
            Action::WriteSettings { .. } => {
                let path = self.host.paths.settings_file(name);
                crate::host::state::write_file_atomic(&path, settings::render(machine).as_bytes())
                    .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))
            }
            Action::SetAutostart { enabled, launcher } => {
                let kind = launcher::parse_kind(launcher).unwrap_or(Launcher::Nspawn);
                launcher::launcher_for(kind).set_autostart(name, *enabled)
            }
            Action::Start { launcher } => self.start(machine, launcher, reporter),
            Action::Stop { .. } => self.stop(name),
            Action::Restart { launcher } => {
                self.stop(name)?;
                self.start(machine, launcher, reporter)
            }
        }
    }

    /// Starts `machine` with launcher `kind`, records the launch, and waits
    /// for the guest to finish booting.
    fn start(
        &self,
        machine: &Machine,
        kind: &str,
        reporter: &dyn Reporter,
    ) -> Result<(), EngineError> {
        let name = &machine.name;
        let store = StateStore::new(&self.host.paths);
        let mut record = store.load(name)?.ok_or_else(|| {
            EngineError::State(format!("machine {name} has a root but no record"))
        })?;
        let kind = launcher::parse_kind(kind).unwrap_or(Launcher::Nspawn);
        let launch = launcher::launcher_for(kind).start(machine, &self.host)?;
        record.launch = Some(launch.clone());
        store.save(&record)?;
        reporter.report(Event::Note {
            machine: name,
            message: "waiting for the guest to finish booting",
        });
        launcher::wait_booted(name, &launch, &self.host, BOOT_TIMEOUT)?;
        Ok(())
    }

    /// Stops machine `name` through the launcher that started it and forgets the launch.
    pub(crate) fn stop(&self, name: &str) -> Result<(), EngineError> {
        let store = StateStore::new(&self.host.paths);
        let Some(mut record) = store.load(name)? else {
            return Ok(());
        };
        if let Some(launch) = record
            .launch
            .as_ref()
            .and_then(|launch| launcher::refresh(name, launch))
        {
            launcher::stop(name, &launch, STOP_TIMEOUT)?;
        }
        record.launch = None;
        store.save(&record)
    }

    /// The running guest's init pid, if berth's machine runs.
    fn running_leader(&self, name: &str) -> Result<Option<i32>, EngineError> {
        let record = StateStore::new(&self.host.paths).load(name)?;
        Ok(record
            .and_then(|r| r.launch)
            .and_then(|launch| launcher::refresh(name, &launch))
            .and_then(|launch| launcher::leader(&launch)))
    }

    /// Lets a running guest's systemd see unit changes made on disk.
    fn reload_running_guest(&self, machine: &Machine) {
        if let Ok(Some(leader)) = self.running_leader(&machine.name) {
            let _ = host::guest_command(leader, &["systemctl", "daemon-reload"]);
        }
    }

    /// Bootstraps `machine` into staging, then renames it into place and records it.
    fn bootstrap(&self, machine: &Machine, reporter: &dyn Reporter) -> Result<(), EngineError> {
        let name = &machine.name;
        let paths = &self.host.paths;
        let bootstrapper =
            bootstrap::for_machine(machine).map_err(|message| EngineError::Plan {
                machine: name.clone(),
                message,
            })?;
        let staging = paths.staging_root(name);
        let target = paths.machine_root(name);
        fs::create_dir_all(&paths.machines_dir).map_err(|e| {
            EngineError::io(format!("creating {}", paths.machines_dir.display()), e)
        })?;
        // A staging dir left by an interrupted bootstrap is ours to discard.
        discard_staging(&staging)?;
        // The base comes from the cache, bootstrapped into it first if missing.
        let key = BaseKey::of(machine, &*bootstrapper)?;
        let entry = Cache::new(&paths.cache_dir).get_or_make(&key, |into| {
            self.run_bootstrapper(machine, &*bootstrapper, into, reporter)
        })?;
        if let Err(e) = cache::clone_tree(&entry.root, &staging) {
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
        let created_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        StateStore::new(paths).save(&MachineRecord {
            name: name.clone(),
            distro: machine.distro.to_string(),
            release: machine.release.clone(),
            bootstrapper: bootstrapper.name().to_owned(),
            created_at,
            launch: None,
            bootstrap_packages: machine.packages.clone(),
            base: Some(entry.id),
            added_packages: Vec::new(),
        })
    }

    /// Runs the bootstrap tool into `target`, its output to the machine's
    /// bootstrap log; on failure `target` is removed and the error carries
    /// the log's tail.
    fn run_bootstrapper(
        &self,
        machine: &Machine,
        bootstrapper: &dyn Bootstrapper,
        target: &std::path::Path,
        reporter: &dyn Reporter,
    ) -> Result<(), EngineError> {
        let name = &machine.name;
        if let Some(missing) = bootstrap::missing_requirement(bootstrapper) {
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
        let log_path = self.host.paths.bootstrap_log(name);
        if let Some(dir) = log_path.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        }
        let log = fs::File::create(&log_path)
            .map_err(|e| EngineError::io(format!("creating {}", log_path.display()), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| EngineError::io("duplicating the log file", e))?;
        let argv = bootstrapper
            .command(machine, target)
            .map_err(|message| EngineError::Plan {
                machine: name.clone(),
                message,
            })?;
        reporter.report(Event::Command {
            machine: name,
            argv: &argv,
        });
        // In its own PID namespace under `unshare --kill-child`: when berth
        // dies, unshare dies (PDEATHSIG below), its child (the namespace's
        // init) gets SIGKILL, and with it every process the tool forked.
        // PDEATHSIG alone reached only the tool's first process: mmdebstrap's
        // forked workers went on writing after a SIGKILL (tests/faults.rs).
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork", "--kill-child", "--"])
            .args(&argv)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .envs(bootstrapper.env(machine));
        // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe: if berth is
        // killed, the bootstrap dies with it instead of writing on unseen.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        let status = cmd
            .status()
            .map_err(|e| EngineError::io(format!("running {}", argv[0]), e))?;
        if !status.success() {
            let _ = discard_staging(target);
            return Err(EngineError::Command {
                what: argv.join(" "),
                status: status.to_string(),
                output: host::log_tail(&log_path, 20),
            });
        }
        Ok(())
    }
}

impl Engine {
    /// Stops the machine and removes its root (for a replacement); the
    /// record goes too, and the bootstrap that follows writes a new one.
    fn discard_root(&self, name: &str) -> Result<(), EngineError> {
        self.stop(name)?;
        let root = self.host.paths.machine_root(name);
        let inside = mounts::mounts_under(&root)
            .map_err(|e| EngineError::io("reading /proc/self/mountinfo", e))?;
        if !inside.is_empty() {
            return Err(EngineError::Refused {
                machine: name.to_owned(),
                message: format!(
                    "something is mounted inside the root: {}; unmount it first",
                    inside
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        remove::remove_tree(&root)
            .map_err(|e| EngineError::State(format!("removing {}: {e}", root.display())))?;
        StateStore::new(&self.host.paths).remove(name)
    }

    /// Installs or removes packages with the machine's own package manager,
    /// inside the running guest or through systemd-nspawn on a stopped root,
    /// and records what berth added.
    fn change_packages(
        &self,
        machine: &Machine,
        packages: &[String],
        install: bool,
    ) -> Result<(), EngineError> {
        let name = &machine.name;
        let manager = bootstrap::for_machine(machine)
            .map_err(|message| EngineError::Plan {
                machine: name.clone(),
                message,
            })?
            .package_manager();
        let root_path = self.host.paths.machine_root(name);
        let env = manager.env();
        if Root::open(&root_path)?.exists(manager.guest_program())? {
            let leader = self.running_leader(name)?;
            let commands = if install {
                manager.install(packages)
            } else {
                manager.remove(packages)
            };
            for argv in commands {
                guest::run(&self.host, name, leader, &argv, &env)?;
            }
        } else {
            let commands = if install {
                manager.host_install(&root_path, machine, packages)
            } else {
                manager.host_remove(&root_path, machine, packages)
            };
            let commands = commands.ok_or_else(|| EngineError::Plan {
                machine: name.clone(),
                message: format!(
                    "the root has no {} to change its packages with",
                    manager.guest_program()
                ),
            })?;
            for argv in commands {
                guest::run_on_host(&self.host, name, &argv, &env)?;
            }
        }
        let store = StateStore::new(&self.host.paths);
        let mut record = store.load(name)?.ok_or_else(|| {
            EngineError::State(format!("machine {name} has a root but no record"))
        })?;
        if install {
            for p in packages {
                if !record.added_packages.contains(p) && !record.bootstrap_packages.contains(p) {
                    record.added_packages.push(p.clone());
                }
            }
        } else {
            record.added_packages.retain(|p| !packages.contains(p));
        }
        store.save(&record)
    }
}

/// The size of the UID/GID range systemd-nspawn gives a container.
const USERNS_RANGE: u32 = 0x10000;

/// In a root whose ownership systemd-nspawn shifted for private users (its
/// `/` is owned by the range's base, not 0), gives the links and
/// directories `systemctl --root` just created under /etc/systemd/system
/// the shifted owner, so the guest sees them owned by its own root.
fn keep_shifted_ownership(root: &Root) -> Result<(), EngineError> {
    let Some((base_uid, base_gid)) = root.owner("/")? else {
        return Ok(());
    };
    if base_uid == 0 {
        return Ok(());
    }
    let mut dirs = vec![("/etc/systemd/system".to_owned(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        for name in root.list_dir(&dir)?.unwrap_or_default() {
            let path = format!("{dir}/{name}");
            let Some((uid, gid)) = root.owner(&path)? else {
                continue;
            };
            if uid < USERNS_RANGE
                && gid < USERNS_RANGE
                && let (Some(new_uid), Some(new_gid)) =
                    (base_uid.checked_add(uid), base_gid.checked_add(gid))
            {
                root.lchown(&path, new_uid, new_gid)?;
            }
            if depth < 4 && root.kind(&path)? == Some(crate::confined::FileKind::Dir) {
                dirs.push((path, depth + 1));
            }
        }
    }
    Ok(())
}

/// Refuses a fresh plan that does something the approved plan did not show.
fn check_approved(
    machine: &str,
    approved: &MachinePlan,
    fresh: &[Action],
) -> Result<(), EngineError> {
    let unapproved: Vec<String> = fresh
        .iter()
        .filter(|a| !approved.actions.iter().any(|b| b.key() == a.key()))
        .map(Action::describe)
        .collect();
    if unapproved.is_empty() {
        Ok(())
    } else {
        Err(EngineError::Stale {
            machine: machine.to_owned(),
            message: format!(
                "the machine changed since the plan was shown; now it also needs: {} (run plan again)",
                unapproved.join("; ")
            ),
        })
    }
}
