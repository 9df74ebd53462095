//! Facts about host processes read from /proc: liveness with pid-reuse
//! protection, and a supervisor's first child (a container's init).

use std::fs;

/// A process's state letter and start time (clock ticks since boot), from `/proc/PID/stat`.
pub fn stat(pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some((state, start_time))
}

/// The start time of a live process, for recording.
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|(_, t)| t)
}

/// Whether `pid` is alive (not a zombie), is the process that started at
/// `start_time`, and runs the program named `program`.
pub fn is_alive(pid: i32, start_time: u64, program: &str) -> bool {
    match stat(pid) {
        Some((state, t)) if t == start_time && state != 'Z' && state != 'X' => {
            fs::read_link(format!("/proc/{pid}/exe"))
                .map(|exe| exe.file_name().is_some_and(|n| n == program))
                .unwrap_or(false)
        }
        Some((state, t)) if t == start_time && state == 'Z' => {
            reap(pid);
            false
        }
        _ => false,
    }
}

/// Reaps `pid` if it is our own exited child (no-op otherwise).
pub fn reap(pid: i32) {
    use nix::sys::wait::{WaitPidFlag, waitpid};
    let _ = waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
}

/// The child of `pid` that is PID 1 of its own PID namespace (for
/// systemd-nspawn: the container's init, once the container has been set up;
/// before that, nspawn's intermediate child is not it).
pub fn namespace_init_child(pid: i32) -> Option<i32> {
    let text = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    text.split_whitespace()
        .filter_map(|c| c.parse().ok())
        .find(|child: &i32| is_namespace_init(*child))
}

/// Whether `pid` is PID 1 inside its innermost PID namespace (`NSpid:` ends in 1).
fn is_namespace_init(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
            let ids: Vec<&str> = line.split_whitespace().skip(1).collect();
            Some(ids.len() > 1 && ids.last() == Some(&"1"))
        })
        .unwrap_or(false)
}
