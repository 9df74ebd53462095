//! Entry points for the cargo-fuzz targets under `fuzz/` (not a stable API).
//!
//! Each function feeds guest-controlled bytes to one of the parsers berth
//! runs over a machine root's files or the host's process tables, and
//! checks the invariants its callers rely on. A panic here is a bug.

use std::path::Path;

/// Runs every state reader over `data`: the dpkg status parser, the pacman
/// `desc` parser, the rpm query parser, `/etc/shadow` (read and rewrite),
/// `/etc/securetty` (read and add), mountinfo, and the systemd-nspawn
/// command-line matcher.
pub fn state_readers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();

    let _ = crate::drivers::packages::apt::installed_from_status(text);
    if let Some(name) = crate::drivers::packages::pacman::name_from_desc(text) {
        assert!(!name.is_empty(), "an empty pacman package name");
    }
    let _ = crate::drivers::packages::rpm::names_from_query(text);

    let _ = crate::drivers::shadow::root_hash(text);
    let hash = "$6$salt$hash";
    let updated = crate::drivers::shadow::with_root_hash(text, hash, 20_000);
    assert_eq!(
        crate::drivers::shadow::root_hash(&updated),
        Some(hash),
        "with_root_hash did not set root's hash"
    );

    let _ = crate::drivers::securetty::entries(text);
    let wanted = vec!["pts/0".to_owned(), "pts/1".to_owned()];
    let add = crate::drivers::securetty::missing(Some(text), &wanted);
    let with = crate::drivers::securetty::with_entries(Some(text), &add);
    assert!(
        crate::drivers::securetty::missing(Some(&with), &wanted).is_empty(),
        "with_entries left an entry missing"
    );

    let _ = crate::confined::mounts::parse_mount_points(data);

    let args: Vec<String> = text.split('\0').map(str::to_owned).collect();
    let _ = crate::drivers::launcher::detect::runs_machine(&args, "web", "/var/lib/machines/web");
}

/// Loads `data` as a spec; for a valid one, renders what berth derives from
/// each machine (its `.nspawn` file, its command line, its fingerprint).
pub fn load_spec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = berth_schema::load_str(text, Path::new("fuzz.yaml")) {
        for machine in spec.machines.values() {
            for mode in [
                berth_schema::NetworkMode::Host,
                berth_schema::NetworkMode::Private,
                berth_schema::NetworkMode::Veth,
            ] {
                let _ = crate::drivers::settings::render(machine, mode);
                let _ = crate::drivers::settings::command_line(machine, mode);
                let _ = crate::drivers::settings::fingerprint(machine, mode);
            }
        }
    }
}
