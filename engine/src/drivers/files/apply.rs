//! Making the approved `files:` changes, through the confined writer only:
//! parents resolved inside the root, the final component never followed,
//! files and links replaced by `rename`, directories removed without
//! following a link or entering another mount. Owners and groups resolve
//! now, in the guest's own accounts (a user this apply created is there),
//! shifted for a root with private users.

use std::borrow::Cow;

use super::accounts::{self, Accounts};
use super::{
    AttributeChange, Attributes, DirectoryCreation, Existing, FileWrite, LinkChange, Removal,
    SecretBytes,
};
use crate::confined::{FileKind, Root};
use crate::error::EngineError;

/// The host uid and gid for `attributes` in `root`.
fn host_ids(
    machine: &str,
    root: &Root,
    path: &str,
    attributes: &Attributes,
) -> Result<(u32, u32), EngineError> {
    let err = |message: String| EngineError::Plan {
        machine: machine.to_owned(),
        message: format!("files {path}: {message}"),
    };
    let guest = Accounts::read(root)?;
    let uid = guest.uid(&attributes.owner).ok_or_else(|| {
        err(format!(
            "owner {} does not exist in the guest's /etc/passwd",
            attributes.owner
        ))
    })?;
    let gid = guest.gid(&attributes.group).ok_or_else(|| {
        err(format!(
            "group {} does not exist in the guest's /etc/group",
            attributes.group
        ))
    })?;
    root_ids(machine, root, path, uid, gid)
}

/// Guest ids `uid`/`gid` as stored on the host (shifted roots).
fn root_ids(
    machine: &str,
    root: &Root,
    path: &str,
    uid: u32,
    gid: u32,
) -> Result<(u32, u32), EngineError> {
    let shift = accounts::shift_of(root)?;
    match (
        accounts::to_host(uid, shift.map(|s| s.0)),
        accounts::to_host(gid, shift.map(|s| s.1)),
    ) {
        (Some(uid), Some(gid)) => Ok((uid, gid)),
        _ => Err(EngineError::Plan {
            machine: machine.to_owned(),
            message: format!(
                "files {path}: uid {uid} or gid {gid} lies outside the machine's range of \
                 private users (0-{})",
                accounts::USERNS_RANGE - 1
            ),
        }),
    }
}

/// Writes a file: the approved contents, or a secret read again now.
pub fn write(
    machine: &str,
    root: &Root,
    write: &FileWrite,
    secret: impl FnOnce() -> Result<SecretBytes, EngineError>,
) -> Result<(), EngineError> {
    let (uid, gid) = host_ids(machine, root, &write.path, &write.attributes)?;
    let secret_value;
    let contents: &[u8] = match &write.contents {
        Some(bytes) => bytes.as_slice(),
        None => {
            secret_value = secret()?;
            secret_value.expose()
        }
    };
    // A directory there was approved for replacement (replace: true).
    if let Existing::Directory { .. } = write.existing {
        root.remove_entry(&write.path, true)?;
    }
    root.write_file_as(&write.path, contents, write.attributes.mode, uid, gid)?;
    Ok(())
}

/// Sets a file's or directory's mode, owner and group. A file with more
/// than one hard link is written anew instead (same contents, a new
/// inode), so a link shared with a file elsewhere never changes.
pub fn set_attributes(
    machine: &str,
    root: &Root,
    change: &AttributeChange,
) -> Result<(), EngineError> {
    let (uid, gid) = host_ids(machine, root, &change.path, &change.attributes)?;
    let mode = change.attributes.mode;
    match root.lstat(&change.path)? {
        Some(stat) if stat.kind == FileKind::File && stat.nlink > 1 => {
            let contents: Cow<'_, [u8]> = root.read(&change.path)?.unwrap_or_default().into();
            root.write_file_as(&change.path, &contents, mode, uid, gid)?;
        }
        _ => root.set_attributes(&change.path, mode, uid, gid)?,
    }
    Ok(())
}

