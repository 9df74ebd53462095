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

/// Plans the users, keys and credentials of `machine`, inserting the
/// actions before the settings file and the run state; a credential change
/// of a running machine adds (or extends) its restart.
pub(super) fn plan(
    machine: &Machine,
    observed: &Observed,
    launcher: Launcher,
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
    let restart = plan_credentials(machine, observed, launcher, inputs, &mut planned)?;
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
fn plan_credentials(
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
