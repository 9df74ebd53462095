//! Checks on single values: machine names, hostnames, package, release, unit
//! and securetty names, mirrors, crypt(3) hashes, variable names; for the
//! machine's runtime settings: bootstrap variants and components, dnf
//! repositories, zones, bridges, port forwards, IPv4 addresses, bind paths,
//! capabilities, environment variables, resource limits, devices and extra
//! `.nspawn` keys; and for what berth manages in the root: template
//! variables, file paths, modes, owners and link targets, user and group
//! names, shells, homes, SSH keys and credential names.
//!
//! Every check returns `Err(message)` with a message fit for a user. Messages
//! quote the offending value through [`quote`], which escapes control
//! characters, except for the root password checks, which never echo the value.
//!
//! One submodule per concern: [`machine`] (names, hostnames, securetty),
//! [`bootstrap`] (packages, release, mirror, variants, components, dnf
//! repositories, pacman.conf), [`units`], [`secrets`] (hashes, variables
//! and files of `root_password`, passwords, file secrets, credentials),
//! [`network`] (zones, bridges, ports, addresses, pools, gateways),
//! [`binds`], [`capabilities`], [`environment`], [`resources`] (sizes,
//! quota, weights, task limit), [`devices`] (paths, access), [`nspawn`]
//! (sections, keys, values), [`vars`], [`files`] (paths, modes, owners,
//! links, content), [`users`] (login and group names, shells, homes, SSH
//! keys), [`credentials`], and [`messages`] (quoting values, suggestions).
//! The shared token check lives here.

mod binds;
mod bootstrap;
mod capabilities;
mod credentials;
mod devices;
mod environment;
mod files;
mod health;
mod machine;
mod messages;
mod network;
mod nspawn;
mod resources;
mod secrets;
mod units;
mod users;
mod vars;

pub(crate) use binds::bind_path;
pub(crate) use bootstrap::{
    component, mirror, package, pacman_conf, release, repo_id, repo_url, variant,
};
pub(crate) use capabilities::{capability, drop_capability};
pub(crate) use credentials::credential_name;
pub(crate) use devices::{device_access, device_path};
pub(crate) use environment::{env_name, env_value};
pub(crate) use files::{absolute_path, content, file_mode, link_target, managed_path, owner};
pub(crate) use health::{command_arg, duration};
pub(crate) use machine::{hostname, machine_name, securetty};
pub(crate) use messages::{one_of, quote, suggest};
pub(crate) use network::{address, bridge, gateway, gateway_fits, pool, port, zone};
pub(crate) use nspawn::{
    EXEC_KEYS, FILES_KEYS, NETWORK_KEYS, SECTION_NAMES, nspawn_key, nspawn_value, section_of,
};
pub(crate) use resources::{cpu_quota, size, tasks_max, weight};
pub(crate) use secrets::{crypt_hash, env_var, secret_file};
pub(crate) use units::{unit, unit_with_suffix};
pub(crate) use users::{KEY_TYPES, group_name, home, is_private_key, login_name, shell, ssh_key};
pub(crate) use vars::{RESERVED_VARS, var_name};

/// Longest environment variable name accepted.
const MAX_ENV: usize = 255;

/// Longest path accepted (`PATH_MAX`): secret files, sources, templates,
/// managed paths, link targets, shells.
const MAX_FILE: usize = 4096;

/// What kind of value a token check is looking at, and what it allows.
struct Token {
    /// What the value is, for messages ("package name").
    what: &'static str,
    /// Longest accepted length in characters.
    max: usize,
    /// Whether a character may appear at all.
    allowed: fn(char) -> bool,
    /// The allowed characters, for messages.
    allowed_desc: &'static str,
    /// Whether `/` separates path segments (securetty) instead of being refused.
    path_like: bool,
}

/// The common checks: empty, too long, option-like, control characters,
/// whitespace, path escapes, then the character set.
fn check_token(value: &str, t: &Token) -> Result<(), String> {
    let q = quote(value);
    let what = t.what;
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    let len = value.chars().count();
    if len > t.max {
        return Err(format!(
            "{what} is {len} characters long; at most {} are allowed",
            t.max
        ));
    }
    if value.starts_with('-') {
        return Err(format!(
            "{what} {q} starts with `-` and could be read as an option"
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{what} {q} contains a control character"));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(format!("{what} {q} contains whitespace"));
    }
    if t.path_like {
        if value.starts_with('/') {
            return Err(format!(
                "{what} {q} starts with `/`: write it relative to /dev (e.g. `pts/0`)"
            ));
        }
        if value.split('/').any(|s| s == "..") {
            return Err(format!("{what} {q} contains a `..` path segment"));
        }
        if value.split('/').any(str::is_empty) {
            return Err(format!("{what} {q} contains an empty path segment"));
        }
    } else {
        if value.contains('/') {
            return Err(format!("{what} {q} contains `/`, which is not allowed"));
        }
        if value.contains("..") {
            return Err(format!("{what} {q} contains `..`, which is not allowed"));
        }
    }
    if let Some(c) = value.chars().find(|&c| !(t.allowed)(c)) {
        return Err(format!(
            "{what} {q} contains {}, which is not allowed (allowed: {})",
            quote(&c.to_string()),
            t.allowed_desc
        ));
    }
    Ok(())
}

/// A path to a file on the host, relative to the spec or absolute: non-empty,
/// at most [`MAX_FILE`] bytes, no control characters. Never echoes the value.
pub(crate) fn local_file(what: &str, path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if path.len() > MAX_FILE {
        return Err(format!("{what} is longer than {MAX_FILE} bytes"));
    }
    if path.chars().any(char::is_control) {
        return Err(format!(
            "{what} contains a control character (NUL, line break, ...)"
        ));
    }
    Ok(())
}
