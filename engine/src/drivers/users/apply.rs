//! Executing the approved user actions: the guest's tools for accounts,
//! native confined writes for passwords and `authorized_keys`.

use std::time::{SystemTime, UNIX_EPOCH};

use berth_schema::Machine;

use super::observe::shifted;
use super::passwd;
use crate::drivers::guest;
use crate::error::EngineError;
use crate::host::Host;
use crate::model::action::Action;
use crate::secret::{self, SecretError};

/// Runs one approved user action on machine `machine` (`leader`: the
/// running guest's init, None for a stopped root).
pub fn execute(
    host: &dyn Host,
    machine: &Machine,
    action: &Action,
    leader: Option<i32>,
) -> Result<(), EngineError> {
    let name = &machine.name;
    match action {
        Action::CreateUser { command, .. } | Action::RemoveUser { command, .. } => {
            guest::run(host, name, leader, command, &[])
        }
        Action::ChangeUser { commands, .. } => {
            for argv in commands {
                guest::run(host, name, leader, argv, &[])?;
            }
            Ok(())
        }
        Action::SetUserPassword { user, .. } => set_password(host, machine, user),
        Action::WriteAuthorizedKeys { user, after, .. } => {
            write_keys(host, machine, user, after.as_bytes())
        }
        other => Err(EngineError::State(format!(
            "{} is not a user action",
            other.name()
        ))),
    }
}

/// Writes `user`'s password, resolved from the spec now, into the root's
/// `/etc/shadow` (its hash; SHA-512 crypt for `env:` and `file:`).
fn set_password(host: &dyn Host, machine: &Machine, user: &str) -> Result<(), EngineError> {
    let name = &machine.name;
    let secret_err = |error: SecretError| EngineError::Secret {
        machine: name.clone(),
        error,
    };
    let source = machine
        .users
        .iter()
        .find(|u| u.name == user)
        .and_then(|u| u.password.as_ref())
        .ok_or_else(|| secret_err(SecretError::Unresolved))?;
    let hash = secret::resolve(source)
        .and_then(|resolved| resolved.secret.to_hash())
        .map_err(secret_err)?;
    let root = host.open_root(&host.paths().machine_root(name))?;
    let current = root.read_string("/etc/shadow")?.unwrap_or_default();
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0);
    let updated =
        passwd::with_user_hash(&current, user, &hash, days).ok_or_else(|| EngineError::Plan {
            machine: name.clone(),
            message: format!("users.{user}: /etc/shadow has no line for {user}"),
        })?;
    root.write_atomic("/etc/shadow", updated.as_bytes(), 0o640)?;
    Ok(())
}

/// Writes `user`'s `~/.ssh/authorized_keys` (0600, `~/.ssh` 0700, both
/// owned by the user as the guest's `/etc/passwd` says now, shifted in a
/// root with private users).
fn write_keys(
    host: &dyn Host,
    machine: &Machine,
    user: &str,
    contents: &[u8],
) -> Result<(), EngineError> {
    let name = &machine.name;
    let root = host.open_root(&host.paths().machine_root(name))?;
    let entries = passwd::parse_passwd(&root.read_string("/etc/passwd")?.unwrap_or_default());
    let entry = entries
        .iter()
        .find(|e| e.name == user)
        .ok_or_else(|| EngineError::Plan {
            machine: name.clone(),
            message: format!("users.{user}: no such user in the machine's /etc/passwd"),
        })?;
    let base = root.owner("/")?.unwrap_or((0, 0));
    let (uid, gid) = shifted(base, entry.uid, entry.gid);
    let home = entry.home.trim_end_matches('/');
    if home.is_empty() || !home.starts_with('/') {
        return Err(EngineError::Plan {
            machine: name.clone(),
            message: format!(
                "users.{user}: home directory {:?} is not usable",
                entry.home
            ),
        });
    }
    root.write_owned(
        &format!("{home}/.ssh"),
        0o700,
        "authorized_keys",
        contents,
        0o600,
        uid,
        gid,
    )?;
    Ok(())
}
