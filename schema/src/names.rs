//! Checks on single values: machine names, hostnames, package, release, unit
//! and securetty names, mirrors, crypt(3) hashes, variable names; and for the
//! machine's runtime settings: bootstrap variants and components, dnf
//! repositories, zones, bridges, port forwards, bind paths, capabilities and
//! environment variables.
//!
//! Every check returns `Err(message)` with a message fit for a user. Messages
//! quote the offending value through [`quote`], which escapes control
//! characters, except for the root password checks, which never echo the value.

use std::fmt::Write as _;

use crate::spec::{Port, Protocol};

/// Longest machine name systemd accepts.
pub(crate) const MAX_MACHINE_NAME: usize = 64;
/// Longest hostname (Linux `HOST_NAME_MAX`).
pub(crate) const MAX_HOSTNAME: usize = 64;
/// Longest package name accepted.
pub(crate) const MAX_PACKAGE: usize = 128;
/// Longest release name accepted.
pub(crate) const MAX_RELEASE: usize = 64;
/// Longest unit name systemd accepts (with its suffix).
pub(crate) const MAX_UNIT: usize = 255;
/// Longest securetty entry accepted.
pub(crate) const MAX_SECURETTY: usize = 64;
/// Longest mirror URL accepted.
pub(crate) const MAX_MIRROR: usize = 2048;
/// Longest crypt(3) hash accepted.
const MAX_HASH: usize = 512;
/// Longest environment variable name accepted.
const MAX_ENV: usize = 255;
/// Longest password file path accepted.
const MAX_FILE: usize = 4096;
/// Longest bootstrap variant or component name accepted.
pub(crate) const MAX_DEB_WORD: usize = 32;
/// Longest dnf repository id accepted.
pub(crate) const MAX_REPO_ID: usize = 64;
/// Longest zone name: `vz-` + the zone must fit an interface name (15).
pub(crate) const MAX_ZONE: usize = 12;
/// Longest bridge name: a Linux interface name (`IFNAMSIZ` - 1).
pub(crate) const MAX_BRIDGE: usize = 15;
/// Longest bind path accepted (`PATH_MAX`).
pub(crate) const MAX_BIND_PATH: usize = 4096;
/// Longest capability name accepted.
const MAX_CAPABILITY: usize = 64;

/// Unit type suffixes systemd knows.
pub(crate) const UNIT_SUFFIXES: &[&str] = &[
    "service",
    "socket",
    "target",
    "timer",
    "path",
    "mount",
    "automount",
    "swap",
    "slice",
    "scope",
    "device",
];

/// crypt(3) method identifiers accepted in `root_password.hash`.
const CRYPT_IDS: &[&str] = &[
    "1", "5", "6", "y", "gy", "7", "2a", "2b", "2y", "sha1", "md5",
];

