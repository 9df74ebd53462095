//! Planning users, their SSH keys, root's, and credentials: a pure
//! function of the spec, what was observed ([`crate::drivers::users::UsersObservation`])
//! and the secrets resolved from their sources ([`AccountInputs`]).
//!
//! - A user the spec lists as present and the root lacks is created; one it
//!   has is changed where the spec's shell, home or groups differ (the
//!   groups are exactly the spec's supplementary groups); one the spec
//!   lists with `state: absent` is removed (its home kept unless
//!   `remove_home: true`). Users the spec does not name are never touched.
//! - A group a present user needs that the root lacks is a plan error
//!   naming it (unless packages are being installed, which may bring it:
//!   apply's `useradd` then says so).
//! - A managed password that no longer verifies is set again.
//! - `authorized_keys` whose content, mode or owner (or those of `~/.ssh`)
//!   drifted is written again, with a diff.
//! - Credentials: values that differ from what the host keeps are written;
//!   a running machine whose own copy differs (or lacks one, or still has
//!   one that left the spec) is restarted, saying why.

use berth_schema::{DesiredState, Launcher, Machine};

use crate::drivers::credentials;
use crate::drivers::users::observe::ssh_dir;
use crate::drivers::users::{self, AccountInputs, Accounts, commands};
use crate::model::action::{Action, UserChange};
use crate::model::observed::{Observed, RunState};

/// Plans the users and keys of `machine` (and checks the whole
/// `users:`/`credentials:` spec), inserting the actions right after the
/// root's creation, its packages and its hostname: before unit changes and
/// before `files:` (whose owners may be users made here).
pub(super) fn plan_accounts(
    machine: &Machine,
    observed: &Observed,
    inputs: &AccountInputs,
    actions: &mut Vec<Action>,
) -> Result<(), String> {
    check_spec(machine)?;
    let fresh = actions.iter().any(|a| {
        matches!(
            a,
            Action::Bootstrap { .. } | Action::Clone { .. } | Action::Replace { .. }
        )
    });
    let installing = actions
        .iter()
        .any(|a| matches!(a, Action::InstallPackages { .. }));
    let mut planned = Vec::new();
    match (&observed.users.accounts, fresh) {
        (Some(accounts), false) => {
            plan_existing(machine, accounts, inputs, installing, &mut planned)?
        }
        _ => plan_fresh(machine, inputs, &mut planned),
    }
    let at = actions
        .iter()
        .position(|a| {
            !matches!(
                a,
                Action::Replace { .. }
                    | Action::Bootstrap { .. }
                    | Action::Clone { .. }
                    | Action::InstallPackages { .. }
                    | Action::RemovePackages { .. }
                    | Action::SetHostname { .. }
            )
        })
        .unwrap_or(actions.len());
    actions.splice(at..at, planned);
    Ok(())
}

/// Plans the credentials of `machine` once its run state is planned:
/// their values and berth's drop-in go before the settings file and the
/// run state; a change a running machine must see adds (or extends) its
/// restart, saying why.
pub(super) fn plan_credentials(
    machine: &Machine,
    observed: &Observed,
    launcher: Launcher,
    inputs: &AccountInputs,
    actions: &mut Vec<Action>,
) -> Result<(), String> {
    let mut planned = Vec::new();
    let restart = credential_actions(machine, observed, launcher, inputs, &mut planned)?;
    let at = actions
        .iter()
        .position(|a| {
            matches!(
                a,
                Action::WriteSettings { .. }
                    | Action::SetAutostart { .. }
                    | Action::Start { .. }
                    | Action::Stop { .. }
                    | Action::Restart { .. }
            )
        })
        .unwrap_or(actions.len());
    actions.splice(at..at, planned);
    if !restart.is_empty() {
        add_restart(actions, launcher, restart);
    }
    Ok(())
}

/// What nspawn's reading of credentials means for a running machine.
const AT_START: &str = "nspawn reads credentials at start";

/// Adds `reasons` to the planned restart, or plans one (after everything
/// else that changes the machine before it runs again).
fn add_restart(actions: &mut Vec<Action>, launcher: Launcher, mut reasons: Vec<String>) {
    reasons.push(AT_START.to_owned());
    if let Some(Action::Restart {
        reasons: existing, ..
    }) = actions
        .iter_mut()
        .find(|a| matches!(a, Action::Restart { .. }))
    {
        if existing.is_empty() {
            existing.push("its .nspawn settings changed".to_owned());
        }
        existing.extend(reasons);
        return;
    }
    let at = actions
        .iter()
        .position(|a| {
            matches!(
                a,
                Action::SetResources { .. } | Action::SetDeviceAllow { .. }
            )
        })
        .unwrap_or(actions.len());
    actions.insert(at, Action::Restart { launcher, reasons });
}

