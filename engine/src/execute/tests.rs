//! apply, the cache and destroy on the fake host: every action kind runs
//! with its approved payload, and a changed machine is refused as stale.

use std::sync::Arc;

use berth_schema::{DesiredState, Launcher, Machine};

use crate::engine::Engine;
use crate::error::EngineError;
use crate::host::Host;
use crate::host::fake::FakeHost;
use crate::model::action::Action;
use crate::report::Silent;

fn machine() -> Machine {
    crate::testing::web()
}

fn engine(systemd: bool) -> (Engine, Arc<FakeHost>) {
    let fake = Arc::new(FakeHost::new(systemd));
    (Engine::on(fake.clone()), fake)
}

fn names(engine: &Engine, m: &Machine) -> Vec<&'static str> {
    let plan = engine.plan([m]).expect("plan");
    plan.machines[0].actions.iter().map(Action::name).collect()
}

/// Plans and applies `m`; returns the actions that were approved.
fn apply(engine: &Engine, m: &Machine) -> Result<Vec<&'static str>, EngineError> {
    let plan = engine.plan([m]).map_err(|mut e| e.remove(0))?;
    let approved = &plan.machines[0];
    engine.apply_machine(m, approved, false, &Silent)?;
    Ok(approved.actions.iter().map(Action::name).collect())
}

fn read(fake: &FakeHost, rel: &str) -> String {
    std::fs::read_to_string(fake.paths().machine_root("web").join(rel)).unwrap_or_default()
}

#[test]
fn a_new_machine_is_bootstrapped_configured_and_started_with_the_approved_payloads() {
    let (engine, fake) = engine(false);
    let m = machine();
    let approved = apply(&engine, &m).unwrap();
    assert_eq!(
        approved,
        [
            "bootstrap",
            "set-hostname",
            "enable-unit",
            "disable-unit",
            "mask-unit",
            "set-root-password",
            "add-securetty",
            "write-settings",
            "start"
        ]
    );
    // After the bootstrap, the configuration is planned again against the
    // base: fstrim.timer is disabled there already, so it is not run.
    let lines = fake.lines();
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(
        has(
            "unshare --pid --fork --kill-child -- debootstrap --variant=minbase --include=systemd,dbus"
        ),
        "{lines:#?}"
    );
    assert!(
        has("cp -a --reflink=auto --no-target-directory"),
        "{lines:#?}"
    );
    for verb in [
        "enable -- systemd-networkd.service",
        "mask -- apt-daily.timer",
    ] {
        assert!(has(verb), "{verb}: {lines:#?}");
    }
    assert!(has("systemd-nspawn --quiet --boot"), "{lines:#?}");
    assert_eq!(read(&fake, "etc/hostname"), "web\n");
    assert!(read(&fake, "etc/shadow").starts_with(&format!("root:{}:", crate::testing::HASH)));
    assert_eq!(read(&fake, "etc/securetty"), "pts/0\n");
    assert_eq!(read(&fake, "etc/machine-id").len(), 33);
    let settings = std::fs::read_to_string(fake.paths().settings_file("web")).unwrap();
    assert!(settings.starts_with(crate::drivers::settings::HEADER));
    let record = fake.state().load("web").unwrap().unwrap();
    // berth records the securetty entries it added, to remove them later.
    assert_eq!(record.securetty_added, ["pts/0"]);
    assert_eq!(record.launch.unwrap().launcher, Launcher::Nspawn);
    // The bootstrap tool got an explicit environment: berth's is never inherited.
    let commands = fake.commands.lock().unwrap();
    let bootstrap = commands.iter().find(|c| c.argv[0] == "unshare").unwrap();
    assert_eq!(
        bootstrap.env,
        [("DEBIAN_FRONTEND".to_owned(), "noninteractive".to_owned())]
    );
    assert!(bootstrap.die_with_berth);
}

#[test]
fn a_second_machine_of_the_same_base_is_a_clone_and_runs_no_bootstrap() {
    let (engine, fake) = engine(false);
    apply(&engine, &machine()).unwrap();
    fake.clear();
    let mut other = machine();
    other.name = "api".into();
    other.hostname = "api".into();
    let plan = engine.plan([&other]).unwrap();
    assert_eq!(plan.machines[0].actions[0].name(), "clone");
    engine
        .apply_machine(&other, &plan.machines[0], false, &Silent)
        .unwrap();
    assert!(
        !fake.lines().iter().any(|l| l.starts_with("unshare")),
        "{:#?}",
        fake.lines()
    );
}

