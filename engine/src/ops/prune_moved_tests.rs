//! Prune and `moved:` on the fake host: which machines a spec prunes, what
//! their plans say, and renames planned and applied against in-memory
//! states (records and roots in a temp dir).

use std::path::PathBuf;
use std::sync::Arc;

use berth_schema::{Machine, Moved, Spec};

use crate::engine::Engine;
use crate::error::EngineError;
use crate::host::Host;
use crate::host::fake::FakeHost;
use crate::model::action::Action;
use crate::model::plan::DestroyReason;
use crate::planner::ChangeKind;
use crate::report::Silent;

/// `web` from the tests' fixtures, under `name` (its hostname stays `web`).
fn machine(name: &str) -> Machine {
    let mut m = crate::testing::web();
    m.name = name.to_owned();
    m
}

fn spec(machines: &[&Machine], moved: &[(&str, &str)]) -> Spec {
    Spec {
        machines: machines
            .iter()
            .map(|m| (m.name.clone(), (*m).clone()))
            .collect(),
        moved: moved
            .iter()
            .map(|(from, to)| Moved {
                from: (*from).to_owned(),
                to: (*to).to_owned(),
                source: Default::default(),
            })
            .collect(),
        ..Spec::default()
    }
}

struct World {
    fake: Arc<FakeHost>,
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        World {
            fake: Arc::new(FakeHost::new(false)),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A spec file `file` (it must exist to be canonicalised).
    fn spec_file(&self, file: &str) -> PathBuf {
        let path = self.dir.path().join(file);
        std::fs::write(&path, "machines: {}\n").expect("write spec");
        path
    }

    /// An engine working on `spec`, read from `file`.
    fn engine(&self, spec: &Spec, file: &str) -> Engine {
        Engine::on(self.fake.clone())
            .with_spec_path(&self.spec_file(file))
            .expect("spec path")
            .for_spec(spec)
    }

    /// Plans and applies every machine of `spec` as `berth apply -f file`
    /// does (recording the spec); returns the plans' action names.
    fn apply(&self, spec: &Spec, file: &str) -> Result<Vec<Vec<&'static str>>, EngineError> {
        let engine = self.engine(spec, file);
        let machines: Vec<&Machine> = spec.machines.values().collect();
        let plan = engine
            .plan(machines.iter().copied())
            .map_err(|mut e| e.remove(0))?;
        for (m, p) in machines.iter().zip(&plan.machines) {
            if !p.actions.is_empty() {
                engine.apply_machine(m, p, false, &Silent)?;
            }
        }
        engine.record_spec(&machines)?;
        Ok(plan
            .machines
            .iter()
            .map(|p| p.actions.iter().map(Action::name).collect())
            .collect())
    }

    fn root(&self, name: &str) -> PathBuf {
        self.fake.paths().machine_root(name)
    }
}

#[test]
fn apply_records_the_spec_and_a_machine_gone_from_it_is_prunable() {
    let w = World::new();
    let (web, db) = (machine("web"), machine("db"));
    w.apply(&spec(&[&web, &db], &[]), "machines.yaml").unwrap();
    let record = w.fake.state().load("db").unwrap().unwrap();
    assert_eq!(
        record.spec,
        Some(std::fs::canonicalize(w.dir.path().join("machines.yaml")).unwrap())
    );

    let engine = w.engine(&spec(&[&web], &[]), "machines.yaml");
    assert_eq!(engine.prunable().unwrap(), ["db"]);
    let plans = engine.plan_prune(&["db".to_owned()]).unwrap();
    let plan = &plans[0];
    assert_eq!(plan.change, ChangeKind::Destroy);
    assert_eq!(plan.reason, Some(DestroyReason::NotInSpec));
    let names: Vec<&str> = plan.actions.iter().map(Action::name).collect();
    assert_eq!(names, ["stop", "destroy"]);
    let destroy = plan.actions.last().unwrap();
    assert_eq!(destroy.describe(), "destroy db (no longer in the spec)");
    let json = serde_json::to_value(plan).unwrap();
    assert_eq!(json["change"], "destroy");
    assert_eq!(json["reason"], "not-in-spec");
    assert_eq!(json["actions"][1]["action"], "destroy");
    assert_eq!(json["actions"][1]["reason"], "not-in-spec");

    // Only with the prune does it go.
    assert!(w.root("db").is_dir());
    assert!(engine.prune(plan, &Silent).unwrap());
    assert!(!w.root("db").exists());
    assert!(w.fake.state().load("db").unwrap().is_none());
    assert!(engine.prunable().unwrap().is_empty());
    assert!(w.root("web").is_dir());
}

