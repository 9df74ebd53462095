//! Many hosts over SSH (issue 15): the controller's side of the wire.
//!
//! - [`ssh`]: one connection per host through the system's `ssh`
//!   (ControlMaster in a private socket directory, BatchMode, strict host
//!   key checking), the binary push and the version check;
//! - [`hostkeys`]: the digest of a host's ssh host keys that keeps a
//!   kept master from standing for a host whose keys changed;
//! - [`mux`]: a session opened on a master's socket with OpenSSH's
//!   multiplexing protocol, without starting an ssh client;
//! - [`wire`]: the request `berth agent` reads on stdin and the
//!   newline-delimited JSON events it writes on stdout;
//! - [`bundle`]: one host's part of the spec, with the files it references
//!   and its secrets resolved on the controller.
//!
//! Nothing here prints: the CLI renders the events.

pub mod bundle;
pub mod hostkeys;
pub mod mux;
pub mod ssh;
pub mod wire;

/// Why a host could not be reached or used. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RemoteError(pub String);

impl RemoteError {
    /// An error from a message.
    pub fn new(message: impl Into<String>) -> Self {
        RemoteError(message.into())
    }
}