#[test]
fn a_converged_machine_plans_nothing_and_drift_is_repaired() {
    let (engine, fake) = engine(false);
    let m = machine();
    apply(&engine, &m).unwrap();
    // The fake bootstrap enables nothing, and its systemctl changes no
    // link: make the units look as applied.
    let root = fake.paths().machine_root("web");
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink(
        "/usr/lib/systemd/system/systemd-networkd.service",
        wants.join("systemd-networkd.service"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/dev/null", root.join("etc/systemd/system/apt-daily.timer"))
        .unwrap();
    assert_eq!(names(&engine, &m), Vec::<&str>::new());
    std::fs::write(root.join("etc/hostname"), "edited\n").unwrap();
    assert_eq!(apply(&engine, &m).unwrap(), ["set-hostname"]);
    assert_eq!(read(&fake, "etc/hostname"), "web\n");
}

#[test]
fn a_machine_changed_after_the_plan_is_stale_and_nothing_runs() {
    let (engine, fake) = engine(false);
    let m = machine();
    apply(&engine, &m).unwrap();
    let root = fake.paths().machine_root("web");
    std::fs::write(root.join("etc/hostname"), "edited\n").unwrap();
    let plan = engine.plan([&m]).unwrap();
    std::fs::write(root.join("etc/hostname"), "edited again\n").unwrap();
    fake.clear();
    let err = engine
        .apply_machine(&m, &plan.machines[0], false, &Silent)
        .unwrap_err();
    assert!(matches!(err.inner(), EngineError::Stale { .. }), "{err}");
    assert!(err.to_string().contains("its root"), "{err}");
    assert!(fake.lines().is_empty(), "{:#?}", fake.lines());
    assert_eq!(read(&fake, "etc/hostname"), "edited again\n");
}

#[test]
fn stop_start_and_restart_go_through_the_recorded_launcher() {
    let (engine, fake) = engine(false);
    let mut m = machine();
    apply(&engine, &m).unwrap();
    m.state = DesiredState::Stopped;
    fake.clear();
    assert!(apply(&engine, &m).unwrap().contains(&"stop"));
    assert!(fake.state().load("web").unwrap().unwrap().launch.is_none());
    m.state = DesiredState::Running;
    assert!(apply(&engine, &m).unwrap().contains(&"start"));
    // A settings change restarts the running machine.
    m.capabilities = vec!["CAP_NET_ADMIN".into()];
    let approved = apply(&engine, &m).unwrap();
    assert!(
        approved.contains(&"write-settings") && approved.contains(&"restart"),
        "{approved:?}"
    );
    let spawned = fake
        .lines()
        .iter()
        .filter(|l| l.starts_with("systemd-nspawn --quiet --boot"))
        .count();
    assert_eq!(spawned, 2, "{:#?}", fake.lines());
}

#[test]
fn packages_change_inside_the_running_guest_with_the_planned_commands() {
    let (engine, fake) = engine(false);
    let mut m = machine();
    apply(&engine, &m).unwrap();
    m.packages.push("less".into());
    fake.clear();
    let plan = engine.plan([&m]).unwrap();
    let action = plan.machines[0]
        .actions
        .iter()
        .find(|a| a.name() == "install-packages")
        .unwrap()
        .clone();
    let Action::InstallPackages {
        commands, in_guest, ..
    } = &action
    else {
        unreachable!()
    };
    assert!(*in_guest);
    engine
        .apply_machine(&m, &plan.machines[0], false, &Silent)
        .unwrap();
    let lines = fake.lines();
    for command in commands {
        let text = command.join(" ");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("nsenter --target=") && l.ends_with(&text)),
            "{text}: {lines:#?}"
        );
    }
    assert_eq!(
        fake.state().load("web").unwrap().unwrap().added_packages,
        ["less"]
    );
}

#[test]
fn a_machine_started_outside_berth_is_changed_inside_its_guest_never_by_a_second_container() {
    let (engine, fake) = engine(false);
    let mut m = machine();
    m.state = DesiredState::Stopped;
    apply(&engine, &m).unwrap();
    let root = fake.paths().machine_root("web").display().to_string();
    let boot = |argv: &[&str]| {
        fake.add_process(
            "systemd-nspawn",
            &argv.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>(),
        )
    };
    // Booted by hand from its root: berth does not stop it, but a package
    // added goes into its running guest.
    let pid = boot(&["systemd-nspawn", "-b", "-D", &root]);
    m.packages.push("less".into());
    fake.clear();
    let approved = apply(&engine, &m).unwrap();
    assert!(approved.contains(&"install-packages"), "{approved:?}");
    let lines = fake.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("nsenter --target={} ", pid + 1)) && l.contains("less")),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("systemd-nspawn")),
        "{lines:#?}"
    );
    // Another tree booted under its name: berth cannot enter it and says
    // so; it starts no container of its own on the root either.
    std::fs::remove_dir_all(fake.proc_dir().join(pid.to_string())).unwrap();
    boot(&["systemd-nspawn", "-b", "-M", "web", "-D", "/srv/elsewhere"]);
    m.packages.push("tree".into());
    fake.clear();
    let err = apply(&engine, &m).unwrap_err().to_string();
    assert!(err.contains("berth cannot enter it"), "{err}");
    let lines = fake.lines();
    assert!(
        !lines.iter().any(|l| l.starts_with("systemd-nspawn")),
        "{lines:#?}"
    );
}

