//! The planner, the second stage: `plan_machine(&Machine, &Observed) ->
//! MachinePlan`, a pure function of the spec and what was observed. It
//! touches no file, PATH, environment or clock: everything it needs about
//! the host (the resolved launcher and bootstrapper, the base cache, missing
//! tools, paths) is in [`Observed`]. Unit-tested on hand-built states.

use berth_schema::{DesiredState, Launcher, Machine, NetworkMode, RootPassword, Storage};

mod files;
mod network;

use crate::drivers::bootstrap;
use crate::drivers::securetty;
use crate::drivers::settings;
use crate::drivers::units::{self, UnitState};
use crate::drivers::users::AccountInputs;
use crate::error::EngineError;
use crate::host::state::MachineRecord;
use crate::inputs::Inputs;
use crate::model::action::Action;
use crate::model::observed::{BaseObservation, Observed, RootFacts, RootPresence, RunState};
use crate::model::warning::{self, Warning};
use crate::secret::Secret;

pub use crate::model::plan::{ChangeKind, MachinePlan, Plan};

mod resources;
mod snapshot;
mod users;

/// Plans one machine. `secret` is the resolved root password when the spec
/// manages it. A machine with `files:` needs its resolved inputs, and its
/// users' passwords and credentials are compared only with theirs: see
/// [`plan_machine_with`].
pub fn plan_machine(
    machine: &Machine,
    observed: &Observed,
    secret: Option<&Secret>,
) -> Result<MachinePlan, EngineError> {
    plan_machine_with(
        machine,
        observed,
        secret,
        &Inputs::default(),
        &AccountInputs::default(),
    )
}

/// Plans one machine with its resolved `inputs` (what each `files:` entry
/// should hold; [`crate::inputs::resolve`]) and `accounts`, the secrets its
/// users and credentials need ([`crate::drivers::users::resolve_inputs`]).
pub fn plan_machine_with(
    machine: &Machine,
    observed: &Observed,
    secret: Option<&Secret>,
    inputs: &Inputs,
    accounts: &AccountInputs,
) -> Result<MachinePlan, EngineError> {
    let name = &machine.name;
    let err = |message: String| EngineError::Plan {
        machine: name.clone(),
        message,
    };
    let launcher = observed.launcher.clone().map_err(&err)?;
    let base = observed.base.as_ref().map_err(|e| err(e.clone()))?;
    let bootstrapper = bootstrap::for_kind(machine, base.bootstrapper).map_err(&err)?;
    let mut warnings = Vec::new();
    if !machine.securetty.is_empty() && machine.distro == berth_schema::Distro::Debian {
        warnings.push(Warning::SecurettyIgnored);
    } else if let Some(warning) = login_pty_warning(machine, launcher) {
        warnings.push(warning);
    }

    let mut actions = Vec::new();
    if let Some(moved) = &observed.moved_from {
        actions.push(Action::Rename {
            from: moved.name.clone(),
            to: name.clone(),
            stop: moved.running,
        });
    }
    let target = describe_root(
        machine.distro.as_str(),
        machine.release.as_deref(),
        bootstrapper.name(),
    );
    let change = match (&observed.root, &observed.facts) {
        (RootPresence::Invalid(why), _) => return Err(err(why.clone())),
        (RootPresence::Directory, _) if observed.record.is_none() => {
            return Err(err(format!(
                "a root exists at {}/{name} but berth does not manage it; \
                 move it away, or choose another machine name",
                observed.machines_dir.display()
            )));
        }
        (RootPresence::Directory, Some(facts)) => match &observed.record {
            Some(record) if needs_replacement(machine, record) => {
                if let Some(at) = &machine.prevent_destroy {
                    return Err(EngineError::PreventDestroy {
                        machine: name.clone(),
                        at: at.to_string(),
                    });
                }
                actions.push(Action::Replace {
                    from: with_storage(
                        describe_root(
                            &record.distro,
                            record.release.as_deref(),
                            record.bootstrapper.as_str(),
                        ),
                        record.storage,
                    ),
                    to: with_storage(target, machine.storage),
                });
                plan_bootstrap(machine, base, &mut actions).map_err(&err)?;
                configure_fresh(machine, secret, &mut actions);
                ChangeKind::Replace
            }
            record => {
                let packages = PackageChanges::new(machine, record.as_ref(), facts, &mut warnings);
                let packages = package_actions(packages, &*bootstrapper, observed);
                configure_existing(
                    machine,
                    record.as_ref(),
                    facts,
                    secret,
                    packages,
                    &mut actions,
                )
                .map_err(&err)?;
                ChangeKind::Update
            }
        },
        (RootPresence::Absent, _) | (RootPresence::Directory, None) => {
            plan_bootstrap(machine, base, &mut actions).map_err(&err)?;
            configure_fresh(machine, secret, &mut actions);
            ChangeKind::Create
        }
    };
    // Users and their keys: after packages, before files (which may be
    // owned by a user created here) and unit changes.
    users::plan_accounts(machine, observed, accounts, &mut actions).map_err(&err)?;
    files::plan(machine, observed, inputs, change, &mut actions).map_err(&err)?;

    let mode = network::effective_mode(&machine.network, launcher, observed.host_dhcp);
    if mode == NetworkMode::Host {
        let units: Vec<String> = [warning::NETWORKD, warning::RESOLVED]
            .into_iter()
            .filter(|u| machine.units.enable.iter().any(|e| e == u))
            .map(str::to_owned)
            .collect();
        if !units.is_empty() {
            warnings.push(Warning::GuestNetworkOnHost { units });
        }
    }
    let settings_path = observed.settings_path.display().to_string();
    plan_settings(
        machine,
        observed,
        launcher,
        mode,
        settings_path,
        &mut actions,
    )
    .map_err(&err)?;
    plan_run_state(
        machine,
        observed,
        launcher,
        mode,
        &mut actions,
        &mut warnings,
    );
    network::plan(machine, observed, mode, change, &mut actions, &mut warnings).map_err(&err)?;
    resources::plan(machine, observed, launcher, &mut actions, &mut warnings).map_err(&err)?;
    users::plan_credentials(machine, observed, launcher, accounts, &mut actions).map_err(&err)?;
    snapshot::plan_before_apply(machine, change, &mut actions);
    let change = if actions.is_empty() {
        ChangeKind::None
    } else {
        change
    };
    Ok(MachinePlan {
        name: name.clone(),
        reason: None,
        change,
        launcher,
        network: Some(network::describe_mode(&machine.network, mode)),
        actions,
        warnings,
        observed: observed.fingerprint(),
    })
}