#[test]
fn machines_of_another_spec_and_records_without_a_spec_are_never_pruned() {
    let w = World::new();
    let (web, db) = (machine("web"), machine("db"));
    w.apply(&spec(&[&web], &[]), "a.yaml").unwrap();
    w.apply(&spec(&[&db], &[]), "b.yaml").unwrap();
    // a.yaml without web: web is prunable from a.yaml, never db.
    let a = w.engine(&spec(&[], &[]), "a.yaml");
    assert_eq!(a.prunable().unwrap(), ["web"]);
    assert!(a.plan_prune(&["db".to_owned()]).is_err());
    // A record written before berth recorded specs.
    let mut record = w.fake.state().load("web").unwrap().unwrap();
    record.spec = None;
    w.fake.state().save(&record).unwrap();
    assert!(a.prunable().unwrap().is_empty());
    // Without a spec path, nothing at all.
    let bare = Engine::on(w.fake.clone()).for_spec(&spec(&[], &[]));
    assert!(bare.prunable().unwrap().is_empty());
}

#[test]
fn a_recorded_prevent_destroy_warns_in_the_plan_and_refuses_the_prune() {
    let w = World::new();
    let mut db = machine("db");
    db.prevent_destroy = Some(Default::default());
    w.apply(&spec(&[&db], &[]), "machines.yaml").unwrap();
    w.engine(&spec(&[&db], &[]), "machines.yaml")
        .record_prevent_destroy(&[&db])
        .unwrap();
    let engine = w.engine(&spec(&[], &[]), "machines.yaml");
    let plans = engine.plan_prune(&["db".to_owned()]).unwrap();
    assert!(
        plans[0]
            .warnings
            .iter()
            .any(|w| w.to_string().contains("prevent_destroy")),
        "{:?}",
        plans[0].warnings
    );
    let errors = engine.check_prunable(&["db".to_owned()]).unwrap_err();
    assert!(matches!(errors[0], EngineError::PreventDestroy { .. }));
    assert!(errors[0].to_string().contains("prevent_destroy"));
    assert!(matches!(
        engine.prune(&plans[0], &Silent),
        Err(EngineError::PreventDestroy { .. })
    ));
    assert!(w.root("db").is_dir());
}

#[test]
fn a_prune_planned_against_another_record_is_stale() {
    let w = World::new();
    let db = machine("db");
    w.apply(&spec(&[&db], &[]), "machines.yaml").unwrap();
    let engine = w.engine(&spec(&[], &[]), "machines.yaml");
    let plans = engine.plan_prune(&["db".to_owned()]).unwrap();
    let mut record = w.fake.state().load("db").unwrap().unwrap();
    record.added_packages.push("curl".into());
    w.fake.state().save(&record).unwrap();
    assert!(matches!(
        engine.prune(&plans[0], &Silent),
        Err(EngineError::Stale { .. })
    ));
    assert!(w.root("db").is_dir());
}

#[test]
fn a_moved_machine_is_renamed_first_and_a_second_plan_is_clean() {
    let w = World::new();
    let old = machine("old-web");
    w.apply(&spec(&[&old], &[]), "machines.yaml").unwrap();
    // What a plan of an applied machine holds on the fake host (whose
    // systemctl changes nothing).
    let baseline: Vec<&str> = w
        .engine(&spec(&[&old], &[]), "machines.yaml")
        .plan([&old])
        .unwrap()
        .machines[0]
        .actions
        .iter()
        .map(Action::name)
        .collect();
    std::fs::write(w.root("old-web").join("kept"), "data").unwrap();
    let snapshots = crate::drivers::snapshot::snapshots_dir(w.fake.paths(), "old-web");
    std::fs::create_dir_all(snapshots.join("a")).unwrap();
    let settings = w.fake.paths().settings_file("old-web");
    assert!(settings.exists());

    let web = machine("web");
    let moved = spec(&[&web], &[("old-web", "web")]);
    let engine = w.engine(&moved, "machines.yaml");
    // The old name is renamed, not pruned.
    assert!(engine.prunable().unwrap().is_empty());
    let plan = engine.plan([&web]).unwrap();
    let actions = &plan.machines[0].actions;
    assert_eq!(
        actions[0],
        Action::Rename {
            from: "old-web".into(),
            to: "web".into(),
            stop: Some(berth_schema::Launcher::Nspawn),
        }
    );
    assert_eq!(
        actions[0].describe(),
        "rename old-web -> web (stopped first, nspawn)"
    );
    // Stopped by the rename, started again by the plan.
    assert_eq!(actions.last().map(Action::name), Some("start"));
    assert_eq!(plan.machines[0].change, ChangeKind::Update);

    engine
        .apply_machine(&web, &plan.machines[0], false, &Silent)
        .unwrap();
    assert!(!w.root("old-web").exists());
    assert_eq!(
        std::fs::read_to_string(w.root("web").join("kept")).unwrap(),
        "data"
    );
    assert!(!settings.exists());
    assert!(w.fake.paths().settings_file("web").exists());
    assert!(!snapshots.exists());
    assert!(
        crate::drivers::snapshot::snapshots_dir(w.fake.paths(), "web")
            .join("a")
            .is_dir()
    );
    assert!(w.fake.state().load("old-web").unwrap().is_none());
    let record = w.fake.state().load("web").unwrap().unwrap();
    assert_eq!(record.name, "web");
    assert!(record.launch.is_some(), "started again under the new name");

    // The entry can stay: renamed already, it is a no-op.
    let again = engine.plan([&web]).unwrap();
    let names: Vec<&str> = again.machines[0].actions.iter().map(Action::name).collect();
    assert_eq!(names, baseline, "{:?}", again.machines[0].actions);
}

