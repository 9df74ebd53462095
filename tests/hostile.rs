//! Hostile machine roots and hostile spec paths. For every path berth reads
//! or writes inside a root, a root where that path (or a parent) is a
//! symlink to a host path, a relative `../..` link, a dangling link, a
//! directory where a file is expected, or a FIFO: `adopt`, `plan` and
//! `apply` either do the right thing inside the root or fail clearly, never
//! hang, and no host file changes (canaries outside the root keep their
//! content and mtime). Cheap fake roots: no bootstrap, nothing boots.
//! Needs root (fails under CI=true without it).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime};

use crate::fake_root;
use crate::support::{Sandbox, describe, require_root};

/// What a path is supposed to be.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    File,
    Dir,
}

/// How the path is made hostile.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Attack {
    /// A symlink to the canary, by its absolute host path.
    AbsoluteLink,
    /// A symlink climbing out with `../..` to the canary.
    RelativeLink,
    /// A symlink to nothing.
    Dangling,
    /// A directory where a file is expected.
    Directory,
    /// A FIFO (reading it would block forever).
    Fifo,
}

/// Every path berth reads or writes in a Debian root it manages, and what
/// it should be. (`/etc/machine-id` is written only into a new clone of a
/// cached base, never into an existing root: see
/// [`a_hostile_machine_id_in_a_base_never_leads_a_clone_out_of_its_root`].)
const PATHS: &[(&str, Expect)] = &[
    ("etc/hostname", Expect::File),
    ("etc/shadow", Expect::File),
    ("etc/securetty", Expect::File),
    ("etc/os-release", Expect::File),
    ("var/lib/dpkg/status", Expect::File),
    ("usr/lib/systemd/system/foo.service", Expect::File),
    ("etc/systemd/system/bar.service", Expect::File),
    (
        "etc/systemd/system/multi-user.target.wants/foo.service",
        Expect::File,
    ),
    ("etc", Expect::Dir),
    ("etc/systemd", Expect::Dir),
    ("etc/systemd/system", Expect::Dir),
    ("etc/systemd/system/multi-user.target.wants", Expect::Dir),
    ("usr/lib/systemd/system", Expect::Dir),
    ("usr", Expect::Dir),
    ("var/lib/dpkg", Expect::Dir),
];

/// Files and a directory outside the root that must never change.
struct Canaries {
    dir: PathBuf,
    before: Vec<(PathBuf, Vec<u8>, SystemTime)>,
    listing: Vec<String>,
}

impl Canaries {
    fn plant(sandbox: &Sandbox) -> Canaries {
        let dir = sandbox.dir.path().join("host");
        fs::create_dir_all(dir.join("dir")).unwrap();
        fs::write(dir.join("file"), "canary file\n").unwrap();
        fs::write(dir.join("dir/inner"), "canary inner\n").unwrap();
        fs::write(
            dir.join("dir/status"),
            "Package: evil\nStatus: install ok installed\n\n",
        )
        .unwrap();
        let mut canaries = Canaries {
            dir,
            before: Vec::new(),
            listing: Vec::new(),
        };
        canaries.before = canaries.snapshot();
        canaries.listing = canaries.list();
        canaries
    }

    fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>, SystemTime)> {
        ["file", "dir/inner", "dir/status", "dir", ""]
            .iter()
            .map(|rel| {
                let path = self.dir.join(rel);
                let meta = fs::symlink_metadata(&path).unwrap();
                let content = if meta.is_file() {
                    fs::read(&path).unwrap()
                } else {
                    Vec::new()
                };
                (path, content, meta.modified().unwrap())
            })
            .collect()
    }

    fn list(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.dir, &self.dir, &mut out);
        out.sort();
        out
    }

    /// Describes any change since planting.
    fn changes(&self) -> Option<String> {
        let now = self.snapshot();
        if now != self.before {
            return Some(format!(
                "canaries changed:\n before {:?}\n after  {:?}",
                self.before, now
            ));
        }
        let listing = self.list();
        (listing != self.listing).then(|| {
            format!(
                "files appeared outside the root: before {:?}, after {listing:?}",
                self.listing
            )
        })
    }
}

fn walk(top: &Path, dir: &Path, out: &mut Vec<String>) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            out.push(path.strip_prefix(top).unwrap().display().to_string());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(top, &path, out);
            }
        }
    }
}

/// Leftover temp files berth's atomic writes would leave behind.
fn temp_files(dir: &Path) -> Vec<String> {
    let mut all = Vec::new();
    walk(dir, dir, &mut all);
    all.into_iter()
        .filter(|p| p.contains(".berth-tmp-") || p.contains(".tmp-"))
        .collect()
}