/// The pty `machinectl login` gets in a machine systemd-nspawn runs: nspawn
/// gives the container's console the first one, `pts/0`.
pub const MACHINECTL_LOGIN_PTY: &str = "pts/1";

/// A warning when the spec's securetty entries cannot let root in through
/// `machinectl login` (machines registered with machined: the machinectl and
/// nspawn-unit launchers): the login lands on `pts/1` or later, never on
/// the console's `pts/0` that the article's recipe listed.
fn login_pty_warning(machine: &Machine, launcher: Launcher) -> Option<Warning> {
    if machine.securetty.is_empty() || launcher == Launcher::Nspawn {
        return None;
    }
    let reaches_login = machine.securetty.iter().any(|entry| {
        entry
            .strip_prefix("pts/")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n >= 1)
    });
    (!reaches_login).then(|| Warning::SecurettyMissesLoginPty {
        entries: machine.securetty.clone(),
        pty: MACHINECTL_LOGIN_PTY.to_owned(),
        launcher,
    })
}

/// The `.nspawn` file and boot integration.
fn plan_settings(
    machine: &Machine,
    observed: &Observed,
    launcher: Launcher,
    mode: NetworkMode,
    path: String,
    actions: &mut Vec<Action>,
) -> Result<(), String> {
    let wanted = settings::render(machine, mode);
    if observed.settings.as_deref() != Some(wanted.as_str()) {
        actions.push(Action::WriteSettings {
            path,
            before: observed.settings.clone(),
            after: wanted,
        });
    }
    if let Some(autostart) = machine.autostart {
        if launcher == Launcher::Nspawn {
            if autostart {
                return Err(
                    "autostart: true needs boot integration, which the nspawn launcher has not; \
                     use launcher: machinectl or nspawn-unit"
                        .to_owned(),
                );
            }
        } else if observed.autostart != Some(autostart) {
            actions.push(Action::SetAutostart {
                enabled: autostart,
                launcher,
            });
        }
    }
    Ok(())
}

/// Start, stop or restart, always through the launcher that started the
/// machine; a machine started outside berth is reported, not fought.
fn plan_run_state(
    machine: &Machine,
    observed: &Observed,
    launcher: Launcher,
    mode: NetworkMode,
    actions: &mut Vec<Action>,
    warnings: &mut Vec<Warning>,
) {
    let wanted = launcher;
    let replacing = actions.iter().any(|a| matches!(a, Action::Replace { .. }));
    match (&observed.run, machine.state) {
        (RunState::Foreign { how, .. }, state) => {
            warnings.push(Warning::Foreign {
                how: how.clone(),
                wants_stopped: state == DesiredState::Stopped,
            });
        }
        (RunState::Stopped, DesiredState::Running) => {
            actions.push(Action::Start { launcher: wanted })
        }
        (RunState::Stopped, DesiredState::Stopped) => {}
        (
            RunState::Running {
                launcher: running, ..
            },
            DesiredState::Stopped,
        ) => {
            // A replacement stops the machine itself.
            if !replacing {
                actions.push(Action::Stop { launcher: *running });
            }
        }
        (
            RunState::Running {
                launcher: running,
                settings: started_with,
                ..
            },
            DesiredState::Running,
        ) => {
            if replacing {
                actions.push(Action::Start { launcher: wanted });
            } else if *running != wanted {
                actions.push(Action::Stop { launcher: *running });
                actions.push(Action::Start { launcher: wanted });
            } else if started_with.as_deref() != Some(settings::fingerprint(machine, mode).as_str())
            {
                actions.push(Action::Restart {
                    launcher: wanted,
                    reasons: Vec::new(),
                });
            }
        }
    }
}

