//! The exclusive lock around apply and destroy. `plan` takes none.
//!
//! A `flock` on `STATE_DIR/lock`: the kernel drops it when the holder dies,
//! so a killed berth never leaves a stale lock behind. The holder writes its
//! pid into the file so a waiter can say who it waits for.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::EngineError;
use crate::host::paths::Paths;

/// A held state lock; released on drop.
#[derive(Debug)]
pub struct StateLock {
    _lock: Flock<File>,
}

impl StateLock {
    /// Takes the lock, waiting if another berth holds it. `on_wait` is called
    /// once, with the holder's pid when known, before waiting.
    pub fn acquire(paths: &Paths, on_wait: impl FnOnce(Option<u32>)) -> Result<Self, EngineError> {
        Self::acquire_within(paths, None, on_wait)
    }

    /// Like [`StateLock::acquire`], but waits at most `timeout` (`None`:
    /// forever). When it runs out, the error names the holder's pid; a zero
    /// timeout fails at once if another berth holds the lock.
    pub fn acquire_within(
        paths: &Paths,
        timeout: Option<Duration>,
        on_wait: impl FnOnce(Option<u32>),
    ) -> Result<Self, EngineError> {
        let path = paths.lock_file();
        fs::create_dir_all(&paths.state_dir)
            .map_err(|e| EngineError::io(format!("creating {}", paths.state_dir.display()), e))?;
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(|e| EngineError::io(format!("opening {}", path.display()), e))
        };
        let mut lock = match Flock::lock(open()?, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let holder = read_holder(&mut file);
                match timeout {
                    None => {
                        on_wait(holder);
                        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| {
                            EngineError::io(format!("locking {}", path.display()), e.into())
                        })?
                    }
                    Some(timeout) => {
                        if !timeout.is_zero() {
                            on_wait(holder);
                        }
                        wait_until(file, &path, Instant::now() + timeout)?
                    }
                }
            }
            Err((_, e)) => {
                return Err(EngineError::io(
                    format!("locking {}", path.display()),
                    e.into(),
                ));
            }
        };
        // Best effort: the pid is only for messages.
        let _ = lock.set_len(0);
        let _ = lock.seek(SeekFrom::Start(0));
        let _ = writeln!(lock, "{}", std::process::id());
        let _ = lock.flush();
        Ok(StateLock { _lock: lock })
    }
}

/// The pid the holder wrote into the lock file, if readable.
fn read_holder(file: &mut File) -> Option<u32> {
    let mut holder = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_string(&mut holder);
    holder.trim().parse().ok()
}

/// Polls for the lock until `deadline`; then fails naming the holder.
fn wait_until(file: File, path: &Path, deadline: Instant) -> Result<Flock<File>, EngineError> {
    let mut file = file;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((mut back, Errno::EWOULDBLOCK)) => {
                if Instant::now() >= deadline {
                    let who = read_holder(&mut back)
                        .map(|pid| format!("another berth (pid {pid})"))
                        .unwrap_or_else(|| "another berth".to_owned());
                    return Err(EngineError::State(format!(
                        "{who} holds the state lock {}; gave up waiting (--lock-timeout)",
                        path.display()
                    )));
                }
                file = back;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err((_, e)) => {
                return Err(EngineError::io(
                    format!("locking {}", path.display()),
                    e.into(),
                ));
            }
        }
    }
}
