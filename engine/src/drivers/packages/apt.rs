//! apt/dpkg: the installed set from `/var/lib/dpkg/status`.

use std::collections::BTreeSet;

use super::PackageManager;
use crate::confined::Root;
use crate::error::EngineError;
use crate::host::Host;

/// Debian and Ubuntu's apt-get over dpkg.
#[derive(Debug, Clone, Copy)]
pub struct Apt;

/// dpkg's database of installed packages.
const STATUS: &str = "/var/lib/dpkg/status";

impl PackageManager for Apt {
    fn name(&self) -> &'static str {
        "apt-get"
    }

    fn installed(&self, _host: &dyn Host, root: &Root) -> Result<BTreeSet<String>, EngineError> {
        Ok(root
            .read_string(STATUS)?
            .map(|text| installed_from_status(&text))
            .unwrap_or_default())
    }

    fn install(&self, packages: &[String]) -> Vec<Vec<String>> {
        let mut install: Vec<String> = [
            "apt-get",
            "install",
            "--yes",
            "--no-install-recommends",
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
            "--",
        ]
        .map(str::to_owned)
        .to_vec();
        install.extend(packages.iter().cloned());
        vec![vec!["apt-get".into(), "update".into()], install]
    }

    fn guest_program(&self) -> &'static str {
        "/usr/bin/apt-get"
    }

    fn remove(&self, packages: &[String]) -> Vec<Vec<String>> {
        let mut remove: Vec<String> = ["apt-get", "remove", "--yes", "--"]
            .map(str::to_owned)
            .to_vec();
        remove.extend(packages.iter().cloned());
        vec![remove]
    }

    fn env(&self) -> Vec<(&'static str, &'static str)> {
        vec![("DEBIAN_FRONTEND", "noninteractive")]
    }
}

/// The names of installed packages in a dpkg status file: stanzas whose
/// `Status:` ends in `installed` (`install ok installed`, `hold ok installed`).
pub fn installed_from_status(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for stanza in text.split("\n\n") {
        let mut name = None;
        let mut installed = false;
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("Package:") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Status:") {
                installed = v.trim().ends_with(" installed");
            }
        }
        if let (Some(name), true) = (name, installed) {
            out.insert(name.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_installed_packages_only() {
        let status = "Package: curl\nStatus: install ok installed\nVersion: 1\n\n\
                      Package: gone\nStatus: deinstall ok config-files\n\n\
                      Package: held\nStatus: hold ok installed\n";
        let set = installed_from_status(status);
        assert_eq!(set.into_iter().collect::<Vec<_>>(), ["curl", "held"]);
    }
}