/// `debian bookworm (debootstrap)`.
fn describe_root(distro: &str, release: Option<&str>, bootstrapper: &str) -> String {
    match release {
        Some(release) => format!("{distro} {release} ({bootstrapper})"),
        None => format!("{distro} ({bootstrapper})"),
    }
}

/// `ROOT` with `, storage: overlay` for overlay roots.
fn with_storage(root: String, storage: Storage) -> String {
    if storage.is_copy() {
        root
    } else {
        format!("{root}, storage: {storage}")
    }
}

/// Whether the root must be rebuilt: another distro, release or storage,
/// or another bootstrapper the spec names explicitly (a changed host
/// default never replaces a root).
fn needs_replacement(machine: &Machine, record: &MachineRecord) -> bool {
    record.storage != machine.storage
        || record.distro != machine.distro.as_str()
        || record.release != machine.release
        || machine
            .bootstrapper
            .is_some_and(|b| b != record.bootstrapper)
}

/// The root's creation: a clone of the cached base, or a bootstrap (after
/// checking that the tool is installed).
fn plan_bootstrap(
    machine: &Machine,
    base: &BaseObservation,
    actions: &mut Vec<Action>,
) -> Result<(), String> {
    if let Some(id) = &base.cached {
        actions.push(Action::Clone {
            distro: machine.distro.to_string(),
            release: machine.release.clone(),
            bootstrapper: base.bootstrapper,
            base: id.clone(),
            storage: machine.storage,
        });
        return Ok(());
    }
    // Only a bootstrap that really runs needs the tool.
    if let Some((program, package)) = &base.missing_tool {
        return Err(format!(
            "bootstrapper {}: {program} is not installed (install the Debian package `{package}`)",
            base.bootstrapper
        ));
    }
    actions.push(Action::Bootstrap {
        distro: machine.distro.to_string(),
        release: machine.release.clone(),
        bootstrapper: base.bootstrapper,
        packages: machine.packages.clone(),
        command: base.command.clone()?,
        storage: machine.storage,
    });
    Ok(())
}

/// The install and remove actions for package drift, with the commands
/// that make it: the guest's own package manager where the root has one,
/// else the host's, working on the root from outside.
fn package_actions(
    changes: PackageChanges,
    bootstrapper: &dyn bootstrap::Bootstrapper,
    observed: &Observed,
) -> Vec<Action> {
    let manager = bootstrapper.package_manager();
    let in_guest = observed.guest_package_manager;
    let env: Vec<(String, String)> = manager
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let mut actions = Vec::new();
    for (install, packages) in [(true, changes.install), (false, changes.remove)] {
        if packages.is_empty() {
            continue;
        }
        // Host commands need the host (dnf's flavour, the root's path):
        // execute makes them; the guest's are known now.
        let commands = match (in_guest, install) {
            (true, true) => manager.install(&packages),
            (true, false) => manager.remove(&packages),
            (false, _) => Vec::new(),
        };
        let via = manager.name().to_owned();
        let (commands, env) = (commands, env.clone());
        actions.push(if install {
            Action::InstallPackages {
                packages,
                via,
                commands,
                env,
                in_guest,
            }
        } else {
            Action::RemovePackages {
                packages,
                via,
                commands,
                env,
                in_guest,
            }
        });
    }
    actions
}

/// Package drift of an existing root.
struct PackageChanges {
    install: Vec<String>,
    remove: Vec<String>,
}

impl PackageChanges {
    /// Spec packages not installed are installed; packages berth added that
    /// left the spec are removed; nothing else is ever removed.
    fn new(
        machine: &Machine,
        record: Option<&MachineRecord>,
        facts: &RootFacts,
        warnings: &mut Vec<Warning>,
    ) -> Self {
        let Some(installed) = &facts.packages else {
            return PackageChanges {
                install: Vec::new(),
                remove: Vec::new(),
            };
        };
        let install = machine
            .packages
            .iter()
            .filter(|p| !installed.contains(*p))
            .cloned()
            .collect();
        let (added, base): (&[String], &[String]) = match record {
            Some(r) => (&r.added_packages, &r.bootstrap_packages),
            None => (&[], &[]),
        };
        let remove = added
            .iter()
            .filter(|p| !machine.packages.contains(p) && installed.contains(*p))
            .cloned()
            .collect();
        for p in base {
            if !machine.packages.contains(p) && installed.contains(p) {
                warnings.push(Warning::BasePackageKept { package: p.clone() });
            }
        }
        PackageChanges { install, remove }
    }
}

fn password_source(source: &RootPassword) -> &'static str {
    match source {
        RootPassword::Hash(_) => "hash",
        RootPassword::Env(_) => "env",
        RootPassword::File(_) => "file",
    }
}

