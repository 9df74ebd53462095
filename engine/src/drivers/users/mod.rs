//! Users, their SSH keys, and root's (`users:`, `ssh_authorized_keys:`).
//!
//! Accounts are made, changed and removed by the guest's own tools
//! (`useradd`, `usermod`, `gpasswd`, `userdel`), run inside the machine as
//! packages are (nsenter into a running guest, `systemd-nspawn --pipe` on a
//! stopped root): they follow the guest's `/etc/login.defs` (UID and GID
//! ranges, the user private group, the mail spool), copy its
//! `/etc/skel`, and run its hooks (nscd cache invalidation, SELinux
//! labels, `/etc/subuid`), none of which berth would get right by editing
//! the files itself. Reading is native and confined: `/etc/passwd`,
//! `/etc/group`, and `/etc/shadow` only for whether a managed password
//! verifies. A password is written natively into `/etc/shadow`, as root's
//! is ([`crate::drivers::shadow`]): never on a command line, in an
//! environment or on a child's stdin. `authorized_keys` files are written
//! through [`crate::confined::Root::write_owned`].

pub mod apply;
pub mod commands;
pub mod observe;
pub mod passwd;

use std::collections::BTreeMap;

use berth_schema::Machine;

use crate::drivers::credentials::{self, CredentialsObservation};
use crate::error::EngineError;
use crate::secret::{self, Secret};

pub use observe::{Accounts, KeysFile, ShadowField};

/// What berth found of a machine's users and credentials.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsersObservation {
    /// The accounts in the root (None: the root was not read, or the spec
    /// manages no user and no keys).
    pub accounts: Option<Accounts>,
    /// The machine's credentials on the host and in the running guest.
    pub credentials: CredentialsObservation,
}

/// The secrets the users and credentials of a machine need, read from
/// their sources now (never stored). `Debug` shows no value.
#[derive(Debug, Default)]
pub struct AccountInputs {
    /// Each managed user's password, by user name.
    pub passwords: BTreeMap<String, Secret>,
    /// Each credential's value, by credential name.
    pub credentials: BTreeMap<String, credentials::Value>,
}

/// Resolves the passwords of the spec's present users and the values of
/// its credentials. Errors name the source, never the value.
pub fn resolve_inputs(machine: &Machine) -> Result<AccountInputs, EngineError> {
    let mut inputs = AccountInputs::default();
    for user in machine.users.iter().filter(|u| u.present) {
        if let Some(source) = &user.password {
            let resolved = secret::resolve(source).map_err(|error| EngineError::Plan {
                machine: machine.name.clone(),
                message: format!("users.{}.password: {error}", user.name),
            })?;
            inputs.passwords.insert(user.name.clone(), resolved.secret);
        }
    }
    inputs.credentials = credentials::resolve(machine)?;
    Ok(inputs)
}

/// The contents of an `authorized_keys` file holding `keys`, one per line.
pub fn authorized_keys(keys: &[String]) -> String {
    let mut out = String::new();
    for key in keys {
        out.push_str(key.trim());
        out.push('\n');
    }
    out
}

/// The home directory a user gets when the spec names none (the guest's
/// default, `HOME=/home` in `/etc/default/useradd`).
pub fn default_home(name: &str) -> String {
    if name == "root" {
        "/root".to_owned()
    } else {
        format!("/home/{name}")
    }
}