/// Plants `attack` at `rel` (replacing whatever the fake root had there).
fn plant(root: &Path, rel: &str, expect: Expect, attack: Attack, canaries: &Path) {
    let path = root.join(rel);
    if let Ok(meta) = fs::symlink_metadata(&path) {
        if meta.is_dir() {
            fs::remove_dir_all(&path).unwrap();
        } else {
            fs::remove_file(&path).unwrap();
        }
    }
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let target = match expect {
        Expect::File => "file",
        Expect::Dir => "dir",
    };
    match attack {
        Attack::AbsoluteLink => symlink(canaries.join(target), &path).unwrap(),
        Attack::RelativeLink => {
            // From the link's directory up past the root (machines/NAME) to
            // the sandbox, then down to the canary: on the host this lands
            // on the canary; inside the root it is clamped at `/`.
            let depth = Path::new(rel).components().count() - 1 + 2;
            let up = "../".repeat(depth);
            symlink(format!("{up}host/{target}"), &path).unwrap();
        }
        Attack::Dangling => symlink("/nonexistent/berth-dangling", &path).unwrap(),
        Attack::Directory => fs::create_dir(&path).unwrap(),
        Attack::Fifo => {
            nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap()
        }
    }
}

/// `berth ARGS` with a deadline: a hang (a FIFO opened for reading) fails the test.
fn berth(sandbox: &Sandbox, args: &[&str]) -> Output {
    assert_cmd::Command::cargo_bin("berth")
        .unwrap()
        .env("BERTH_MACHINES_DIR", sandbox.machines())
        .env("BERTH_STATE_DIR", sandbox.state())
        .env("BERTH_NSPAWN_DIR", sandbox.nspawn())
        .env("BERTH_CACHE_DIR", sandbox.dir.path().join("cache"))
        .env("NO_COLOR", "1")
        .current_dir(sandbox.dir.path())
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap()
}

/// The outcome must be success or a clear error: no panic, no signal, no hang.
fn clear_outcome(what: &str, out: &Output, failures: &mut Vec<String>) -> Option<i32> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let Some(rc) = out.status.code() else {
        failures.push(format!("{what}: killed (a hang?)\n{}", describe(out)));
        return None;
    };
    if stderr.contains("panicked") {
        failures.push(format!("{what}: panicked\n{}", describe(out)));
    }
    if rc == 1 && !stderr.contains("error") {
        failures.push(format!(
            "{what}: failed without an error message\n{}",
            describe(out)
        ));
    }
    if ![0, 1, 2].contains(&rc) {
        failures.push(format!("{what}: unexpected exit {rc}\n{}", describe(out)));
    }
    Some(rc)
}

/// Where a hostile root was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    Adopt,
    Plan,
    Apply,
}

/// What berth did with one hostile root.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Outcome {
    /// apply succeeded and a second plan is empty: fixed inside the root.
    Converges,
    /// The first command that failed, and its error.
    Refused(Stage, String),
}

/// What berth must do with one hostile root: converge, or be refused at a
/// stage with an error containing every one of some substrings.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expected {
    Converges,
    Refused(Stage, &'static [&'static str]),
}

impl Expected {
    /// Whether `outcome` is this.
    fn matches(self, outcome: &Outcome) -> bool {
        match (self, outcome) {
            (Expected::Converges, Outcome::Converges) => true,
            (Expected::Refused(stage, says), Outcome::Refused(at, error)) => {
                stage == *at && says.iter().all(|s| error.contains(s))
            }
            _ => false,
        }
    }
}