/// Names, paths and keys the guest's tools and files could not take.
fn check_spec(machine: &Machine) -> Result<(), String> {
    let mut seen = Vec::new();
    for user in &machine.users {
        let at = format!("users.{}", user.name);
        if !valid_user_name(&user.name) {
            return Err(format!(
                "{at}: {:?} is not a user name the guest's useradd takes \
                 (lower-case letters, digits, '_', '-', starting with a letter or '_')",
                user.name
            ));
        }
        if seen.contains(&user.name.as_str()) {
            return Err(format!("{at}: the user is listed twice"));
        }
        seen.push(user.name.as_str());
        if user.name == "root" {
            return Err(format!(
                "{at}: root is not managed under users: (use root_password and ssh_authorized_keys)"
            ));
        }
        for group in &user.groups {
            if !valid_user_name(group) {
                return Err(format!("{at}.groups: {group:?} is not a group name"));
            }
        }
        for (field, value) in [
            ("shell", user.shell.clone()),
            ("home", user.home.as_ref().map(|h| h.display().to_string())),
        ] {
            if let Some(value) = value
                && (!value.starts_with('/') || value.contains([':', '\n', '\0']))
            {
                return Err(format!(
                    "{at}.{field}: {value:?} is not an absolute path without ':'"
                ));
            }
        }
        if let Some(keys) = &user.ssh_authorized_keys {
            check_keys(&format!("{at}.ssh_authorized_keys"), keys)?;
        }
    }
    if let Some(keys) = &machine.ssh_authorized_keys {
        check_keys("ssh_authorized_keys", keys)?;
    }
    let mut names = Vec::new();
    for credential in &machine.credentials {
        if !credentials::valid_name(&credential.name) {
            return Err(format!(
                "credentials: {:?} is not a credential name berth passes on \
                 (letters, digits, '.', '_', '-'; not . or ..)",
                credential.name
            ));
        }
        if names.contains(&credential.name.as_str()) {
            return Err(format!(
                "credentials.{}: the credential is listed twice",
                credential.name
            ));
        }
        names.push(credential.name.as_str());
    }
    Ok(())
}

fn check_keys(at: &str, keys: &[String]) -> Result<(), String> {
    for (i, key) in keys.iter().enumerate() {
        if key.trim().is_empty() || key.contains(['\n', '\r', '\0']) {
            return Err(format!("{at}[{i}]: a key is one non-empty line"));
        }
    }
    Ok(())
}

/// `useradd`'s default rule (Debian's relaxed one, `NAME_REGEX`): a
/// lower-case letter or `_` first, then letters, digits, `_` or `-` (and a
/// trailing `$` for machine accounts), at most 32 characters.
fn valid_user_name(name: &str) -> bool {
    let body = name.strip_suffix('$').unwrap_or(name);
    !body.is_empty()
        && name.len() <= 32
        && body
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && body
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The spec's keys file of `user`, when the spec manages it.
fn keys_of<'a>(machine: &'a Machine, user: &str) -> Option<&'a [String]> {
    if user == "root" {
        return machine.ssh_authorized_keys.as_deref();
    }
    machine
        .users
        .iter()
        .find(|u| u.name == user && u.present)
        .and_then(|u| u.ssh_authorized_keys.as_deref())
}

fn password_source(user: &berth_schema::User) -> Option<&'static str> {
    user.password.as_ref().map(|p| match p {
        berth_schema::RootPassword::Hash(_) => "hash",
        berth_schema::RootPassword::Env(_) => "env",
        berth_schema::RootPassword::File(_) => "file",
    })
}

fn create(user: &berth_schema::User) -> Action {
    Action::CreateUser {
        name: user.name.clone(),
        groups: user.groups.clone(),
        shell: user.shell.clone(),
        home: user.home.as_ref().map(|h| h.display().to_string()),
        system: user.system,
        command: commands::useradd(user),
    }
}

fn new_keys(user: &str, home: &str, keys: &[String]) -> Action {
    Action::WriteAuthorizedKeys {
        user: user.to_owned(),
        path: format!("{}/.ssh/authorized_keys", home.trim_end_matches('/')),
        keys: keys.len(),
        problems: Vec::new(),
        before: None,
        after: users::authorized_keys(keys),
    }
}

/// A root not made yet (or about to be replaced): everything is new.
fn plan_fresh(machine: &Machine, inputs: &AccountInputs, planned: &mut Vec<Action>) {
    for user in machine.users.iter().filter(|u| u.present) {
        planned.push(create(user));
        if let (Some(source), true) = (
            password_source(user),
            inputs.passwords.contains_key(&user.name),
        ) {
            planned.push(Action::SetUserPassword {
                user: user.name.clone(),
                source: source.to_owned(),
                sensitive: true,
            });
        }
        if let Some(keys) = &user.ssh_authorized_keys {
            let home = user
                .home
                .as_ref()
                .map(|h| h.display().to_string())
                .unwrap_or_else(|| users::default_home(&user.name));
            planned.push(new_keys(&user.name, &home, keys));
        }
    }
    if let Some(keys) = &machine.ssh_authorized_keys {
        planned.push(new_keys("root", "/root", keys));
    }
}