#[test]
fn a_replacement_needs_allow_replace() {
    let (engine, _fake) = engine(false);
    let mut m = machine();
    apply(&engine, &m).unwrap();
    m.release = Some("trixie".into());
    let plan = engine.plan([&m]).unwrap();
    assert_eq!(plan.machines[0].actions[0].name(), "replace");
    let err = engine
        .apply_machine(&m, &plan.machines[0], false, &Silent)
        .unwrap_err();
    assert!(err.to_string().contains("--replace web"), "{err}");
}

#[test]
fn autostart_uses_the_unit_launchers_boot_integration() {
    let (engine, fake) = engine(true);
    let mut m = machine();
    m.launcher = Launcher::Machinectl;
    m.autostart = Some(true);
    let approved = apply(&engine, &m).unwrap();
    assert!(approved.contains(&"set-autostart"), "{approved:?}");
    let lines = fake.lines();
    assert!(
        lines.contains(&"machinectl enable web".to_owned()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"machinectl start web".to_owned()),
        "{lines:#?}"
    );
}

#[test]
fn the_cache_makes_a_base_once() {
    let (engine, _fake) = engine(false);
    let host = engine.host();
    let cache = crate::drivers::cache::Cache::new(&host.paths().cache_dir);
    let key =
        crate::drivers::cache::BaseKey::of(&machine(), &crate::drivers::bootstrap::Debootstrap)
            .unwrap();
    let made = std::sync::atomic::AtomicUsize::new(0);
    for _ in 0..2 {
        let entry = cache
            .get_or_make(host, &key, |into| {
                made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::fs::create_dir_all(into.join("etc")).unwrap();
                Ok(())
            })
            .unwrap();
        assert!(entry.root.join("etc").is_dir());
    }
    assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(cache.list().unwrap().len(), 1);
}

#[test]
fn a_replacement_with_allow_replace_rebuilds_the_root() {
    let (engine, fake) = engine(false);
    let mut m = machine();
    apply(&engine, &m).unwrap();
    m.release = Some("trixie".into());
    let plan = engine.plan([&m]).unwrap();
    fake.clear();
    engine
        .apply_machine(&m, &plan.machines[0], true, &Silent)
        .unwrap();
    let record = fake.state().load("web").unwrap().unwrap();
    assert_eq!(record.release.as_deref(), Some("trixie"));
    assert!(
        fake.lines()
            .iter()
            .any(|l| l.contains("debootstrap") && l.contains(" trixie ")),
        "{:#?}",
        fake.lines()
    );
}

#[test]
fn removed_packages_and_a_masked_unit_to_enable_run_their_commands() {
    let (engine, fake) = engine(false);
    let mut m = machine();
    apply(&engine, &m).unwrap();
    // As if berth had installed "less" after the bootstrap.
    let status = fake.paths().machine_root("web").join("var/lib/dpkg/status");
    let mut text = std::fs::read_to_string(&status).unwrap();
    text.push_str("Package: less\nStatus: install ok installed\nVersion: 1\n\n");
    std::fs::write(&status, text).unwrap();
    let mut record = fake.state().load("web").unwrap().unwrap();
    record.added_packages = vec!["less".into()];
    record.bootstrap_packages = vec!["systemd".into(), "dbus".into()];
    fake.state().save(&record).unwrap();
    m.packages.retain(|p| p != "less");
    let root = fake.paths().machine_root("web");
    std::os::unix::fs::symlink(
        "/dev/null",
        root.join("etc/systemd/system/systemd-networkd.service"),
    )
    .unwrap();
    fake.clear();
    let approved = apply(&engine, &m).unwrap();
    assert!(approved.contains(&"remove-packages"), "{approved:?}");
    assert!(approved.contains(&"unmask-unit"), "{approved:?}");
    let lines = fake.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("apt-get") && l.contains("less")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("unmask -- systemd-networkd.service")),
        "{lines:#?}"
    );
    assert!(
        fake.state()
            .load("web")
            .unwrap()
            .unwrap()
            .added_packages
            .is_empty()
    );
}