#[test]
fn moved_is_a_no_op_without_the_old_machine_and_an_error_with_both() {
    let w = World::new();
    let web = machine("web");
    let moved = spec(&[&web], &[("old-web", "web")]);
    // Neither exists: web is simply created.
    let plan = w.engine(&moved, "machines.yaml").plan([&web]).unwrap();
    assert_eq!(plan.machines[0].change, ChangeKind::Create);
    assert!(
        !plan.machines[0]
            .actions
            .iter()
            .any(|a| matches!(a, Action::Rename { .. }))
    );
    // Both exist: an error naming both.
    w.apply(&spec(&[&web], &[]), "machines.yaml").unwrap();
    w.apply(&spec(&[&machine("old-web")], &[]), "other.yaml")
        .unwrap();
    let errors = w.engine(&moved, "machines.yaml").plan([&web]).unwrap_err();
    let text = errors[0].to_string();
    assert!(text.contains("both old-web and web exist"), "{text}");
}

#[test]
fn a_stopped_moved_machine_is_renamed_without_a_stop() {
    let w = World::new();
    let mut old = machine("old-web");
    old.state = berth_schema::DesiredState::Stopped;
    w.apply(&spec(&[&old], &[]), "machines.yaml").unwrap();
    let mut web = machine("web");
    web.state = berth_schema::DesiredState::Stopped;
    let moved = spec(&[&web], &[("old-web", "web")]);
    let engine = w.engine(&moved, "machines.yaml");
    let plan = engine.plan([&web]).unwrap();
    let names: Vec<&str> = plan.machines[0].actions.iter().map(Action::name).collect();
    let baseline = ["enable-unit", "mask-unit"];
    assert_eq!(names[0], "rename", "{:?}", plan.machines[0].actions);
    assert_eq!(names[1..], baseline, "{:?}", plan.machines[0].actions);
    engine
        .apply_machine(&web, &plan.machines[0], false, &Silent)
        .unwrap();
    let again = engine.plan([&web]).unwrap();
    let names: Vec<&str> = again.machines[0].actions.iter().map(Action::name).collect();
    assert_eq!(names, baseline);
    assert!(w.root("web").is_dir());
}

#[test]
fn the_planner_puts_the_rename_first() {
    let w = World::new();
    let web = machine("web");
    w.apply(&spec(&[&web], &[]), "machines.yaml").unwrap();
    let mut observed = crate::observe::observe(w.fake.as_ref(), &web).unwrap();
    let plain = crate::planner::plan_machine(&web, &observed, None).unwrap();
    observed.moved_from = Some(crate::model::observed::MovedFrom {
        name: "old".into(),
        running: None,
    });
    let plan = crate::planner::plan_machine(&web, &observed, None).unwrap();
    assert_eq!(
        plan.actions[0],
        Action::Rename {
            from: "old".into(),
            to: "web".into(),
            stop: None
        }
    );
    assert_eq!(plan.actions[1..], plain.actions[..]);
    assert_eq!(
        serde_json::to_value(&plan.actions[0]).unwrap(),
        serde_json::json!({"action": "rename", "from": "old", "to": "web"})
    );
    // The fingerprint says the rename was planned.
    assert!(observed.fingerprint().contains_key("moved"));
}

#[test]
fn a_machine_of_another_spec_is_not_renamed_and_addresses_follow_a_rename() {
    let w = World::new();
    w.apply(&spec(&[&machine("old-web")], &[]), "other.yaml")
        .unwrap();
    let web = machine("web");
    let moved = spec(&[&web], &[("old-web", "web")]);
    let errors = w.engine(&moved, "machines.yaml").plan([&web]).unwrap_err();
    let text = errors[0].to_string();
    assert!(text.contains("not from this spec"), "{text}");
    assert!(w.root("old-web").is_dir());

    // The address berth recorded for old-web is web's once renamed.
    let mut record = w.fake.state().load("old-web").unwrap().unwrap();
    record.address = Some("10.0.0.5/24".into());
    let engine = w.engine(&moved, "other.yaml");
    let renamed = engine.renamed_records(vec![record]);
    assert_eq!(renamed[0].name, "web");
    assert_eq!(renamed[0].address.as_deref(), Some("10.0.0.5/24"));
}
