//! A session on an ssh master that is already up, opened on the master's
//! control socket with OpenSSH's own multiplexing protocol
//! (`PROTOCOL.mux` in OpenSSH's sources, protocol version 4): what
//! `ssh -o ControlPath=SOCKET HOST COMMAND` does as a "passenger" client,
//! without starting an ssh client for it. Starting one (reading its
//! configuration, loading its crypto library) is most of what a warm
//! command to a host costs; the master does all the rest as before:
//! authentication, encryption, the host's settings.
//!
//! Only what berth needs is spoken: the hello, one `MUX_C_NEW_SESSION`
//! without a tty, agent or X11 forwarding, escape character or
//! environment, its stdin, stdout and stderr passed as descriptors, and
//! the exit message. Anything else the master says ends the session as
//! lost.

use std::io::{IoSlice, Read, Write};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

/// `MUX_MSG_HELLO`.
const HELLO: u32 = 0x0000_0001;
/// `MUX_C_NEW_SESSION`.
const NEW_SESSION: u32 = 0x1000_0002;
/// `MUX_S_PERMISSION_DENIED`.
const PERMISSION_DENIED: u32 = 0x8000_0002;
/// `MUX_S_FAILURE`.
const FAILURE: u32 = 0x8000_0003;
/// `MUX_S_EXIT_MESSAGE`.
const EXIT_MESSAGE: u32 = 0x8000_0004;
/// `MUX_S_SESSION_OPENED`.
const SESSION_OPENED: u32 = 0x8000_0006;
/// `MUX_S_TTY_ALLOC_FAIL`.
const TTY_ALLOC_FAIL: u32 = 0x8000_0008;
/// The protocol version spoken (OpenSSH's since 5.x).
const VERSION: u32 = 4;
/// The longest packet accepted from a master.
const MAX_PACKET: u32 = 256 * 1024;
/// The request id of the one request sent.
const REQUEST_ID: u32 = 1;
/// "No escape character".
const NO_ESCAPE: u32 = 0xffff_ffff;

/// Why no session was opened. Nothing was started on the host: running
/// the command through `ssh` instead is safe.
#[derive(Debug)]
pub enum OpenError {
    /// No master answers on the socket (none yet, or a stale socket).
    NoMaster(std::io::Error),
    /// The master refused or failed the request, or spoke another
    /// protocol.
    Refused(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::NoMaster(e) => write!(f, "no ssh master: {e}"),
            OpenError::Refused(why) => write!(f, "the ssh master refused a session: {why}"),
        }
    }
}

/// A command running on the host through a master.
#[derive(Debug)]
pub struct Session {
    stream: UnixStream,
    id: u32,
}

/// The command's standard streams as the master gets them: the ends the
/// remote side reads (stdin) and writes (stdout, stderr).
#[derive(Debug)]
pub struct Stdio {
    /// What the command reads.
    pub stdin: OwnedFd,
    /// Where its output goes.
    pub stdout: OwnedFd,
    /// Where its errors go.
    pub stderr: OwnedFd,
}

impl Session {
    /// Runs `command` on the host of the master listening on `socket`,
    /// with `stdio` (handed to the master and closed here). Returns once
    /// the master has opened the session.
    pub fn open(socket: &Path, command: &str, stdio: Stdio) -> Result<Session, OpenError> {
        let mut stream = UnixStream::connect(socket).map_err(OpenError::NoMaster)?;
        let refused = |e: std::io::Error| OpenError::Refused(e.to_string());
        write_packet(&mut stream, &hello()).map_err(refused)?;
        let reply = read_packet(&mut stream).map_err(refused)?;
        let mut r = Reader(&reply);
        let (kind, version) = (r.u32(), r.u32());
        if kind != Some(HELLO) || version != Some(VERSION) {
            return Err(OpenError::Refused(format!(
                "unexpected hello from the master (type {kind:?}, version {version:?})"
            )));
        }
        write_packet(&mut stream, &new_session(command)).map_err(refused)?;
        // The three descriptors, one message each with one byte, as
        // OpenSSH's own client sends them.
        for fd in [&stdio.stdin, &stdio.stdout, &stdio.stderr] {
            let raw = [fd.as_raw_fd()];
            sendmsg::<()>(
                stream.as_raw_fd(),
                &[IoSlice::new(&[0])],
                &[ControlMessage::ScmRights(&raw)],
                MsgFlags::empty(),
                None,
            )
            .map_err(|e| OpenError::Refused(format!("cannot pass a descriptor: {e}")))?;
        }
        drop(stdio);
        let reply = read_packet(&mut stream).map_err(refused)?;
        let mut r = Reader(&reply);
        let (kind, rid) = (r.u32(), r.u32());
        if rid != Some(REQUEST_ID) {
            return Err(OpenError::Refused(format!(
                "a reply out of sequence (request {rid:?})"
            )));
        }
        match kind {
            Some(SESSION_OPENED) => match r.u32() {
                Some(id) => Ok(Session { stream, id }),
                None => Err(OpenError::Refused("a short reply".into())),
            },
            Some(PERMISSION_DENIED) | Some(FAILURE) => Err(OpenError::Refused(
                r.string().unwrap_or_else(|| "no reason given".into()),
            )),
            other => Err(OpenError::Refused(format!("unexpected reply {other:?}"))),
        }
    }