/// The exact outcome of every hostile root (the fake root of
/// `crate::fake_root`: no apt-get inside, units foo, bar and baz; the spec
/// enables foo, masks bar, disables baz).
fn expected(rel: &str, attack: Attack) -> Expected {
    use Attack::*;
    use Expected::{Converges, Refused};
    use Stage::*;
    let link = matches!(attack, AbsoluteLink | RelativeLink | Dangling);
    match (rel, attack) {
        // A link is replaced by a file written inside the root.
        ("etc/hostname" | "etc/shadow" | "etc/securetty" | "etc/os-release", _) if link => {
            Converges
        }
        ("etc/hostname", Directory) => Refused(
            Plan,
            &["/etc/hostname in ", "is a directory, not a regular file"],
        ),
        ("etc/hostname", Fifo) => Refused(
            Plan,
            &["/etc/hostname in ", "is a FIFO, not a regular file"],
        ),
        ("etc/shadow", Directory) => Refused(
            Plan,
            &["/etc/shadow in ", "is a directory, not a regular file"],
        ),
        ("etc/shadow", Fifo) => {
            Refused(Plan, &["/etc/shadow in ", "is a FIFO, not a regular file"])
        }
        ("etc/securetty", Directory) => Refused(
            Plan,
            &["/etc/securetty in ", "is a directory, not a regular file"],
        ),
        ("etc/securetty", Fifo) => Refused(
            Plan,
            &["/etc/securetty in ", "is a FIFO, not a regular file"],
        ),
        ("etc/os-release", Directory) => Refused(
            Adopt,
            &["/etc/os-release in ", "is a directory, not a regular file"],
        ),
        ("etc/os-release", Fifo) => Refused(
            Adopt,
            &["/etc/os-release in ", "is a FIFO, not a regular file"],
        ),
        // The package database behind a link is not read: the plan installs
        // the spec's packages, and the fake root has no apt-get to do it.
        ("var/lib/dpkg/status" | "var/lib/dpkg", _) if link => Refused(
            Apply,
            &["machine h: the root has no /usr/bin/apt-get to change its packages with"],
        ),
        ("var/lib/dpkg/status", Directory) => Refused(
            Adopt,
            &[
                "/var/lib/dpkg/status in ",
                "is a directory, not a regular file",
            ],
        ),
        ("var/lib/dpkg/status", Fifo) => Refused(
            Adopt,
            &["/var/lib/dpkg/status in ", "is a FIFO, not a regular file"],
        ),
        ("var/lib/dpkg", Fifo) => Refused(
            Adopt,
            &[
                "/var/lib/dpkg/status in ",
                "a leading component of the path is not a directory",
            ],
        ),
        // A unit file (or its directory) that is not one inside the root is missing.
        ("usr/lib/systemd/system/foo.service", _) => Refused(
            Plan,
            &["unit foo.service does not exist in the machine's root"],
        ),
        ("usr/lib/systemd/system" | "usr", _) if link => Refused(
            Plan,
            &["unit foo.service does not exist in the machine's root"],
        ),
        ("usr/lib/systemd/system", Fifo) => Refused(
            Plan,
            &[
                "/usr/lib/systemd/system/foo.service in ",
                "a leading component of the path is not a directory",
            ],
        ),
        ("usr", Fifo) => Refused(
            Plan,
            &[
                "/usr/local/lib/systemd/system/foo.service in ",
                "a leading component of the path is not a directory",
            ],
        ),
        // systemctl refuses to mask over an existing file, whatever it is.
        ("etc/systemd/system/bar.service", _) => Refused(
            Apply,
            &[
                "systemctl --root=",
                "mask bar.service failed",
                "bar.service\" already exists",
            ],
        ),
        // An enablement link is replaced by the right one.
        ("etc/systemd/system/multi-user.target.wants/foo.service", _) => Converges,
        // /etc a link: berth never writes through it, nor creates /etc.
        ("etc", _) if link => Refused(
            Apply,
            &[
                "cannot write /etc/hostname in ",
                "its parent directory /etc does not exist",
            ],
        ),
        ("etc", Fifo) => Refused(
            Adopt,
            &[
                "/etc/os-release in ",
                "a leading component of the path is not a directory",
            ],
        ),
        // A unit directory that is a link: refused before systemctl runs.
        ("etc/systemd", _) if link => Refused(
            Apply,
            &[
                "/etc/systemd in the root is a symlink",
                "berth refuses to change units here",
            ],
        ),
        ("etc/systemd/system", _) if link => Refused(
            Apply,
            &[
                "/etc/systemd/system in the root is a symlink",
                "berth refuses to change units here",
            ],
        ),
        ("etc/systemd/system/multi-user.target.wants", _) if link => Refused(
            Apply,
            &[
                "/etc/systemd/system/multi-user.target.wants in the root is a symlink",
                "berth refuses to change units here",
            ],
        ),
        ("etc/systemd" | "etc/systemd/system", Fifo) => Refused(
            Plan,
            &[
                "/etc/systemd/system/foo.service in ",
                "a leading component of the path is not a directory",
            ],
        ),
        ("etc/systemd/system/multi-user.target.wants", Fifo) => Refused(
            Plan,
            &[
                "/etc/systemd/system/multi-user.target.wants in ",
                "a leading component of the path is not a directory",
            ],
        ),
        _ => panic!("no expected outcome for {rel} as {attack:?}: add one"),
    }
}