/// The differences between the spec and the accounts of an existing root.
fn plan_existing(
    machine: &Machine,
    accounts: &Accounts,
    inputs: &AccountInputs,
    installing: bool,
    planned: &mut Vec<Action>,
) -> Result<(), String> {
    for user in &machine.users {
        let name = &user.name;
        let entry = accounts.user(name);
        if !user.present {
            if entry.is_some() {
                planned.push(Action::RemoveUser {
                    name: name.clone(),
                    remove_home: user.remove_home,
                    command: commands::userdel(name, user.remove_home),
                });
            }
            continue;
        }
        let primary = entry.and_then(|e| accounts.group_name(e.gid));
        if let Some(missing) = user
            .groups
            .iter()
            .find(|g| !accounts.has_group(g) && Some(g.as_str()) != primary)
            && !installing
        {
            return Err(format!(
                "users.{name}.groups: group {missing} does not exist in the machine \
                 (its /etc/group); add a package that creates it, or remove it from the spec"
            ));
        }
        let Some(entry) = entry else {
            planned.push(create(user));
            if let (Some(source), true) =
                (password_source(user), inputs.passwords.contains_key(name))
            {
                planned.push(Action::SetUserPassword {
                    user: name.clone(),
                    source: source.to_owned(),
                    sensitive: true,
                });
            }
            if let Some(keys) = &user.ssh_authorized_keys {
                let home = user
                    .home
                    .as_ref()
                    .map(|h| h.display().to_string())
                    .unwrap_or_else(|| users::default_home(name));
                planned.push(new_keys(name, &home, keys));
            }
            continue;
        };
        let mut changes = Vec::new();
        let mut argvs = Vec::new();
        if let Some(shell) = &user.shell
            && *shell != entry.shell
        {
            changes.push(UserChange {
                field: "shell".into(),
                from: entry.shell.clone(),
                to: shell.clone(),
            });
            argvs.push(commands::set_shell(name, shell));
        }
        if let Some(home) = &user.home {
            let home = home.display().to_string();
            if home.trim_end_matches('/') != entry.home.trim_end_matches('/') {
                changes.push(UserChange {
                    field: "home".into(),
                    from: entry.home.clone(),
                    to: home.clone(),
                });
                argvs.push(commands::set_home(name, &home));
            }
        }
        let current = accounts.memberships(name);
        let mut wanted: Vec<String> = user
            .groups
            .iter()
            .filter(|g| Some(g.as_str()) != primary)
            .cloned()
            .collect();
        wanted.sort();
        wanted.dedup();
        if current != wanted {
            let add: Vec<String> = wanted
                .iter()
                .filter(|g| !current.contains(g))
                .cloned()
                .collect();
            if !add.is_empty() {
                argvs.push(commands::add_groups(name, &add));
            }
            for group in current.iter().filter(|g| !wanted.contains(g)) {
                argvs.push(commands::remove_from_group(name, group));
            }
            changes.push(UserChange {
                field: "groups".into(),
                from: current.join(", "),
                to: wanted.join(", "),
            });
        }
        if !changes.is_empty() {
            planned.push(Action::ChangeUser {
                name: name.clone(),
                changes,
                commands: argvs,
            });
        }
        if let (Some(source), Some(secret)) = (password_source(user), inputs.passwords.get(name)) {
            let satisfied = accounts
                .passwords
                .get(name)
                .and_then(Option::as_ref)
                .is_some_and(|stored| secret.satisfied_by(stored.stored()));
            if !satisfied {
                planned.push(Action::SetUserPassword {
                    user: name.clone(),
                    source: source.to_owned(),
                    sensitive: true,
                });
            }
        }
        if user.ssh_authorized_keys.is_some() {
            plan_keys(machine, accounts, name, entry.uid, entry.gid, planned)?;
        }
    }
    if machine.ssh_authorized_keys.is_some() {
        match accounts.user("root") {
            Some(root) => plan_keys(machine, accounts, "root", root.uid, root.gid, planned)?,
            None => return Err("ssh_authorized_keys: the machine has no root user".into()),
        }
    }
    Ok(())
}

/// `authorized_keys` of an existing user: content, mode and owner of the
/// file and of `~/.ssh`.
fn plan_keys(
    machine: &Machine,
    accounts: &Accounts,
    user: &str,
    uid: u32,
    gid: u32,
    planned: &mut Vec<Action>,
) -> Result<(), String> {
    let Some(keys) = keys_of(machine, user) else {
        return Ok(());
    };
    let Some(found) = accounts.keys.get(user) else {
        return Ok(());
    };
    let at = if user == "root" {
        "ssh_authorized_keys".to_owned()
    } else {
        format!("users.{user}.ssh_authorized_keys")
    };
    let home = ssh_dir(ssh_dir(&found.path));
    match found.home {
        Some(meta) if meta.kind == crate::confined::FileKind::Dir => {}
        _ => {
            return Err(format!(
                "{at}: {user}'s home directory {home} does not exist in the machine"
            ));
        }
    }
    let (host_uid, host_gid) = accounts.host_ids(uid, gid);
    let mut problems = Vec::new();
    let owner = |meta: &crate::confined::owned::Meta, what: &str, problems: &mut Vec<String>| {
        if (meta.uid, meta.gid) != (host_uid, host_gid) {
            problems.push(format!(
                "{what} owner {}:{} -> {host_uid}:{host_gid}",
                meta.uid, meta.gid
            ));
        }
    };
    match &found.dir {
        None => {}
        Some(meta) if meta.kind != crate::confined::FileKind::Dir => {
            return Err(format!(
                "{at}: {} is a {} in the machine, not a directory; berth does not replace it",
                ssh_dir(&found.path),
                meta.kind
            ));
        }
        Some(meta) => {
            if meta.mode != 0o700 {
                problems.push(format!("~/.ssh mode {:04o} -> 0700", meta.mode));
            }
            owner(meta, "~/.ssh", &mut problems);
        }
    }
    if let Some(meta) = &found.file {
        if meta.kind == crate::confined::FileKind::File {
            if meta.mode != 0o600 {
                problems.push(format!("mode {:04o} -> 0600", meta.mode));
            }
            owner(meta, "file", &mut problems);
        } else {
            problems.push(format!("it is a {}, replaced by a file", meta.kind));
        }
    }
    let after = users::authorized_keys(keys);
    if found.content.as_deref() != Some(after.as_str()) || !problems.is_empty() {
        planned.push(Action::WriteAuthorizedKeys {
            user: user.to_owned(),
            path: found.path.clone(),
            keys: keys.len(),
            problems,
            before: found.content.clone(),
            after,
        });
    }
    Ok(())
}

