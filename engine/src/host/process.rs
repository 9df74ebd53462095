//! Facts about host processes read from the host's `/proc`: liveness with
//! pid-reuse protection, and a supervisor's first child (a container's init).

use std::fs;

use super::Host;

/// A process's state letter and start time (clock ticks since boot), from `/proc/PID/stat`.
pub fn stat(host: &dyn Host, pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(host.proc_dir().join(format!("{pid}/stat"))).ok()?;
    // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some((state, start_time))
}

/// The start time of a live process, for recording.
pub fn start_time(host: &dyn Host, pid: i32) -> Option<u64> {
    stat(host, pid).map(|(_, t)| t)
}

/// The file name of the program `pid` runs (`/proc/PID/exe`).
pub fn program(host: &dyn Host, pid: i32) -> Option<String> {
    fs::read_link(host.proc_dir().join(format!("{pid}/exe")))
        .ok()?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
}

/// Whether `pid` is alive (not a zombie), is the process that started at
/// `start_time`, and runs the program named `program`.
pub fn is_alive(host: &dyn Host, pid: i32, start_time: u64, name: &str) -> bool {
    match stat(host, pid) {
        Some((state, t)) if t == start_time && state != 'Z' && state != 'X' => {
            program(host, pid).is_some_and(|p| p == name)
        }
        Some((state, t)) if t == start_time && state == 'Z' => {
            host.reap(pid);
            false
        }
        _ => false,
    }
}

/// The child of `pid` that is PID 1 of its own PID namespace (for
/// systemd-nspawn: the container's init, once the container has been set up;
/// before that, nspawn's intermediate child is not it).
pub fn namespace_init_child(host: &dyn Host, pid: i32) -> Option<i32> {
    let text =
        fs::read_to_string(host.proc_dir().join(format!("{pid}/task/{pid}/children"))).ok()?;
    text.split_whitespace()
        .filter_map(|c| c.parse().ok())
        .find(|child: &i32| is_namespace_init(host, *child))
}

/// Whether `pid` is PID 1 inside its innermost PID namespace (`NSpid:` ends in 1).
fn is_namespace_init(host: &dyn Host, pid: i32) -> bool {
    fs::read_to_string(host.proc_dir().join(format!("{pid}/status")))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
            let ids: Vec<&str> = line.split_whitespace().skip(1).collect();
            Some(ids.len() > 1 && ids.last() == Some(&"1"))
        })
        .unwrap_or(false)
}

/// Every process's pid and arguments whose program is `name`, in one pass
/// over `/proc`. Only processes of berth's own PID namespace count: this
/// host's. A systemd host running in a container here (its machines'
/// systemd-nspawn processes show in our `/proc` too) is another host.
pub fn with_program(host: &dyn Host, name: &str) -> Vec<(i32, Vec<String>)> {
    let mut procs = Vec::new();
    let Ok(entries) = fs::read_dir(host.proc_dir()) else {
        return procs;
    };
    let own_ns = fs::read_link(host.proc_dir().join("self/ns/pid")).ok();
    let other_host = |pid: i32| {
        own_ns.as_ref().is_some_and(|own| {
            fs::read_link(host.proc_dir().join(format!("{pid}/ns/pid"))).is_ok_and(|ns| ns != *own)
        })
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if program(host, pid).as_deref() != Some(name) || other_host(pid) {
            continue;
        }
        let Ok(cmdline) = fs::read(host.proc_dir().join(format!("{pid}/cmdline"))) else {
            continue;
        };
        let args = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        procs.push((pid, args));
    }
    procs.sort();
    procs
}
