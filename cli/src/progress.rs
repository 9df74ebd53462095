//! Apply progress: one spinner line per machine on a terminal (indicatif),
//! plain per-step lines otherwise. Every line is written whole (one locked
//! write), so parallel machines never interleave mid-line.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_engine::{Event, Reporter};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Renders engine events on stderr.
pub struct Progress {
    /// Present on a terminal.
    bars: Option<MultiProgress>,
    /// Per machine: its spinner (on a terminal) and when its current step began.
    machines: Mutex<HashMap<String, (Option<ProgressBar>, Instant)>>,
    quiet: bool,
}

impl Progress {
    /// A renderer for stderr; `quiet` drops everything (e.g. with --json).
    pub fn new(quiet: bool) -> Self {
        let bars = (!quiet && std::io::stderr().is_terminal()).then(MultiProgress::new);
        Progress {
            bars,
            machines: Mutex::new(HashMap::new()),
            quiet,
        }
    }

    /// Clears every spinner.
    pub fn finish(&self) {
        if let Ok(mut machines) = self.machines.lock() {
            for (bar, _) in machines.values_mut() {
                if let Some(bar) = bar.take() {
                    bar.finish_and_clear();
                }
            }
        }
    }

    /// Ends machine `name`'s spinner with a final line.
    pub fn machine_done(&self, name: &str, line: &str) {
        if self.quiet {
            return;
        }
        let bar = self
            .machines
            .lock()
            .ok()
            .and_then(|mut m| m.get_mut(name).and_then(|(bar, _)| bar.take()));
        match bar {
            Some(bar) => bar.finish_with_message(line.to_owned()),
            None => eprintln!("{line}"),
        }
    }

    fn line(&self, text: String) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    /// Sets machine `name`'s current step; returns how long its previous one took.
    fn step(&self, name: &str, message: String, restart: bool) -> Duration {
        let Ok(mut machines) = self.machines.lock() else {
            return Duration::ZERO;
        };
        let entry = machines.entry(name.to_owned()).or_insert_with(|| {
            let bar = self.bars.as_ref().map(|bars| {
                let bar = bars.add(ProgressBar::new_spinner());
                if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}") {
                    bar.set_style(style);
                }
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            });
            (bar, Instant::now())
        });
        let took = entry.1.elapsed();
        if restart {
            entry.1 = Instant::now();
        }
        if let Some(bar) = &entry.0 {
            bar.set_message(message);
        }
        took
    }
}

impl Reporter for Progress {
    fn report(&self, event: Event<'_>) {
        if self.quiet {
            return;
        }
        match event {
            Event::Started { machine, action } => {
                self.step(machine, format!("{machine}: {}", action.describe()), true);
                if self.bars.is_none() {
                    eprintln!("{machine}: {}...", action.describe());
                }
            }
            Event::Finished { machine, action } => {
                let took = self.step(machine, format!("{machine}: {}", action.describe()), false);
                self.line(format!(
                    "{machine}: done: {} ({:.1}s)",
                    action.describe(),
                    took.as_secs_f64()
                ));
            }
            Event::Command { machine, argv } => {
                self.line(format!("{machine}: $ {}", argv.join(" ")));
            }
            Event::Note { machine, message } => {
                self.step(machine, format!("{machine}: {message}"), false);
                if self.bars.is_none() {
                    eprintln!("{machine}: {message}");
                }
            }
        }
    }
}