#[test]
fn destroy_is_planned_then_stops_and_removes_only_what_berth_manages() {
    let (engine, fake) = engine(false);
    apply(&engine, &machine()).unwrap();
    let plan = engine
        .plan_destroy(&["web".to_owned(), "gone".to_owned()])
        .unwrap();
    let names: Vec<&str> = plan.machines[0].actions.iter().map(Action::name).collect();
    assert_eq!(names, ["stop", "destroy"]);
    assert_eq!(plan.machines[0].change, crate::planner::ChangeKind::Destroy);
    assert!(plan.machines[1].actions.is_empty());
    assert!(engine.destroy("web", &Silent).unwrap());
    assert!(!fake.paths().machine_root("web").exists());
    assert!(fake.state().load("web").unwrap().is_none());
    assert!(!fake.paths().settings_file("web").exists());
    // A root berth did not make is refused, in the plan and in destroy.
    std::fs::create_dir_all(fake.paths().machine_root("byhand")).unwrap();
    assert!(engine.plan_destroy(&["byhand".to_owned()]).is_err());
    assert!(engine.destroy("byhand", &Silent).is_err());
    assert!(fake.paths().machine_root("byhand").exists());
}

#[test]
fn a_base_that_lacks_what_the_plan_showed_stops_the_configuration_as_stale() {
    // The fake bootstrap ignores the package list: "less" is not in the new
    // root, so configuring it would need an install nobody approved.
    let (engine, _fake) = engine(false);
    let mut m = machine();
    m.packages.push("less".into());
    let err = apply(&engine, &m).unwrap_err();
    assert!(matches!(err.inner(), EngineError::Stale { .. }), "{err}");
    assert!(err.to_string().contains("install less"), "{err}");
}

/// On a systemd host machined keeps a guest whose systemd-nspawn was killed
/// in its scope, `machine-NAME.scope`: a restart and a destroy kill that
/// scope first (and only a scope on this machine's root).
#[test]
fn a_guest_left_in_its_machined_scope_is_killed_before_a_start_and_a_destroy() {
    let (engine, fake) = engine(true);
    let mut m = machine();
    m.launcher = Launcher::Nspawn;
    apply(&engine, &m).unwrap();
    let root = fake.paths().machine_root("web").display().to_string();
    let orphan = |root: &str| {
        // systemd-nspawn dies; machined keeps the guest in its scope.
        let pid = fake
            .state()
            .load("web")
            .unwrap()
            .unwrap()
            .launch
            .unwrap()
            .pid;
        fake.signal(pid, nix::sys::signal::Signal::SIGKILL);
        *fake.machined.lock().unwrap() =
            vec![("web".into(), "machine-web.scope".into(), root.into())];
    };
    let kill = "systemctl kill --signal=SIGKILL -- machine-web.scope";

    orphan(&root);
    fake.clear();
    assert!(apply(&engine, &m).unwrap().contains(&"start"));
    let lines = fake.lines();
    let killed = lines.iter().position(|l| l == kill);
    let started = lines
        .iter()
        .position(|l| l.starts_with("systemd-nspawn --quiet --boot"));
    assert!(
        killed.is_some() && killed < started,
        "the scope must be killed before the new nspawn starts: {lines:#?}"
    );
    assert!(fake.machined.lock().unwrap().is_empty());

    // A scope machined holds on another root is not this machine's.
    orphan("/elsewhere/web");
    fake.clear();
    assert!(apply(&engine, &m).unwrap().contains(&"start"));
    assert!(
        !fake.lines().iter().any(|l| l == kill),
        "{:#?}",
        fake.lines()
    );

    // destroy kills the leftover guest before it removes the root.
    orphan(&root);
    fake.clear();
    assert!(engine.destroy("web", &Silent).unwrap());
    assert!(
        fake.lines().iter().any(|l| l == kill),
        "{:#?}",
        fake.lines()
    );
    assert!(fake.machined.lock().unwrap().is_empty());
    assert!(!fake.paths().machine_root("web").exists());
}

