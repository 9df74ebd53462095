//! Fixtures shared by the engine's unit tests.

use berth_schema::{BootstrapperKind, Machine, RootPassword};

/// root's password hash in the test machine's spec.
pub(crate) const HASH: &str = "$6$salt$hash";

/// The machine most unit tests plan and apply: Debian bookworm by
/// debootstrap, a unit of each kind, a hashed password, one securetty entry.
pub(crate) fn web() -> Machine {
    Machine::builder("web")
        .packages(["systemd", "dbus"])
        .enable(["systemd-networkd.service"])
        .disable(["fstrim.timer"])
        .mask(["apt-daily.timer"])
        .root_password(RootPassword::Hash(HASH.into()))
        .securetty(["pts/0"])
        .bootstrapper(BootstrapperKind::Debootstrap)
        .build()
}
