//! A small expect-like driver over a pty: runs a command with a new pty as
//! its controlling terminal (stdin, stdout and stderr), reads what it
//! prints, waits for patterns and types answers. For `machinectl login`,
//! which refuses to run without a terminal.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// A command running on a pty.
pub struct Pty {
    master: File,
    child: Child,
    /// Everything read so far.
    transcript: String,
    /// Where the next [`Pty::expect`] starts looking in the transcript.
    pos: usize,
}

impl Pty {
    /// Starts `cmd` in a new session whose controlling terminal is a new
    /// pty (80x24).
    pub fn spawn(mut cmd: Command) -> Pty {
        let size = nix::pty::Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pair = nix::pty::openpty(Some(&size), None).expect("openpty");
        let slave: OwnedFd = pair.slave;
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup of the pty slave"));
        cmd.stdin(stdio(&slave))
            .stdout(stdio(&slave))
            .stderr(stdio(&slave));
        // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("starting a command on a pty");
        drop(slave);
        let master = File::from(pair.master);
        let flags = fcntl(&master, FcntlArg::F_GETFL).expect("F_GETFL");
        fcntl(
            &master,
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        )
        .expect("F_SETFL");
        Pty {
            master,
            child,
            transcript: String::new(),
            pos: 0,
        }
    }

    /// Reads what is there; false once the other side is gone.
    fn pump(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match self.master.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => self
                    .transcript
                    .push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // EIO: the slave side is closed (the command exited).
                Err(_) => return false,
            }
        }
    }

    /// Waits up to `timeout` for the first of `patterns` after the last
    /// match; returns its index, or Err with the transcript.
    pub fn expect(&mut self, patterns: &[&str], timeout: Duration) -> Result<usize, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let alive = self.pump();
            let rest = &self.transcript[self.pos..];
            let found = patterns
                .iter()
                .enumerate()
                .filter_map(|(i, p)| rest.find(p).map(|at| (at, i, p.len())))
                .min();
            if let Some((at, i, len)) = found {
                self.pos += at + len;
                return Ok(i);
            }
            if !alive || Instant::now() >= deadline {
                return Err(format!(
                    "none of {patterns:?} within {timeout:?} ({}); transcript:\n{}",
                    if alive {
                        "timed out"
                    } else {
                        "the command ended"
                    },
                    self.transcript
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `text`.
    pub fn send(&mut self, text: &str) {
        self.master
            .write_all(text.as_bytes())
            .expect("writing to the pty");
    }

    /// Everything read so far.
    pub fn transcript(&self) -> &str {
        &self.transcript
    }

    /// Waits up to `timeout` for the command to exit; kills its session
    /// (its own process group) after that.
    pub fn finish(mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.pump();
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.pump();
        std::mem::take(&mut self.transcript)
    }
}

impl Drop for Pty {
    /// Kills what is left of the command's session (started by us, a
    /// process group of its own) and reaps it.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            if let Ok(pid) = i32::try_from(self.child.id()) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = self.master.as_raw_fd();
    }
}
