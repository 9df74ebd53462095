//! Planning `files:`: each managed path as observed against what the spec
//! wants ([`Inputs`]), as typed actions that run after packages (and the
//! spec's users) and before unit changes, so a unit file written here can
//! be enabled in the same apply.
//!
//! - A file is written when its contents differ (or it is missing); only
//!   its mode, owner or group are set when only they differ. Mode, owner
//!   and group are enforced: left out of the spec they mean 0644 (0600 for
//!   a secret, 0755 for a directory) and root.
//! - Owners and groups resolve in the guest's accounts. A name the guest
//!   lacks is an error, unless this apply may create it (the spec's
//!   `users:`, a package being installed, a root being made): the action
//!   carries the name and apply resolves it.
//! - Files and links replace each other; a directory where a file or link
//!   should be (or a file, link or special file where a directory should
//!   be, or a special file anywhere) is an error unless `replace: true`.
//! - `state: absent` removes a file, a link, a special file or an empty
//!   directory; a directory with entries only with `replace: true` (with
//!   everything in it).
//! - Parents are never created: a missing parent is an error unless the
//!   spec lists it as a directory (entries are applied parents first).
//! - Paths the spec no longer lists are left alone.

use std::collections::BTreeSet;
use std::path::Path;

use berth_schema::{Machine, ManagedFile};

use crate::drivers::files::accounts::{self, Accounts};
use crate::drivers::files::observe::{Contents, EntryObservation, Found};
use crate::drivers::files::{
    AttributeChange, Attributes, ContentKind, DEFAULT_DIR_MODE, DEFAULT_FILE_MODE, DEFAULT_OWNER,
    DEFAULT_SECRET_MODE, DirectoryCreation, Existing, FileBytes, FileWrite, LinkChange, Removal,
    octal,
};
use crate::inputs::{Inputs, Wanted};
use crate::model::action::Action;
use crate::model::observed::Observed;
use crate::model::plan::ChangeKind;

/// Plans `machine`'s `files:` against `observed` (nothing is known of a
/// root that `change` creates or replaces) and inserts the actions before
/// the first unit change in `actions` (after it when there is none).
pub(super) fn plan(
    machine: &Machine,
    observed: &Observed,
    inputs: &Inputs,
    change: ChangeKind,
    actions: &mut Vec<Action>,
) -> Result<(), String> {
    if machine.files.is_empty() {
        return Ok(());
    }
    if inputs.files.len() != machine.files.len() {
        return Err("files: the spec's inputs were not resolved before planning".to_owned());
    }
    let fresh = matches!(change, ChangeKind::Create | ChangeKind::Replace);
    if !fresh && observed.files.entries.len() != machine.files.len() {
        return Err("files: the managed paths were not observed".to_owned());
    }
    let mut seen = BTreeSet::new();
    for file in &machine.files {
        if !seen.insert(&file.path) {
            return Err(format!(
                "files {}: listed twice ({})",
                file.path.display(),
                file.source
            ));
        }
    }
    let planner = Planner {
        machine,
        accounts: &observed.files.accounts,
        shift: observed.files.shift,
        // Names this apply may still create: resolved when it runs.
        defer: fresh
            || actions.iter().any(|a| {
                matches!(
                    a,
                    Action::InstallPackages { .. }
                        | Action::Bootstrap { .. }
                        | Action::Clone { .. }
                        | Action::CreateUser { .. }
                )
            }),
        spec_dirs: machine
            .files
            .iter()
            .zip(&inputs.files)
            .filter(|(_, wanted)| matches!(wanted, Wanted::Directory))
            .map(|(file, _)| file.path.as_path())
            .collect(),
    };
    let mut writes = Vec::new();
    let mut removals = Vec::new();
    for (i, (file, wanted)) in machine.files.iter().zip(&inputs.files).enumerate() {
        let found = if fresh {
            None
        } else {
            observed.files.entries.get(i)
        };
        match planner.entry(file, wanted, found)? {
            Some(action @ Action::RemoveFile(_)) => removals.push((depth(&file.path), action)),
            Some(action) => writes.push((depth(&file.path), action)),
            None => {}
        }
    }
    // Parents before children; removals after, children first.
    writes.sort_by_key(|(depth, _)| *depth);
    removals.sort_by_key(|(depth, _)| std::cmp::Reverse(*depth));
    let at = actions
        .iter()
        .position(|a| {
            matches!(
                a,
                Action::EnableUnit { .. }
                    | Action::DisableUnit { .. }
                    | Action::MaskUnit { .. }
                    | Action::UnmaskUnit { .. }
            )
        })
        .unwrap_or(actions.len());
    actions.splice(
        at..at,
        writes.into_iter().chain(removals).map(|(_, action)| action),
    );
    Ok(())
}

