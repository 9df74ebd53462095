//! The tests' shared cache of expensive things (bootstrapped roots, built
//! package repositories) under `/var/tmp/berth-test-cache`, kept between
//! runs and shared by concurrent tests and test processes.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

/// Where the shared, cached directories live.
pub const TEST_CACHE: &str = "/var/tmp/berth-test-cache";

/// `TEST_CACHE/NAME`, built once per host. Under an exclusive flock on
/// `TEST_CACHE/NAME.lock` (other threads and test processes wait), if the
/// directory is missing, `build` fills a new empty directory (mode 0755)
/// beside it, which is renamed to `NAME` when `build` returns: a cached
/// directory is always a whole one. Leftovers of killed builds are removed
/// first. `NAME` must say everything the content depends on (a key or hash
/// of the recipe): a cached directory is never rebuilt or removed here, so
/// callers may read it without holding the lock.
pub fn cached_dir(name: &str, build: impl FnOnce(&Path)) -> PathBuf {
    let cache = Path::new(TEST_CACHE);
    fs::create_dir_all(cache).unwrap_or_else(|e| panic!("creating {TEST_CACHE}: {e}"));
    // Unprivileged builders (makepkg) and readers (pacman) go through it.
    fs::set_permissions(cache, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {TEST_CACHE}: {e}"));
    let dest = cache.join(name);
    let lock = File::create(cache.join(format!("{name}.lock")))
        .unwrap_or_else(|e| panic!("creating {TEST_CACHE}/{name}.lock: {e}"));
    let _lock = Flock::lock(lock, FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("locking {TEST_CACHE}/{name}.lock: {e}"));
    if dest.is_dir() {
        return dest;
    }
    // Leftovers of killed builds: nobody else builds while we hold the lock.
    let prefix = format!(".{name}.build-");
    if let Ok(entries) = fs::read_dir(cache) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                safe_remove(&entry.path());
            }
        }
    }
    let tmp = cache.join(format!("{prefix}{}", std::process::id()));
    fs::create_dir(&tmp).unwrap_or_else(|e| panic!("creating {}: {e}", tmp.display()));
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", tmp.display()));
    build(&tmp);
    fs::rename(&tmp, &dest)
        .unwrap_or_else(|e| panic!("renaming {} to {}: {e}", tmp.display(), dest.display()));
    dest
}

/// FNV-1a (64 bits, hex) over `parts`, each followed by a NUL: a cache key
/// stable across Rust versions, unlike std's hasher.
pub fn key(parts: &[&[u8]]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain([0u8].iter()) {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// Mount points at or below `path` in this process's mount namespace.
fn mounts_under(path: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .filter(|m| m.starts_with(path))
        .collect()
}

/// Decodes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let digit = |b: u8| u32::from(b - b'0');
            let value = digit(bytes[i + 1]) * 64 + digit(bytes[i + 2]) * 8 + digit(bytes[i + 3]);
            out.push(u8::try_from(value).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes `path` recursively after unmounting (lazily, deepest first,
/// bounded) anything mounted below it; if something stays mounted, leaves
/// the tree in place with a warning rather than deleting through a mount.
pub fn safe_remove(path: &Path) {
    if !path.exists() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut mounts = mounts_under(path);
        if mounts.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            eprintln!(
                "not removing {}: still mounted below it: {mounts:?}",
                path.display()
            );
            return;
        }
        mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        for mount in mounts {
            let _ = nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Err(e) = fs::remove_dir_all(path) {
        eprintln!("removing {}: {e}", path.display());
    }
}
