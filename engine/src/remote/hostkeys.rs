//! A digest of a host's ssh host keys, so that a kept master connection
//! is not trusted after the host's keys changed.
//!
//! ssh checks the host's key against known_hosts when it connects. A
//! master kept across commands (see [`super::ssh`]) was checked when it
//! was made; if the host's keys are replaced later (regenerated, sshd
//! restarted) the master still reaches the host, and no check would see
//! it. So the controller records the digest of the host's public host
//! keys when its master is new, every agent reports the digest it sees
//! first of all, and a command through a kept master tells the agent the
//! recorded one: a different digest ends the agent before it reads its
//! request, the controller ends the master and connects anew, and ssh
//! checks the (new) key against known_hosts.
//!
//! The digest covers sshd's default key files,
//! `/etc/ssh/ssh_host_*_key.pub`; keys kept elsewhere (`HostKey` in
//! `sshd_config`) are checked by ssh only when a connection is made.

use std::path::Path;

use sha2::{Digest as _, Sha256};

/// Where sshd keeps its host keys.
pub const SSH_CONFIG_DIR: &str = "/etc/ssh";

/// The digest of the public host keys in `dir` (`ssh_host_*_key.pub`,
/// by name): 32 hex digits. A directory without any gives the digest of
/// nothing, which still changes when keys appear.
pub fn digest(dir: &Path) -> String {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let wanted = name.starts_with("ssh_host_") && name.ends_with("_key.pub");
            // Read as a regular file only (no symlink followed out).
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            (wanted && is_file)
                .then(|| std::fs::read(entry.path()).ok().map(|bytes| (name, bytes)))
                .flatten()
        })
        .collect();
    files.sort();
    let mut hash = Sha256::new();
    for (name, bytes) in &files {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update(bytes);
        hash.update([0]);
    }
    hash.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `text` looks like a [`digest`] (what a record may hold).
pub fn is_digest(text: &str) -> bool {
    text.len() == 32 && text.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_follows_the_public_host_keys_only() {
        let dir = tempfile::tempdir().unwrap();
        let empty = digest(dir.path());
        assert!(is_digest(&empty));
        std::fs::write(
            dir.path().join("ssh_host_ed25519_key.pub"),
            "ssh-ed25519 AAAA1\n",
        )
        .unwrap();
        let one = digest(dir.path());
        assert_ne!(one, empty);
        // Private keys, configs and other files do not count.
        std::fs::write(dir.path().join("ssh_host_ed25519_key"), "private").unwrap();
        std::fs::write(dir.path().join("sshd_config"), "Port 22\n").unwrap();
        assert_eq!(digest(dir.path()), one);
        std::fs::write(
            dir.path().join("ssh_host_ed25519_key.pub"),
            "ssh-ed25519 AAAA2\n",
        )
        .unwrap();
        assert_ne!(digest(dir.path()), one);
        // A symlinked key is not read.
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("ssh_host_rsa_key.pub"))
            .unwrap();
        let with_link = digest(dir.path());
        std::fs::remove_file(dir.path().join("ssh_host_rsa_key.pub")).unwrap();
        assert_eq!(digest(dir.path()), with_link);
        assert!(!is_digest("xyz"));
    }
}
