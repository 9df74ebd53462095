//! One ssh connection per host, through the system's `ssh` only.
//!
//! Every call to a host goes through one master connection
//! (`ControlMaster=auto`, `ControlPersist=300`) that outlives the command:
//! the next berth command to the same host reuses it (no new TCP and key
//! exchange). Its socket is `/run/berth/ssh/HASH`, in a directory that
//! must be a real directory owned by root with mode 0700 (berth refuses a
//! symlink or another owner or mode), HASH a digest of everything that
//! identifies the connection: the destination, port, identity,
//! known_hosts file, host key checking and every other option, and the
//! contents of the known_hosts and identity files. A spec with other
//! settings (a stricter host key check, another key) never reuses a
//! master made for different ones, nor does a command after known_hosts
//! changed (a key removed or replaced): it connects anew and checks. Nor
//! does a master stand for a host whose own keys changed since it was
//! made: the agent compares them with the digest recorded beside the
//! socket (`HASH.keys`) before anything else, and the master is ended
//! and ssh connects anew ([`super::hostkeys`]). A master ends by itself
//! 300 s after its last use, or when its host stops answering (15 s);
//! `ssh -o ControlPath=/run/berth/ssh/HASH -O exit x` ends one now. With
//! a master up, a command's session is opened on its socket directly
//! ([`super::mux`], no ssh client started); else `ssh` runs and makes
//! the master.
//! `BatchMode=yes` (no prompt is ever waited on), `StrictHostKeyChecking=yes`
//! unless the spec opts into `accept-new`, `UserKnownHostsFile=` the spec's
//! `known_hosts:` when given, `-i` with `IdentitiesOnly=yes` for a host's
//! `identity:`, `ConnectTimeout=10`. ssh gets an explicit minimal
//! environment: `HOME`, `PATH`, `SSH_AUTH_SOCK`, `USER`, `LOGNAME`.
//!
//! [`Connection::prepare`] makes sure the host runs this very berth: its
//! `uname -m` must match, the binary is stored once by content hash at
//! `/var/lib/berth/bin/berth-HASH` (sent over stdin only when missing;
//! a push removes the other `berth-*` files there, older versions and
//! leftovers of an interrupted push), and its `--version` must equal
//! ours; a host's `berth:` names an installed one instead.

use std::io::Write;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_schema::hosts::{Fleet, Host, HostKeyChecking};
use sha2::{Digest, Sha256};

use super::RemoteError;

/// Where the socket directory is made.
const RUN_DIR: &str = "/run/berth";

/// The masters' sockets, under [`RUN_DIR`].
pub const SSH_DIR: &str = "/run/berth/ssh";

/// How long an idle master stays up (seconds).
const PERSIST_SECONDS: u32 = 300;

/// The target's state directory, where pushed binaries are kept.
pub const TARGET_STATE_DIR: &str = "/var/lib/berth";

/// Variables ssh may inherit from berth: what it needs to find keys and
/// an agent, nothing that could hold a spec's secret.
const SSH_ENV: &[&str] = &["HOME", "PATH", "SSH_AUTH_SOCK", "USER", "LOGNAME"];

/// This berth's binary: its bytes' hash and version, for the push.
#[derive(Debug, Clone)]
pub struct LocalBinary {
    /// The running executable.
    pub path: PathBuf,
    /// The first 16 hex digits of its SHA-256.
    pub hash: String,
    /// What `berth --version` prints (`berth 0.1.0`).
    pub version: String,
}

impl LocalBinary {
    /// The running executable, hashed; `version` is what `--version` prints.
    pub fn current(version: &str) -> Result<LocalBinary, RemoteError> {
        let path = std::env::current_exe()
            .map_err(|e| RemoteError::new(format!("cannot find berth's own binary: {e}")))?;
        // Hashing the binary (tens of MB) costs more than a warm plan over
        // hosts: the hash is kept in the private socket directory, keyed
        // by the file's identity and times, and computed when they change.
        let key = file_key(&path);
        let cache = control_dir().ok().map(|d| d.join(HASH_CACHE));
        if let (Some(key), Some(cache)) = (&key, &cache)
            && let Some(hash) = cached_hash(cache, key)
        {
            return Ok(LocalBinary {
                path,
                hash,
                version: version.trim().to_owned(),
            });
        }
        let bytes = std::fs::read(&path).map_err(|e| {
            RemoteError::new(format!(
                "cannot read berth's binary {}: {e}",
                path.display()
            ))
        })?;
        let digest = Sha256::digest(&bytes);
        let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        // Stored only when the file did not change while it was read.
        if let (Some(key), Some(cache)) = (&key, &cache)
            && file_key(&path).as_ref() == Some(key)
        {
            store_hash(cache, key, &hash);
        }
        Ok(LocalBinary {
            path,
            hash,
            version: version.trim().to_owned(),
        })
    }
}

