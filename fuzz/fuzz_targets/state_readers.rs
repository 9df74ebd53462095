//! The parsers berth runs over guest-controlled files (dpkg status, pacman
//! desc, rpm query output, /etc/shadow, /etc/securetty) and host tables
//! (mountinfo, systemd-nspawn command lines).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    berth_engine::fuzzing::state_readers(data);
});