/// Everything the spec configures, for a root that does not exist yet.
fn configure_fresh(machine: &Machine, secret: Option<&Secret>, actions: &mut Vec<Action>) {
    actions.push(Action::SetHostname {
        from: None,
        to: machine.hostname.clone(),
    });
    for unit in &machine.units.enable {
        actions.push(Action::EnableUnit {
            unit: unit.clone(),
            from: None,
        });
    }
    for unit in &machine.units.disable {
        actions.push(Action::DisableUnit {
            unit: unit.clone(),
            from: None,
        });
    }
    for unit in &machine.units.mask {
        actions.push(Action::MaskUnit {
            unit: unit.clone(),
            from: None,
        });
    }
    if let (Some(source), Some(_)) = (&machine.root_password, secret) {
        actions.push(Action::SetRootPassword {
            source: password_source(source).to_owned(),
            sensitive: true,
        });
    }
    if !machine.securetty.is_empty() {
        let add: Vec<&str> = machine.securetty.iter().map(String::as_str).collect();
        actions.push(Action::AddSecuretty {
            entries: machine.securetty.clone(),
            before: None,
            after: securetty::with_entries(None, &add),
        });
    }
}

/// The differences between the spec and an existing root.
fn configure_existing(
    machine: &Machine,
    record: Option<&MachineRecord>,
    facts: &RootFacts,
    secret: Option<&Secret>,
    packages: Vec<Action>,
    actions: &mut Vec<Action>,
) -> Result<(), String> {
    // Packages first: a unit the spec enables may come with a new package.
    let installing = packages
        .iter()
        .any(|a| matches!(a, Action::InstallPackages { .. }));
    actions.extend(packages);
    if facts.hostname.as_deref() != Some(machine.hostname.as_str()) {
        actions.push(Action::SetHostname {
            from: facts.hostname.clone(),
            to: machine.hostname.clone(),
        });
    }
    let state_of = |unit: &str| {
        facts
            .units
            .get(unit)
            .cloned()
            .unwrap_or(UnitState::NotFound)
    };
    for unit in &machine.units.enable {
        let state = state_of(unit);
        match &state {
            // It may come with a package being installed; apply checks again.
            // Or with a unit file the spec's files: write first.
            UnitState::NotFound
                if installing || crate::drivers::files::provides_unit(machine, unit) =>
            {
                actions.push(Action::EnableUnit {
                    unit: unit.clone(),
                    from: None,
                })
            }
            UnitState::NotFound => {
                return Err(format!(
                    "units.enable: unit {unit} does not exist in the machine's root; {}",
                    units::package_hint(unit)
                ));
            }
            UnitState::Enabled => {}
            // static/indirect/generated/alias units cannot be enabled further.
            UnitState::Other(_) => {}
            UnitState::Masked => {
                actions.push(Action::UnmaskUnit { unit: unit.clone() });
                actions.push(Action::EnableUnit {
                    unit: unit.clone(),
                    from: Some(state.as_str().to_owned()),
                });
            }
            UnitState::Disabled => actions.push(Action::EnableUnit {
                unit: unit.clone(),
                from: Some(state.as_str().to_owned()),
            }),
        }
    }
    for unit in &machine.units.disable {
        let state = state_of(unit);
        match &state {
            // Nothing to disable, or nothing enable/disable can change.
            UnitState::NotFound | UnitState::Disabled | UnitState::Other(_) => {}
            // Masked is stronger than disabled: it never starts either.
            UnitState::Masked => {}
            UnitState::Enabled => actions.push(Action::DisableUnit {
                unit: unit.clone(),
                from: Some(state.as_str().to_owned()),
            }),
        }
    }
    for unit in &machine.units.mask {
        let state = state_of(unit);
        if state != UnitState::Masked {
            actions.push(Action::MaskUnit {
                unit: unit.clone(),
                from: Some(state.as_str().to_owned()),
            });
        }
    }
    if let (Some(source), Some(secret)) = (&machine.root_password, secret) {
        let satisfied = facts
            .root_hash
            .as_deref()
            .is_some_and(|stored| secret.satisfied_by(stored));
        if !satisfied {
            actions.push(Action::SetRootPassword {
                source: password_source(source).to_owned(),
                sensitive: true,
            });
        }
    }
    let add = securetty::missing(facts.securetty.as_deref(), &machine.securetty);
    if !add.is_empty() {
        actions.push(Action::AddSecuretty {
            entries: add.iter().map(|s| (*s).to_owned()).collect(),
            before: facts.securetty.clone(),
            after: securetty::with_entries(facts.securetty.as_deref(), &add),
        });
    }
    // Entries berth added that left the spec; never one it did not add.
    if let (Some(record), Some(current)) = (record, facts.securetty.as_deref()) {
        let present = securetty::entries(current);
        let remove: Vec<&str> = record
            .securetty_added
            .iter()
            .map(String::as_str)
            .filter(|e| !machine.securetty.iter().any(|s| s == e) && present.contains(e))
            .collect();
        if !remove.is_empty() {
            actions.push(Action::RemoveSecuretty {
                entries: remove.iter().map(|s| (*s).to_owned()).collect(),
                before: current.to_owned(),
                after: securetty::without_entries(current, &remove),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use berth_schema::{Distro, Launcher};
    use indexmap::IndexMap;

    use super::*;
    use crate::host::HostFacts;
    use crate::host::paths::Paths;
    use crate::host::state::{LaunchRecord, MachineRecord};

    fn machine() -> Machine {
        crate::testing::web()
    }

    use crate::testing::HASH;

    fn facts() -> HostFacts {
        HostFacts {
            paths: Paths {
                machines_dir: PathBuf::from("/m"),
                state_dir: PathBuf::from("/s"),
                nspawn_dir: PathBuf::from("/n"),
                cache_dir: PathBuf::from("/nonexistent/berth-cache"),
            },
            booted_with_systemd: false,
            host_dhcp: false,
            check_tools: false,
        }
    }

    /// The bootstrap command the observation of `machine()` would carry.
    fn bootstrap_command() -> Vec<String> {
        [
            "debootstrap",
            "--variant=minbase",
            "--include=systemd,dbus",
            "--components=main",
            "bookworm",
            "/nonexistent/berth-cache/bases/.KEY.staging/root",
        ]
        .map(String::from)
        .to_vec()
    }

    fn record() -> MachineRecord {
        MachineRecord {
            name: "web".into(),
            distro: "debian".into(),
            release: Some("bookworm".into()),
            bootstrapper: berth_schema::BootstrapperKind::Debootstrap,
            created_at: 0,
            launch: None,
            bootstrap_packages: vec!["systemd".into(), "dbus".into()],
            base: None,
            added_packages: Vec::new(),
            securetty_added: Vec::new(),
            storage: Storage::Copy,
            address: None,
            resources: Default::default(),
            prevent_destroy: false,
            spec: None,
        }
    }

    pub(crate) fn converged() -> Observed {
        let mut units = IndexMap::new();
        units.insert("systemd-networkd.service".into(), UnitState::Enabled);
        units.insert("fstrim.timer".into(), UnitState::Disabled);
        units.insert("apt-daily.timer".into(), UnitState::Masked);
        Observed {
            name: "web".into(),
            root: RootPresence::Directory,
            record: Some(MachineRecord {
                launch: Some(LaunchRecord {
                    launcher: Launcher::Nspawn,
                    pid: 1,
                    start_time: 1,
                    settings: Some(settings::fingerprint(&machine(), NetworkMode::Host)),
                }),
                ..record()
            }),
            facts: Some(RootFacts {
                hostname: Some("web".into()),
                units,
                root_hash: Some(HASH.into()),
                securetty: Some("console\npts/0\n".into()),
                packages: Some(["systemd", "dbus"].map(String::from).into()),
            }),
            run: RunState::Running {
                launcher: Launcher::Nspawn,
                pid: 1,
                settings: Some(settings::fingerprint(&machine(), NetworkMode::Host)),
            },
            settings: Some(settings::render(&machine(), NetworkMode::Host)),
            autostart: None,
            launcher: Ok(Launcher::Nspawn),
            base: Ok(BaseObservation {
                bootstrapper: berth_schema::BootstrapperKind::Debootstrap,
                key: "KEY".into(),
                cached: None,
                command: Ok(bootstrap_command()),
                missing_tool: None,
            }),
            guest_package_manager: true,
            host_dhcp: false,
            settings_path: PathBuf::from("/n/web.nspawn"),
            machines_dir: PathBuf::from("/m"),
            network: Default::default(),
            resources: Default::default(),
            files: Default::default(),
            users: Default::default(),
            moved_from: None,
        }
    }

    pub(crate) fn secret() -> Secret {
        Secret::Hash(HASH.into())
    }

    #[test]
    fn guest_networkd_under_host_networking_is_a_warning_and_veth_is_the_unit_default() {
        let plan = plan_machine(&machine(), &converged(), Some(&secret())).expect("plan");
        assert_eq!(plan.network.as_deref(), Some("host"));
        let warning = plan
            .warnings
            .iter()
            .find(|w| matches!(w, Warning::GuestNetworkOnHost { .. }))
            .expect("a warning about the guest's networkd");
        let text = warning.to_string();
        assert!(text.contains("reconfigure the host's interfaces"), "{text}");

        // Under machinectl the default is a veth link, as systemd-nspawn@ has.
        let mut observed = converged();
        observed.launcher = Ok(Launcher::Machinectl);
        observed.run = RunState::Stopped;
        let plan = plan_machine(&machine(), &observed, Some(&secret())).expect("plan");
        assert_eq!(plan.network.as_deref(), Some("veth"));
        assert!(
            !plan
                .warnings
                .iter()
                .any(|w| matches!(w, Warning::GuestNetworkOnHost { .. })),
            "{:?}",
            plan.warnings
        );
        let Some(Action::WriteSettings { after, .. }) = plan
            .actions
            .iter()
            .find(|a| matches!(a, Action::WriteSettings { .. }))
        else {
            panic!("the settings change to veth: {:?}", plan.actions);
        };
        assert!(after.contains("VirtualEthernet=yes"), "{after}");
        assert!(after.contains("ResolvConf=auto"), "{after}");
    }

    fn names(plan: &MachinePlan) -> Vec<&'static str> {
        plan.actions.iter().map(Action::name).collect()
    }

    #[test]
    fn absent_root_is_bootstrapped_configured_and_started() {
        let observed = Observed {
            root: RootPresence::Absent,
            record: None,
            facts: None,
            run: RunState::Stopped,
            ..converged()
        };
        let plan = plan_machine(&machine(), &observed, Some(&secret())).unwrap();
        assert_eq!(plan.change, ChangeKind::Create);
        assert_eq!(
            names(&plan),
            [
                "bootstrap",
                "set-hostname",
                "enable-unit",
                "disable-unit",
                "mask-unit",
                "set-root-password",
                "add-securetty",
                "start"
            ]
        );
        let Action::Bootstrap { command, .. } = &plan.actions[0] else {
            panic!("not a bootstrap")
        };
        assert_eq!(command, &bootstrap_command());
    }

    #[test]
    fn converged_machine_plans_nothing() {
        let plan = plan_machine(&machine(), &converged(), Some(&secret())).unwrap();
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        assert_eq!(plan.change, ChangeKind::None);
    }

    #[test]
    fn drift_in_each_managed_thing_is_planned() {
        let mut observed = converged();
        let facts = observed.facts.as_mut().unwrap();
        facts.hostname = Some("edited".into());
        facts
            .units
            .insert("systemd-networkd.service".into(), UnitState::Masked);
        facts
            .units
            .insert("fstrim.timer".into(), UnitState::Enabled);
        facts
            .units
            .insert("apt-daily.timer".into(), UnitState::Enabled);
        facts.root_hash = Some("$6$other$x".into());
        facts.securetty = Some("console\n".into());
        observed.run = RunState::Stopped;
        let plan = plan_machine(&machine(), &observed, Some(&secret())).unwrap();
        assert_eq!(
            names(&plan),
            [
                "set-hostname",
                "unmask-unit",
                "enable-unit",
                "disable-unit",
                "mask-unit",
                "set-root-password",
                "add-securetty",
                "start"
            ]
        );
        let (path, old, new) = plan.actions[6].file_change().unwrap();
        assert_eq!(
            (path.as_str(), old.as_str(), new.as_str()),
            ("/etc/securetty", "console\n", "console\npts/0\n")
        );
    }

    #[test]
    fn missing_unit_to_enable_is_a_plan_error_naming_it_and_its_package() {
        let mut m = machine();
        m.units.enable.push("systemd-resolved.service".into());
        let err = plan_machine(&m, &converged(), Some(&secret())).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("systemd-resolved.service"), "{text}");
        assert!(text.contains("`systemd-resolved`"), "{text}");
    }

    #[test]
    fn missing_unit_to_disable_is_already_satisfied() {
        let mut m = machine();
        m.units.disable.push("nosuch.service".into());
        let plan = plan_machine(&m, &converged(), Some(&secret())).unwrap();
        assert!(plan.actions.is_empty());
    }

    #[test]
    fn stopped_state_stops_through_the_recorded_launcher() {
        let mut m = machine();
        m.state = DesiredState::Stopped;
        let plan = plan_machine(&m, &converged(), Some(&secret())).unwrap();
        assert_eq!(
            plan.actions,
            [Action::Stop {
                launcher: Launcher::Nspawn
            }]
        );
    }

    #[test]
    fn unmanaged_root_and_symlinked_root_are_refused() {
        let unmanaged = Observed {
            record: None,
            ..converged()
        };
        let err = plan_machine(&machine(), &unmanaged, Some(&secret())).unwrap_err();
        assert!(err.to_string().contains("does not manage"), "{err}");
        let link = Observed {
            root: RootPresence::Invalid("/m/web is a symlink".into()),
            ..converged()
        };
        assert!(plan_machine(&machine(), &link, Some(&secret())).is_err());
    }

    #[test]
    fn plain_secret_drift_is_verification_not_comparison() {
        let mut m = machine();
        m.root_password = Some(RootPassword::Env("PW".into()));
        let plain = Secret::Plain("r00tpw".into());
        let mut observed = converged();
        observed.facts.as_mut().unwrap().root_hash = Some(plain.to_hash().unwrap());
        let plan = plan_machine(&m, &observed, Some(&plain)).unwrap();
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        let other = Secret::Plain("changed".into());
        let plan = plan_machine(&m, &observed, Some(&other)).unwrap();
        assert_eq!(names(&plan), ["set-root-password"]);
        let json = serde_json::to_string(&plan).unwrap();
        assert!(!json.contains("changed") && !json.contains("$6$"), "{json}");
    }

    #[test]
    fn other_distros_and_launchers_are_refused_clearly_for_now() {
        let mut m = machine();
        m.distro = Distro::Arch;
        let err = plan_machine(&m, &converged(), None).unwrap_err();
        assert!(err.to_string().contains("arch"), "{err}");
        let mut m = machine();
        m.launcher = Launcher::Machinectl;
        let observed = Observed {
            launcher: crate::drivers::launcher::resolve(m.launcher, &facts()),
            ..converged()
        };
        let err = plan_machine(&m, &observed, None).unwrap_err();
        assert!(err.to_string().contains("machinectl"), "{err}");
    }

    #[test]
    fn a_cached_base_is_cloned_and_a_missing_tool_fails_only_a_real_bootstrap() {
        let absent = Observed {
            root: RootPresence::Absent,
            record: None,
            facts: None,
            run: RunState::Stopped,
            ..converged()
        };
        let mut cached = absent.clone();
        if let Ok(base) = &mut cached.base {
            base.cached = Some("0123".into());
            base.missing_tool = Some(("debootstrap".into(), "debootstrap".into()));
        }
        let plan = plan_machine(&machine(), &cached, Some(&secret())).unwrap();
        assert_eq!(
            plan.actions[0],
            Action::Clone {
                distro: "debian".into(),
                release: Some("bookworm".into()),
                bootstrapper: berth_schema::BootstrapperKind::Debootstrap,
                base: "0123".into(),
                storage: Storage::Copy,
            }
        );
        let mut missing = absent;
        if let Ok(base) = &mut missing.base {
            base.missing_tool = Some(("debootstrap".into(), "debootstrap".into()));
        }
        let err = plan_machine(&machine(), &missing, Some(&secret())).unwrap_err();
        assert!(
            err.to_string()
                .contains("install the Debian package `debootstrap`"),
            "{err}"
        );
    }

    #[test]
    fn a_release_the_tools_cannot_make_is_a_plan_error() {
        let absent = Observed {
            root: RootPresence::Absent,
            record: None,
            facts: None,
            run: RunState::Stopped,
            ..converged()
        };
        let mut observed = absent;
        let why = "debootstrap has no script for forky (and no `sid` script to use instead): \
                   install a newer debootstrap, or set `bootstrapper: mmdebstrap`";
        if let Ok(base) = &mut observed.base {
            base.command = Err(why.into());
        }
        let mut m = machine();
        m.release = Some("forky".into());
        let err = plan_machine(&m, &observed, Some(&secret())).unwrap_err();
        assert!(err.to_string().contains(why), "{err}");
    }

    #[test]
    fn securetty_entries_berth_added_that_left_the_spec_are_removed_with_a_diff() {
        let mut m = machine();
        m.securetty = vec!["pts/1".into()];
        let mut observed = converged();
        if let Some(record) = &mut observed.record {
            // berth added pts/0 and pts/1; console was there before.
            record.securetty_added = vec!["pts/0".into(), "pts/1".into()];
        }
        observed.facts.as_mut().unwrap().securetty = Some("console\npts/0\npts/1\n".into());
        let plan = plan_machine(&m, &observed, Some(&secret())).unwrap();
        let removal: Vec<&Action> = plan
            .actions
            .iter()
            .filter(|a| a.name() == "remove-securetty")
            .collect();
        assert_eq!(removal.len(), 1, "{:?}", plan.actions);
        assert_eq!(removal[0].describe(), "remove pts/0 from /etc/securetty");
        assert_eq!(removal[0].effect(), crate::model::action::Effect::Remove);
        let (path, old, new) = removal[0].file_change().unwrap();
        assert_eq!(
            (path.as_str(), old.as_str(), new.as_str()),
            (
                "/etc/securetty",
                "console\npts/0\npts/1\n",
                "console\npts/1\n"
            )
        );
        // An entry berth did not add is kept, whatever the spec says.
        if let Some(record) = &mut observed.record {
            record.securetty_added = vec!["pts/1".into()];
        }
        let plan = plan_machine(&m, &observed, Some(&secret())).unwrap();
        assert!(
            !plan.actions.iter().any(|a| a.name() == "remove-securetty"),
            "{:?}",
            plan.actions
        );
    }

    #[test]
    fn securetty_without_the_machinectl_login_pty_is_a_typed_warning() {
        // Any distro whose PAM may check /etc/securetty (Debian's does not).
        let mut m = machine();
        m.distro = Distro::Ubuntu;
        m.launcher = Launcher::Machinectl;
        let observed = Observed {
            launcher: Ok(Launcher::Machinectl),
            ..converged()
        };
        // The article's `securetty: [pts/0]`: the console's pty, not the login's.
        let plan = plan_machine(&m, &observed, Some(&secret())).unwrap();
        let warning = Warning::SecurettyMissesLoginPty {
            entries: vec!["pts/0".into()],
            pty: "pts/1".into(),
            launcher: Launcher::Machinectl,
        };
        assert!(plan.warnings.contains(&warning), "{:?}", plan.warnings);
        assert!(warning.to_string().contains("add pts/1"), "{warning}");
        // Listing pts/1 silences it; so does the nspawn launcher (no machined).
        m.securetty = vec!["pts/0".into(), "pts/1".into()];
        let plan = plan_machine(&m, &observed, Some(&secret())).unwrap();
        assert!(
            !plan
                .warnings
                .iter()
                .any(|w| matches!(w, Warning::SecurettyMissesLoginPty { .. })),
            "{:?}",
            plan.warnings
        );
        let mut nspawn = machine();
        nspawn.distro = Distro::Ubuntu;
        let plan = plan_machine(&nspawn, &converged(), Some(&secret())).unwrap();
        assert!(
            !plan
                .warnings
                .iter()
                .any(|w| matches!(w, Warning::SecurettyMissesLoginPty { .. })),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn another_release_replaces_the_root_and_starts_it_again() {
        let mut m = machine();
        m.release = Some("trixie".into());
        let plan = plan_machine(&m, &converged(), Some(&secret())).unwrap();
        assert_eq!(plan.change, ChangeKind::Replace);
        assert_eq!(
            plan.actions[0],
            Action::Replace {
                from: "debian bookworm (debootstrap)".into(),
                to: "debian trixie (debootstrap)".into(),
            }
        );
        assert_eq!(plan.actions[1].name(), "bootstrap");
        assert_eq!(plan.actions.last().map(Action::name), Some("start"));
    }

    #[test]
    fn package_drift_carries_the_guest_commands_or_defers_to_the_host() {
        let mut m = machine();
        m.packages.push("less".into());
        let mut observed = converged();
        if let Some(record) = &mut observed.record {
            record.added_packages = vec!["curl".into()];
        }
        if let Some(facts) = &mut observed.facts {
            facts.packages = Some(["systemd", "dbus", "curl"].map(String::from).into());
        }
        let plan = plan_machine(&m, &observed, Some(&secret())).unwrap();
        assert_eq!(names(&plan), ["install-packages", "remove-packages"]);
        let Action::InstallPackages {
            packages,
            commands,
            in_guest,
            env,
            ..
        } = &plan.actions[0]
        else {
            unreachable!()
        };
        assert_eq!(packages, &["less"]);
        assert!(*in_guest);
        assert!(
            commands.iter().any(|c| c.contains(&"less".to_owned())),
            "{commands:?}"
        );
        assert!(env.contains(&("DEBIAN_FRONTEND".to_owned(), "noninteractive".to_owned())));
        observed.guest_package_manager = false;
        let plan = plan_machine(&m, &observed, Some(&secret())).unwrap();
        let Action::InstallPackages {
            commands, in_guest, ..
        } = &plan.actions[0]
        else {
            unreachable!()
        };
        assert!(!*in_guest && commands.is_empty());
    }

    #[test]
    fn a_base_package_left_the_spec_is_kept_with_a_typed_warning() {
        let mut m = machine();
        m.packages.retain(|p| p != "dbus");
        let plan = plan_machine(&m, &converged(), Some(&secret())).unwrap();
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        assert!(plan.warnings.contains(&Warning::BasePackageKept {
            package: "dbus".into()
        }));
        assert!(plan.warnings.contains(&Warning::SecurettyIgnored));
    }

    #[test]
    fn changed_settings_are_written_and_restart_the_running_machine() {
        let mut m = machine();
        m.capabilities = vec!["CAP_NET_ADMIN".into()];
        let plan = plan_machine(&m, &converged(), Some(&secret())).unwrap();
        assert_eq!(names(&plan), ["write-settings", "restart"]);
        let (path, old, new) = plan.actions[0].file_change().unwrap();
        assert_eq!(path, "/n/web.nspawn");
        assert_eq!(old, settings::render(&machine(), NetworkMode::Host));
        assert_eq!(new, settings::render(&m, NetworkMode::Host));
        assert_eq!(
            plan.actions[1],
            Action::Restart {
                launcher: Launcher::Nspawn,
                reasons: Vec::new(),
            }
        );
    }

    #[test]
    fn autostart_is_planned_for_unit_launchers_and_refused_for_nspawn() {
        let mut m = machine();
        m.launcher = Launcher::Machinectl;
        m.autostart = Some(true);
        let observed = Observed {
            launcher: Ok(Launcher::Machinectl),
            autostart: Some(false),
            ..converged()
        };
        let plan = plan_machine(&m, &observed, Some(&secret())).unwrap();
        assert!(plan.actions.contains(&Action::SetAutostart {
            enabled: true,
            launcher: Launcher::Machinectl
        }));
        // Running under nspawn, wanted under machinectl: stopped one way, started the other.
        assert!(plan.actions.contains(&Action::Stop {
            launcher: Launcher::Nspawn
        }));
        assert!(plan.actions.contains(&Action::Start {
            launcher: Launcher::Machinectl
        }));
        let mut nspawn = machine();
        nspawn.autostart = Some(true);
        let err = plan_machine(&nspawn, &converged(), Some(&secret())).unwrap_err();
        assert!(err.to_string().contains("autostart: true"), "{err}");
    }

    #[test]
    fn a_machine_started_outside_berth_is_a_typed_warning_not_an_action() {
        let observed = Observed {
            run: RunState::Foreign {
                pid: 7,
                how: "a systemd-nspawn process (pid 7)".into(),
            },
            ..converged()
        };
        let plan = plan_machine(&machine(), &observed, Some(&secret())).unwrap();
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        assert!(plan.warnings.iter().any(Warning::is_foreign));
    }

    #[test]
    fn the_plan_carries_the_fingerprint_of_what_it_was_made_against() {
        let plan = plan_machine(&machine(), &converged(), Some(&secret())).unwrap();
        assert_eq!(plan.observed, converged().fingerprint());
        let mut changed = converged();
        changed.settings = None;
        assert_eq!(
            changed.changed_since(&plan.observed),
            Some("its .nspawn settings file changed")
        );
    }
}
