//! Finding mount points below a directory, from `/proc/self/mountinfo`.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// Every mount point at or below `dir`, in `/proc/self/mountinfo` order and
/// without duplicates.
///
/// `dir` is canonicalised first (it must exist); mount points are compared
/// component-wise (`/a/b` is below `/a`, `/a/bc` is not). Mount points are
/// parsed from `/proc/self/mountinfo` with its octal escapes (`\040` for a
/// space, `\011`, `\012`, `\134`) decoded. A mount point whose directory has
/// been deleted is reported by the kernel with a ` (deleted)` suffix, which is
/// kept: it is still detected as being below `dir`.
pub fn mounts_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = std::fs::canonicalize(dir)?;
    let info = std::fs::read("/proc/self/mountinfo")?;
    Ok(mount_points_under(&parse_mount_points(&info), &dir))
}

/// Selects the mount points at or below `dir` (component-wise), deduplicated.
fn mount_points_under(points: &[PathBuf], dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in points {
        if p.starts_with(dir) && !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
}

/// Extracts the mount point (5th field) of every line of a mountinfo file.
pub(crate) fn parse_mount_points(info: &[u8]) -> Vec<PathBuf> {
    info.split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b' ').nth(4))
        .filter(|field| !field.is_empty())
        .map(|field| PathBuf::from(OsString::from_vec(unescape(field))))
        .collect()
}

/// Decodes the kernel's `\ooo` octal escapes.
pub(crate) fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 3 < field.len() {
            let digits = &field[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape(br"/a\040b"), b"/a b");
        assert_eq!(unescape(br"/t\011ab\012nl\134bs"), b"/t\tab\nnl\\bs");
        assert_eq!(unescape(br"/trailing\04"), br"/trailing\04");
        assert_eq!(unescape(br"/x\999"), br"/x\999");
        assert_eq!(unescape(br"\"), br"\");
    }

    #[test]
    fn parses_and_filters() {
        let info = b"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
            30 22 0:25 / /var/lib/machines/web rw - tmpfs tmpfs rw\n\
            31 22 0:26 / /var/lib/machines/web/a\\040b rw - tmpfs tmpfs rw\n\
            32 22 0:27 / /var/lib/machines/web2 rw - tmpfs tmpfs rw\n\
            33 22 0:28 / /var/lib/machines/web/x\\040(deleted) rw - tmpfs tmpfs rw\n\
            34 22 0:25 / /var/lib/machines/web rw - tmpfs tmpfs rw\n";
        let points = parse_mount_points(info);
        assert_eq!(points.len(), 6);
        let under = mount_points_under(&points, Path::new("/var/lib/machines/web"));
        assert_eq!(
            under,
            vec![
                PathBuf::from("/var/lib/machines/web"),
                PathBuf::from("/var/lib/machines/web/a b"),
                PathBuf::from("/var/lib/machines/web/x (deleted)"),
            ]
        );
    }
}
