//! Snapshots and rollback on the fake host (its `cp` runs for real inside
//! its temp dir).

use std::fs;
use std::sync::Arc;

use berth_schema::{DesiredState, Machine, Spec};

use super::*;
use crate::drivers::snapshot as store;
use crate::host::Host;
use crate::host::fake::FakeHost;
use crate::model::action::Action;
use crate::report::Silent;

fn applied(state: DesiredState) -> (Engine, Arc<FakeHost>, Machine) {
    let mut m = crate::testing::web();
    m.state = state;
    applied_as(m)
}

/// `m` applied on a fresh fake host.
fn applied_as(m: Machine) -> (Engine, Arc<FakeHost>, Machine) {
    let fake = Arc::new(FakeHost::new(false));
    let engine = Engine::on(fake.clone());
    let plan = engine.plan([&m]).expect("plan");
    engine
        .apply_machine(&m, &plan.machines[0], false, &Silent)
        .expect("apply");
    (engine, fake, m)
}

fn root_file(fake: &FakeHost, rel: &str) -> Option<String> {
    fs::read_to_string(fake.paths().machine_root("web").join(rel)).ok()
}

fn write_root_file(fake: &FakeHost, rel: &str, text: &str) {
    fs::write(fake.paths().machine_root("web").join(rel), text).unwrap();
}

fn tags(engine: &Engine) -> Vec<String> {
    engine
        .snapshots(Some("web"))
        .unwrap()
        .into_iter()
        .map(|s| s.tag)
        .collect()
}