fn depth(path: &Path) -> usize {
    path.components().count()
}

struct Planner<'a> {
    machine: &'a Machine,
    accounts: &'a Accounts,
    shift: Option<(u32, u32)>,
    defer: bool,
    spec_dirs: BTreeSet<&'a Path>,
}

/// What kind of entry the spec wants, for messages.
fn wanted_kind(wanted: &Wanted) -> &'static str {
    match wanted {
        Wanted::Bytes(_) | Wanted::Secret(_) => "a file",
        Wanted::Directory => "a directory",
        Wanted::Link(_) => "a link",
        Wanted::Absent => "nothing",
    }
}

impl Planner<'_> {
    /// The action for one entry, if it needs one.
    fn entry(
        &self,
        file: &ManagedFile,
        wanted: &Wanted,
        found: Option<&EntryObservation>,
    ) -> Result<Option<Action>, String> {
        let path = file.path.to_string_lossy().into_owned();
        let err = |message: String| format!("{}: files {path}: {message}", file.source);
        let attributes = self.attributes(file, wanted);
        let Some(entry) = found else {
            // A root not made yet: what the new root holds decides at apply.
            return Ok(Some(self.create(
                file,
                wanted,
                attributes,
                Existing::Unknown,
            )));
        };
        if let Found::Unreachable(why) = &entry.found {
            return Err(err(why.clone()));
        }
        if let Wanted::Absent = wanted {
            return self.absent(file, &entry.found).map_err(err);
        }
        // The spec's names must exist in the guest (or be made by this apply).
        self.check_names(file).map_err(err)?;
        let existing = self.existing(&entry.found, wanted);
        let replace_needed = match (&entry.found, wanted) {
            (Found::Absent, _) => {
                let parent = file.path.parent().unwrap_or(Path::new("/"));
                if !entry.parent_exists && !self.spec_dirs.contains(parent) {
                    return Err(err(format!(
                        "its parent directory {} does not exist in the machine; list it in \
                         files: as a directory (berth does not create parent directories)",
                        parent.display()
                    )));
                }
                false
            }
            (Found::Directory { .. }, Wanted::Directory) => false,
            (Found::Directory { .. }, _) | (Found::Special, _) => true,
            (Found::File { .. } | Found::Link { .. }, Wanted::Directory) => true,
            _ => false,
        };
        if replace_needed && !file.replace {
            let there = match &entry.found {
                Found::Directory { empty: true, .. } => "an empty directory".to_owned(),
                Found::Directory { .. } => "a directory (not empty)".to_owned(),
                Found::File { .. } => "a file".to_owned(),
                Found::Link { target } => format!("a link to {target}"),
                _ => "a special file".to_owned(),
            };
            return Err(err(format!(
                "the spec wants {} but {there} is there; set replace: true to replace it",
                wanted_kind(wanted)
            )));
        }
        Ok(match (&entry.found, wanted) {
            (Found::File { .. }, Wanted::Bytes(_) | Wanted::Secret(_))
            | (Found::Directory { .. }, Wanted::Directory) => {
                self.update(file, wanted, entry, attributes)
            }
            (Found::Link { target }, Wanted::Link(want)) if target == want => None,
            _ => Some(self.create(file, wanted, attributes, existing)),
        })
    }

    /// The mode, owner and group the spec wants (defaults filled in).
    fn attributes(&self, file: &ManagedFile, wanted: &Wanted) -> Attributes {
        let default_mode = match wanted {
            Wanted::Secret(_) => DEFAULT_SECRET_MODE,
            Wanted::Directory => DEFAULT_DIR_MODE,
            _ => DEFAULT_FILE_MODE,
        };
        Attributes {
            mode: file.mode.unwrap_or(default_mode) & 0o7777,
            owner: file.owner.clone().unwrap_or_else(|| DEFAULT_OWNER.into()),
            group: file.group.clone().unwrap_or_else(|| DEFAULT_OWNER.into()),
        }
    }

    /// Whether a name the guest lacks may be created by this apply.
    fn may_be_created(&self, name: &str) -> bool {
        self.defer
            || self
                .machine
                .users
                .iter()
                .any(|user| user.present && user.name == name)
    }

    /// Owner and group must exist in the guest, or be made by this apply.
    fn check_names(&self, file: &ManagedFile) -> Result<(), String> {
        if let Some(owner) = &file.owner
            && self.accounts.uid(owner).is_none()
            && !self.may_be_created(owner)
        {
            return Err(format!(
                "owner {owner} does not exist in the guest's /etc/passwd (and the spec's users: \
                 do not create it)"
            ));
        }
        if let Some(group) = &file.group
            && self.accounts.gid(group).is_none()
            && !self.may_be_created(group)
        {
            return Err(format!(
                "group {group} does not exist in the guest's /etc/group (and the spec's users: \
                 do not create it)"
            ));
        }
        Ok(())
    }

    /// What is there, for the plan; a secret's file shows no size or hash.
    fn existing(&self, found: &Found, wanted: &Wanted) -> Existing {
        match found {
            Found::Absent | Found::Unreachable(_) => Existing::Absent,
            Found::File { size, contents, .. } => match (contents, wanted) {
                (Contents::Secret { .. }, _) | (_, Wanted::Secret(_)) => Existing::File {
                    size: None,
                    sha256: None,
                },
                (Contents::Read(bytes), _) => Existing::File {
                    size: Some(*size),
                    sha256: Some(bytes.sha256()),
                },
                _ => Existing::File {
                    size: Some(*size),
                    sha256: None,
                },
            },
            Found::Directory { empty, .. } => Existing::Directory { empty: *empty },
            Found::Link { target } => Existing::Link {
                target: target.clone(),
            },
            Found::Special => Existing::Special {
                what: "special file".into(),
            },
        }
    }

    /// The action that makes the entry from scratch (or over `existing`).
    fn create(
        &self,
        file: &ManagedFile,
        wanted: &Wanted,
        attributes: Attributes,
        existing: Existing,
    ) -> Action {
        let path = file.path.to_string_lossy().into_owned();
        match wanted {
            Wanted::Bytes(bytes) => Action::WriteFile(file_write(
                path,
                Some(bytes),
                attributes,
                existing,
                Vec::new(),
                None,
            )),
            Wanted::Secret(_) => Action::WriteFile(file_write(
                path,
                None,
                attributes,
                existing,
                Vec::new(),
                None,
            )),
            Wanted::Directory => Action::MakeDirectory(DirectoryCreation {
                path,
                attributes,
                existing,
            }),
            Wanted::Link(target) => Action::MakeLink(LinkChange {
                path,
                target: target.clone(),
                existing,
            }),
            Wanted::Absent => Action::RemoveFile(Removal {
                path,
                existing,
                recursive: file.replace,
            }),
        }
    }

    /// `state: absent`.
    fn absent(&self, file: &ManagedFile, found: &Found) -> Result<Option<Action>, String> {
        let path = file.path.to_string_lossy().into_owned();
        let existing = match found {
            Found::Absent => return Ok(None),
            Found::Directory { empty: false, .. } if !file.replace => {
                return Err(
                    "state: absent, but it is a directory that is not empty; set replace: true \
                     to remove it with everything in it"
                        .to_owned(),
                );
            }
            found => self.existing(found, &Wanted::Absent),
        };
        Ok(Some(Action::RemoveFile(Removal {
            path,
            existing,
            recursive: file.replace && matches!(found, Found::Directory { empty: false, .. }),
        })))
    }

    /// An existing file or directory of the right kind: its contents, then
    /// its attributes.
    fn update(
        &self,
        file: &ManagedFile,
        wanted: &Wanted,
        entry: &EntryObservation,
        attributes: Attributes,
    ) -> Option<Action> {
        let path = file.path.to_string_lossy().into_owned();
        let (mode, uid, gid, contents) = match &entry.found {
            Found::File {
                mode,
                uid,
                gid,
                contents,
                ..
            } => (*mode, *uid, *gid, Some(contents)),
            Found::Directory { mode, uid, gid, .. } => (*mode, *uid, *gid, None),
            _ => return None,
        };
        let changes = self.attribute_changes(&attributes, mode, uid, gid);
        let same_contents = match (contents, wanted) {
            (None, _) => true,
            (Some(Contents::Read(now)), Wanted::Bytes(want)) => now == want,
            (Some(Contents::Secret { matches }), Wanted::Secret(_)) => *matches,
            _ => false,
        };
        if !same_contents {
            let before = match contents {
                Some(Contents::Read(now)) if !matches!(wanted, Wanted::Secret(_)) => Some(now),
                _ => None,
            };
            let bytes = match wanted {
                Wanted::Bytes(bytes) => Some(bytes),
                _ => None,
            };
            return Some(Action::WriteFile(file_write(
                path,
                bytes,
                attributes,
                self.existing(&entry.found, wanted),
                changes,
                before.cloned(),
            )));
        }
        (!changes.is_empty()).then(|| {
            Action::SetFileAttributes(AttributeChange {
                path,
                attributes,
                changes,
                directory: contents.is_none(),
            })
        })
    }

    /// `mode 0644 -> 0640`, `owner root -> www-data`, ... for what differs
    /// (an owner the guest lacks yet always shows: apply resolves it).
    fn attribute_changes(&self, wanted: &Attributes, mode: u32, uid: u32, gid: u32) -> Vec<String> {
        let mut changes = Vec::new();
        if mode != wanted.mode {
            changes.push(format!("mode {} -> {}", octal(mode), octal(wanted.mode)));
        }
        let guest_uid = accounts::to_guest(uid, self.shift.map(|s| s.0));
        if self.accounts.uid(&wanted.owner) != Some(guest_uid) {
            changes.push(format!(
                "owner {} -> {}",
                self.accounts.user_name(guest_uid),
                wanted.owner
            ));
        }
        let guest_gid = accounts::to_guest(gid, self.shift.map(|s| s.1));
        if self.accounts.gid(&wanted.group) != Some(guest_gid) {
            changes.push(format!(
                "group {} -> {}",
                self.accounts.group_name(guest_gid),
                wanted.group
            ));
        }
        changes
    }
}

