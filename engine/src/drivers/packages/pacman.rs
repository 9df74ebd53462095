//! pacman: the installed set from the local database (`/var/lib/pacman/local`).
//!
//! Each installed package is a directory `NAME-VERSION-REL` in the local
//! database, holding a `desc` file whose `%NAME%` field is the package name.
//! berth lists that directory and reads the `desc` files through the
//! confined [`Root`], never following a link out of the machine's root.

use std::collections::BTreeSet;
use std::path::Path;

use berth_schema::Machine;

use super::PackageManager;
use crate::confined::{FileKind, Root};
use crate::error::EngineError;
use crate::host::Host;

/// Arch's pacman.
#[derive(Debug, Clone, Copy)]
pub struct Pacman;

/// pacman's local database: one directory per installed package.
const LOCAL_DB: &str = "/var/lib/pacman/local";

impl PackageManager for Pacman {
    fn name(&self) -> &'static str {
        "pacman"
    }

    fn installed(&self, _host: &dyn Host, root: &Root) -> Result<BTreeSet<String>, EngineError> {
        let mut out = BTreeSet::new();
        let Some(entries) = root.list_dir(LOCAL_DB)? else {
            return Ok(out);
        };
        for entry in entries {
            let dir = format!("{LOCAL_DB}/{entry}");
            // `ALPM_DB_VERSION` is a file; anything but a real directory is
            // not a package entry.
            if root.kind(&dir)? != Some(FileKind::Dir) {
                continue;
            }
            if let Some(desc) = root.read_string(&format!("{dir}/desc"))?
                && let Some(name) = name_from_desc(&desc)
            {
                out.insert(name);
            }
        }
        Ok(out)
    }

    fn install(&self, packages: &[String]) -> Vec<Vec<String>> {
        let mut cmd: Vec<String> = ["pacman", "-S", "--noconfirm", "--needed", "--"]
            .map(str::to_owned)
            .to_vec();
        cmd.extend(packages.iter().cloned());
        vec![cmd]
    }

    fn guest_program(&self) -> &'static str {
        "/usr/bin/pacman"
    }

    fn remove(&self, packages: &[String]) -> Vec<Vec<String>> {
        let mut cmd: Vec<String> = ["pacman", "-R", "--noconfirm", "--"]
            .map(str::to_owned)
            .to_vec();
        cmd.extend(packages.iter().cloned());
        vec![cmd]
    }

    /// `pacman --root ROOT --dbpath ROOT/var/lib/pacman [--cachedir ...]
    /// [--config PACMAN_CONF] --noconfirm --needed -S -- PACKAGE...`: the
    /// host's pacman on the root, with the spec's pacman.conf (as pacstrap
    /// had) and the root's own database.
    fn host_install(
        &self,
        _host: &dyn Host,
        root: &Path,
        machine: &Machine,
        packages: &[String],
    ) -> Option<Vec<Vec<String>>> {
        let mut cmd = host_pacman(root, machine)?;
        cmd.extend(["--noconfirm", "--needed", "-S", "--"].map(str::to_owned));
        cmd.extend(packages.iter().cloned());
        Some(vec![cmd])
    }

    /// `pacman --root ROOT --dbpath ROOT/var/lib/pacman [--cachedir ...]
    /// [--config PACMAN_CONF] --noconfirm -R -- PACKAGE...`.
    fn host_remove(
        &self,
        _host: &dyn Host,
        root: &Path,
        machine: &Machine,
        packages: &[String],
    ) -> Option<Vec<Vec<String>>> {
        let mut cmd = host_pacman(root, machine)?;
        cmd.extend(["--noconfirm", "-R", "--"].map(str::to_owned));
        cmd.extend(packages.iter().cloned());
        Some(vec![cmd])
    }
}

/// The host's pacman pointed at `root`: its database, its package cache
/// (unless the spec shares the host's, as `pacstrap -c` does) and the spec's
/// pacman.conf. `--root` alone is not a chroot: pacman runs on the host, so
/// it works on roots without a pacman of their own. Paths are made
/// absolute; None when one is not UTF-8 (the command is shown and logged
/// as text).
fn host_pacman(root: &Path, machine: &Machine) -> Option<Vec<String>> {
    let root = std::path::absolute(root).ok()?;
    let root = root.to_str()?;
    let mut cmd: Vec<String> = vec![
        "pacman".into(),
        "--root".into(),
        root.to_owned(),
        "--dbpath".into(),
        format!("{root}/var/lib/pacman"),
    ];
    if !machine.bootstrap_options.host_cache {
        cmd.push("--cachedir".into());
        cmd.push(format!("{root}/var/cache/pacman/pkg"));
    }
    if let Some(conf) = &machine.pacman_conf {
        cmd.push("--config".into());
        cmd.push(std::path::absolute(conf).ok()?.to_str()?.to_owned());
    }
    Some(cmd)
}

