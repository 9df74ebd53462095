//! Asking before changing things.

use std::io::{self, BufRead, IsTerminal, Write};

use anyhow::{Result, bail};

/// Asks `question` with a y/N prompt on the terminal. Without a terminal on
/// stdin it refuses rather than guessing.
pub fn confirm(question: &str, yes: bool) -> Result<bool> {
    if yes {
        return Ok(true);
    }
    if !io::stdin().is_terminal() {
        bail!(
            "refusing to change machines without confirmation: stdin is not a terminal (pass --yes)"
        );
    }
    let mut stderr = io::stderr();
    write!(stderr, "{question} [y/N] ")?;
    stderr.flush()?;
    let mut answer = String::new();
    io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