/// A [`FileWrite`] of `bytes` (None: a secret).
fn file_write(
    path: String,
    bytes: Option<&FileBytes>,
    attributes: Attributes,
    existing: Existing,
    attribute_changes: Vec<String>,
    before: Option<FileBytes>,
) -> FileWrite {
    let kind = match bytes {
        None => ContentKind::Secret,
        Some(bytes) if bytes.as_text().is_some() => ContentKind::Text,
        Some(_) => ContentKind::Binary,
    };
    FileWrite {
        path,
        kind,
        sensitive: bytes.is_none(),
        size: bytes.map(FileBytes::len),
        sha256: bytes.map(FileBytes::sha256),
        attributes,
        existing,
        attribute_changes,
        contents: bytes.cloned(),
        before,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use berth_schema::{FileContent, SecretSource, Source, User};

    use super::*;
    use crate::drivers::files::SecretBytes;
    use crate::drivers::files::observe::FilesObservation;
    use crate::model::action::Effect;
    use crate::planner::tests::{converged, secret};
    use crate::planner::{MachinePlan, plan_machine_with};

    fn file(path: &str, content: FileContent) -> ManagedFile {
        ManagedFile {
            path: PathBuf::from(path),
            content,
            mode: None,
            owner: None,
            group: None,
            replace: false,
            source: Source {
                file: PathBuf::from("machines.yaml"),
                line: Some(20),
                column: Some(7),
            },
        }
    }

    fn text(s: &str) -> Wanted {
        Wanted::Bytes(FileBytes::new(s.as_bytes().to_vec()))
    }

    fn accounts() -> Accounts {
        let ids =
            |pairs: &[(&str, u32)]| pairs.iter().map(|(n, i)| ((*n).to_owned(), *i)).collect();
        Accounts {
            users: ids(&[("root", 0), ("www-data", 33)]),
            groups: ids(&[("root", 0), ("www-data", 33)]),
        }
    }

    fn regular(contents: Contents, mode: u32, gid: u32) -> Found {
        Found::File {
            mode,
            uid: 0,
            gid,
            size: 3,
            nlink: 1,
            contents,
        }
    }

    /// Plans `files` with `wanted` against a converged root where each
    /// path holds `found`.
    fn plan(
        files: Vec<ManagedFile>,
        wanted: Vec<Wanted>,
        found: Vec<Found>,
    ) -> Result<MachinePlan, String> {
        let mut m = crate::testing::web();
        let mut observed = converged();
        observed.files = FilesObservation {
            entries: files
                .iter()
                .zip(found)
                .map(|(f, found)| EntryObservation {
                    path: f.path.display().to_string(),
                    parent_exists: true,
                    found,
                })
                .collect(),
            shift: None,
            accounts: accounts(),
        };
        m.files = files;
        let inputs = Inputs {
            files: wanted,
            warnings: Vec::new(),
        };
        plan_machine_with(&m, &observed, Some(&secret()), &inputs, &Default::default())
            .map_err(|e| e.to_string())
    }

    fn only(plan: &MachinePlan) -> &Action {
        assert_eq!(plan.actions.len(), 1, "{:?}", plan.actions);
        &plan.actions[0]
    }

    #[test]
    fn a_new_text_file_is_created_with_a_diff_and_its_attributes() {
        let mut f = file("/etc/app.conf", FileContent::Content("a\n".into()));
        f.mode = Some(0o640);
        f.group = Some("www-data".into());
        let plan = plan(vec![f], vec![text("a\n")], vec![Found::Absent]).unwrap();
        let action = only(&plan);
        assert_eq!(action.name(), "write-file");
        assert_eq!(action.effect(), Effect::Create);
        assert_eq!(
            action.describe(),
            "create /etc/app.conf (mode 0640, owner root, group www-data)"
        );
        assert_eq!(
            action.file_change(),
            Some(("/etc/app.conf".into(), String::new(), "a\n".into()))
        );
        let json = serde_json::to_value(action).unwrap();
        assert_eq!(json["action"], "write-file");
        assert_eq!(json["kind"], "text");
        assert_eq!(json["mode"], "0640");
        assert_eq!(json["existing"]["kind"], "absent");
    }

    #[test]
    fn a_converged_file_plans_nothing_and_drift_shows_a_diff_or_attributes() {
        let f = file("/etc/app.conf", FileContent::Content("new\n".into()));
        let same = regular(Contents::Read(FileBytes::new(b"new\n".to_vec())), 0o644, 0);
        let plan_ = plan(vec![f.clone()], vec![text("new\n")], vec![same]).unwrap();
        assert!(plan_.actions.is_empty(), "{:?}", plan_.actions);

        let edited = regular(Contents::Read(FileBytes::new(b"old\n".to_vec())), 0o644, 0);
        let plan_ = plan(vec![f.clone()], vec![text("new\n")], vec![edited]).unwrap();
        let action = only(&plan_);
        assert_eq!(action.describe(), "update /etc/app.conf");
        assert_eq!(action.effect(), Effect::Change);
        assert_eq!(
            action.file_change(),
            Some(("/etc/app.conf".into(), "old\n".into(), "new\n".into()))
        );

        let chmodded = regular(Contents::Read(FileBytes::new(b"new\n".to_vec())), 0o600, 33);
        let plan_ = plan(vec![f], vec![text("new\n")], vec![chmodded]).unwrap();
        let action = only(&plan_);
        assert_eq!(action.name(), "set-file-attributes");
        assert_eq!(
            action.describe(),
            "set mode 0600 -> 0644, group www-data -> root on /etc/app.conf"
        );
        assert_eq!(action.file_change(), None);
    }

    #[test]
    fn binary_files_show_size_and_hash_and_secrets_nothing() {
        let f = file("/usr/bin/tool", FileContent::Source(PathBuf::from("tool")));
        let plan_ = plan(
            vec![f],
            vec![Wanted::Bytes(FileBytes::new(vec![0, 1, 2]))],
            vec![Found::Absent],
        )
        .unwrap();
        let shown = only(&plan_).describe();
        assert!(
            shown.starts_with("create /usr/bin/tool (binary: size 3, sha256 ae4b3280"),
            "{shown}"
        );
        assert_eq!(only(&plan_).file_change(), None);

        let s = file(
            "/etc/token",
            FileContent::Secret(SecretSource::Env("TOKEN".into())),
        );
        let wanted = || vec![Wanted::Secret(SecretBytes::new(b"hunter2".to_vec()))];
        let plan_ = plan(vec![s.clone()], wanted(), vec![Found::Absent]).unwrap();
        let action = only(&plan_);
        assert_eq!(
            action.describe(),
            "create /etc/token (sensitive; mode 0600, owner root, group root)"
        );
        assert_eq!(action.file_change(), None);
        let text = format!(
            "{} {:?} {}",
            action.describe(),
            plan_,
            serde_json::to_string(&plan_).unwrap()
        );
        assert!(!text.contains("hunter2"), "{text}");
        let json = serde_json::to_value(action).unwrap();
        assert_eq!(json["sensitive"], true);
        assert!(
            json.get("sha256").is_none() && json.get("size").is_none(),
            "{json}"
        );

        let holds = |matches| regular(Contents::Secret { matches }, 0o600, 0);
        let plan_ = plan(vec![s.clone()], wanted(), vec![holds(true)]).unwrap();
        assert!(plan_.actions.is_empty());
        let plan_ = plan(vec![s], wanted(), vec![holds(false)]).unwrap();
        assert_eq!(only(&plan_).describe(), "update /etc/token (sensitive)");
    }

    #[test]
    fn directories_links_and_removals() {
        let d = file("/srv/app", FileContent::Directory);
        let plan_ = plan(
            vec![d.clone()],
            vec![Wanted::Directory],
            vec![Found::Absent],
        )
        .unwrap();
        assert_eq!(
            only(&plan_).describe(),
            "create directory /srv/app (mode 0755, owner root, group root)"
        );
        let there = Found::Directory {
            mode: 0o700,
            uid: 0,
            gid: 0,
            empty: false,
        };
        let plan_ = plan(vec![d], vec![Wanted::Directory], vec![there.clone()]).unwrap();
        assert_eq!(
            only(&plan_).describe(),
            "set mode 0700 -> 0755 on directory /srv/app"
        );

        let l = file("/etc/current", FileContent::Link(PathBuf::from("/srv/v2")));
        let link = || vec![Wanted::Link("/srv/v2".into())];
        let plan_ = plan(vec![l.clone()], link(), vec![Found::Absent]).unwrap();
        assert_eq!(only(&plan_).describe(), "link /etc/current -> /srv/v2");
        assert_eq!(only(&plan_).name(), "make-link");
        let old = Found::Link {
            target: "/srv/v1".into(),
        };
        let plan_ = plan(vec![l.clone()], link(), vec![old]).unwrap();
        assert_eq!(
            only(&plan_).describe(),
            "change link /etc/current -> /srv/v1 to -> /srv/v2"
        );
        let same = Found::Link {
            target: "/srv/v2".into(),
        };
        assert!(
            plan(vec![l], link(), vec![same])
                .unwrap()
                .actions
                .is_empty()
        );

        let a = file("/etc/motd", FileContent::Absent);
        let plan_ = plan(
            vec![a.clone()],
            vec![Wanted::Absent],
            vec![regular(Contents::NotRead, 0o644, 0)],
        )
        .unwrap();
        assert_eq!(only(&plan_).describe(), "remove file /etc/motd");
        assert_eq!(only(&plan_).effect(), Effect::Remove);
        assert!(
            plan(vec![a.clone()], vec![Wanted::Absent], vec![Found::Absent])
                .unwrap()
                .actions
                .is_empty()
        );
        let err = plan(vec![a.clone()], vec![Wanted::Absent], vec![there.clone()]).unwrap_err();
        assert!(err.contains("not empty; set replace: true"), "{err}");
        let mut a = a;
        a.replace = true;
        let plan_ = plan(vec![a], vec![Wanted::Absent], vec![there]).unwrap();
        assert_eq!(
            only(&plan_).describe(),
            "remove directory /etc/motd and everything in it"
        );
    }

    #[test]
    fn a_file_where_a_directory_is_needs_replace_and_the_reverse_too() {
        let f = file("/etc/app.conf", FileContent::Content("a\n".into()));
        let dir = Found::Directory {
            mode: 0o755,
            uid: 0,
            gid: 0,
            empty: true,
        };
        let err = plan(vec![f.clone()], vec![text("a\n")], vec![dir.clone()]).unwrap_err();
        assert!(
            err.contains("files /etc/app.conf: the spec wants a file but an empty directory is there; set replace: true")
                && err.contains("machines.yaml:20:7"),
            "{err}"
        );
        let mut f = f;
        f.replace = true;
        let plan_ = plan(vec![f], vec![text("a\n")], vec![dir]).unwrap();
        assert_eq!(only(&plan_).effect(), Effect::Replace);
        assert!(
            only(&plan_)
                .describe()
                .starts_with("replace empty directory /etc/app.conf with a file"),
            "{}",
            only(&plan_).describe()
        );
        let d = file("/srv/app", FileContent::Directory);
        let err = plan(
            vec![d],
            vec![Wanted::Directory],
            vec![regular(Contents::NotRead, 0o644, 0)],
        )
        .unwrap_err();
        assert!(
            err.contains("wants a directory but a file is there"),
            "{err}"
        );
    }

    #[test]
    fn unknown_owners_missing_parents_and_unreachable_paths_are_errors() {
        let mut f = file("/etc/app.conf", FileContent::Content("a\n".into()));
        f.owner = Some("app".into());
        let err = plan(vec![f.clone()], vec![text("a\n")], vec![Found::Absent]).unwrap_err();
        assert!(
            err.contains("owner app does not exist in the guest's /etc/passwd"),
            "{err}"
        );

        // A user the spec creates is resolved when apply runs.
        let mut m = crate::testing::web();
        m.users = vec![User {
            name: "app".into(),
            present: true,
            system: true,
            groups: Vec::new(),
            shell: None,
            home: None,
            ssh_authorized_keys: None,
            password: None,
            remove_home: false,
            source: Source::default(),
        }];
        let mut observed = converged();
        observed.files.entries = vec![EntryObservation {
            path: "/etc/app.conf".into(),
            parent_exists: true,
            found: Found::Absent,
        }];
        observed.files.accounts = accounts();
        m.files = vec![f];
        let inputs = Inputs {
            files: vec![text("a\n")],
            warnings: Vec::new(),
        };
        let plan_ = plan_machine_with(&m, &observed, Some(&secret()), &inputs, &Default::default())
            .unwrap();
        // The user comes first (users: run before files:), then the file.
        assert_eq!(
            plan_.actions[0].name(),
            "create-user",
            "{:?}",
            plan_.actions
        );
        let Some(Action::WriteFile(write)) = plan_
            .actions
            .iter()
            .find(|a| matches!(a, Action::WriteFile(_)))
        else {
            panic!("{:?}", plan_.actions)
        };
        assert_eq!(write.attributes.owner, "app");

        // No parent: an error, unless the spec makes it a directory.
        observed.files.entries[0].parent_exists = false;
        let err = plan_machine_with(&m, &observed, Some(&secret()), &inputs, &Default::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("its parent directory /etc does not exist"),
            "{err}"
        );

        let f = file("/etc/x/y", FileContent::Content("a\n".into()));
        let err = plan(
            vec![f],
            vec![text("a\n")],
            vec![Found::Unreachable(
                "a leading component is not a directory".into(),
            )],
        )
        .unwrap_err();
        assert!(err.contains("files /etc/x/y: a leading component"), "{err}");
    }

    #[test]
    fn file_actions_run_before_unit_changes_parents_first_and_a_new_root_is_planned_blind() {
        let mut m = crate::testing::web();
        m.files = vec![
            file("/srv/app/conf", FileContent::Content("a\n".into())),
            file("/srv/app", FileContent::Directory),
            file("/etc/old", FileContent::Absent),
        ];
        let inputs = Inputs {
            files: vec![text("a\n"), Wanted::Directory, Wanted::Absent],
            warnings: Vec::new(),
        };
        let mut observed = converged();
        observed.root = crate::model::observed::RootPresence::Absent;
        observed.record = None;
        observed.facts = None;
        observed.run = crate::model::observed::RunState::Stopped;
        let plan_ = plan_machine_with(&m, &observed, Some(&secret()), &inputs, &Default::default())
            .unwrap();
        let names: Vec<&str> = plan_.actions.iter().map(Action::name).collect();
        assert_eq!(
            names,
            [
                "bootstrap",
                "set-hostname",
                "make-directory",
                "write-file",
                "remove-file",
                "enable-unit",
                "disable-unit",
                "mask-unit",
                "set-root-password",
                "add-securetty",
                "start"
            ]
        );
        assert_eq!(
            plan_.actions[4].describe(),
            "remove /etc/old if the new root has it"
        );
        // Keys ignore what was there: the plan made after the bootstrap matches.
        assert_eq!(plan_.actions[3].key(), "file /srv/app/conf");
    }

    #[test]
    fn a_unit_file_the_spec_writes_can_be_enabled_in_the_same_apply() {
        let mut m = crate::testing::web();
        m.units.enable.push("hello.service".into());
        let observed = || {
            let mut o = converged();
            o.facts.as_mut().unwrap().units.insert(
                "hello.service".into(),
                crate::drivers::units::UnitState::NotFound,
            );
            o
        };
        let err = plan_machine_with(
            &m,
            &observed(),
            Some(&secret()),
            &Inputs::default(),
            &Default::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unit hello.service does not exist"), "{err}");
        m.files = vec![file(
            "/etc/systemd/system/hello.service",
            FileContent::Content("[Service]\nExecStart=/bin/true\n".into()),
        )];
        let mut o = observed();
        o.files.entries = vec![EntryObservation {
            path: "/etc/systemd/system/hello.service".into(),
            parent_exists: true,
            found: Found::Absent,
        }];
        o.files.accounts = accounts();
        let inputs = Inputs {
            files: vec![text("[Service]\nExecStart=/bin/true\n")],
            warnings: Vec::new(),
        };
        let plan_ =
            plan_machine_with(&m, &o, Some(&secret()), &inputs, &Default::default()).unwrap();
        let names: Vec<&str> = plan_.actions.iter().map(Action::name).collect();
        assert_eq!(names, ["write-file", "enable-unit"]);
    }

    #[test]
    fn special_files_need_replace_and_links_and_files_replace_each_other() {
        let f = file("/etc/app.conf", FileContent::Content("a\n".into()));
        let err = plan(vec![f.clone()], vec![text("a\n")], vec![Found::Special]).unwrap_err();
        assert!(
            err.contains("the spec wants a file but a special file is there; set replace: true"),
            "{err}"
        );
        let mut replacing = f.clone();
        replacing.replace = true;
        let plan_ = plan(vec![replacing], vec![text("a\n")], vec![Found::Special]).unwrap();
        assert_eq!(only(&plan_).effect(), Effect::Replace);
        // A link where a file should be: replaced without replace: true.
        let link = Found::Link {
            target: "/elsewhere".into(),
        };
        let plan_ = plan(vec![f], vec![text("a\n")], vec![link.clone()]).unwrap();
        assert_eq!(only(&plan_).effect(), Effect::Change);
        assert!(
            only(&plan_)
                .describe()
                .starts_with("replace link /etc/app.conf -> /elsewhere with a file"),
            "{}",
            only(&plan_).describe()
        );
        // And a file where a link should be.
        let l = file("/etc/current", FileContent::Link(PathBuf::from("/srv/v2")));
        let plan_ = plan(
            vec![l],
            vec![Wanted::Link("/srv/v2".into())],
            vec![regular(Contents::NotRead, 0o644, 0)],
        )
        .unwrap();
        assert_eq!(
            only(&plan_).describe(),
            "replace file /etc/current with a link -> /srv/v2"
        );
        // A directory where a link was, with replace: true.
        let mut d = file("/srv/app", FileContent::Directory);
        d.replace = true;
        let plan_ = plan(vec![d], vec![Wanted::Directory], vec![link]).unwrap();
        assert_eq!(only(&plan_).effect(), Effect::Replace);
        assert_eq!(
            only(&plan_).describe(),
            "replace link /srv/app -> /elsewhere with a directory (mode 0755, owner root, group root)"
        );
    }

    #[test]
    fn an_unknown_group_is_an_error_unless_a_package_being_installed_may_bring_it() {
        let mut f = file("/etc/app.conf", FileContent::Content("a\n".into()));
        f.group = Some("nginx".into());
        let err = plan(vec![f.clone()], vec![text("a\n")], vec![Found::Absent]).unwrap_err();
        assert!(
            err.contains("group nginx does not exist in the guest's /etc/group"),
            "{err}"
        );
        let mut m = crate::testing::web();
        m.packages.push("nginx".into());
        m.files = vec![f];
        let mut observed = converged();
        observed.files.entries = vec![EntryObservation {
            path: "/etc/app.conf".into(),
            parent_exists: true,
            found: regular(Contents::Read(FileBytes::new(b"a\n".to_vec())), 0o644, 0),
        }];
        observed.files.accounts = accounts();
        let inputs = Inputs {
            files: vec![text("a\n")],
            warnings: Vec::new(),
        };
        let plan_ = plan_machine_with(&m, &observed, Some(&secret()), &inputs, &Default::default())
            .unwrap();
        let names: Vec<&str> = plan_.actions.iter().map(Action::name).collect();
        assert_eq!(names, ["install-packages", "set-file-attributes"]);
        assert_eq!(
            plan_.actions[1].describe(),
            "set group root -> nginx on /etc/app.conf"
        );
    }

    #[test]
    fn unresolved_inputs_and_duplicates_are_errors() {
        let f = file("/etc/a", FileContent::Content("a\n".into()));
        let mut m = crate::testing::web();
        m.files = vec![f.clone()];
        let err = plan_machine_with(
            &m,
            &converged(),
            Some(&secret()),
            &Inputs::default(),
            &Default::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not resolved"), "{err}");
        let err = plan(
            vec![f.clone(), f],
            vec![text("a\n"), text("a\n")],
            vec![Found::Absent, Found::Absent],
        )
        .unwrap_err();
        assert!(err.contains("listed twice"), "{err}");
    }

    #[test]
    fn a_shifted_root_compares_guest_ids() {
        let mut f = file("/etc/app.conf", FileContent::Content("a\n".into()));
        f.group = Some("www-data".into());
        let mut m = crate::testing::web();
        m.files = vec![f];
        let mut observed = converged();
        let base = 0x1234_0000;
        observed.files = FilesObservation {
            entries: vec![EntryObservation {
                path: "/etc/app.conf".into(),
                parent_exists: true,
                found: Found::File {
                    mode: 0o644,
                    uid: base,
                    gid: base + 33,
                    size: 2,
                    nlink: 1,
                    contents: Contents::Read(FileBytes::new(b"a\n".to_vec())),
                },
            }],
            shift: Some((base, base)),
            accounts: accounts(),
        };
        let inputs = Inputs {
            files: vec![text("a\n")],
            warnings: Vec::new(),
        };
        let plan_ = plan_machine_with(&m, &observed, Some(&secret()), &inputs, &Default::default())
            .unwrap();
        assert!(plan_.actions.is_empty(), "{:?}", plan_.actions);
    }
}