/// `value` in backquotes, control characters and non-ASCII whitespace escaped,
/// cut to a readable length.
pub(crate) fn quote(value: &str) -> String {
    const SHOWN: usize = 80;
    let mut out = String::from("`");
    for (i, c) in value.chars().enumerate() {
        if i == SHOWN {
            out.push('…');
            break;
        }
        if c == ' ' || !(c.is_control() || c.is_whitespace()) {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out.push('`');
    out
}

/// What kind of value a token check is looking at, and what it allows.
struct Token {
    /// What the value is, for messages ("package name").
    what: &'static str,
    /// Longest accepted length in characters.
    max: usize,
    /// Whether a character may appear at all.
    allowed: fn(char) -> bool,
    /// The allowed characters, for messages.
    allowed_desc: &'static str,
    /// Whether `/` separates path segments (securetty) instead of being refused.
    path_like: bool,
}

/// The common checks: empty, too long, option-like, control characters,
/// whitespace, path escapes, then the character set.
fn check_token(value: &str, t: &Token) -> Result<(), String> {
    let q = quote(value);
    let what = t.what;
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    let len = value.chars().count();
    if len > t.max {
        return Err(format!(
            "{what} is {len} characters long; at most {} are allowed",
            t.max
        ));
    }
    if value.starts_with('-') {
        return Err(format!(
            "{what} {q} starts with `-` and could be read as an option"
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{what} {q} contains a control character"));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(format!("{what} {q} contains whitespace"));
    }
    if t.path_like {
        if value.starts_with('/') {
            return Err(format!(
                "{what} {q} starts with `/`: write it relative to /dev (e.g. `pts/0`)"
            ));
        }
        if value.split('/').any(|s| s == "..") {
            return Err(format!("{what} {q} contains a `..` path segment"));
        }
        if value.split('/').any(str::is_empty) {
            return Err(format!("{what} {q} contains an empty path segment"));
        }
    } else {
        if value.contains('/') {
            return Err(format!("{what} {q} contains `/`, which is not allowed"));
        }
        if value.contains("..") {
            return Err(format!("{what} {q} contains `..`, which is not allowed"));
        }
    }
    if let Some(c) = value.chars().find(|&c| !(t.allowed)(c)) {
        return Err(format!(
            "{what} {q} contains {}, which is not allowed (allowed: {})",
            quote(&c.to_string()),
            t.allowed_desc
        ));
    }
    Ok(())
}

/// A machine name: 1–64 of `[A-Za-z0-9._-]`, not starting with `-` or `.`, no `..`.
pub(crate) fn machine_name(name: &str) -> Result<(), String> {
    check_token(
        name,
        &Token {
            what: "machine name",
            max: MAX_MACHINE_NAME,
            allowed: |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'),
            allowed_desc: "letters, digits, `.`, `_`, `-`",
            path_like: false,
        },
    )?;
    if name.starts_with('.') {
        return Err(format!("machine name {} starts with `.`", quote(name)));
    }
    Ok(())
}

/// A hostname (RFC 1123): dot-separated labels of 1–63 `[A-Za-z0-9-]`, not
/// starting or ending with `-`, at most 64 characters in all.
pub(crate) fn hostname(name: &str) -> Result<(), String> {
    let q = quote(name);
    if name.is_empty() {
        return Err("hostname is empty".to_owned());
    }
    let len = name.chars().count();
    if len > MAX_HOSTNAME {
        return Err(format!(
            "hostname is {len} characters long; at most {MAX_HOSTNAME} are allowed"
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("hostname {q} has an empty label"));
        }
        if label.len() > 63 {
            return Err(format!(
                "hostname {q} has a label longer than 63 characters"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(format!(
                "hostname {q} contains {}, which is not allowed (allowed: letters, digits, `-`, and `.` between labels)",
                quote(&c.to_string())
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "hostname {q} has a label that starts or ends with `-`"
            ));
        }
    }
    Ok(())
}

/// A package name: `[A-Za-z0-9][A-Za-z0-9+._@:~-]*`.
pub(crate) fn package(name: &str) -> Result<(), String> {
    check_token(
        name,
        &Token {
            what: "package name",
            max: MAX_PACKAGE,
            allowed: |c| {
                c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '_' | '@' | ':' | '~' | '-')
            },
            allowed_desc: "letters, digits, `+ . _ @ : ~ -`",
            path_like: false,
        },
    )?;
    first_alnum("package name", name)
}

/// A release: `[A-Za-z0-9][A-Za-z0-9._-]*`, at most 64 characters.
pub(crate) fn release(name: &str) -> Result<(), String> {
    check_token(
        name,
        &Token {
            what: "release",
            max: MAX_RELEASE,
            allowed: |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'),
            allowed_desc: "letters, digits, `. _ -`",
            path_like: false,
        },
    )?;
    first_alnum("release", name)
}

/// Refuses a value whose first character is not a letter or digit.
fn first_alnum(what: &str, name: &str) -> Result<(), String> {
    match name.chars().next() {
        Some(c) if c.is_ascii_alphanumeric() => Ok(()),
        _ => Err(format!(
            "{what} {} must start with a letter or digit",
            quote(name)
        )),
    }
}

/// A unit name as written in the spec (before suffixing): `[A-Za-z0-9:_.\@-]`,
/// not starting with `-`, `.` or `@`, no `/`, at most one `@`.
pub(crate) fn unit(name: &str) -> Result<(), String> {
    check_token(
        name,
        &Token {
            what: "unit name",
            max: MAX_UNIT,
            allowed: |c| {
                c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '.' | '\\' | '@' | '-')
            },
            allowed_desc: "letters, digits, `: _ . \\ @ -`",
            path_like: false,
        },
    )?;
    let q = quote(name);
    if name.starts_with('.') || name.starts_with('@') {
        return Err(format!(
            "unit name {q} must start with a letter, digit, `:`, `_` or `\\`"
        ));
    }
    if name.matches('@').count() > 1 {
        return Err(format!("unit name {q} contains more than one `@`"));
    }
    let full = unit_with_suffix(name);
    if full.len() > MAX_UNIT {
        return Err(format!(
            "unit name {q} is longer than {MAX_UNIT} characters once suffixed"
        ));
    }
    Ok(())
}

/// The unit name with its type suffix: names without a known suffix get `.service`.
pub(crate) fn unit_with_suffix(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, suffix)) if !stem.is_empty() && UNIT_SUFFIXES.contains(&suffix) => {
            name.to_owned()
        }
        _ => format!("{name}.service"),
    }
}

/// A securetty entry: `[A-Za-z0-9/._:-]`, relative to /dev, no `..` segment.
pub(crate) fn securetty(name: &str) -> Result<(), String> {
    check_token(
        name,
        &Token {
            what: "securetty entry",
            max: MAX_SECURETTY,
            allowed: |c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | ':' | '-'),
            allowed_desc: "letters, digits, `/ . _ : -`",
            path_like: true,
        },
    )
}