/// The package name in a pacman local-database `desc` file: the first
/// non-empty line after `%NAME%`. None when the field is missing or empty.
pub fn name_from_desc(text: &str) -> Option<String> {
    let mut lines = text.lines();
    lines.find(|line| line.trim_end() == "%NAME%")?;
    let name = lines.next()?.trim();
    // An empty line ends the field; a `%FIELD%` header means it had no value.
    if name.is_empty() || (name.starts_with('%') && name.ends_with('%')) {
        None
    } else {
        Some(name.to_owned())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const DESC: &str = "%NAME%\nbase-devel\n\n%VERSION%\n1-1\n\n%BASE%\nbase-devel\n\n\
                        %DESC%\nBasic tools to build Arch Linux packages\n\n%ARCH%\nany\n";

    #[test]
    fn reads_the_name_field() {
        assert_eq!(name_from_desc(DESC).as_deref(), Some("base-devel"));
        assert_eq!(
            name_from_desc("%VERSION%\n2-1\n\n%NAME%\r\nzlib\r\n").as_deref(),
            Some("zlib")
        );
    }

    #[test]
    fn no_name_field_or_an_empty_one_is_none() {
        assert_eq!(name_from_desc(""), None);
        assert_eq!(name_from_desc("%VERSION%\n1-1\n"), None);
        assert_eq!(name_from_desc("%NAME%\n\n%VERSION%\n1-1\n"), None);
        assert_eq!(name_from_desc("%NAME%\n%VERSION%\n1-1\n"), None);
        assert_eq!(name_from_desc("%NAME%"), None);
    }

    #[test]
    fn a_value_equal_to_a_header_is_not_the_field() {
        // `%NAME%` appears only as a header; a package called NAME is just `NAME`.
        assert_eq!(
            name_from_desc("%DESC%\n%NAME%\nreal\n").as_deref(),
            Some("real")
        );
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn installed_reads_the_local_database_in_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let local = "var/lib/pacman/local";
        write(dir.path(), &format!("{local}/ALPM_DB_VERSION"), "9\n");
        write(
            dir.path(),
            &format!("{local}/base-3-2/desc"),
            "%NAME%\nbase\n",
        );
        write(
            dir.path(),
            &format!("{local}/zlib-1:1.3-1/desc"),
            "%NAME%\nzlib\n",
        );
        // An entry without desc, and a symlinked entry leading out: skipped.
        std::fs::create_dir_all(dir.path().join(format!("{local}/broken-1-1"))).unwrap();
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "desc", "%NAME%\nevil\n");
        std::os::unix::fs::symlink(outside.path(), dir.path().join(format!("{local}/evil-1-1")))
            .unwrap();
        let root = Root::open(dir.path()).unwrap();
        let set = Pacman
            .installed(&crate::host::local_for_tests(), &root)
            .unwrap();
        assert_eq!(set.into_iter().collect::<Vec<_>>(), ["base", "zlib"]);
    }

    #[test]
    fn a_root_without_a_database_has_nothing_installed() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        assert!(
            Pacman
                .installed(&crate::host::local_for_tests(), &root)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn guest_commands() {
        let pkgs = ["hello".to_owned(), "extra".to_owned()];
        assert_eq!(
            Pacman.install(&pkgs),
            [[
                "pacman",
                "-S",
                "--noconfirm",
                "--needed",
                "--",
                "hello",
                "extra"
            ]]
        );
        assert_eq!(
            Pacman.remove(&pkgs),
            [["pacman", "-R", "--noconfirm", "--", "hello", "extra"]]
        );
        assert_eq!(Pacman.guest_program(), "/usr/bin/pacman");
    }

    fn machine() -> Machine {
        let spec = berth_schema::load_str(
            "machines:\n  a:\n    distro: arch\n",
            Path::new("/srv/spec/machines.yaml"),
        )
        .unwrap();
        spec.machines["a"].clone()
    }

    #[test]
    fn host_commands_use_the_roots_database_and_the_specs_pacman_conf() {
        let mut m = machine();
        m.pacman_conf = Some("/srv/spec/pacman.conf".into());
        let pkgs = ["hello".to_owned()];
        let root = Path::new("/var/lib/machines/a");
        assert_eq!(
            Pacman
                .host_install(&crate::host::local_for_tests(), root, &m, &pkgs)
                .unwrap(),
            [[
                "pacman",
                "--root",
                "/var/lib/machines/a",
                "--dbpath",
                "/var/lib/machines/a/var/lib/pacman",
                "--cachedir",
                "/var/lib/machines/a/var/cache/pacman/pkg",
                "--config",
                "/srv/spec/pacman.conf",
                "--noconfirm",
                "--needed",
                "-S",
                "--",
                "hello"
            ]]
        );
        m.pacman_conf = None;
        m.bootstrap_options.host_cache = true;
        assert_eq!(
            Pacman
                .host_remove(&crate::host::local_for_tests(), root, &m, &pkgs)
                .unwrap(),
            [[
                "pacman",
                "--root",
                "/var/lib/machines/a",
                "--dbpath",
                "/var/lib/machines/a/var/lib/pacman",
                "--noconfirm",
                "-R",
                "--",
                "hello"
            ]]
        );
    }
}
