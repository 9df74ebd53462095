//! Stopping an apply at a safe point on SIGINT or SIGTERM.
//!
//! [`install`] makes the first SIGINT or SIGTERM set a flag instead of
//! killing berth; apply checks it between actions ([`check`]) and stops with
//! [`EngineError::Interrupted`], which lists what was done and what was not.
//! The handler resets itself (`SA_RESETHAND`), so a second signal kills
//! berth at once. Tools berth runs in the foreground process group get a
//! terminal's Ctrl-C themselves; their action then fails and apply stops
//! there, reporting the interruption the same way.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use crate::error::EngineError;
use crate::model::action::Action;

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Turns the first SIGINT or SIGTERM into a stop request (see the module
/// docs). Call once, before applying.
pub fn install() -> Result<(), EngineError> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESETHAND | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores into an atomic, which is
        // async-signal-safe; no other handler for these signals is replaced
        // behind anyone's back (berth installs none elsewhere).
        unsafe { sigaction(signal, &action) }
            .map_err(|e| EngineError::io(format!("installing a {signal} handler"), e.into()))?;
    }
    Ok(())
}

/// Requests a stop as the signal would (a controller's agent does when
/// its controller asks, or goes away).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Fails with [`EngineError::Interrupted`] if a stop was requested: `done`
/// are the actions of `machine` already applied, `pending` those not started.
pub fn check(machine: &str, done: &[Action], pending: &[Action]) -> Result<(), EngineError> {
    if !requested() {
        return Ok(());
    }
    Err(EngineError::Interrupted {
        machine: machine.to_owned(),
        done: done.iter().map(Action::describe).collect(),
        pending: pending.iter().map(Action::describe).collect(),
    })
}