/// A mirror URL: `http://HOST...`, `https://HOST...` or `file:/PATH`, with no
/// whitespace or control characters.
pub(crate) fn mirror(url: &str) -> Result<(), String> {
    base_url("mirror", url)
}

/// A dnf repository URL: like a mirror, and without `,` (dnf's
/// `--repofrompath=ID,URL` splits at the first one).
pub(crate) fn repo_url(url: &str) -> Result<(), String> {
    base_url("repository url", url)?;
    if url.contains(',') {
        return Err(format!(
            "repository url {} contains `,`, which dnf's --repofrompath=ID,URL cannot take (write it as %2C)",
            quote(url)
        ));
    }
    Ok(())
}

/// An `http://HOST...`, `https://HOST...` or `file:/PATH` URL, with no
/// whitespace or control characters; `what` names it in messages.
fn base_url(what: &str, url: &str) -> Result<(), String> {
    let q = quote(url);
    if url.is_empty() {
        return Err(format!("{what} is empty"));
    }
    let len = url.chars().count();
    if len > MAX_MIRROR {
        return Err(format!(
            "{what} is {len} characters long; at most {MAX_MIRROR} are allowed"
        ));
    }
    if url.chars().any(char::is_control) {
        return Err(format!("{what} {q} contains a control character"));
    }
    if url.chars().any(char::is_whitespace) {
        return Err(format!("{what} {q} contains whitespace"));
    }
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if url.starts_with("file:/") {
        return Ok(());
    } else {
        return Err(format!(
            "{what} {q} must be an `http://`, `https://` or `file:/` URL"
        ));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("{what} {q} has no host"));
    }
    Ok(())
}