#[test]
fn a_stopped_machine_rolls_back_its_files_and_record() {
    let (engine, fake, _) = applied(DesiredState::Stopped);
    write_root_file(&fake, "etc/motd", "before\n");
    let info = engine
        .snapshot("web", Some("good"), SnapshotOrigin::Manual)
        .unwrap();
    assert_eq!(info.tag, "good");
    assert_eq!(info.origin, SnapshotOrigin::Manual);
    assert!(info.size.is_some_and(|s| s > 0));
    assert!(["copy", "reflink", "btrfs-snapshot"].contains(&info.method.as_str()));
    // The same tag again is refused.
    let again = engine.snapshot("web", Some("good"), SnapshotOrigin::Manual);
    assert!(
        again.unwrap_err().to_string().contains("exists already"),
        "a second snapshot with the same tag"
    );

    write_root_file(&fake, "etc/motd", "after\n");
    fs::remove_file(fake.paths().machine_root("web").join("etc/hostname")).unwrap();
    let mut record = fake.state().load("web").unwrap().unwrap();
    record.added_packages.push("less".into());
    fake.state().save(&record).unwrap();

    let report = engine.rollback("web", None, &Silent).unwrap();
    assert_eq!(report.restored, "good");
    assert!(report.kept_as.starts_with("pre-rollback-"), "{report:?}");
    assert!(!report.restarted);
    assert_eq!(root_file(&fake, "etc/motd").as_deref(), Some("before\n"));
    assert!(root_file(&fake, "etc/hostname").is_some());
    assert!(
        fake.state()
            .load("web")
            .unwrap()
            .unwrap()
            .added_packages
            .is_empty()
    );
    // Nothing lost: the snapshot stays, and the replaced root is a snapshot
    // with the record it had.
    assert_eq!(tags(&engine), ["good", report.kept_as.as_str()]);
    let kept = store::read(fake.paths(), "web", &report.kept_as)
        .unwrap()
        .unwrap();
    assert_eq!(kept.info.origin, SnapshotOrigin::PreRollback);
    assert_eq!(
        fs::read_to_string(
            store::snapshot_dir(fake.paths(), "web", &report.kept_as).join("root/etc/motd")
        )
        .unwrap(),
        "after\n"
    );
    assert_eq!(kept.record.unwrap().added_packages, ["less"]);
    // No hidden leftovers.
    let hidden: Vec<String> = fs::read_dir(store::snapshots_dir(fake.paths(), "web"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");

    // The default target skips pre-rollback snapshots: a second rollback
    // goes to "good" again.
    write_root_file(&fake, "etc/motd", "third\n");
    let second = engine.rollback("web", None, &Silent).unwrap();
    assert_eq!(second.restored, "good");
    assert_eq!(root_file(&fake, "etc/motd").as_deref(), Some("before\n"));
    // An explicit tag: back to the first pre-rollback.
    engine
        .rollback("web", Some(&report.kept_as), &Silent)
        .unwrap();
    assert_eq!(root_file(&fake, "etc/motd").as_deref(), Some("after\n"));
}

#[test]
fn a_running_machine_is_stopped_and_started_again() {
    let (engine, fake, m) = applied(DesiredState::Running);
    engine
        .snapshot("web", None, SnapshotOrigin::Manual)
        .unwrap();
    // With its spec: started as apply starts it.
    let mut spec = Spec::default();
    spec.machines.insert("web".to_owned(), m);
    let with_spec = engine.for_spec(&spec);
    let before = fake.state().load("web").unwrap().unwrap().launch.unwrap();
    let report = with_spec.rollback("web", None, &Silent).unwrap();
    assert!(report.restarted);
    let after = fake.state().load("web").unwrap().unwrap().launch.unwrap();
    assert_ne!(before.pid, after.pid, "started again");
    assert_eq!(before.settings, after.settings);

    // Without a spec: the same systemd-nspawn command line again.
    let argv =
        |pid: i32| fs::read_to_string(fake.proc_dir().join(format!("{pid}/cmdline"))).unwrap();
    let was = argv(after.pid);
    assert!(was.starts_with("systemd-nspawn"), "{was}");
    let report = engine.rollback("web", None, &Silent).unwrap();
    assert!(report.restarted);
    let again = fake.state().load("web").unwrap().unwrap().launch.unwrap();
    assert_ne!(again.pid, after.pid);
    assert_eq!(argv(again.pid), was);
    assert_eq!(again.settings, after.settings);
}

#[test]
fn without_its_spec_a_machine_on_a_veth_link_is_refused() {
    let mut m = crate::testing::web();
    m.network.mode = Some(berth_schema::NetworkMode::Veth);
    let (engine, fake, _) = applied_as(m);
    engine
        .snapshot("web", None, SnapshotOrigin::Manual)
        .unwrap();
    let before = fake.state().load("web").unwrap().unwrap().launch.unwrap();
    let err = engine.rollback("web", None, &Silent).unwrap_err();
    assert!(err.to_string().contains("network link"), "{err}");
    assert!(err.to_string().contains("needs its spec"), "{err}");
    // Nothing was done: still running the same way, no pre-rollback.
    assert_eq!(
        fake.state().load("web").unwrap().unwrap().launch.unwrap(),
        before
    );
    assert_eq!(engine.snapshots(Some("web")).unwrap().len(), 1);
}

#[test]
fn delete_prune_and_destroy() {
    let (engine, fake, _) = applied(DesiredState::Stopped);
    for tag in ["a", "b", "c"] {
        store::take(fake.as_ref(), "web", tag, SnapshotOrigin::BeforeApply, None).unwrap();
    }
    engine
        .snapshot("web", Some("mine"), SnapshotOrigin::Manual)
        .unwrap();
    // Oldest first; ties by tag.
    assert_eq!(
        prune_to(&engine, "web", 2, SnapshotOrigin::BeforeApply).unwrap(),
        ["a"]
    );
    assert_eq!(tags(&engine), ["b", "c", "mine"]);
    engine.delete_snapshot("web", "b").unwrap();
    assert_eq!(tags(&engine), ["c", "mine"]);
    let err = engine.delete_snapshot("web", "b").unwrap_err();
    assert!(err.to_string().contains("no snapshot tagged"), "{err}");
    let err = engine.delete_snapshot("web", "../x").unwrap_err();
    assert!(err.to_string().contains("snapshot tag"), "{err}");

    assert!(engine.destroy("web", &Silent).unwrap());
    assert!(!store::snapshots_dir(fake.paths(), "web").exists());
}

#[test]
fn unknown_and_unmanaged_machines_are_refused() {
    let (engine, fake, _) = applied(DesiredState::Stopped);
    let err = engine
        .snapshot("nope", None, SnapshotOrigin::Manual)
        .unwrap_err();
    assert!(err.to_string().contains("no such machine"), "{err}");
    assert!(engine.snapshots(Some("nope")).is_err());
    fs::create_dir(fake.paths().machine_root("byhand")).unwrap();
    let err = engine
        .snapshot("byhand", None, SnapshotOrigin::Manual)
        .unwrap_err();
    assert!(err.to_string().contains("not created by berth"), "{err}");
    let err = engine
        .snapshot("web", Some("a/b"), SnapshotOrigin::Manual)
        .unwrap_err();
    assert!(err.to_string().contains("snapshot tag"), "{err}");
}

#[test]
fn a_rollback_interrupted_after_the_swap_is_finished_and_one_before_it_undone() {
    let (engine, fake, _) = applied(DesiredState::Stopped);
    write_root_file(&fake, "etc/motd", "good\n");
    engine
        .snapshot("web", Some("good"), SnapshotOrigin::Manual)
        .unwrap();
    write_root_file(&fake, "etc/motd", "bad\n");
    // A rollback that stopped right after the swap: its finishing step fails.
    let failed = store::restore(fake.as_ref(), "web", "good", None, |_| {
        Err(EngineError::State("killed".into()))
    });
    assert!(failed.is_err());
    assert_eq!(root_file(&fake, "etc/motd").as_deref(), Some("good\n"));
    // The next operation completes it: the replaced root is a snapshot.
    let all = engine.snapshots(Some("web")).unwrap();
    assert_eq!(all.len(), 1, "not listed while hidden");
    engine
        .snapshot("web", Some("later"), SnapshotOrigin::Manual)
        .unwrap();
    let all = store::list(fake.paths(), "web").unwrap();
    let kept: Vec<_> = all
        .iter()
        .filter(|m| m.info.origin == SnapshotOrigin::PreRollback)
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        fs::read_to_string(
            store::snapshot_dir(fake.paths(), "web", &kept[0].info.tag).join("root/etc/motd")
        )
        .unwrap(),
        "bad\n"
    );
    // A clone left before the swap is removed, the root untouched.
    let dir = store::snapshots_dir(fake.paths(), "web");
    fs::create_dir_all(dir.join(".rollback-19700101T000000Z/root")).unwrap();
    fs::create_dir_all(dir.join(".take-x/root")).unwrap();
    engine.delete_snapshot("web", "later").unwrap();
    assert!(!dir.join(".rollback-19700101T000000Z").exists());
    assert!(!dir.join(".take-x").exists());
    assert_eq!(root_file(&fake, "etc/motd").as_deref(), Some("good\n"));
}

/// Plans and applies `m`; returns the names of the approved actions.
fn apply(engine: &Engine, m: &Machine) -> Vec<&'static str> {
    let plan = engine.plan([m]).expect("plan");
    engine
        .apply_machine(m, &plan.machines[0], false, &Silent)
        .expect("apply");
    plan.machines[0].actions.iter().map(Action::name).collect()
}