/// One hostile root: adopt, plan, apply, plan again; what came of it.
/// Panics, hangs, unclear errors, changed canaries and temp files left go
/// to `failures`.
fn attack(rel: &str, expect: Expect, attack: Attack, failures: &mut Vec<String>) -> Outcome {
    let what = format!("{rel} as {attack:?}");
    let sandbox = Sandbox::new("hostile");
    let canaries = Canaries::plant(&sandbox);
    let root = sandbox.root("h");
    fake_root::make(&root);
    plant(&root, rel, expect, attack, &canaries.dir);
    let spec = sandbox.spec(&fake_root::spec("h", &fake_root::hash_source()));
    let spec = spec.to_str().unwrap();
    let mut refused = None;
    let mut note = |stage: Stage, rc: Option<i32>, out: &Output| {
        if rc == Some(1) && refused.is_none() {
            refused = Some(Outcome::Refused(
                stage,
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ));
        }
    };

    let adopt = berth(&sandbox, &["adopt", "-f", spec, "h"]);
    let rc = clear_outcome(&format!("{what}: adopt"), &adopt, failures);
    note(Stage::Adopt, rc, &adopt);
    let plan = berth(&sandbox, &["plan", "-f", spec, "--detailed-exitcode"]);
    let rc = clear_outcome(&format!("{what}: plan"), &plan, failures);
    note(Stage::Plan, rc, &plan);
    if let Some(change) = canaries.changes() {
        failures.push(format!("{what}: after plan: {change}"));
    }
    let apply = berth(&sandbox, &["apply", "--yes", "-f", spec]);
    let rc = clear_outcome(&format!("{what}: apply"), &apply, failures);
    note(Stage::Apply, rc, &apply);
    if let Some(change) = canaries.changes() {
        failures.push(format!(
            "{what}: after apply: {change}\n{}",
            describe(&apply)
        ));
    }
    let mut converged = false;
    if rc == Some(0) {
        // It did the right thing inside the root: a second plan is empty.
        let again = berth(&sandbox, &["plan", "-f", spec, "--detailed-exitcode"]);
        converged = again.status.code() == Some(0);
        if !converged {
            failures.push(format!(
                "{what}: apply succeeded but did not converge\n{}",
                describe(&again)
            ));
        }
    }
    let leftovers = [temp_files(&root), temp_files(&sandbox.state())].concat();
    if !leftovers.is_empty() {
        failures.push(format!("{what}: temp files left: {leftovers:?}"));
    }
    match refused {
        Some(outcome) => outcome,
        None if converged => Outcome::Converges,
        None => Outcome::Refused(Stage::Apply, "apply succeeded, plan not empty".into()),
    }
}

/// The attacks that make sense for a path that should be `expect`.
fn attacks(expect: Expect) -> &'static [Attack] {
    match expect {
        Expect::File => &[
            Attack::AbsoluteLink,
            Attack::RelativeLink,
            Attack::Dangling,
            Attack::Directory,
            Attack::Fifo,
        ],
        Expect::Dir => &[
            Attack::AbsoluteLink,
            Attack::RelativeLink,
            Attack::Dangling,
            Attack::Fifo,
        ],
    }
}