/// A crypt(3) hash: `$ID$SALT$HASH` (or more `$` fields), ID one of
/// [`CRYPT_IDS`], characters `[A-Za-z0-9./$=,]`. The message never echoes the value.
pub(crate) fn crypt_hash(hash: &str) -> Result<(), String> {
    let ids = CRYPT_IDS.join(", ");
    let refuse = || {
        Err(format!(
            "root_password.hash is not a crypt(3) hash (`$ID$SALT$HASH` with ID one of {ids}); \
             generate one with `mkpasswd -m sha-512` or `openssl passwd -6`"
        ))
    };
    if hash.len() > MAX_HASH {
        return refuse();
    }
    if !hash
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '$' | '=' | ','))
    {
        return refuse();
    }
    let fields: Vec<&str> = hash.split('$').collect();
    // "$id$salt$hash" splits into ["", id, salt, hash].
    let shaped = fields.len() >= 4
        && fields.first().is_some_and(|f| f.is_empty())
        && fields.get(1).is_some_and(|id| CRYPT_IDS.contains(id))
        && fields.get(2).is_some_and(|f| !f.is_empty())
        && fields.last().is_some_and(|f| !f.is_empty());
    if shaped { Ok(()) } else { refuse() }
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`. The message never echoes the value.
pub(crate) fn env_var(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = name.len() <= MAX_ENV
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(
            "root_password.env must be an environment variable name (`[A-Za-z_][A-Za-z0-9_]*`)"
                .to_owned(),
        )
    }
}

/// A password file path: non-empty, no NUL or line breaks. The message never echoes the value.
pub(crate) fn secret_file(path: &str) -> Result<(), String> {
    local_file("root_password.file", path)
}

/// A pacman.conf path: non-empty, no NUL or line breaks.
pub(crate) fn pacman_conf(path: &str) -> Result<(), String> {
    local_file("pacman_conf", path)
}

/// A path to a file on the host, relative to the spec or absolute: non-empty,
/// at most [`MAX_FILE`] bytes, no control characters. Never echoes the value.
fn local_file(what: &str, path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if path.len() > MAX_FILE {
        return Err(format!("{what} is longer than {MAX_FILE} bytes"));
    }
    if path.chars().any(char::is_control) {
        return Err(format!(
            "{what} contains a control character (NUL, line break, ...)"
        ));
    }
    Ok(())
}

/// A debootstrap/mmdebstrap word (`--variant`, a component):
/// `[a-z][a-z0-9-]*`, at most [`MAX_DEB_WORD`] characters.
fn deb_word(what: &'static str, value: &str) -> Result<(), String> {
    check_token(
        value,
        &Token {
            what,
            max: MAX_DEB_WORD,
            allowed: |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
            allowed_desc: "lowercase letters, digits, `-`",
            path_like: false,
        },
    )?;
    match value.chars().next() {
        Some(c) if c.is_ascii_lowercase() => Ok(()),
        _ => Err(format!(
            "{what} {} must start with a lowercase letter",
            quote(value)
        )),
    }
}

/// A bootstrap variant (`minbase`, `buildd`, ...).
pub(crate) fn variant(value: &str) -> Result<(), String> {
    deb_word("bootstrap variant", value)
}

/// An archive component (`main`, `universe`, ...).
pub(crate) fn component(value: &str) -> Result<(), String> {
    deb_word("component", value)
}

/// A dnf repository id: `[A-Za-z0-9][A-Za-z0-9._:-]*`, at most [`MAX_REPO_ID`].
pub(crate) fn repo_id(id: &str) -> Result<(), String> {
    check_token(
        id,
        &Token {
            what: "repository id",
            max: MAX_REPO_ID,
            allowed: |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'),
            allowed_desc: "letters, digits, `. _ : -`",
            path_like: false,
        },
    )?;
    first_alnum("repository id", id)
}

/// A network zone: 1–12 of `[A-Za-z0-9_-]` (the host interface is `vz-ZONE`).
pub(crate) fn zone(name: &str) -> Result<(), String> {
    check_token(
        name,
        &Token {
            what: "zone name",
            max: MAX_ZONE,
            allowed: |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'),
            allowed_desc: "letters, digits, `_`, `-`",
            path_like: false,
        },
    )
}

/// A host bridge: an interface name, 1–15 of `[A-Za-z0-9_.-]`, not `.` or `..`.
pub(crate) fn bridge(name: &str) -> Result<(), String> {
    check_token(
        name,
        &Token {
            what: "bridge name",
            max: MAX_BRIDGE,
            allowed: |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'),
            allowed_desc: "letters, digits, `_ . -`",
            path_like: false,
        },
    )?;
    if name == "." {
        return Err("bridge name `.` is not an interface name".to_owned());
    }
    Ok(())
}

/// A port forward: `PROTO:HOST:MACHINE` or `HOST:MACHINE` (tcp), ports 1–65535.
pub(crate) fn port(value: &str) -> Result<Port, String> {
    let q = quote(value);
    let shape = || {
        format!(
            "port forward {q} must be `PROTOCOL:HOST:MACHINE` or `HOST:MACHINE` (e.g. `tcp:8080:80`)"
        )
    };
    let parts: Vec<&str> = value.split(':').collect();
    let (protocol, host, machine) = match parts.as_slice() {
        [host, machine] => (Protocol::Tcp, *host, *machine),
        [protocol, host, machine] => {
            let protocol = match *protocol {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                other => {
                    let mut msg = format!(
                        "unknown protocol {} in port forward {q}: expected `tcp` or `udp`",
                        quote(other)
                    );
                    if let Some(s) = suggest(&other.to_ascii_lowercase(), &["tcp", "udp"]) {
                        let _ = write!(msg, " (did you mean `{s}`?)");
                    }
                    return Err(msg);
                }
            };
            (protocol, *host, *machine)
        }
        _ => return Err(shape()),
    };
    let number = |which: &str, text: &str| -> Result<u16, String> {
        if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(shape());
        }
        match text.parse::<u32>() {
            Ok(n @ 1..=65535) => u16::try_from(n).map_err(|_| shape()),
            _ => Err(format!(
                "{which} port {text} in port forward {q} is out of range (1–65535)"
            )),
        }
    };
    Ok(Port {
        protocol,
        host: number("host", host)?,
        machine: number("machine", machine)?,
    })
}

/// A bind path (`what` is `host path` or `machine path`): absolute, no `..`
/// component, no `:` (nspawn's `Bind=` separator), no `\`, no whitespace or
/// control characters, at most [`MAX_BIND_PATH`] bytes.
pub(crate) fn bind_path(what: &str, path: &str) -> Result<(), String> {
    let q = quote(path);
    if path.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if path.len() > MAX_BIND_PATH {
        return Err(format!("{what} is longer than {MAX_BIND_PATH} bytes"));
    }
    if path.chars().any(char::is_control) {
        return Err(format!("{what} {q} contains a control character"));
    }
    if path.chars().any(char::is_whitespace) {
        return Err(format!("{what} {q} contains whitespace"));
    }
    if !path.starts_with('/') {
        return Err(format!("{what} {q} must be absolute (start with `/`)"));
    }
    if path.split('/').any(|s| s == "..") {
        return Err(format!("{what} {q} contains a `..` component"));
    }
    if path.contains(':') {
        return Err(format!(
            "{what} {q} contains `:`, which systemd-nspawn's Bind= uses as a separator"
        ));
    }
    if path.contains('\\') {
        return Err(format!(
            "{what} {q} contains `\\`, which systemd-nspawn would read as an escape"
        ));
    }
    Ok(())
}

/// A capability to grant: `CAP_[A-Z_]+`, or `all`.
pub(crate) fn capability(name: &str) -> Result<(), String> {
    if name == "all" {
        return Ok(());
    }
    capability_name(name, "or `all`")
}

/// A capability to drop: `CAP_[A-Z_]+`.
pub(crate) fn drop_capability(name: &str) -> Result<(), String> {
    if name == "all" {
        return Err(
            "`all` is only allowed in capabilities: list the capabilities to drop".to_owned(),
        );
    }
    capability_name(name, "")
}

/// `CAP_[A-Z_]+`, at most [`MAX_CAPABILITY`] characters, with a hint for a
/// lowercase or unprefixed name.
fn capability_name(name: &str, alternative: &str) -> Result<(), String> {
    let shaped = |n: &str| {
        n.len() <= MAX_CAPABILITY
            && n.strip_prefix("CAP_").is_some_and(|rest| {
                !rest.is_empty() && rest.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            })
    };
    if shaped(name) {
        return Ok(());
    }
    let mut msg = format!(
        "capability {} must be `CAP_` followed by capital letters and `_` (e.g. `CAP_NET_ADMIN`){}",
        quote(name),
        if alternative.is_empty() {
            String::new()
        } else {
            format!(", {alternative}")
        }
    );
    let upper = name.to_ascii_uppercase();
    let guess = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if shaped(&guess) {
        let _ = write!(msg, " (did you mean `{guess}`?)");
    }
    Err(msg)
}

/// An environment variable name for the machine: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn env_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = name.len() <= MAX_ENV
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "environment variable name {} must match `[A-Za-z_][A-Za-z0-9_]*`",
            quote(name)
        ))
    }
}

/// An environment variable's value: no NUL, line break or other control
/// character but tab. Never echoes the value (it may be a token).
pub(crate) fn env_value(name: &str, value: &str) -> Result<(), String> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(format!(
            "the value of {} contains a control character (NUL, line break, ...), which Environment= cannot hold",
            quote(name)
        ));
    }
    Ok(())
}

/// Edit distance between two short strings, for "did you mean" hints.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            let del = prev[j + 1] + 1;
            let ins = cur[j] + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest of `candidates` to `word`, if close enough to be a likely typo.
pub(crate) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    if word.chars().count() > 64 {
        return None;
    }
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `a, b or c` from a list of words.
pub(crate) fn one_of(words: &[&str]) -> String {
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push_str(if i + 1 == words.len() { " or " } else { ", " });
        }
        let _ = write!(out, "`{w}`");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names() {
        for ok in ["web", "web-1", "a.b_c", "A9", &"x".repeat(64)] {
            assert!(machine_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-web",
            ".web",
            "a..b",
            "a/b",
            "a b",
            "a\nb",
            "wéb",
            &"x".repeat(65),
        ] {
            assert!(machine_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hostnames() {
        for ok in ["web", "web-1", "a.example.org", "9x", &"a".repeat(63)] {
            assert!(hostname(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-web",
            "web-",
            "a..b",
            "a.",
            ".a",
            "web_1",
            "a b",
            &"a".repeat(64),
            &format!("{}.{}", "a".repeat(40), "b".repeat(30)),
        ] {
            assert!(hostname(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn packages() {
        for ok in [
            "systemd",
            "libc6:amd64",
            "g++",
            "foo~1",
            "python3.11",
            "x@y",
        ] {
            assert!(package(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-oAPT::x", "a b", "../x", "a/b", "+x", ".x", "a\tb", "a..b",
        ] {
            assert!(package(bad).is_err(), "{bad}");
        }
        let msg = package("-oAPT::x").expect_err("refused");
        assert!(msg.contains("option"), "{msg}");
    }

    #[test]
    fn releases() {
        for ok in ["bookworm", "24.04", "40", "rawhide", "jammy-updates"] {
            assert!(release(ok).is_ok(), "{ok}");
        }
        for bad in ["", "--foo", "a/b", "..", "a b", "_x", &"a".repeat(65)] {
            assert!(release(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn units() {
        for ok in [
            "sshd",
            "foo@bar",
            "fstrim.timer",
            "dev-sda1.device",
            "a\\x2db",
        ] {
            assert!(unit(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-rf",
            "../../etc/passwd",
            "a/b",
            "a\nb",
            ".hidden",
            "@x",
            "a@b@c",
            "a b",
            &"a".repeat(250),
        ] {
            assert!(unit(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unit_suffixes() {
        assert_eq!(unit_with_suffix("sshd"), "sshd.service");
        assert_eq!(unit_with_suffix("foo@bar"), "foo@bar.service");
        assert_eq!(unit_with_suffix("fstrim.timer"), "fstrim.timer");
        assert_eq!(unit_with_suffix("foo.bar"), "foo.bar.service");
        assert_eq!(unit_with_suffix("x.socket"), "x.socket");
        assert_eq!(unit_with_suffix("a.service"), "a.service");
    }

    #[test]
    fn securettys() {
        for ok in ["pts/0", "console", "ttyS0", "lxc/console", "hvc0"] {
            assert!(securetty(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/dev/tty1",
            "../x",
            "pts/../x",
            "a b",
            "-x",
            "a//b",
            "a/",
        ] {
            assert!(securetty(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mirrors() {
        for ok in [
            "http://deb.debian.org/debian",
            "https://mirror.example/x",
            "file:/srv/mirror",
            "file:///srv/mirror",
        ] {
            assert!(mirror(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ftp://x",
            "-http://x",
            "http://",
            "http://a b",
            "http://a\tb",
            "/srv/mirror",
        ] {
            assert!(mirror(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn crypt_hashes() {
        for ok in [
            "$6$salt$hash",
            "$6$rounds=5000$salt$abc./",
            "$y$j9T$salt$hash",
            "$2b$12$abcdefghijklmnopqrstuv",
            "$1$x$y",
        ] {
            assert!(crypt_hash(ok).is_ok(), "{ok}");
        }
        for bad in [
            "r00tpw",
            "",
            "$6$",
            "$6$salt$",
            "$9$salt$hash",
            "$6$salt:x$hash",
            "$6$sa lt$hash",
            "6$salt$hash",
        ] {
            let e = crypt_hash(bad).expect_err("refused");
            assert!(bad.is_empty() || !e.contains(bad), "{e}");
        }
    }

    #[test]
    fn env_vars() {
        assert!(env_var("ROOT_PW").is_ok());
        assert!(env_var("_x1").is_ok());
        for bad in ["", "1X", "A-B", "A B", "r00tpw!"] {
            let e = env_var(bad).expect_err("refused");
            assert!(bad.is_empty() || !e.contains(bad), "{e}");
        }
    }

    #[test]
    fn secret_files() {
        assert!(secret_file("./secret").is_ok());
        assert!(secret_file("").is_err());
        assert!(secret_file("a\0b").is_err());
        assert!(secret_file("a\nb").is_err());
    }

    #[test]
    fn ports() {
        let p = port("udp:53:5353").expect("valid");
        assert_eq!((p.protocol, p.host, p.machine), (Protocol::Udp, 53, 5353));
        assert_eq!(port("8443:443").map(|p| p.protocol), Ok(Protocol::Tcp));
        assert!(port("tcp:65535:1").is_ok());
        for bad in [
            "",
            "80",
            "tcp:0:80",
            "tcp:1:0",
            "tcp:65536:1",
            "tcp:99999999999:1",
            "sctp:1:2",
            "TCP:1:2",
            "tcp:+1:2",
            "tcp: 1:2",
            "tcp:1:2:3",
            ":1:2",
            "tcp::2",
        ] {
            assert!(port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bind_paths() {
        for ok in ["/", "/srv/www", "/srv/www/", "/a/./b", "/é"] {
            assert!(bind_path("host path", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "srv",
            "./srv",
            "/a/../b",
            "/..",
            "/a:b",
            "/a b",
            "/a\nb",
            "/a\\b",
            &format!("/{}", "a".repeat(4096)),
        ] {
            assert!(bind_path("host path", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn capabilities() {
        assert!(capability("CAP_NET_ADMIN").is_ok());
        assert!(capability("all").is_ok());
        assert!(drop_capability("CAP_SYS_ADMIN").is_ok());
        assert!(drop_capability("all").is_err());
        for bad in [
            "cap_net_admin",
            "-CAP_X",
            "CAP_",
            "CAP_NET-ADMIN",
            "NET_ADMIN",
            "CAP_X1",
        ] {
            assert!(capability(bad).is_err(), "{bad}");
        }
        let msg = capability("net_admin").expect_err("refused");
        assert!(msg.contains("did you mean `CAP_NET_ADMIN`?"), "{msg}");
    }

    #[test]
    fn networking_names() {
        for ok in ["web", "a_b-1", &"z".repeat(12)] {
            assert!(zone(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a.b", "a/b", &"z".repeat(13)] {
            assert!(zone(bad).is_err(), "{bad}");
        }
        for ok in ["br0", "br0.10", "virbr_0", &"b".repeat(15)] {
            assert!(bridge(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "-br", "br/0", "br 0", &"b".repeat(16)] {
            assert!(bridge(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bootstrap_words_and_repos() {
        assert!(variant("minbase").is_ok() && component("non-free-firmware").is_ok());
        for bad in ["", "Main", "1x", "-x", "a/b", "a b", &"a".repeat(33)] {
            assert!(component(bad).is_err(), "{bad}");
        }
        assert!(repo_id("updates:x86_64.1").is_ok());
        for bad in ["", "a b", "-a", ".a", "a/b", &"a".repeat(65)] {
            assert!(repo_id(bad).is_err(), "{bad}");
        }
        assert!(repo_url("https://example.org/f/40").is_ok());
        assert!(repo_url("file:///srv/repo").is_ok());
        for bad in ["", "http://a,b", "ftp://a", "http://", "http://a b"] {
            assert!(repo_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn environment() {
        assert!(env_name("LANG").is_ok() && env_name("_x1").is_ok());
        for bad in ["", "1A", "A-B", "A B", "A=B"] {
            assert!(env_name(bad).is_err(), "{bad}");
        }
        assert!(env_value("A", "a\tb c").is_ok());
        for bad in ["a\nb", "a\rb", "a\0b", "\u{1b}"] {
            let msg = env_value("A", bad).expect_err("refused");
            assert!(!msg.contains(bad), "{msg}");
        }
    }

    #[test]
    fn quoting_escapes_controls() {
        assert_eq!(quote("a\nb\u{1b}"), "`a\\nb\\u{1b}`");
        assert!(quote(&"x".repeat(200)).ends_with("…`"));
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("pakages", &["packages", "distro"]),
            Some("packages")
        );
        assert_eq!(suggest("zzz", &["packages", "distro"]), None);
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
