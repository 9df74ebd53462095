//! A cheap machine root for tests that need no bootstrap: just the files
//! berth reads (os-release for adopt, shadow, the dpkg status file, unit
//! files with [Install] sections). Shared by the safety tests as
//! `crate::fake_root` (declared in tests/main.rs).

use std::fs;
use std::path::Path;

/// A crypt hash (openssl passwd -6 -salt berthsalt r00tpw).
pub const HASH: &str = "$6$berthsalt$0qRJluiQdW/xyOsvNsop/hQkAUC16BfDuTQ.ksG1rN/QrLg4mtrYciRYIknq2GOIQBi.pIdIW.KP/d6yXWbI31";

/// Makes a Debian-looking root at `root` (created if missing).
pub fn make(root: &Path) {
    let w = |rel: &str, text: &str| {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    w(
        "etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
    );
    // The fallback adopt reads when /etc/os-release is missing (or /etc is hostile).
    w(
        "usr/lib/os-release",
        "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
    );
    w(
        "etc/shadow",
        "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
    );
    w("etc/hostname", "old-name\n");
    w("etc/machine-id", "0123456789abcdef0123456789abcdef\n");
    w(
        "var/lib/dpkg/status",
        "Package: systemd\nStatus: install ok installed\nVersion: 252\n\n\
         Package: dbus\nStatus: install ok installed\nVersion: 1.14\n\n",
    );
    for unit in ["foo", "bar", "baz"] {
        w(
            &format!("usr/lib/systemd/system/{unit}.service"),
            "[Unit]\nDescription=test\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
        );
    }
    w(
        "usr/lib/systemd/system/multi-user.target",
        "[Unit]\nDescription=Multi-User\n",
    );
    fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
}

/// A spec for machine `name` on a fake root: hostname, units, password,
/// securetty; stopped, so nothing boots.
pub fn spec(name: &str, root_password: &str) -> String {
    format!(
        "machines:\n  {name}:\n    distro: debian\n    release: bookworm\n    bootstrapper: debootstrap\n    \
         packages: [systemd, dbus]\n    hostname: {name}-host\n    units:\n      enable: [foo]\n      \
         disable: [baz]\n      mask: [bar]\n    root_password: {root_password}\n    securetty: [pts/0]\n    \
         launcher: nspawn\n    state: stopped\n"
    )
}

/// The `root_password:` value for [`HASH`].
pub fn hash_source() -> String {
    format!("{{hash: '{HASH}'}}")
}
