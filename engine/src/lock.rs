//! The exclusive lock around apply and destroy. `plan` takes none.
//!
//! A `flock` on `STATE_DIR/lock`: the kernel drops it when the holder dies,
//! so a killed berth never leaves a stale lock behind. The holder writes its
//! pid into the file so a waiter can say who it waits for.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::EngineError;
use crate::paths::Paths;

/// A held state lock; released on drop.
#[derive(Debug)]
pub struct StateLock {
    _lock: Flock<File>,
}

impl StateLock {
    /// Takes the lock, waiting if another berth holds it. `on_wait` is called
    /// once, with the holder's pid when known, before waiting.
    pub fn acquire(paths: &Paths, on_wait: impl FnOnce(Option<u32>)) -> Result<Self, EngineError> {
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
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                on_wait(holder.trim().parse().ok());
                Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| {
                    EngineError::io(format!("locking {}", path.display()), e.into())
                })?
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