#[test]
fn before_apply_snapshots_root_changing_applies_and_keeps_keep() {
    // No units: the fake host's systemctl leaves no trace, so they would
    // be planned again every time.
    let (engine, fake, mut m) = applied_as(
        Machine::builder("web")
            .state(DesiredState::Stopped)
            .snapshots(berth_schema::Snapshots {
                before_apply: true,
                keep: 2,
            })
            .build(),
    );
    // Nothing to change: no snapshot.
    let names = apply(&engine, &m);
    assert!(names.is_empty(), "{names:?}");
    assert!(engine.snapshot_taken("web").is_none());
    // A mere start does not change the root: no snapshot.
    m.state = DesiredState::Running;
    assert_eq!(apply(&engine, &m), ["start"]);
    assert!(tags(&engine).is_empty());
    // Root changes: a snapshot first, remembered as this apply's.
    for (i, host) in ["one", "two", "three"].into_iter().enumerate() {
        m.hostname = host.into();
        let names = apply(&engine, &m);
        assert_eq!(names[0], "snapshot", "{names:?}");
        let taken = engine.snapshot_taken("web").expect("a snapshot this apply");
        assert!(taken.starts_with("before-apply-"), "{taken}");
        let all = engine.snapshots(Some("web")).unwrap();
        assert_eq!(all.len(), (i + 1).min(2));
        assert_eq!(all.last().unwrap().tag, taken);
        assert!(all.iter().all(|s| s.origin == SnapshotOrigin::BeforeApply));
        // The snapshot holds the root as it was before the apply.
        let before = ["web", "one", "two"][i];
        assert_eq!(
            fs::read_to_string(
                store::snapshot_dir(fake.paths(), "web", &taken).join("root/etc/hostname")
            )
            .unwrap()
            .trim(),
            before
        );
    }
    // A manual snapshot is never pruned by before_apply.
    engine
        .snapshot("web", Some("mine"), SnapshotOrigin::Manual)
        .unwrap();
    m.hostname = "four".into();
    apply(&engine, &m);
    assert!(tags(&engine).contains(&"mine".to_owned()));
    assert_eq!(tags(&engine).len(), 3);
    // The next apply that changes nothing took none.
    apply(&engine, &m);
    assert!(engine.snapshot_taken("web").is_none());
}
