//! The host berth works on: its directories, state, lock and processes,
//! and small utilities (finding programs, log tails, running a command
//! inside a running guest).

pub mod lock;
pub mod paths;
pub mod process;
pub mod state;

use std::fs;
use std::process::{Command, Stdio};

/// Runs a command inside the guest whose init is `leader` (all namespaces,
/// the guest's root) and returns its trimmed stdout, whatever its exit code.
pub fn guest_command(leader: i32, argv: &[&str]) -> Option<String> {
    let output = Command::new("nsenter")
        .arg(format!("--target={leader}"))
        .args(["--all", "--root", "--wd", "--"])
        .args(argv)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// The last `lines` lines of a log file, for error messages.
pub fn log_tail(path: &std::path::Path, lines: usize) -> String {
    let text = fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let mut out = all[start..].join("\n");
    out.push_str(&format!("\n(full log: {})", path.display()));
    out
}

/// The full path of `program` on PATH.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}
