//! Progress events. The engine never prints: it reports events to a
//! [`Reporter`] that the front end renders (a terminal, CI logs, JSON).

use crate::model::action::Action;

/// Something that happened during apply or destroy.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// An action is starting.
    Started {
        /// The machine.
        machine: &'a str,
        /// The action.
        action: &'a Action,
    },
    /// An action finished.
    Finished {
        /// The machine.
        machine: &'a str,
        /// The action.
        action: &'a Action,
    },
    /// A command is about to run (the exact argv, e.g. the bootstrap tool's).
    Command {
        /// The machine.
        machine: &'a str,
        /// The command line.
        argv: &'a [String],
    },
    /// A free-form progress note (e.g. "waiting for boot").
    Note {
        /// The machine.
        machine: &'a str,
        /// What is happening.
        message: &'a str,
    },
}

/// Receives progress events.
pub trait Reporter: Sync {
    /// Handles one event.
    fn report(&self, event: Event<'_>);
}

/// A reporter that drops everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _event: Event<'_>) {}
}