#[test]
fn hostile_roots_never_change_host_files_and_fail_clearly() {
    if !require_root("hostile_roots_never_change_host_files_and_fail_clearly") {
        return;
    }
    let mut failures = Vec::new();
    let mut cases = 0;
    let mut converged = 0;
    for &(rel, expect) in PATHS {
        for &a in attacks(expect) {
            let want = expected(rel, a);
            let outcome = attack(rel, expect, a, &mut failures);
            if !want.matches(&outcome) {
                failures.push(format!(
                    "{rel} as {a:?}: expected {want:?}, got {outcome:?}"
                ));
            }
            converged += usize::from(outcome == Outcome::Converges);
            cases += 1;
        }
    }
    // The README's numbers: 68 hostile roots, 17 fixed inside the root.
    assert_eq!(cases, 68, "the number of hostile roots changed");
    assert_eq!(converged, 17, "the number that converge changed");
    assert!(
        failures.is_empty(),
        "{} of {cases} hostile roots went wrong:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// `systemctl --root` resolves unit files inside the root but creates links
/// by plain host paths: a symlinked unit dir would make `enable` write on the
/// host. berth refuses such a root before systemctl runs, names the link,
/// and the host dir stays empty.
#[test]
fn enabling_units_never_writes_through_a_symlinked_unit_dir() {
    if !require_root("enabling_units_never_writes_through_a_symlinked_unit_dir") {
        return;
    }
    for rel in [
        "etc/systemd/system",
        "etc/systemd/system/multi-user.target.wants",
    ] {
        let sandbox = Sandbox::new("systemctl-escape");
        let canaries = Canaries::plant(&sandbox);
        let root = sandbox.root("h");
        fake_root::make(&root);
        let spec = sandbox.spec(&fake_root::spec("h", &fake_root::hash_source()));
        let spec = spec.to_str().unwrap();
        let adopt = berth(&sandbox, &["adopt", "-f", spec, "h"]);
        assert_eq!(adopt.status.code(), Some(0), "{}", describe(&adopt));
        plant(&root, rel, Expect::Dir, Attack::AbsoluteLink, &canaries.dir);
        let apply = berth(&sandbox, &["apply", "--yes", "-f", spec]);
        assert_eq!(apply.status.code(), Some(1), "{rel}: {}", describe(&apply));
        let stderr = String::from_utf8_lossy(&apply.stderr);
        assert!(
            stderr.contains(&format!("/{rel} in the root is a symlink")),
            "{rel}: {stderr}"
        );
        assert_eq!(canaries.changes(), None, "{rel}");
        // The same root without the link is enabled inside the root.
        fs::remove_file(root.join(rel)).unwrap();
        let apply = berth(&sandbox, &["apply", "--yes", "-f", spec]);
        assert_eq!(apply.status.code(), Some(0), "{rel}: {}", describe(&apply));
        assert!(
            fs::symlink_metadata(
                root.join("etc/systemd/system/multi-user.target.wants/foo.service")
            )
            .unwrap()
            .file_type()
            .is_symlink()
        );
        assert_eq!(canaries.changes(), None, "{rel}");
    }
}

/// Package databases behind links: pacman's local db and rpm's db dirs
/// pointing at a host dir (holding a fake db) are not read: the plan still
/// installs the package only the host db lists, and nothing on the host changes.
#[test]
fn package_databases_behind_links_are_not_read() {
    if !require_root("package_databases_behind_links_are_not_read") {
        return;
    }
    let sandbox = Sandbox::new("hostile-db");
    let canaries = sandbox.dir.path().join("host-db");
    fs::create_dir_all(canaries.join("evil-1-1")).unwrap();
    fs::write(canaries.join("evil-1-1/desc"), "%NAME%\nevil\n\n").unwrap();
    fs::write(canaries.join("rpmdb.sqlite"), "not really sqlite").unwrap();
    let before = fs::metadata(canaries.join("evil-1-1/desc"))
        .unwrap()
        .modified()
        .unwrap();

    let arch = sandbox.root("a");
    fs::create_dir_all(arch.join("etc")).unwrap();
    fs::create_dir_all(arch.join("var/lib/pacman")).unwrap();
    fs::write(arch.join("etc/os-release"), "ID=arch\n").unwrap();
    symlink(&canaries, arch.join("var/lib/pacman/local")).unwrap();

    let fedora = sandbox.root("f");
    fs::create_dir_all(arch.join("etc")).unwrap();
    fs::create_dir_all(fedora.join("etc")).unwrap();
    fs::create_dir_all(fedora.join("usr/lib/sysimage")).unwrap();
    fs::create_dir_all(fedora.join("var/lib")).unwrap();
    fs::write(fedora.join("etc/os-release"), "ID=fedora\nVERSION_ID=40\n").unwrap();
    symlink(&canaries, fedora.join("usr/lib/sysimage/rpm")).unwrap();
    symlink("../../../../host-db", fedora.join("var/lib/rpm")).unwrap();
    nix::unistd::mkfifo(
        &fedora.join("root"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();

    let spec = sandbox.spec(
        "machines:\n  a:\n    distro: arch\n    packages: [evil]\n    launcher: nspawn\n    state: stopped\n  \
         f:\n    distro: fedora\n    release: '40'\n    packages: [evil]\n    launcher: nspawn\n    state: stopped\n",
    );
    let spec = spec.to_str().unwrap();
    for name in ["a", "f"] {
        let out = berth(&sandbox, &["adopt", "-f", spec, name]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", describe(&out));
    }
    let out = berth(&sandbox, &["plan", "-f", spec, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for machine in plan["machines"].as_array().unwrap() {
        let text = machine["actions"].to_string();
        assert!(
            text.contains("install-packages") && text.contains("evil"),
            "{}: the host db was read: {text}",
            machine["name"]
        );
    }
    assert_eq!(
        fs::metadata(canaries.join("evil-1-1/desc"))
            .unwrap()
            .modified()
            .unwrap(),
        before
    );
    assert_eq!(
        fs::read_to_string(canaries.join("rpmdb.sqlite")).unwrap(),
        "not really sqlite"
    );
}

/// Spec paths that are not spec files: a directory without yaml, a FIFO,
/// /dev/zero, a symlink to /dev/zero named *.yaml in a spec dir, a file over
/// the 4 MiB limit: `validate` and `plan` refuse each at once, without
/// panic, hang or write.
#[test]
fn hostile_spec_paths_are_refused_without_hang_or_write() {
    let sandbox = Sandbox::new("hostile-spec");
    let top = sandbox.dir.path().join("specs");
    fs::create_dir_all(top.join("empty")).unwrap();
    fs::create_dir_all(top.join("devdir")).unwrap();
    symlink("/dev/zero", top.join("devdir/zero.yaml")).unwrap();
    fs::create_dir_all(top.join("fifodir")).unwrap();
    let mode = nix::sys::stat::Mode::from_bits_truncate(0o644);
    nix::unistd::mkfifo(&top.join("fifodir/m.yaml"), mode).unwrap();
    nix::unistd::mkfifo(&top.join("spec.fifo"), mode).unwrap();
    // Over 4 MiB of otherwise valid YAML.
    let mut huge = String::from("machines:\n");
    let mut i = 0;
    while huge.len() <= 4 * 1024 * 1024 + 1 {
        huge.push_str(&format!(
            "  m{i}:\n    distro: arch\n    launcher: nspawn\n"
        ));
        i += 1;
    }
    fs::write(top.join("huge.yaml"), &huge).unwrap();

    let cases = [
        (top.join("empty"), "no *.yaml files"),
        (top.join("devdir"), "not a regular file"),
        (top.join("fifodir"), "FIFO"),
        (top.join("spec.fifo"), "FIFO"),
        (PathBuf::from("/dev/zero"), "not a regular file"),
        (top.join("huge.yaml"), "too large"),
    ];
    for (path, expected) in &cases {
        for command in ["validate", "plan"] {
            let started = std::time::Instant::now();
            let out = berth(&sandbox, &[command, "-f", path.to_str().unwrap()]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{command} {}: {}",
                path.display(),
                describe(&out)
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
            assert!(
                stderr.contains(expected),
                "{command} {}: expected {expected:?}: {stderr}",
                path.display()
            );
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{command} {}: slow",
                path.display()
            );
        }
    }
    assert!(
        sandbox.written_files().is_empty(),
        "files were written: {:?}",
        sandbox.written_files()
    );
}

/// A guest's /etc/shadow with a bare `root` line (no colon) before the real
/// entry (found by fuzzing): apply sets root's hash once and converges,
/// instead of appending a root line on every run.
#[test]
fn a_shadow_with_a_bare_root_line_converges() {
    if !require_root("a_shadow_with_a_bare_root_line_converges") {
        return;
    }
    let sandbox = Sandbox::new("bare-root");
    let root = sandbox.root("h");
    fake_root::make(&root);
    fs::write(
        root.join("etc/shadow"),
        "root\ndaemon:*:19000:0:99999:7:::\n",
    )
    .unwrap();
    let spec = sandbox.spec(&fake_root::spec("h", &fake_root::hash_source()));
    let spec = spec.to_str().unwrap();
    let out = berth(&sandbox, &["adopt", "-f", spec, "h"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    for _ in 0..2 {
        let out = berth(&sandbox, &["apply", "--yes", "-f", spec]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    }
    let out = berth(&sandbox, &["plan", "-f", spec, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let shadow = fs::read_to_string(root.join("etc/shadow")).unwrap();
    assert_eq!(
        shadow.lines().filter(|l| l.starts_with("root:")).count(),
        1,
        "{shadow}"
    );
    assert!(
        shadow.starts_with("root\n"),
        "the guest's own line was changed: {shadow}"
    );
}

/// berth writes `/etc/machine-id` only into a new clone of a cached base
/// (a fresh random id, through the confined writer), so that is where a
/// hostile machine-id is tested: a base whose `/etc/machine-id` is a link
/// out (absolute or `../..`), a dangling link, a directory or a FIFO. The
/// base comes from a stand-in `debootstrap` first on PATH that copies a
/// fake root with the planted path into berth's staging directory, so the
/// real bootstrap, cache and clone code runs. A link is replaced by a file
/// in the clone, and the canary it pointed at keeps its content and mtime;
/// a directory or a FIFO is refused, leaving no machine and no staging dir.
#[test]
fn a_hostile_machine_id_in_a_base_never_leads_a_clone_out_of_its_root() {
    // Alone: the overlay roots are mounted in the host's mount namespace.
    let _alone = crate::support::exclusive();
    if !require_root("a_hostile_machine_id_in_a_base_never_leads_a_clone_out_of_its_root") {
        return;
    }
    // A clone of the base, and an overlay on it (the id is written through
    // the overlay into the machine's own layer).
    for (storage, attack) in ["copy", "overlay"]
        .into_iter()
        .flat_map(|storage| attacks(Expect::File).iter().map(move |a| (storage, a)))
    {
        let what = format!("/etc/machine-id as {attack:?}, storage: {storage}");
        let sandbox = Sandbox::new("hostile-machine-id");
        let canaries = Canaries::plant(&sandbox);
        let template = sandbox.dir.path().join("template");
        fake_root::make(&template);
        plant(
            &template,
            "etc/machine-id",
            Expect::File,
            *attack,
            &canaries.dir,
        );
        let bin = sandbox.dir.path().join("bin");
        fs::create_dir_all(&bin).unwrap();
        let fake = bin.join("debootstrap");
        fs::write(
            &fake,
            format!(
                "#!/bin/sh\n# A stand-in debootstrap: the fake root into the target (the last argument).\n\
                 for target; do :; done\nmkdir -p \"$target\" && cp -a '{}'/. \"$target\"/\n",
                template.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        sandbox.spec(&format!(
            "{}    storage: {storage}\n",
            fake_root::spec("h", &fake_root::hash_source())
        ));

        let apply = sandbox
            .berth_cmd()
            .env("PATH", &path)
            .args(["apply", "--yes"])
            .run();
        // The bootstrap was the stand-in, and went into the cache.
        apply.stderr_has("$ debootstrap --variant=minbase");
        if let Some(change) = canaries.changes() {
            panic!("{what}: {change}\n{}", describe(apply.output()));
        }
        let root = sandbox.root("h");
        // A stopped overlay machine is unmounted: its files are in its layer.
        let layers = sandbox.machines().join(".h.overlay");
        let files = if storage == "overlay" {
            layers.join("upper")
        } else {
            root.clone()
        };
        match attack {
            Attack::AbsoluteLink | Attack::RelativeLink | Attack::Dangling => {
                apply.success();
                let id_path = files.join("etc/machine-id");
                let meta = fs::symlink_metadata(&id_path).unwrap();
                assert!(meta.is_file(), "{what}: {meta:?}");
                let id = fs::read_to_string(&id_path).unwrap();
                let id = id
                    .strip_suffix('\n')
                    .unwrap_or_else(|| panic!("{what}: {id:?}"));
                assert!(
                    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{what}: machine-id {id:?}"
                );
                sandbox
                    .berth_cmd()
                    .args(["plan", "--detailed-exitcode"])
                    .run()
                    .code(0);
            }
            Attack::Directory => {
                apply
                    .code(1)
                    .stderr_has("/etc/machine-id in ")
                    .stderr_has("is a directory");
                assert!(!root.exists(), "{what}: a machine was made");
                assert!(!layers.exists(), "{what}: overlay layers were left");
            }
            Attack::Fifo => {
                apply
                    .code(1)
                    .stderr_has("/etc/machine-id in ")
                    .stderr_has("is a FIFO");
                assert!(!root.exists(), "{what}: a machine was made");
                assert!(!layers.exists(), "{what}: overlay layers were left");
            }
        }
        let staging: Vec<String> = sandbox
            .staging_left()
            .into_iter()
            .filter(|n| n != ".h.overlay")
            .collect();
        assert_eq!(staging, Vec::<String>::new(), "{what}: staging left");
        let mounted = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounted.contains(&sandbox.dir.path().display().to_string()),
            "{what}: a mount was left: {mounted}"
        );
        sandbox
            .berth_cmd()
            .args(["destroy", "--yes", "h"])
            .run()
            .success();
        let leftovers = [
            temp_files(&sandbox.machines()),
            temp_files(&sandbox.state()),
        ]
        .concat();
        assert!(
            leftovers.is_empty(),
            "{what}: temp files left: {leftovers:?}"
        );
    }
}

/// `files:` targets in hostile roots: a parent that is a link out of the
/// root (absolute or `../..`), a target that is a link out, a FIFO, a
/// parent that is a FIFO, a directory to remove holding a link out. Each
/// is refused at plan, or done inside the root (a second plan empty); no
/// host file changes, no temp file is left.
#[test]
fn files_targets_in_hostile_roots_stay_inside_the_root() {
    if !require_root("files_targets_in_hostile_roots_stay_inside_the_root") {
        return;
    }
    type Setup = fn(&Path, &Path);
    let cases: &[(&str, Setup, &str, Expected)] = &[
        (
            "parent an absolute link out",
            |root, host| symlink(host.join("dir"), root.join("etc/app")).unwrap(),
            "      /etc/app/app.conf:\n        content: x\n",
            Expected::Refused(
                Stage::Plan,
                &["its parent directory /etc/app does not exist"],
            ),
        ),
        (
            "parent a relative link out",
            |root, _| symlink("../../../host/dir", root.join("etc/app")).unwrap(),
            "      /etc/app/app.conf:\n        content: x\n",
            Expected::Refused(
                Stage::Plan,
                &["its parent directory /etc/app does not exist"],
            ),
        ),
        (
            "parent a link out, the spec wants a directory there",
            |root, host| symlink(host.join("dir"), root.join("etc/app")).unwrap(),
            "      /etc/app:\n        type: directory\n      /etc/app/app.conf:\n        content: x\n",
            Expected::Refused(
                Stage::Plan,
                &[
                    "files /etc/app: the spec wants a directory but a link to ",
                    "set replace: true",
                ],
            ),
        ),
        (
            "parent a link out, replaced by a directory",
            |root, host| symlink(host.join("dir"), root.join("etc/app")).unwrap(),
            "      /etc/app:\n        type: directory\n        replace: true\n      \
             /etc/app/inner:\n        content: x\n",
            Expected::Converges,
        ),
        (
            "target a link out",
            |root, host| symlink(host.join("file"), root.join("etc/app.conf")).unwrap(),
            "      /etc/app.conf:\n        content: x\n        mode: \"0600\"\n",
            Expected::Converges,
        ),
        (
            "target a relative link out, made a link",
            |root, _| symlink("../../../host/file", root.join("etc/app.conf")).unwrap(),
            "      /etc/app.conf:\n        link: /etc/hostname\n",
            Expected::Converges,
        ),
        (
            "target a link out, absent",
            |root, host| symlink(host.join("file"), root.join("etc/app.conf")).unwrap(),
            "      /etc/app.conf:\n        state: absent\n",
            Expected::Converges,
        ),
        (
            "a tree to remove holding links out",
            |root, host| {
                fs::create_dir_all(root.join("srv/old/sub")).unwrap();
                symlink(host.join("dir"), root.join("srv/old/sub/dir")).unwrap();
                symlink(host.join("file"), root.join("srv/old/file")).unwrap();
            },
            "      /srv/old:\n        state: absent\n        replace: true\n",
            Expected::Converges,
        ),
        (
            "target a FIFO",
            |root, _| {
                nix::unistd::mkfifo(
                    &root.join("etc/app.conf"),
                    nix::sys::stat::Mode::from_bits_truncate(0o644),
                )
                .unwrap()
            },
            "      /etc/app.conf:\n        content: x\n",
            Expected::Refused(
                Stage::Plan,
                &["files /etc/app.conf: the spec wants a file but a special file is there"],
            ),
        ),
        (
            "parent a FIFO",
            |root, _| {
                nix::unistd::mkfifo(
                    &root.join("etc/app"),
                    nix::sys::stat::Mode::from_bits_truncate(0o644),
                )
                .unwrap()
            },
            "      /etc/app/app.conf:\n        content: x\n",
            Expected::Refused(
                Stage::Plan,
                &[
                    "files /etc/app/app.conf: ",
                    "a leading component of the path is not a directory",
                ],
            ),
        ),
    ];
    let mut failures = Vec::new();
    for (what, setup, files, want) in cases {
        let sandbox = Sandbox::new("hostile-files");
        let canaries = Canaries::plant(&sandbox);
        let root = sandbox.root("h");
        fake_root::make(&root);
        setup(&root, &canaries.dir);
        let spec = sandbox.spec(&format!(
            "{}    files:\n{files}",
            fake_root::spec("h", &fake_root::hash_source())
        ));
        let spec = spec.to_str().unwrap();
        let mut refused = None;
        let mut converged = false;
        for (stage, args) in [
            (Stage::Adopt, vec!["adopt", "-f", spec, "h"]),
            (Stage::Plan, vec!["plan", "-f", spec, "--detailed-exitcode"]),
            (Stage::Apply, vec!["apply", "--yes", "-f", spec]),
        ] {
            let out = berth(&sandbox, &args);
            let rc = clear_outcome(&format!("{what}: {stage:?}"), &out, &mut failures);
            if let Some(change) = canaries.changes() {
                failures.push(format!("{what}: after {stage:?}: {change}"));
            }
            if rc == Some(1) {
                refused = Some(Outcome::Refused(
                    stage,
                    String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                ));
                break;
            }
            if stage == Stage::Apply {
                let again = berth(&sandbox, &["plan", "-f", spec, "--detailed-exitcode"]);
                converged = again.status.code() == Some(0);
                if !converged {
                    failures.push(format!("{what}: did not converge\n{}", describe(&again)));
                }
            }
        }
        let outcome = refused.unwrap_or(if converged {
            Outcome::Converges
        } else {
            Outcome::Refused(Stage::Apply, "apply succeeded, plan not empty".into())
        });
        if !want.matches(&outcome) {
            failures.push(format!("{what}: expected {want:?}, got {outcome:?}"));
        }
        let leftovers = temp_files(&root);
        if !leftovers.is_empty() {
            failures.push(format!("{what}: temp files left: {leftovers:?}"));
        }
        // What converged is inside the root.
        if outcome == Outcome::Converges {
            let inside = |rel: &str| fs::symlink_metadata(root.join(rel));
            match *what {
                "parent a link out, replaced by a directory" => {
                    assert!(inside("etc/app").unwrap().is_dir(), "{what}");
                    assert!(inside("etc/app/inner").unwrap().is_file(), "{what}");
                }
                "target a link out" => {
                    assert!(inside("etc/app.conf").unwrap().is_file(), "{what}")
                }
                "target a relative link out, made a link" => assert_eq!(
                    fs::read_link(root.join("etc/app.conf")).unwrap(),
                    Path::new("/etc/hostname")
                ),
                "target a link out, absent" => assert!(inside("etc/app.conf").is_err(), "{what}"),
                "a tree to remove holding links out" => {
                    assert!(inside("srv/old").is_err(), "{what}")
                }
                _ => {}
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} hostile files: cases went wrong:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