/// The file in [`SSH_DIR`] that keeps this binary's hash.
const HASH_CACHE: &str = "self.hash";

/// What identifies `path`'s content without reading it: device, inode,
/// size, modification and change times (ns).
fn file_key(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(path).ok()?;
    Some(format!(
        "{}:{}:{}:{}.{}:{}.{}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    ))
}

/// The hash `cache` holds for `key` (`KEY HASH`, see [`read_private`]).
fn cached_hash(cache: &Path, key: &str) -> Option<String> {
    let text = read_private(cache)?;
    let (k, hash) = text.trim().split_once(' ')?;
    (k == key && hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| hash.to_owned())
}

/// Writes `KEY HASH` to `cache`; failures only cost the next command a
/// new hash.
fn store_hash(cache: &Path, key: &str, hash: &str) {
    write_private(cache, &format!("{key} {hash}"));
}

/// An ssh master connection to one host, shared with later commands
/// (see the module doc).
#[derive(Debug)]
pub struct Connection {
    host: Host,
    /// The master's socket.
    socket: PathBuf,
    /// The options every ssh call gets.
    options: Vec<String>,
}

/// The output of a command on the host.
#[derive(Debug)]
pub struct Finished {
    /// ssh's exit status (255: ssh itself failed).
    pub code: Option<i32>,
    /// stdout.
    pub stdout: Vec<u8>,
    /// stderr.
    pub stderr: String,
}

/// A command started on a host by [`Connection::start`]: its streams
/// (taken by the caller) and a way to wait for it.
pub struct Started {
    /// What the command reads.
    pub stdin: Option<Box<dyn Write + Send>>,
    /// What it prints.
    pub stdout: Option<Box<dyn std::io::Read + Send>>,
    /// Its errors, and ssh's.
    pub stderr: Option<Box<dyn std::io::Read + Send>>,
    waiter: Waiter,
}

/// What runs a [`Started`] command here.
enum Waiter {
    /// An ssh client.
    Ssh(std::process::Child),
    /// A session opened on the master's socket.
    Mux(super::mux::Session),
}

impl Started {
    /// Waits for the command: its exit code as ssh reports it, 255 when
    /// the connection was lost.
    pub fn wait(self) -> Option<i32> {
        match self.waiter {
            Waiter::Ssh(mut child) => child.wait().ok().and_then(|s| s.code()),
            Waiter::Mux(session) => Some(session.wait().map_or(255, |code| code as i32)),
        }
    }
}

impl Connection {
    /// Makes the socket directory and the options for `host`; connects on
    /// the first call.
    pub fn new(host: &Host, fleet: &Fleet) -> Result<Connection, RemoteError> {
        let Some(target) = &host.ssh else {
            return Err(RemoteError::new(format!(
                "host {}: no `ssh:` (it is the machine berth runs on)",
                host.name
            )));
        };
        let known_hosts = fleet.known_hosts.as_deref().map(config_path).transpose()?;
        let mut options: Vec<String> = Vec::new();
        let mut opt = |o: String| {
            options.push("-o".into());
            options.push(o);
        };
        opt("BatchMode=yes".into());
        opt(format!(
            "StrictHostKeyChecking={}",
            match fleet.host_key_checking {
                HostKeyChecking::Strict => "yes",
                HostKeyChecking::AcceptNew => "accept-new",
            }
        ));
        if let Some(kh) = known_hosts {
            opt(format!("UserKnownHostsFile={kh}"));
            opt("GlobalKnownHostsFile=/dev/null".into());
        }
        opt("ConnectTimeout=10".into());
        opt("ServerAliveInterval=5".into());
        opt("ServerAliveCountMax=3".into());
        opt("LogLevel=ERROR".into());
        if let Some(identity) = &host.identity {
            opt("IdentitiesOnly=yes".into());
            options.push("-i".into());
            options.push(identity.display().to_string().replace('%', "%%"));
        }
        if let Some(port) = target.port {
            options.push("-p".into());
            options.push(port.to_string());
        }
        options.push("-T".into());
        // The socket is named by everything above and the destination, so
        // a master is only ever reused with the very same settings.
        let mut digest = Sha256::new();
        digest.update(target.destination().as_bytes());
        for o in &options {
            digest.update([0]);
            digest.update(o.as_bytes());
        }
        // And by what the files say: a master made before known_hosts
        // changed (a key removed or replaced) must not stand for it.
        let mut trust: Vec<PathBuf> = match &fleet.known_hosts {
            Some(kh) => vec![kh.clone()],
            None => {
                let home = std::env::var_os("HOME").map(PathBuf::from);
                let mut files: Vec<PathBuf> = home
                    .iter()
                    .flat_map(|h| [h.join(".ssh/known_hosts"), h.join(".ssh/known_hosts2")])
                    .collect();
                files.push("/etc/ssh/ssh_known_hosts".into());
                files.push("/etc/ssh/ssh_known_hosts2".into());
                files
            }
        };
        trust.extend(host.identity.clone());
        for file in &trust {
            digest.update([1]);
            match std::fs::read(file) {
                Ok(bytes) => digest.update(Sha256::digest(&bytes)),
                Err(_) => digest.update(b"-"),
            }
        }
        let name: String = digest
            .finalize()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
        let socket = control_dir()?.join(name);
        let mut control = vec![
            "-o".to_owned(),
            "ControlMaster=auto".to_owned(),
            "-o".to_owned(),
            format!("ControlPath={}", socket.display()),
            "-o".to_owned(),
            format!("ControlPersist={PERSIST_SECONDS}"),
        ];
        control.append(&mut options);
        Ok(Connection {
            host: host.clone(),
            socket,
            options: control,
        })
    }

    /// The master's socket (`/run/berth/ssh/HASH`).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The remote command that runs `berth-HASH agent` when `binary` is on
    /// the host already, else exits [`MISSING_EXIT`] with nothing on
    /// stdout: one round trip for the usual case. `None` when the host
    /// names an installed berth (`berth:`), which [`Connection::prepare`]
    /// checks first.
    ///
    /// `expect` is [`Connection::kept_keys`]: the agent then checks the
    /// host's keys first (see [`super::hostkeys`]).
    pub fn agent_if_present(&self, binary: &LocalBinary, expect: Option<&str>) -> Option<String> {
        if self.host.berth.is_some() {
            return None;
        }
        let bin = format!("{TARGET_STATE_DIR}/bin/berth-{}", binary.hash);
        Some(format!(
            "if test -x {bin}; then exec {}; else exit {MISSING_EXIT}; fi",
            agent_command(&bin, expect)
        ))
    }

    /// The file that keeps the host keys' digest of this host's master.
    fn keys_record(&self) -> PathBuf {
        self.socket.with_extension("keys")
    }

    /// Whether a kept master is up, and then the digest of the host's
    /// keys recorded when it was made. A master without a record (made
    /// by something else, or the record lost) is ended here, so the next
    /// call connects anew and ssh checks the host's key.
    pub fn kept_keys(&self) -> Option<String> {
        let record = self.keys_record();
        if !self.socket.exists() {
            let _ = std::fs::remove_file(&record);
            return None;
        }
        match read_record(&record) {
            Some(digest) => Some(digest),
            None => {
                self.end_master();
                None
            }
        }
    }

    /// Records `digest` (what the agent reported) for the master made by
    /// this command.
    pub fn record_keys(&self, digest: &str) {
        if super::hostkeys::is_digest(digest) {
            write_private(&self.keys_record(), digest);
        }
        // A new master is rare: the time to drop the records of masters
        // that ended by themselves (idle, or their host gone).
        if let Some(dir) = self.socket.parent() {
            sweep_records(dir);
        }
    }

    /// Ends the host's master (`ssh -O exit`) and forgets its record.
    pub fn end_master(&self) {
        let _ = std::fs::remove_file(self.keys_record());
        if !self.socket.exists() {
            return;
        }
        let mut cmd = ssh_command();
        cmd.arg("-o")
            .arg(format!("ControlPath={}", self.socket.display()))
            .args(["-O", "exit", "--"]);
        if let Some(target) = &self.host.ssh {
            cmd.arg(target.destination());
        }
        let _ = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // The master may still be removing its socket; the next ssh
        // replaces a stale one.
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// `ssh OPTIONS -- DEST REMOTE`, with a minimal environment.
    pub fn command(&self, remote: &str) -> Command {
        let mut cmd = ssh_command();
        cmd.args(&self.options);
        cmd.arg("--");
        if let Some(target) = &self.host.ssh {
            cmd.arg(target.destination());
        }
        cmd.arg(remote);
        cmd
    }

    /// Starts `remote` on the host with piped stdin, stdout and stderr.
    ///
    /// When the host's master is up, the session is opened on its socket
    /// directly ([`super::mux`]), without an ssh client; else (no master
    /// yet, a stale socket, a master that refuses) through `ssh`, which
    /// makes the master.
    pub fn start(&self, remote: &str) -> Result<Started, RemoteError> {
        if self.socket.exists() {
            let pipe = |what: &str| {
                std::io::pipe()
                    .map_err(|e| RemoteError::new(format!("cannot make a pipe for {what}: {e}")))
            };
            let (stdin_r, stdin_w) = pipe("stdin")?;
            let (stdout_r, stdout_w) = pipe("stdout")?;
            let (stderr_r, stderr_w) = pipe("stderr")?;
            let stdio = super::mux::Stdio {
                stdin: stdin_r.into(),
                stdout: stdout_w.into(),
                stderr: stderr_w.into(),
            };
            if let Ok(session) = super::mux::Session::open(&self.socket, remote, stdio) {
                return Ok(Started {
                    stdin: Some(Box::new(stdin_w)),
                    stdout: Some(Box::new(stdout_r)),
                    stderr: Some(Box::new(stderr_r)),
                    waiter: Waiter::Mux(session),
                });
            }
        }
        // In a process group of its own: a terminal's Ctrl-C reaches berth,
        // which stops the remote side at a safe point, not ssh.
        let mut child = self
            .command(remote)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| RemoteError::new(format!("cannot run ssh: {e}")))?;
        Ok(Started {
            stdin: child
                .stdin
                .take()
                .map(|p| Box::new(p) as Box<dyn Write + Send>),
            stdout: child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            stderr: child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            waiter: Waiter::Ssh(child),
        })
    }

    /// Runs `remote` on the host, feeding `stdin`, and waits.
    pub fn run(&self, remote: &str, stdin: Option<&[u8]>) -> Result<Finished, RemoteError> {
        let mut child = self
            .command(remote)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| RemoteError::new(format!("cannot run ssh: {e}")))?;
        let writer = match (stdin, child.stdin.take()) {
            (Some(bytes), Some(mut pipe)) => {
                let bytes = bytes.to_vec();
                Some(std::thread::spawn(move || {
                    let _ = pipe.write_all(&bytes);
                }))
            }
            _ => None,
        };
        let out = child
            .wait_with_output()
            .map_err(|e| RemoteError::new(format!("ssh: {e}")))?;
        if let Some(w) = writer {
            let _ = w.join();
        }
        Ok(Finished {
            code: out.status.code(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs `remote` and requires success; ssh's own failures (exit 255)
    /// are reported as they are (`ssh: connect to host ...`).
    fn check(&self, remote: &str, stdin: Option<&[u8]>, what: &str) -> Result<String, RemoteError> {
        let out = self.run(remote, stdin)?;
        if out.code == Some(255) {
            return Err(RemoteError::new(ssh_failure(&out.stderr)));
        }
        if out.code != Some(0) {
            return Err(RemoteError::new(format!(
                "{what} failed: {}",
                last_line(&out.stderr).unwrap_or("(no message)")
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Connects, checks the architecture, pushes `binary` when missing and
    /// checks the version. Returns the berth to run on the host.
    pub fn prepare(&self, binary: &LocalBinary) -> Result<String, RemoteError> {
        // The usual case in one round trip: the same architecture, and
        // this very berth there already. Anything else takes the steps
        // below, one at a time, for their own errors.
        let known = self
            .host
            .berth
            .clone()
            .unwrap_or_else(|| format!("{TARGET_STATE_DIR}/bin/berth-{}", binary.hash));
        let quick = self.run(
            &format!("uname -m && {} --version", shell_quote(&known)),
            None,
        )?;
        if quick.code == Some(255) {
            return Err(RemoteError::new(ssh_failure(&quick.stderr)));
        }
        if quick.code == Some(0) {
            let text = String::from_utf8_lossy(&quick.stdout);
            let mut lines = text.lines().map(str::trim);
            if lines.next() == Some(std::env::consts::ARCH)
                && lines.next() == Some(binary.version.as_str())
            {
                return Ok(known);
            }
        }
        let arch = self.check("uname -m", None, "uname -m")?;
        let ours = std::env::consts::ARCH;
        if arch != ours {
            return Err(RemoteError::new(format!(
                "the host is {arch}, this berth is built for {ours}: install berth there and set `hosts.{}.berth: PATH`",
                self.host.name
            )));
        }
        let bin = match &self.host.berth {
            Some(path) => path.clone(),
            None => {
                let dir = format!("{TARGET_STATE_DIR}/bin");
                let bin = format!("{dir}/berth-{}", binary.hash);
                let present = self.check(
                    &format!("if test -x {bin}; then echo present; else echo missing; fi"),
                    None,
                    "looking for berth on the host",
                )?;
                if present != "present" {
                    let bytes = std::fs::read(&binary.path).map_err(|e| {
                        RemoteError::new(format!("cannot read {}: {e}", binary.path.display()))
                    })?;
                    let tmp = format!("{bin}.tmp.$$");
                    self.check(
                        &format!(
                            "umask 077 && mkdir -p {dir} && cat > {tmp} && chmod 0755 {tmp} && mv -f {tmp} {bin} && for old in {dir}/berth-*; do case $old in {bin}|*.tmp.$$) ;; *) rm -f \"$old\" ;; esac; done"
                        ),
                        Some(&bytes),
                        "sending berth to the host",
                    )?;
                }
                bin
            }
        };
        let out = self.run(&format!("{} --version", shell_quote(&bin)), None)?;
        if out.code == Some(255) {
            return Err(RemoteError::new(ssh_failure(&out.stderr)));
        }
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.code != Some(0) {
            return Err(RemoteError::new(format!(
                "{bin} cannot run on the host ({}): install berth there and set `hosts.{}.berth: PATH`",
                last_line(&out.stderr).unwrap_or("no message"),
                self.host.name
            )));
        }
        if version != binary.version {
            return Err(RemoteError::new(format!(
                "{bin} is {version:?}, this is {:?}: versions must match exactly",
                binary.version
            )));
        }
        Ok(bin)
    }
}

/// `path` as an ssh option value: `%` escaped (ssh expands `%` tokens in
/// paths), double-quoted when it holds whitespace (ssh splits option
/// values there); a `"` cannot be quoted and is refused.
fn config_path(path: &Path) -> Result<String, RemoteError> {
    let text = path.display().to_string();
    if text.contains('"') {
        return Err(RemoteError::new(format!(
            "{text}: ssh cannot take a path with a double quote"
        )));
    }
    let text = text.replace('%', "%%");
    Ok(if text.chars().any(char::is_whitespace) {
        format!("\"{text}\"")
    } else {
        text
    })
}

/// The exit code of [`Connection::agent_if_present`]'s command when the
/// binary is missing.
pub const MISSING_EXIT: i32 = 97;

/// The agent's exit code when the host's ssh host keys are not those the
/// controller's kept master was made with (nothing was read or done).
pub const HOST_KEYS_EXIT: i32 = 96;

/// `ssh` with the explicit, minimal environment every ssh berth runs gets
/// ([`SSH_ENV`] from berth's own).
fn ssh_command() -> Command {
    let mut cmd = Command::new("ssh");
    cmd.env_clear();
    for key in SSH_ENV {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    cmd
}

/// `BIN agent`, with the host keys' digest to expect when given.
pub fn agent_command(bin: &str, expect: Option<&str>) -> String {
    match expect {
        Some(digest) if super::hostkeys::is_digest(digest) => {
            format!("{} agent --expect-host-keys {digest}", shell_quote(bin))
        }
        _ => format!("{} agent", shell_quote(bin)),
    }
}

/// Removes the host keys records in `dir` whose master's socket is gone.
fn sweep_records(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "keys")
            && entry.file_type().is_ok_and(|t| t.is_file())
            && !path.with_extension("").exists()
        {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// A host keys record (see [`read_private`]) holding one digest.
fn read_record(path: &Path) -> Option<String> {
    let text = read_private(path)?;
    let digest = text.trim();
    super::hostkeys::is_digest(digest).then(|| digest.to_owned())
}

/// The text of one of berth's small files in [`SSH_DIR`]: a regular file
/// (not followed when a symlink) owned by us, its first 4 KiB.
fn read_private(path: &Path) -> Option<String> {
    use std::io::Read as _;
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.uid() != nix::unistd::geteuid().as_raw() {
        return None;
    }
    let mut text = String::new();
    file.take(4096).read_to_string(&mut text).ok()?;
    Some(text)
}

/// Writes `text` and a newline to `path` (a new file, mode 0600, renamed
/// over it); failures are ignored (they only cost the next command a new
/// hash or connection).
fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(format!("{text}\n").as_bytes()));
    if written.is_err() || std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// [`SSH_DIR`], made when missing (mode 0700); refused unless it is a real
/// directory (no symlink) owned by us with mode 0700, as is [`RUN_DIR`]
/// unless it is a real directory owned by us.
fn control_dir() -> Result<PathBuf, RemoteError> {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
    let uid = nix::unistd::geteuid().as_raw();
    let check = |path: &str, exact_mode: bool| -> Result<(), RemoteError> {
        let meta = std::fs::symlink_metadata(path)
            .map_err(|e| RemoteError::new(format!("cannot read {path}: {e}")))?;
        if !meta.file_type().is_dir() {
            return Err(RemoteError::new(format!(
                "{path} is not a directory (a symlink?): refusing to keep ssh sockets there"
            )));
        }
        if meta.uid() != uid || (exact_mode && meta.mode() & 0o7777 != 0o700) {
            return Err(RemoteError::new(format!(
                "{path} must be owned by uid {uid} with mode 0700 (it is uid {}, mode {:o}): refusing to keep ssh sockets there",
                meta.uid(),
                meta.mode() & 0o7777
            )));
        }
        Ok(())
    };
    for (path, mode, exact) in [(RUN_DIR, 0o755, false), (SSH_DIR, 0o700, true)] {
        match std::fs::DirBuilder::new().mode(mode).create(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(RemoteError::new(format!("cannot make {path}: {e}"))),
        }
        check(path, exact)?;
    }
    Ok(PathBuf::from(SSH_DIR))
}

/// The message for an ssh failure (exit 255): its last line, with a hint
/// for host keys.
pub fn ssh_failure(stderr: &str) -> String {
    let line = last_line(stderr).unwrap_or("the connection to the host was lost");
    if line.contains("Host key verification failed") {
        let changed = stderr.contains("HOST IDENTIFICATION HAS CHANGED")
            || stderr.contains("key for") && stderr.contains("has changed");
        format!(
            "ssh: host key verification failed: {}",
            if changed {
                "the host's key changed (not the one in known_hosts)"
            } else {
                "the host's key is not in known_hosts (set `host_key_checking: accept-new` to add new hosts)"
            }
        )
    } else if line.starts_with("ssh:") {
        line.to_owned()
    } else {
        format!("ssh: {line}")
    }
}

/// The last non-empty line of `text`.
fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rfind(|l| !l.is_empty())
}

/// `s` quoted for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | ':'))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_failures_read_well() {
        assert_eq!(
            ssh_failure("ssh: connect to host 10.0.0.1 port 22: No route to host\r\n"),
            "ssh: connect to host 10.0.0.1 port 22: No route to host"
        );
        assert!(ssh_failure("Host key verification failed.\n").contains("not in known_hosts"));
        assert!(
            ssh_failure("@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed.\n")
                .contains("changed")
        );
    }

    #[test]
    fn paths_for_ssh_options() {
        assert_eq!(config_path(Path::new("/a/b")).unwrap(), "/a/b");
        assert_eq!(config_path(Path::new("/a b/%h")).unwrap(), "\"/a b/%%h\"");
        assert!(config_path(Path::new("/a\"b")).is_err());
    }

    #[test]
    fn binary_hash_is_cached_by_file_identity() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("self.hash");
        let bin = dir.path().join("bin");
        std::fs::write(&bin, b"one").unwrap();
        let key = file_key(&bin).unwrap();
        assert_eq!(cached_hash(&cache, &key), None);
        store_hash(&cache, &key, "0123456789abcdef");
        assert_eq!(
            cached_hash(&cache, &key).as_deref(),
            Some("0123456789abcdef")
        );
        // Another content (size, times) is another key.
        std::fs::write(&bin, b"other").unwrap();
        let changed = file_key(&bin).unwrap();
        assert_ne!(changed, key);
        assert_eq!(cached_hash(&cache, &changed), None);
        // A symlink is not followed.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&cache, &link).unwrap();
        assert_eq!(cached_hash(&link, &key), None);
    }

    #[test]
    fn records_of_ended_masters_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("aaaa");
        std::fs::write(&live, "").unwrap();
        std::fs::write(dir.path().join("aaaa.keys"), "x").unwrap();
        std::fs::write(dir.path().join("bbbb.keys"), "x").unwrap();
        std::fs::write(dir.path().join("self.hash"), "x").unwrap();
        sweep_records(dir.path());
        assert!(dir.path().join("aaaa.keys").exists());
        assert!(!dir.path().join("bbbb.keys").exists());
        assert!(dir.path().join("self.hash").exists());
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/var/lib/berth"), "/var/lib/berth");
        assert_eq!(shell_quote("a b'c"), r"'a b'\''c'");
    }

    #[test]
    fn options_are_strict_and_private() {
        let spec = berth_schema::load_str(
            "hosts:\n  a: {ssh: \"root@192.0.2.1:2222\", identity: /k/id}\nknown_hosts: /k/known\nmachines: {}\n",
            Path::new("/s/spec.yaml"),
        )
        .unwrap();
        let host = spec.fleet.hosts["a"].clone();
        let c = Connection::new(&host, &spec.fleet).unwrap();
        let cmd = c.command("true");
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        for want in [
            "BatchMode=yes",
            "StrictHostKeyChecking=yes",
            "UserKnownHostsFile=/k/known",
            "IdentitiesOnly=yes",
            "ControlMaster=auto",
            "ControlPersist=300",
            "ConnectTimeout=10",
        ] {
            assert!(args.iter().any(|a| a == want), "{want}: {args:?}");
        }
        let dd = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(&args[dd + 1..], ["root@192.0.2.1", "true"]);
        assert!(args.windows(2).any(|w| w[0] == "-p" && w[1] == "2222"));
        let dir = c.socket.parent().unwrap();
        assert_eq!(dir, Path::new(SSH_DIR));
        let meta = std::fs::symlink_metadata(dir).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
        assert_eq!(mode & 0o777, 0o700);
        assert!(args.contains(&format!("ControlPath={}", c.socket.display())));
        // The same settings share a master; others never do.
        let again = Connection::new(&host, &spec.fleet).unwrap();
        assert_eq!(again.socket, c.socket);
        for other in [
            "hosts:\n  a: {ssh: \"root@192.0.2.1:2222\", identity: /k/id}\nknown_hosts: /k/other\nmachines: {}\n",
            "hosts:\n  a: {ssh: \"root@192.0.2.1:2222\", identity: /k/id}\nknown_hosts: /k/known\nhost_key_checking: accept-new\nmachines: {}\n",
            "hosts:\n  a: {ssh: \"root@192.0.2.1:2222\", identity: /k/id2}\nknown_hosts: /k/known\nmachines: {}\n",
            "hosts:\n  a: {ssh: \"root@192.0.2.1:2223\", identity: /k/id}\nknown_hosts: /k/known\nmachines: {}\n",
            "hosts:\n  a: {ssh: \"admin@192.0.2.1:2222\", identity: /k/id}\nknown_hosts: /k/known\nmachines: {}\n",
        ] {
            let spec = berth_schema::load_str(other, Path::new("/s/spec.yaml")).unwrap();
            let o = Connection::new(&spec.fleet.hosts["a"], &spec.fleet).unwrap();
            assert_ne!(o.socket, c.socket, "{other}");
        }
    }
}