/// `berth shell`/`login` get the host's minimal environment plus TERM,
/// never berth's own (which may hold an `env:` secret).
#[test]
fn a_console_gets_only_term_from_berths_environment() {
    let (engine, _fake) = engine(false);
    let m = machine();
    apply(&engine, &m).unwrap();
    for console in [crate::Console::Shell, crate::Console::Login] {
        let cmd = engine.console_command(&m, console).unwrap();
        assert!(cmd.argv[0] == "nsenter", "{cmd:?}");
        assert!(
            cmd.env.iter().all(|(k, _)| k == "TERM"),
            "a console inherits only TERM: {cmd:?}"
        );
        assert_eq!(cmd.output, crate::host::Output::Inherit);
    }
}

#[test]
fn an_overlay_machine_is_mounted_to_work_on_read_through_its_layers_when_stopped_and_unmounted_and_removed_by_destroy()
 {
    use berth_schema::Storage;
    let (engine, fake) = engine(false);
    let mut m = machine();
    m.storage = Storage::Overlay;
    m.state = DesiredState::Stopped;
    // (The fake's systemctl changes no links: units would never converge.)
    m.units = berth_schema::Units::default();
    let plan = engine.plan([&m]).unwrap();
    assert!(
        plan.machines[0].actions[0]
            .describe()
            .contains("(the root: an overlay on the new base)"),
        "{:?}",
        plan.machines[0].actions[0]
    );
    apply(&engine, &m).unwrap();
    let paths = fake.paths().clone();
    let root = paths.machine_root("web");
    let layers = paths.machines_dir.join(".web.overlay");
    let record = fake.state().load("web").unwrap().unwrap();
    assert_eq!(record.storage, Storage::Overlay);
    let base = record.base.clone().unwrap();
    let lines = fake.lines();
    let mount = format!(
        "mount -t overlay -o lowerdir={},upperdir={},workdir={} overlay {}",
        paths
            .cache_dir
            .join("bases")
            .join(&base)
            .join("root")
            .display(),
        layers.join("upper").display(),
        layers.join("work").display(),
        root.display()
    );
    assert!(lines.contains(&mount), "{lines:#?}");
    // No copy of the base for the machine (only the fake's first mount fills its layer).
    assert!(!lines.iter().any(|l| l.starts_with("cp ")), "{lines:#?}");
    // Stopped: unmounted, the mount point empty, the machine's files in its layer.
    assert!(!fake.is_mounted(&root));
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_to_string(layers.join("upper/etc/hostname")).unwrap(),
        "web\n"
    );
    // plan reads through the layers (a read-only view, unmounted after): no change.
    fake.clear();
    assert_eq!(names(&engine, &m), Vec::<&str>::new());
    let view = format!(
        "mount -t overlay -o ro,lowerdir={}:{} overlay {}",
        layers.join("upper").display(),
        paths
            .cache_dir
            .join("bases")
            .join(&base)
            .join("root")
            .display(),
        root.display()
    );
    assert!(fake.lines().contains(&view), "{:#?}", fake.lines());
    assert!(!fake.is_mounted(&root));

    // A change to a stopped overlay machine is written through its mount.
    m.hostname = "web2".into();
    assert_eq!(apply(&engine, &m).unwrap(), ["set-hostname"]);
    assert_eq!(
        std::fs::read_to_string(layers.join("upper/etc/hostname")).unwrap(),
        "web2\n"
    );
    assert!(!fake.is_mounted(&root));

    // Started: mounted while it runs; a storage change is a replacement.
    m.state = DesiredState::Running;
    assert_eq!(apply(&engine, &m).unwrap(), ["start"]);
    assert!(fake.is_mounted(&root));
    let mut copy = m.clone();
    copy.storage = Storage::Copy;
    let plan = engine.plan([&copy]).unwrap();
    assert_eq!(plan.machines[0].actions[0].name(), "replace");
    assert!(
        plan.machines[0].actions[0]
            .describe()
            .contains("storage: overlay with debian bookworm (debootstrap) (destroys"),
        "{}",
        plan.machines[0].actions[0].describe()
    );
    let err = engine
        .apply_machine(&copy, &plan.machines[0], false, &Silent)
        .unwrap_err();
    assert!(err.to_string().contains("--replace web"), "{err}");

    // The base is the overlay's lower layer: never pruned, even with --all.
    let pruned = engine.prune_cache(true).unwrap();
    assert!(pruned.removed.is_empty(), "{pruned:?}");
    assert_eq!(pruned.held, [(base.clone(), vec!["web".to_owned()])]);

    // destroy stops it, unmounts and removes the layers.
    engine.destroy("web", &Silent).unwrap();
    assert!(!fake.is_mounted(&root));
    assert!(!root.exists() && !layers.exists());
    assert_eq!(engine.prune_cache(false).unwrap().removed, [base]);
}