/// Credentials: the values on the host, berth's drop-in (unit launchers),
/// and whether the running machine has them. Returns the reasons for a
/// restart (empty: none needed).
fn credential_actions(
    machine: &Machine,
    observed: &Observed,
    launcher: Launcher,
    inputs: &AccountInputs,
    planned: &mut Vec<Action>,
) -> Result<Vec<String>, String> {
    let seen = &observed.users.credentials;
    let ids: Vec<String> = machine.credentials.iter().map(|c| c.name.clone()).collect();
    let resolved = ids.iter().all(|id| inputs.credentials.contains_key(id));
    if !resolved {
        // Planned without the values (never on a real run): nothing to compare.
        return Ok(Vec::new());
    }
    let wanted = |id: &str| inputs.credentials.get(id).map(credentials::Value::digest);
    let write: Vec<String> = ids
        .iter()
        .filter(|id| seen.host.get(*id).copied() != wanted(id))
        .cloned()
        .collect();
    let remove: Vec<String> = seen
        .host
        .keys()
        .filter(|id| !ids.contains(id))
        .cloned()
        .collect();
    if !write.is_empty() || !remove.is_empty() {
        planned.push(Action::WriteCredentials {
            dir: seen.dir.clone(),
            write,
            remove: remove.clone(),
            sensitive: true,
        });
    }
    if let Some(dropin) = &seen.dropin {
        let after = if ids.is_empty() {
            None
        } else {
            let exec_start = dropin.exec_start.as_ref().map_err(|why| {
                format!(
                    "credentials: under launcher {launcher} berth passes them through \
                     systemd-nspawn@{}.service, whose ExecStart= it cannot read: {why}",
                    machine.name
                )
            })?;
            Some(credentials::render_dropin(
                &machine.name,
                &seen.dir,
                &ids,
                exec_start,
            ))
        };
        if dropin.current != after {
            planned.push(Action::WriteCredentialDropIn {
                path: dropin.path.clone(),
                credentials: ids.clone(),
                before: dropin.current.clone(),
                after,
            });
        }
    }
    // The running machine: restarted when its own copies differ.
    let (
        RunState::Running {
            launcher: running, ..
        },
        DesiredState::Running,
    ) = (&observed.run, machine.state)
    else {
        return Ok(Vec::new());
    };
    if *running != launcher {
        return Ok(Vec::new());
    }
    let Some(guest) = &seen.guest else {
        return Ok(Vec::new());
    };
    let mut reasons = Vec::new();
    for id in &ids {
        match guest.get(id) {
            None => reasons.push(format!("credential {id} is new")),
            Some(digest) if Some(*digest) != wanted(id) => {
                reasons.push(format!("credential {id} changed"));
            }
            Some(_) => {}
        }
    }
    for id in remove.iter().filter(|id| guest.contains_key(*id)) {
        reasons.push(format!("credential {id} left the spec"));
    }
    Ok(reasons)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use berth_schema::{Credential, RootPassword, SecretSource, Source, User};

    use super::*;
    use crate::confined::FileKind;
    use crate::confined::owned::Meta;
    use crate::drivers::credentials::{DropInObservation, Value};
    use crate::drivers::users::passwd::{GroupEntry, PasswdEntry};
    use crate::drivers::users::{KeysFile, ShadowField};
    use crate::model::action::Effect;
    use crate::model::observed::RootPresence;
    use crate::planner::tests::{converged, secret};
    use crate::planner::{MachinePlan, plan_machine_with};
    use crate::secret::Secret;

    const ALICE_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAlice alice@example";
    const ROOT_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRoot root@example";

    fn user(name: &str) -> User {
        User {
            name: name.into(),
            present: true,
            system: false,
            groups: Vec::new(),
            shell: None,
            home: None,
            ssh_authorized_keys: None,
            password: None,
            remove_home: false,
            source: Source::default(),
        }
    }

    fn alice() -> User {
        User {
            groups: vec!["sudo".into()],
            shell: Some("/bin/bash".into()),
            ssh_authorized_keys: Some(vec![ALICE_KEY.into()]),
            password: Some(RootPassword::Env("ALICE_PW".into())),
            ..user("alice")
        }
    }

    fn machine(users: Vec<User>) -> Machine {
        let mut m = crate::testing::web();
        m.users = users;
        m
    }

    fn meta(kind: FileKind, mode: u32, uid: u32) -> Option<Meta> {
        Some(Meta {
            kind,
            mode,
            uid,
            gid: uid,
        })
    }

    fn keys_file(home: &str, content: &str, uid: u32) -> KeysFile {
        KeysFile {
            path: format!("{home}/.ssh/authorized_keys"),
            home: meta(FileKind::Dir, 0o755, uid),
            dir: meta(FileKind::Dir, 0o700, uid),
            file: meta(FileKind::File, 0o600, uid),
            content: Some(content.to_owned()),
        }
    }

    fn pw() -> Secret {
        Secret::Plain("alicepw".into())
    }

    /// The root with alice as the spec wants her and root's keys.
    fn accounts() -> Accounts {
        Accounts {
            passwd: vec![
                PasswdEntry {
                    name: "root".into(),
                    uid: 0,
                    gid: 0,
                    home: "/root".into(),
                    shell: "/bin/bash".into(),
                },
                PasswdEntry {
                    name: "alice".into(),
                    uid: 1000,
                    gid: 1000,
                    home: "/home/alice".into(),
                    shell: "/bin/bash".into(),
                },
            ],
            groups: vec![
                GroupEntry {
                    name: "root".into(),
                    gid: 0,
                    members: Vec::new(),
                },
                GroupEntry {
                    name: "sudo".into(),
                    gid: 27,
                    members: vec!["alice".into()],
                },
                GroupEntry {
                    name: "adm".into(),
                    gid: 4,
                    members: Vec::new(),
                },
                GroupEntry {
                    name: "alice".into(),
                    gid: 1000,
                    members: Vec::new(),
                },
            ],
            passwords: [(
                "alice".to_owned(),
                Some(ShadowField(pw().to_hash().unwrap())),
            )]
            .into(),
            keys: [
                (
                    "alice".to_owned(),
                    keys_file("/home/alice", &format!("{ALICE_KEY}\n"), 1000),
                ),
                (
                    "root".to_owned(),
                    keys_file("/root", &format!("{ROOT_KEY}\n"), 0),
                ),
            ]
            .into(),
            root_owner: (0, 0),
        }
    }

    fn inputs() -> AccountInputs {
        AccountInputs {
            passwords: [("alice".to_owned(), pw())].into(),
            credentials: BTreeMap::new(),
        }
    }

    fn observed() -> Observed {
        let mut observed = converged();
        observed.users.accounts = Some(accounts());
        observed.users.credentials.dir = "/run/berth/credentials/web".into();
        observed
    }

    fn spec() -> Machine {
        let mut m = machine(vec![alice()]);
        m.ssh_authorized_keys = Some(vec![ROOT_KEY.into()]);
        m
    }

    fn plan(m: &Machine, observed: &Observed, inputs: &AccountInputs) -> MachinePlan {
        plan_machine_with(m, observed, Some(&secret()), &Default::default(), inputs)
            .expect("a plan")
    }

    fn error(m: &Machine, observed: &Observed, inputs: &AccountInputs) -> String {
        plan_machine_with(m, observed, Some(&secret()), &Default::default(), inputs)
            .expect_err("a plan error")
            .to_string()
    }

    fn names(plan: &MachinePlan) -> Vec<&'static str> {
        plan.actions.iter().map(Action::name).collect()
    }

    fn find<'a>(plan: &'a MachinePlan, name: &str) -> &'a Action {
        plan.actions
            .iter()
            .find(|a| a.name() == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", plan.actions))
    }

    #[test]
    fn a_converged_machine_plans_nothing() {
        let plan = plan(&spec(), &observed(), &inputs());
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    }

    #[test]
    fn a_new_root_gets_every_user_key_and_credential_before_it_starts() {
        let mut m = spec();
        m.users.push(user("bob"));
        m.users.push(User {
            present: false,
            ..user("carol")
        });
        m.credentials = vec![Credential {
            name: "db-password".into(),
            source: SecretSource::Env("DB_PW".into()),
        }];
        let absent = Observed {
            root: RootPresence::Absent,
            record: None,
            facts: None,
            run: RunState::Stopped,
            ..observed()
        };
        let mut inputs = inputs();
        inputs
            .credentials
            .insert("db-password".into(), Value::new(b"s3cret".to_vec()));
        let plan = plan(&m, &absent, &inputs);
        // Users right after the root and its hostname (before units and
        // files), credentials before the start.
        assert_eq!(
            names(&plan),
            [
                "bootstrap",
                "set-hostname",
                "create-user",
                "set-user-password",
                "write-authorized-keys",
                "create-user",
                "write-authorized-keys",
                "enable-unit",
                "disable-unit",
                "mask-unit",
                "set-root-password",
                "add-securetty",
                "write-credentials",
                "start"
            ],
            "{:?}",
            plan.actions
        );
        let describe: Vec<String> = plan
            .actions
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::CreateUser { .. }
                        | Action::SetUserPassword { .. }
                        | Action::WriteAuthorizedKeys { .. }
                        | Action::WriteCredentials { .. }
                )
            })
            .map(Action::describe)
            .collect();
        assert_eq!(
            describe,
            [
                "create user alice (groups sudo, shell /bin/bash)",
                "set password of user alice from env (sensitive)",
                "write /home/alice/.ssh/authorized_keys (1 key)",
                "create user bob",
                "write /root/.ssh/authorized_keys (1 key)",
                "hand credential db-password to the machine (sensitive; values in /run/berth/credentials/web)",
            ]
        );
        let Action::CreateUser { command, .. } = &plan.actions[2] else {
            unreachable!()
        };
        assert_eq!(
            command.join(" "),
            "useradd --create-home --shell /bin/bash --groups sudo -- alice"
        );
        assert_eq!(plan.actions[2].effect(), Effect::Create);
        assert_eq!(
            plan.actions[4].file_change().unwrap(),
            (
                "/home/alice/.ssh/authorized_keys".to_owned(),
                String::new(),
                format!("{ALICE_KEY}\n")
            )
        );
        let json = serde_json::to_string(&plan).unwrap();
        assert!(
            !json.contains("s3cret") && !json.contains("alicepw"),
            "{json}"
        );
        assert!(!format!("{plan:?}").contains("s3cret"));
    }

    #[test]
    fn a_changed_shell_home_and_groups_are_changed_with_the_guests_tools() {
        let mut observed = observed();
        let accounts = observed.users.accounts.as_mut().unwrap();
        accounts.passwd[1].shell = "/bin/sh".into();
        accounts.groups[1].members.clear();
        accounts.groups[2].members.push("alice".into());
        let mut m = spec();
        m.users[0].home = Some(PathBuf::from("/srv/alice"));
        let plan = plan(&m, &observed, &inputs());
        let change = find(&plan, "change-user");
        assert_eq!(
            change.describe(),
            "change user alice: shell /bin/sh -> /bin/bash; home /home/alice -> /srv/alice; groups adm -> sudo"
        );
        assert_eq!(change.effect(), Effect::Change);
        assert_eq!(
            change.commands(),
            [
                "usermod --shell /bin/bash -- alice",
                "usermod --home /srv/alice --move-home -- alice",
                "usermod --append --groups sudo -- alice",
                "gpasswd --delete alice adm",
            ]
        );
    }

    #[test]
    fn the_spec_shell_alone_changes_and_the_primary_group_is_no_drift() {
        let mut observed = observed();
        observed.users.accounts.as_mut().unwrap().passwd[1].shell = "/bin/sh".into();
        let mut m = spec();
        m.users[0].groups.push("alice".into());
        let plan = plan(&m, &observed, &inputs());
        assert_eq!(names(&plan), ["change-user"]);
        assert_eq!(
            plan.actions[0].describe(),
            "change user alice: shell /bin/sh -> /bin/bash"
        );
        // No shell in the spec: the guest's is left alone.
        m.users[0].shell = None;
        assert!(plan_fn(&m, &observed).actions.is_empty());
    }

    fn plan_fn(m: &Machine, observed: &Observed) -> MachinePlan {
        plan(m, observed, &inputs())
    }

    #[test]
    fn an_absent_user_is_removed_keeping_its_home_unless_asked() {
        let mut m = spec();
        m.users[0] = User {
            present: false,
            ..alice()
        };
        let plan = plan(&m, &observed(), &AccountInputs::default());
        let remove = find(&plan, "remove-user");
        assert_eq!(remove.describe(), "remove user alice (home kept)");
        assert_eq!(remove.effect(), Effect::Remove);
        assert_eq!(remove.commands(), ["userdel -- alice"]);
        m.users[0].remove_home = true;
        let plan = plan_fn(&m, &observed());
        let remove = find(&plan, "remove-user");
        assert_eq!(remove.describe(), "remove user alice (home removed)");
        assert_eq!(remove.commands(), ["userdel --remove -- alice"]);
        // Gone already: nothing to do.
        m.users[0].name = "bob".into();
        assert!(
            !plan_fn(&m, &observed())
                .actions
                .iter()
                .any(|a| a.name() == "remove-user")
        );
    }

    #[test]
    fn a_missing_group_is_a_plan_error_naming_it_unless_a_package_may_bring_it() {
        let mut m = spec();
        m.users[0].groups.push("docker".into());
        let text = error(&m, &observed(), &inputs());
        assert!(text.contains("group docker does not exist"), "{text}");
        assert!(text.contains("users.alice.groups"), "{text}");
        let mut new_user = spec();
        new_user.users.push(User {
            groups: vec!["wheel".into()],
            ..user("bob")
        });
        let text = error(&new_user, &observed(), &inputs());
        assert!(text.contains("group wheel"), "{text}");
        m.packages.push("docker.io".into());
        let plan = plan(&m, &observed(), &inputs());
        assert_eq!(names(&plan)[0], "install-packages");
        assert!(find(&plan, "change-user").describe().contains("docker"));
    }

    #[test]
    fn a_password_is_set_only_when_it_no_longer_verifies_and_never_shown() {
        let other = AccountInputs {
            passwords: [("alice".to_owned(), Secret::Plain("changed".into()))].into(),
            credentials: BTreeMap::new(),
        };
        let plan = plan(&spec(), &observed(), &other);
        assert_eq!(names(&plan), ["set-user-password"]);
        let json = serde_json::to_string(&plan).unwrap();
        assert!(!json.contains("changed") && !json.contains("$6$"), "{json}");
        assert!(!format!("{:?}", observed().users).contains("$6$"));
        // A user without a shadow line gets one set too.
        let mut observed = observed();
        observed.users.accounts.as_mut().unwrap().passwords.clear();
        assert_eq!(names(&plan_fn(&spec(), &observed)), ["set-user-password"]);
    }

    #[test]
    fn hand_edited_keys_are_planned_with_a_diff_and_their_mode_and_owner() {
        let mut observed = observed();
        let accounts = observed.users.accounts.as_mut().unwrap();
        let keys = accounts.keys.get_mut("alice").unwrap();
        keys.content = Some(format!("{ALICE_KEY}\nssh-rsa AAAAhand edit\n"));
        keys.file = meta(FileKind::File, 0o644, 1000);
        keys.dir = meta(FileKind::Dir, 0o755, 0);
        let plan = plan_fn(&spec(), &observed);
        let write = find(&plan, "write-authorized-keys");
        assert_eq!(
            write.describe(),
            "write /home/alice/.ssh/authorized_keys (1 key); ~/.ssh mode 0755 -> 0700; \
             ~/.ssh owner 0:0 -> 1000:1000; mode 0644 -> 0600"
        );
        assert_eq!(write.effect(), Effect::Change);
        let (_, old, new) = write.file_change().unwrap();
        assert!(old.contains("hand edit") && !new.contains("hand edit"));
        // root's keys: the machine's ssh_authorized_keys.
        let mut m = spec();
        m.ssh_authorized_keys = Some(vec![ROOT_KEY.into(), ALICE_KEY.into()]);
        let plan = plan_fn(&m, &crate::planner::users::tests::observed());
        assert_eq!(
            find(&plan, "write-authorized-keys").describe(),
            "write /root/.ssh/authorized_keys (2 keys)"
        );
    }

    #[test]
    fn keys_are_owned_by_the_shifted_ids_in_a_private_users_root() {
        let base = 0x1_0000 * 7;
        let mut observed = observed();
        let accounts = observed.users.accounts.as_mut().unwrap();
        accounts.root_owner = (base, base);
        // As found: owned by the unshifted ids, which the guest sees as nobody.
        let plan = plan_fn(&spec(), &observed);
        let write = find(&plan, "write-authorized-keys");
        assert!(
            write.describe().contains(&format!(
                "owner 1000:1000 -> {}:{}",
                base + 1000,
                base + 1000
            )),
            "{}",
            write.describe()
        );
        let accounts = observed.users.accounts.as_mut().unwrap();
        for (user, keys) in accounts.keys.iter_mut() {
            let id = if user == "root" { base } else { base + 1000 };
            for m in [&mut keys.dir, &mut keys.file].into_iter().flatten() {
                m.uid = id;
                m.gid = id;
            }
        }
        assert!(plan_fn(&spec(), &observed).actions.is_empty());
    }

    #[test]
    fn a_missing_home_or_a_symlinked_ssh_dir_is_a_plan_error() {
        let mut observed = observed();
        let keys = observed
            .users
            .accounts
            .as_mut()
            .unwrap()
            .keys
            .get_mut("alice")
            .unwrap();
        keys.home = None;
        let text = error(&spec(), &observed, &inputs());
        assert!(
            text.contains("home directory /home/alice does not exist"),
            "{text}"
        );
        let mut observed = crate::planner::users::tests::observed();
        let keys = observed
            .users
            .accounts
            .as_mut()
            .unwrap()
            .keys
            .get_mut("alice")
            .unwrap();
        keys.dir = meta(FileKind::Symlink, 0o777, 1000);
        let text = error(&spec(), &observed, &inputs());
        assert!(text.contains("is a symlink"), "{text}");
    }

    #[test]
    fn names_the_guests_tools_would_misread_are_refused() {
        for (bad, what) in [
            ("-rf", "not a user name"),
            ("Alice", "not a user name"),
            ("root", "root is not managed"),
        ] {
            let text = error(&machine(vec![user(bad)]), &observed(), &inputs());
            assert!(text.contains(what), "{bad}: {text}");
        }
        let text = error(
            &machine(vec![user("alice"), user("alice")]),
            &observed(),
            &inputs(),
        );
        assert!(text.contains("listed twice"), "{text}");
        let mut m = spec();
        m.users[0].shell = Some("bash".into());
        assert!(error(&m, &observed(), &inputs()).contains("users.alice.shell"));
        let mut m = spec();
        m.ssh_authorized_keys = Some(vec!["ssh-rsa A\nssh-rsa B".into()]);
        assert!(error(&m, &observed(), &inputs()).contains("ssh_authorized_keys[0]"));
        let mut m = spec();
        m.credentials = vec![Credential {
            name: "a:b".into(),
            source: SecretSource::Env("X".into()),
        }];
        assert!(error(&m, &observed(), &inputs()).contains("not a credential name"));
    }

    fn with_credential(value: &[u8]) -> (Machine, AccountInputs) {
        let mut m = spec();
        m.credentials = vec![Credential {
            name: "db-password".into(),
            source: SecretSource::Env("DB_PW".into()),
        }];
        let mut inputs = inputs();
        inputs
            .credentials
            .insert("db-password".into(), Value::new(value.to_vec()));
        (m, inputs)
    }

    fn digests(pairs: &[(&str, &[u8])]) -> BTreeMap<String, crate::drivers::credentials::Digest> {
        pairs
            .iter()
            .map(|(id, v)| ((*id).to_owned(), Value::new(v.to_vec()).digest()))
            .collect()
    }

    #[test]
    fn a_changed_credential_is_written_and_restarts_the_running_machine_saying_why() {
        let (m, inputs) = with_credential(b"new");
        let mut observed = observed();
        observed.users.credentials.host = digests(&[("db-password", b"old")]);
        observed.users.credentials.guest = Some(digests(&[("db-password", b"old")]));
        let plan = plan(&m, &observed, &inputs);
        assert_eq!(names(&plan), ["write-credentials", "restart"]);
        assert_eq!(
            plan.actions[1].describe(),
            "restart machine: credential db-password changed; nspawn reads credentials at start (nspawn)"
        );
        let json = serde_json::to_value(&plan.actions[1]).unwrap();
        assert_eq!(
            json["reasons"],
            serde_json::json!([
                "credential db-password changed",
                "nspawn reads credentials at start"
            ])
        );
        // Written but not yet restarted: the restart alone.
        observed.users.credentials.host = digests(&[("db-password", b"new")]);
        assert_eq!(names(&plan_with(&m, &observed, &inputs)), ["restart"]);
        // Converged.
        observed.users.credentials.guest = Some(digests(&[("db-password", b"new")]));
        assert!(plan_with(&m, &observed, &inputs).actions.is_empty());
        // New to a running machine.
        observed.users.credentials.guest = Some(BTreeMap::new());
        assert!(
            plan_with(&m, &observed, &inputs).actions[0]
                .describe()
                .contains("credential db-password is new")
        );
    }

    fn plan_with(m: &Machine, observed: &Observed, inputs: &AccountInputs) -> MachinePlan {
        plan(m, observed, inputs)
    }

    #[test]
    fn a_stopped_machine_only_gets_the_new_value_and_a_settings_restart_is_extended() {
        let (mut m, inputs) = with_credential(b"new");
        let mut observed = observed();
        observed.users.credentials.host = digests(&[("db-password", b"old")]);
        observed.users.credentials.guest = Some(digests(&[("db-password", b"old")]));
        m.state = DesiredState::Stopped;
        assert_eq!(
            names(&plan(&m, &observed, &inputs)),
            ["write-credentials", "stop"]
        );
        let mut m = m.clone();
        m.state = DesiredState::Running;
        m.capabilities = vec!["CAP_NET_ADMIN".into()];
        let plan = plan(&m, &observed, &inputs);
        assert_eq!(
            names(&plan),
            ["write-credentials", "write-settings", "restart"]
        );
        assert_eq!(
            plan.actions[2].describe(),
            "restart machine: its .nspawn settings changed; credential db-password changed; \
             nspawn reads credentials at start (nspawn)"
        );
    }

    #[test]
    fn a_credential_that_left_the_spec_is_removed_and_the_machine_restarted() {
        let mut observed = observed();
        observed.users.credentials.host = digests(&[("old-token", b"x")]);
        observed.users.credentials.guest = Some(digests(&[("old-token", b"x")]));
        let plan = plan(&spec(), &observed, &inputs());
        assert_eq!(names(&plan), ["write-credentials", "restart"]);
        assert_eq!(
            plan.actions[0].describe(),
            "remove credential old-token from /run/berth/credentials/web"
        );
        assert_eq!(plan.actions[0].effect(), Effect::Remove);
        assert!(
            plan.actions[1]
                .describe()
                .contains("credential old-token left the spec")
        );
    }

    #[test]
    fn under_the_unit_launchers_a_dropin_passes_the_credentials_on() {
        let (mut m, inputs) = with_credential(b"v");
        m.launcher = Launcher::Machinectl;
        let mut observed = observed();
        observed.launcher = Ok(Launcher::Machinectl);
        observed.run = RunState::Stopped;
        observed.users.credentials.host = digests(&[("db-password", b"v")]);
        let path = "/run/systemd/system/systemd-nspawn@web.service.d/zz-berth-credentials.conf";
        observed.users.credentials.dropin = Some(DropInObservation {
            path: path.into(),
            current: None,
            exec_start: Ok("systemd-nspawn --quiet --boot --machine=%i".into()),
        });
        let plan = plan(&m, &observed, &inputs);
        let dropin = find(&plan, "write-credential-dropin");
        assert_eq!(
            dropin.describe(),
            format!("write {path} (LoadCredential= and --load-credential= for db-password)")
        );
        assert_eq!(dropin.effect(), Effect::Create);
        let (_, _, text) = dropin.file_change().unwrap();
        assert!(
            text.contains("ExecStart=systemd-nspawn --quiet --boot --machine=%i --load-credential=db-password:db-password"),
            "{text}"
        );
        assert!(!text.contains('v') || !text.contains("\nv\n"));
        // Written: nothing more; credentials gone from the spec: removed.
        observed.users.credentials.dropin = Some(DropInObservation {
            current: Some(text.clone()),
            ..observed.users.credentials.dropin.clone().unwrap()
        });
        assert!(
            !plan_with(&m, &observed, &inputs)
                .actions
                .iter()
                .any(|a| a.name() == "write-credential-dropin")
        );
        m.credentials.clear();
        let plan = plan_with(&m, &observed, &AccountInputs::default());
        let dropin = find(&plan, "write-credential-dropin");
        assert_eq!(dropin.describe(), format!("remove {path}"));
        assert_eq!(dropin.effect(), Effect::Remove);
        // The unit's ExecStart= cannot be read: a plan error saying why.
        let (m, inputs) = with_credential(b"v");
        let mut m = m;
        m.launcher = Launcher::Machinectl;
        observed.users.credentials.dropin = Some(DropInObservation {
            path: path.into(),
            current: None,
            exec_start: Err("systemd-nspawn@web.service has no unit file".into()),
        });
        let text = error(&m, &observed, &inputs);
        assert!(text.contains("has no unit file"), "{text}");
    }

    #[test]
    fn every_new_action_has_its_json_name() {
        let (mut m, inputs) = with_credential(b"v");
        m.users.push(User {
            present: false,
            ..user("bob")
        });
        let mut observed = observed();
        observed
            .users
            .accounts
            .as_mut()
            .unwrap()
            .passwd
            .push(PasswdEntry {
                name: "bob".into(),
                uid: 1001,
                gid: 1001,
                home: "/home/bob".into(),
                shell: "/bin/sh".into(),
            });
        observed.users.credentials.guest = Some(BTreeMap::new());
        let plan = plan(&m, &observed, &inputs);
        let json = serde_json::to_value(&plan.actions).unwrap();
        let actions: Vec<&str> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["remove-user", "write-credentials", "restart"]);
        assert_eq!(json[1]["sensitive"], true);
    }
}
