//! Roots berth did not make (by hand, as in the article): opened for
//! `adopt` and `import`, and their `/etc/os-release`.

use std::fs;

use crate::confined::Root;
use crate::error::EngineError;
use crate::host::paths::Paths;

/// Opens the existing root of machine `name`, refusing anything but a real
/// directory (a symlink or a file is never followed or used).
pub fn open(paths: &Paths, name: &str) -> Result<Root, EngineError> {
    let root_path = paths.machine_root(name);
    let meta = fs::symlink_metadata(&root_path)
        .map_err(|e| EngineError::io(format!("inspecting {}", root_path.display()), e))?;
    if !meta.is_dir() {
        return Err(EngineError::Refused {
            machine: name.to_owned(),
            message: format!(
                "{} is not a directory (a symlink or a file)",
                root_path.display()
            ),
        });
    }
    Ok(Root::open(&root_path)?)
}

/// A root's os-release (`/etc/os-release`, else `/usr/lib/os-release`).
#[derive(Debug, Clone, Default)]
pub struct OsRelease {
    text: String,
}

impl OsRelease {
    /// Reads it, confined to the root; empty when there is none.
    pub fn read(root: &Root) -> Result<OsRelease, EngineError> {
        let text = match root.read_string("/etc/os-release")? {
            Some(text) => text,
            None => root.read_string("/usr/lib/os-release")?.unwrap_or_default(),
        };
        Ok(OsRelease { text })
    }

    /// The value of `KEY=value`, unquoted.
    pub fn field(&self, key: &str) -> Option<String> {
        self.text.lines().find_map(|line| {
            line.strip_prefix(key)?
                .strip_prefix('=')
                .map(|v| v.trim().trim_matches(['"', '\'']).to_owned())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_unquoted_and_keys_exact() {
        let os = OsRelease {
            text: "ID=debian\nVERSION_ID=\"12\"\nID_LIKE='x'\nVERSION_CODENAME=bookworm\n".into(),
        };
        assert_eq!(os.field("ID").as_deref(), Some("debian"));
        assert_eq!(os.field("VERSION_ID").as_deref(), Some("12"));
        assert_eq!(os.field("ID_LIKE").as_deref(), Some("x"));
        assert_eq!(os.field("VERSION"), None);
    }
}
