//! Apply progress: a spinner per machine on a terminal, plain per-step
//! lines otherwise. Lines are written whole, never interleaved mid-line.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_engine::{Event, Reporter};
use indicatif::{ProgressBar, ProgressStyle};

/// Renders engine events on stderr.
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Mutex<Option<Instant>>,
    quiet: bool,
}

impl Progress {
    /// A renderer for stderr; `quiet` drops everything (e.g. with --json).
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            started: Mutex::new(None),
            quiet,
        }
    }

    /// Clears the spinner.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}

impl Reporter for Progress {
    fn report(&self, event: Event<'_>) {
        if self.quiet {
            return;
        }
        match event {
            Event::Started { machine, action } => {
                if let Ok(mut started) = self.started.lock() {
                    *started = Some(Instant::now());
                }
                if let berth_engine::Action::Bootstrap { command, .. } = action {
                    self.line(format!("{machine}: $ {}", command.join(" ")));
                }
                match &self.bar {
                    Some(bar) => bar.set_message(format!("{machine}: {}", action.describe())),
                    None => eprintln!("{machine}: {}...", action.describe()),
                }
            }
            Event::Finished { machine, action } => {
                let took = self
                    .started
                    .lock()
                    .ok()
                    .and_then(|s| *s)
                    .map(|t| format!(" ({:.1}s)", t.elapsed().as_secs_f64()))
                    .unwrap_or_default();
                self.line(format!("{machine}: done: {}{took}", action.describe()));
            }
            Event::Note { machine, message } => match &self.bar {
                Some(bar) => bar.set_message(format!("{machine}: {message}")),
                None => eprintln!("{machine}: {message}"),
            },
        }
    }
}