/// Makes a directory (replacing an approved file, link or special file).
pub fn make_directory(
    machine: &str,
    root: &Root,
    dir: &DirectoryCreation,
) -> Result<(), EngineError> {
    let (uid, gid) = host_ids(machine, root, &dir.path, &dir.attributes)?;
    if matches!(
        dir.existing,
        Existing::File { .. } | Existing::Link { .. } | Existing::Special { .. }
    ) {
        root.remove_entry(&dir.path, false)?;
    }
    root.make_dir_as(&dir.path, dir.attributes.mode, uid, gid)?;
    Ok(())
}

/// Makes a link, owned by the guest's root (replacing an approved directory).
pub fn make_link(machine: &str, root: &Root, link: &LinkChange) -> Result<(), EngineError> {
    let (uid, gid) = root_ids(machine, root, &link.path, 0, 0)?;
    if let Existing::Directory { .. } = link.existing {
        root.remove_entry(&link.path, true)?;
    }
    root.make_link(&link.path, std::path::Path::new(&link.target), uid, gid)?;
    Ok(())
}

/// Removes a path (a directory with everything in it only when approved).
pub fn remove(root: &Root, removal: &Removal) -> Result<(), EngineError> {
    root.remove_entry(&removal.path, removal.recursive)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use berth_schema::{FileContent, Machine, ManagedFile, SecretSource, Source};

    use crate::engine::Engine;
    use crate::host::Host;
    use crate::host::fake::FakeHost;
    use crate::model::action::Action;
    use crate::report::Silent;

    fn entry(dir: &Path, path: &str, content: FileContent, mode: Option<u32>) -> ManagedFile {
        ManagedFile {
            path: PathBuf::from(path),
            content,
            mode,
            owner: None,
            group: Some("33".into()),
            replace: false,
            source: Source {
                file: dir.join("machines.yaml"),
                line: Some(9),
                column: Some(7),
            },
        }
    }

    fn machine(dir: &Path) -> Machine {
        let mut m = crate::testing::web();
        m.vars.insert("port".into(), serde_json::json!(8080));
        m.units.enable.push("hello.service".into());
        m.files = vec![
            entry(dir, "/etc/app", FileContent::Directory, Some(0o750)),
            entry(
                dir,
                "/etc/app/app.conf",
                FileContent::Template(dir.join("app.conf.j2")),
                Some(0o640),
            ),
            entry(
                dir,
                "/usr/bin/tool",
                FileContent::Source(dir.join("tool")),
                Some(0o755),
            ),
            entry(
                dir,
                "/etc/app/token",
                FileContent::Secret(SecretSource::File(dir.join("token"))),
                None,
            ),
            entry(
                dir,
                "/etc/app/current",
                FileContent::Link(PathBuf::from("/srv/v2")),
                None,
            ),
            entry(
                dir,
                "/etc/systemd/system/hello.service",
                FileContent::Content(
                    "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
                        .into(),
                ),
                None,
            ),
            entry(dir, "/etc/motd", FileContent::Absent, None),
        ];
        m
    }

    fn file_actions(engine: &Engine, m: &Machine) -> Vec<Action> {
        let plan = engine.plan([m]).expect("plan");
        plan.machines[0]
            .actions
            .iter()
            .filter(|a| a.key().starts_with("file ") || a.name() == "remove-file")
            .cloned()
            .collect()
    }

    #[test]
    fn files_are_written_confined_converge_and_hand_edits_are_repaired() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: setting owners needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("app.conf.j2"),
            "host {{ machine.name }}\nport {{ port }}\n",
        )
        .unwrap();
        fs::write(dir.path().join("tool"), [0u8, 159, 146, 150]).unwrap();
        fs::write(dir.path().join("token"), "t0ps3cret").unwrap();
        fs::set_permissions(dir.path().join("token"), fs::Permissions::from_mode(0o600)).unwrap();
        let fake = Arc::new(FakeHost::new(false));
        let engine = Engine::on(fake.clone());
        let m = machine(dir.path());

        let plan = engine.plan([&m]).unwrap();
        let shown = format!("{:?} {}", plan, serde_json::to_string(&plan).unwrap());
        assert!(!shown.contains("t0ps3cret"), "{shown}");
        let names: Vec<&str> = plan.machines[0].actions.iter().map(Action::name).collect();
        // Files after the bootstrap, before the units (parents first).
        let at = |name: &str| names.iter().position(|n| *n == name).unwrap();
        assert!(at("bootstrap") < at("make-directory"), "{names:?}");
        assert!(at("make-directory") < at("write-file"), "{names:?}");
        assert!(at("remove-file") < at("enable-unit"), "{names:?}");
        engine
            .apply_machine(&m, &plan.machines[0], false, &Silent)
            .unwrap();

        let root = fake.paths().machine_root("web");
        let meta = |rel: &str| fs::symlink_metadata(root.join(rel)).unwrap();
        assert_eq!(
            fs::read_to_string(root.join("etc/app/app.conf")).unwrap(),
            "host web\nport 8080\n"
        );
        assert_eq!(meta("etc/app/app.conf").mode() & 0o7777, 0o640);
        assert_eq!(meta("etc/app/app.conf").gid(), 33);
        assert_eq!(meta("etc/app").mode() & 0o7777, 0o750);
        assert_eq!(
            fs::read(root.join("usr/bin/tool")).unwrap(),
            [0u8, 159, 146, 150]
        );
        assert_eq!(meta("usr/bin/tool").mode() & 0o7777, 0o755);
        assert_eq!(
            fs::read_to_string(root.join("etc/app/token")).unwrap(),
            "t0ps3cret"
        );
        assert_eq!(meta("etc/app/token").mode() & 0o7777, 0o600);
        assert_eq!(
            fs::read_link(root.join("etc/app/current")).unwrap(),
            Path::new("/srv/v2")
        );
        assert!(root.join("etc/systemd/system/hello.service").is_file());
        // Enabled in the same apply, after the file was written.
        assert!(
            fake.lines()
                .iter()
                .any(|l| l.contains("enable -- hello.service")),
            "{:#?}",
            fake.lines()
        );
        assert_eq!(file_actions(&engine, &m), []);

        // A hand edit, a chmod and a changed secret: planned and repaired.
        fs::write(root.join("etc/app/app.conf"), "host web\nport 1\n").unwrap();
        fs::set_permissions(root.join("usr/bin/tool"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(root.join("etc/app/token"), "old").unwrap();
        fs::write(root.join("etc/motd"), "hello\n").unwrap();
        let actions = file_actions(&engine, &m);
        let shown: Vec<String> = actions.iter().map(Action::describe).collect();
        assert_eq!(
            shown,
            [
                "update /etc/app/app.conf",
                "set mode 0700 -> 0755 on /usr/bin/tool",
                "update /etc/app/token (sensitive)",
                "remove file /etc/motd",
            ],
            "{actions:#?}"
        );
        assert_eq!(
            actions[0].file_change().unwrap().1,
            "host web\nport 1\n".to_owned()
        );
        let plan = engine.plan([&m]).unwrap();
        engine
            .apply_machine(&m, &plan.machines[0], false, &Silent)
            .unwrap();
        assert_eq!(file_actions(&engine, &m), []);
        assert_eq!(
            fs::read_to_string(root.join("etc/app/token")).unwrap(),
            "t0ps3cret"
        );
        assert!(!root.join("etc/motd").exists());
        // The secret never reached a command's argv or environment.
        let commands = fake.commands.lock().unwrap();
        assert!(
            commands
                .iter()
                .all(|c| !format!("{:?} {:?}", c.argv, c.env).contains("t0ps3cret"))
        );
    }
}