    /// Waits for the command to end: its exit status, or `None` when the
    /// master went away without one (the connection was lost).
    pub fn wait(mut self) -> Option<u32> {
        let mut status = None;
        // The master closes the socket after the exit message; closing it
        // first would make the master end the session early.
        while let Ok(packet) = read_packet(&mut self.stream) {
            let mut r = Reader(&packet);
            match (r.u32(), r.u32()) {
                (Some(EXIT_MESSAGE), Some(id)) if id == self.id => status = r.u32(),
                (Some(TTY_ALLOC_FAIL), Some(id)) if id == self.id => {}
                _ => return None,
            }
        }
        status
    }
}

/// `MUX_MSG_HELLO`, version 4, no extensions.
fn hello() -> Vec<u8> {
    let mut m = Vec::new();
    put_u32(&mut m, HELLO);
    put_u32(&mut m, VERSION);
    m
}

/// `MUX_C_NEW_SESSION` for `command`: no tty, X11, agent or subsystem,
/// no escape character, no terminal type, no environment.
fn new_session(command: &str) -> Vec<u8> {
    let mut m = Vec::new();
    put_u32(&mut m, NEW_SESSION);
    put_u32(&mut m, REQUEST_ID);
    put_string(&mut m, b""); // reserved
    for flag in [0, 0, 0, 0] {
        put_u32(&mut m, flag); // tty, X11, agent, subsystem
    }
    put_u32(&mut m, NO_ESCAPE);
    put_string(&mut m, b""); // terminal type
    put_string(&mut m, command.as_bytes());
    m
}

fn put_u32(m: &mut Vec<u8>, v: u32) {
    m.extend_from_slice(&v.to_be_bytes());
}

fn put_string(m: &mut Vec<u8>, s: &[u8]) {
    put_u32(m, s.len() as u32);
    m.extend_from_slice(s);
}

/// Writes one packet: its length, then its body.
fn write_packet(stream: &mut UnixStream, body: &[u8]) -> std::io::Result<()> {
    let mut packet = Vec::with_capacity(body.len() + 4);
    put_u32(&mut packet, body.len() as u32);
    packet.extend_from_slice(body);
    stream.write_all(&packet)
}

/// Reads one packet's body.
fn read_packet(stream: &mut UnixStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len);
    if len > MAX_PACKET {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a packet of {len} bytes from the master"),
        ));
    }
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body)?;
    Ok(body)
}

/// Reads SSH wire values off a packet body.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*head))
    }

    fn string(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        if len > self.0.len() {
            return None;
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(String::from_utf8_lossy(s).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn new_session_is_laid_out_as_openssh_reads_it() {
        let m = new_session("echo hi");
        let mut r = Reader(&m);
        assert_eq!(r.u32(), Some(NEW_SESSION));
        assert_eq!(r.u32(), Some(REQUEST_ID));
        assert_eq!(r.string().as_deref(), Some(""));
        for _ in 0..4 {
            assert_eq!(r.u32(), Some(0));
        }
        assert_eq!(r.u32(), Some(NO_ESCAPE));
        assert_eq!(r.string().as_deref(), Some(""));
        assert_eq!(r.string().as_deref(), Some("echo hi"));
        assert!(r.0.is_empty());
    }

    #[test]
    fn no_master_is_reported_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = std::io::pipe().unwrap();
        let (c, d) = std::io::pipe().unwrap();
        let stdio = Stdio {
            stdin: a.into(),
            stdout: d.into(),
            stderr: OwnedFd::from(b),
        };
        drop(c);
        match Session::open(&dir.path().join("none"), "true", stdio) {
            Err(OpenError::NoMaster(_)) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refusal_and_a_wrong_hello_are_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            // First client: a wrong version.
            let (mut s, _) = listener.accept().unwrap();
            let _ = read_packet(&mut s).unwrap();
            let mut m = Vec::new();
            put_u32(&mut m, HELLO);
            put_u32(&mut m, 3);
            write_packet(&mut s, &m).unwrap();
            // Second: a refusal after the descriptors.
            let (mut s, _) = listener.accept().unwrap();
            let _ = read_packet(&mut s).unwrap();
            write_packet(&mut s, &hello()).unwrap();
            let _ = read_packet(&mut s).unwrap();
            let mut m = Vec::new();
            put_u32(&mut m, PERMISSION_DENIED);
            put_u32(&mut m, REQUEST_ID);
            put_string(&mut m, b"no sessions here");
            write_packet(&mut s, &m).unwrap();
            // Hold the socket until the client has read the reply.
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
        });
        let stdio = || {
            let (a, b) = std::io::pipe().unwrap();
            let (_, d) = std::io::pipe().unwrap();
            Stdio {
                stdin: a.into(),
                stdout: d.into(),
                stderr: b.into(),
            }
        };
        match Session::open(&path, "true", stdio()) {
            Err(OpenError::Refused(why)) => assert!(why.contains("hello"), "{why}"),
            other => panic!("{other:?}"),
        }
        match Session::open(&path, "true", stdio()) {
            Err(OpenError::Refused(why)) => assert_eq!(why, "no sessions here"),
            other => panic!("{other:?}"),
        }
        server.join().unwrap();
    }
}
