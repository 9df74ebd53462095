//! The engine's error type: every variant says what berth was doing and on
//! which machine or path, so a user can act on it.

use std::io;

/// What can go wrong while observing, planning or applying.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A host I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What berth was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file operation inside a machine root failed or was refused.
    #[error(transparent)]
    Confined(#[from] crate::confined::ConfinedError),
    /// berth's own state is unreadable.
    #[error("berth state: {0}")]
    State(String),
    /// The spec asks for something the machine's root cannot give.
    #[error("machine {machine}: {message}")]
    Plan {
        /// The machine.
        machine: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A secret could not be read (the error never contains the secret).
    #[error("machine {machine}: root_password: {error}")]
    Secret {
        /// The machine.
        machine: String,
        /// What is wrong.
        #[source]
        error: crate::secret::SecretError,
    },
    /// A command berth ran failed.
    #[error("{what} failed ({status}){}", if .output.is_empty() { String::new() } else { format!(":\n{}", .output) })]
    Command {
        /// The command, as a user would type it.
        what: String,
        /// Its exit status.
        status: String,
        /// The last lines of its output.
        output: String,
    },
    /// A required host tool is missing.
    #[error("{tool} is not installed (install the Debian package `{package}`)")]
    MissingTool {
        /// The program.
        tool: String,
        /// The package that provides it.
        package: String,
    },
    /// Starting, stopping or watching a machine failed.
    #[error("machine {machine}: {message}")]
    Launch {
        /// The machine.
        machine: String,
        /// What went wrong.
        message: String,
    },
    /// A refusal that protects the user's data.
    #[error("machine {machine}: refused: {message}")]
    Refused {
        /// The machine.
        machine: String,
        /// Why berth will not do it.
        message: String,
    },
    /// `prevent_destroy: true` forbids destroying the machine or replacing
    /// its root; only editing the spec lifts it.
    #[error(
        "machine {machine}: prevent_destroy is set ({at}): remove it from the spec to destroy or replace this machine"
    )]
    PreventDestroy {
        /// The machine.
        machine: String,
        /// Where it is set: `FILE:LINE:COLUMN` in the spec, or berth's
        /// record of the last apply.
        at: String,
    },
    /// A SIGINT or SIGTERM stopped apply between two actions.
    #[error(
        "machine {machine}: interrupted; stopped at a safe point between actions.\n  done: {}\n  not done: {}\n  run apply again to finish",
        if .done.is_empty() { "nothing".to_owned() } else { .done.join("; ") },
        if .pending.is_empty() { "nothing".to_owned() } else { .pending.join("; ") }
    )]
    Interrupted {
        /// The machine.
        machine: String,
        /// The actions applied before the stop.
        done: Vec<String>,
        /// The actions not started.
        pending: Vec<String>,
    },
    /// An error about a machine, with where the spec declares it.
    #[error("{error}\n  --> {at}")]
    At {
        /// `FILE:LINE:COLUMN` of the machine's declaration.
        at: String,
        /// The error.
        error: Box<EngineError>,
    },
    /// A health check failed after an apply (`health check failed: unit
    /// nginx.service is failed`), saying whether berth rolled back.
    #[error("machine {machine}: {message}")]
    Health {
        /// The machine.
        machine: String,
        /// The failed check, and the rollback if there was one.
        message: String,
    },
    /// The machines changed between plan and apply.
    #[error("machine {machine}: the plan is stale: {message}")]
    Stale {
        /// The machine.
        machine: String,
        /// What changed.
        message: String,
    },
}

impl EngineError {
    /// This error, located at the spec declaration of the machine it is
    /// about (`machines.yaml:3:3`), shown as a `-->` line under it.
    pub fn at(self, source: &berth_schema::Source) -> Self {
        if source.line.is_none() || matches!(self, EngineError::At { .. }) {
            return self;
        }
        EngineError::At {
            at: source.to_string(),
            error: Box::new(self),
        }
    }

    /// The error itself, without the spec location.
    pub fn inner(&self) -> &EngineError {
        match self {
            EngineError::At { error, .. } => error.inner(),
            other => other,
        }
    }

    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        EngineError::Io {
            context: context.into(),
            source,
        }
    }
}
