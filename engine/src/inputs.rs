//! A machine's inputs, resolved before planning: what each `files:` entry
//! should hold (inline `content:`, `source:` bytes, a rendered `template:`,
//! a `secret:` value), read from the files next to the spec.
//!
//! **Confinement.** Specs reach berth from pull requests (CI plans them),
//! so a spec must not read the host's files: every `source:`, `template:`,
//! `secret: {file:}` and `root_password: {file:}` must resolve (made
//! absolute, every symlink followed) inside the git work tree holding the
//! spec (the nearest directory above the spec file with a `.git`), or the
//! spec file's directory when there is none. Anything else is refused,
//! naming the field and where the spec declares it, unless an
//! `--allow-files-from DIR` ([`InputPolicy`]) contains it. The file is
//! checked again once open (`/proc/self/fd`), so a link swapped in between
//! is caught.
//!
//! **Templates** are rendered with minijinja, undefined values being
//! errors (`templates/site.conf.j2:3: undefined value 'domian'`), no
//! auto-escaping (these are configuration files, not HTML), the trailing
//! newline kept, and no loader (`include` and `extends` cannot reach other
//! files). The context: the machine's merged `vars` at the top level and as
//! `vars`, and `machine` = `{name, hostname, distro, release}` (these two
//! names win over vars of the same name).
//!
//! **Secrets** are read into [`SecretBytes`]: never shown, hashed,
//! serialised or stored; apply reads them again.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_schema::{FileContent, Machine, ManagedFile, RootPassword, SecretSource, Source};

use crate::drivers::files::{FileBytes, SecretBytes};
use crate::error::EngineError;
use crate::model::warning::Warning;

/// The largest input file read (the same limit as a file read in a root).
pub const MAX_INPUT_SIZE: u64 = crate::confined::MAX_READ_SIZE;

/// Where a spec may read files from beyond its own work tree
/// (`--allow-files-from DIR`, repeatable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputPolicy {
    /// The allowed directories, canonical.
    allowed: Vec<PathBuf>,
}

impl InputPolicy {
    /// A policy allowing `dirs` besides the spec's own work tree. Each must
    /// exist; it is made canonical (symlinks followed).
    pub fn allowing(dirs: &[PathBuf]) -> Result<InputPolicy, String> {
        let mut allowed = Vec::new();
        for dir in dirs {
            let canonical = fs::canonicalize(dir)
                .map_err(|e| format!("--allow-files-from {}: {e}", dir.display()))?;
            if !canonical.is_dir() {
                return Err(format!(
                    "--allow-files-from {}: not a directory",
                    dir.display()
                ));
            }
            allowed.push(canonical);
        }
        Ok(InputPolicy { allowed })
    }

    /// The allowed directories, canonical.
    pub fn allowed(&self) -> &[PathBuf] {
        &self.allowed
    }
}

/// What one `files:` entry should hold, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// A file with these contents (`content:`, `source:`, `template:`).
    Bytes(FileBytes),
    /// A file holding this secret (`secret:`).
    Secret(SecretBytes),
    /// A directory.
    Directory,
    /// A symbolic link to this target.
    Link(String),
    /// Nothing (`state: absent`).
    Absent,
}

/// A machine's resolved inputs: one [`Wanted`] per `files:` entry, in spec
/// order, and warnings for the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// One per `machine.files` entry, in the same order.
    pub files: Vec<Wanted>,
    /// Things the user should know (a secret file readable by others).
    pub warnings: Vec<Warning>,
}

/// Where a field is declared, for messages: `machines.yaml:12:7: files /etc/x: source`.
struct Place<'a> {
    /// The field (`files /etc/app.conf: template`, `root_password: file`).
    field: String,
    /// Where the spec declares it.
    at: &'a Source,
}

impl Place<'_> {
    /// The spec file's directory, where relative paths were resolved from.
    fn spec_dir(&self) -> PathBuf {
        match self.at.file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        }
    }

    /// `path` as the spec is likely to have written it: relative to the
    /// spec's directory when it lies below it.
    fn shown(&self, path: &Path) -> String {
        let dir = self.spec_dir();
        path.strip_prefix(&dir)
            .ok()
            .filter(|rel| !rel.as_os_str().is_empty())
            .unwrap_or(path)
            .display()
            .to_string()
    }

    fn error(&self, message: impl std::fmt::Display) -> String {
        format!("{}: {}: {message}", self.at, self.field)
    }
}

/// The directory a spec may read from: the git work tree holding it (the
/// nearest directory with a `.git`, a directory or a worktree's file),
/// else its own directory; and what to call it.
fn work_tree(spec_dir: &Path) -> Result<(PathBuf, &'static str), io::Error> {
    let dir = fs::canonicalize(spec_dir)?;
    for ancestor in dir.ancestors() {
        if fs::symlink_metadata(ancestor.join(".git")).is_ok() {
            return Ok((ancestor.to_owned(), "the spec's git work tree"));
        }
    }
    Ok((dir, "the spec's directory"))
}

/// Opens an input file after checking it resolves inside the spec's work
/// tree or an allowed directory; checks again where the open file really
/// is; refuses anything but a regular file of at most [`MAX_INPUT_SIZE`].
fn open_input(
    path: &Path,
    place: &Place<'_>,
    policy: &InputPolicy,
) -> Result<(fs::File, fs::Metadata), String> {
    let shown = place.shown(path);
    let canonical = fs::canonicalize(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            place.error(format_args!("{shown} does not exist"))
        } else {
            place.error(format_args!("{shown}: {e}"))
        }
    })?;
    let spec_dir = place.spec_dir();
    let (base, what) = work_tree(&spec_dir).map_err(|e| {
        place.error(format_args!(
            "cannot resolve the spec's directory {}: {e}",
            spec_dir.display()
        ))
    })?;
    let inside =
        |p: &Path| p.starts_with(&base) || policy.allowed.iter().any(|dir| p.starts_with(dir));
    let refused = |real: &Path| {
        place.error(format_args!(
            "{shown} resolves to {}, outside {what} ({}); berth reads a spec's files only from \
             there (a spec may come from a pull request); pass --allow-files-from DIR to allow \
             a directory",
            real.display(),
            base.display()
        ))
    };
    if !inside(&canonical) {
        return Err(refused(&canonical));
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(&canonical)
        .map_err(|e| place.error(format_args!("{shown}: {e}")))?;
    // Where the open file really is (a link swapped in since is caught).
    let real = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|e| place.error(format_args!("{shown}: resolving the open file: {e}")))?;
    if !inside(&real) {
        return Err(refused(&real));
    }
    let meta = file
        .metadata()
        .map_err(|e| place.error(format_args!("{shown}: {e}")))?;
    if !meta.is_file() {
        return Err(place.error(format_args!("{shown} is not a regular file")));
    }
    if meta.len() > MAX_INPUT_SIZE {
        return Err(place.error(format_args!(
            "{shown} is too large ({} bytes, limit {MAX_INPUT_SIZE})",
            meta.len()
        )));
    }
    Ok((file, meta))
}

/// Reads an input file (see [`open_input`]).
fn read_input(
    path: &Path,
    place: &Place<'_>,
    policy: &InputPolicy,
) -> Result<(Vec<u8>, fs::Metadata), String> {
    let (file, meta) = open_input(path, place, policy)?;
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| place.error(format_args!("{}: {e}", place.shown(path))))?;
    if bytes.len() as u64 > MAX_INPUT_SIZE {
        return Err(place.error(format_args!("{} is too large", place.shown(path))));
    }
    Ok((bytes, meta))
}

/// The field of a `files:` entry, for messages.
fn file_place<'a>(file: &'a ManagedFile, what: &str) -> Place<'a> {
    Place {
        field: format!("files {}: {what}", file.path.display()),
        at: &file.source,
    }
}

/// Renders `template` (at `path`) for `machine`.
fn render(
    machine: &Machine,
    path: &Path,
    place: &Place<'_>,
    source: &[u8],
) -> Result<String, String> {
    use minijinja::value::Serde;
    use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};

    let shown = place.shown(path);
    let source = std::str::from_utf8(source)
        .map_err(|_| place.error(format_args!("{shown} is not UTF-8 text")))?;
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Debug mode names the undefined expression in errors.
    env.set_debug(true);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| place.error(format_args!("template syntax: {e}")))?;
    env.set_syntax(syntax);

    let mut context: BTreeMap<String, Value> = machine
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(Serde(v))))
        .collect();
    context.insert("vars".into(), Value::from(Serde(&machine.vars)));
    context.insert(
        "machine".into(),
        Value::from(Serde(serde_json::json!({
            "name": machine.name,
            "hostname": machine.hostname,
            "distro": machine.distro.as_str(),
            "release": machine.release,
        }))),
    );
    env.render_named_str(&shown, source, Value::from(Serde(&context)))
        .map_err(|e| {
            let at = match e.line() {
                Some(line) => format!("{shown}:{line}"),
                None => shown.clone(),
            };
            let detail = e.detail().unwrap_or_default();
            let message = if e.kind() == ErrorKind::UndefinedError {
                // "`domian` is undefined" names the expression.
                match detail.split('`').nth(1) {
                    Some(expr) => format!("{at}: undefined value '{expr}'"),
                    None => format!("{at}: undefined value"),
                }
            } else if detail.is_empty() {
                format!("{at}: {}", e.kind())
            } else {
                format!("{at}: {}: {detail}", e.kind())
            };
            place.error(message)
        })
}

/// A secret's value from its source, with a warning for a secret file
/// others can read.
fn read_secret(
    source: &SecretSource,
    file: &ManagedFile,
    policy: &InputPolicy,
) -> Result<(SecretBytes, Option<Warning>), String> {
    match source {
        SecretSource::Env(var) => match crate::secret::env_value(var) {
            Some(value) => Ok((
                SecretBytes::new(std::os::unix::ffi::OsStringExt::into_vec(value)),
                None,
            )),
            None => Err(file_place(file, "secret")
                .error(format_args!("environment variable {var} is not set"))),
        },
        SecretSource::File(path) => {
            let place = file_place(file, "secret: file");
            let (bytes, meta) = read_input(path, &place, policy)?;
            let warning =
                (meta.permissions().mode() & 0o044 != 0).then(|| Warning::FileSecretReadable {
                    target: file.path.display().to_string(),
                    path: path.display().to_string(),
                });
            Ok((SecretBytes::new(bytes), warning))
        }
    }
}

/// Checks that `root_password: {file:}` lies where the spec may read.
fn check_root_password(machine: &Machine, policy: &InputPolicy) -> Result<(), String> {
    if let Some(RootPassword::File(path)) = &machine.root_password {
        let place = Place {
            field: "root_password: file".to_owned(),
            at: &machine.source,
        };
        open_input(path, &place, policy)?;
    }
    Ok(())
}

/// The other secret files a machine reads (users' passwords, credentials),
/// with the field each comes from and where it is declared.
fn account_secret_files(machine: &Machine) -> Vec<(String, &Path, &Source)> {
    let mut out = Vec::new();
    for user in machine.users.iter().filter(|u| u.present) {
        if let Some(RootPassword::File(path)) = &user.password {
            out.push((
                format!("users {}: password: file", user.name),
                path.as_path(),
                &user.source,
            ));
        }
    }
    for credential in &machine.credentials {
        if let SecretSource::File(path) = &credential.source {
            out.push((
                format!("credentials {}: file", credential.name),
                path.as_path(),
                &machine.source,
            ));
        }
    }
    out
}

/// Users' password files and credential files must lie where the spec may
/// read, as every other file the spec names; `only_existing` skips files
/// that are not there (for `validate`).
fn check_account_secrets(
    machine: &Machine,
    policy: &InputPolicy,
    only_existing: bool,
) -> Vec<String> {
    account_secret_files(machine)
        .into_iter()
        .filter(|(_, path, _)| !only_existing || path.exists())
        .filter_map(|(field, path, at)| {
            let place = Place { field, at };
            open_input(path, &place, policy).err()
        })
        .collect()
}

/// Resolves one entry. `secrets`: read secrets (else a placeholder).
fn resolve_entry(
    machine: &Machine,
    file: &ManagedFile,
    policy: &InputPolicy,
    warnings: &mut Vec<Warning>,
) -> Result<Wanted, String> {
    Ok(match &file.content {
        FileContent::Content(text) => Wanted::Bytes(FileBytes::new(text.clone().into_bytes())),
        FileContent::Source(path) => {
            let (bytes, _) = read_input(path, &file_place(file, "source"), policy)?;
            Wanted::Bytes(FileBytes::new(bytes))
        }
        FileContent::Template(path) => {
            let place = file_place(file, "template");
            let (bytes, _) = read_input(path, &place, policy)?;
            Wanted::Bytes(FileBytes::new(
                render(machine, path, &place, &bytes)?.into_bytes(),
            ))
        }
        FileContent::Secret(source) => {
            let (value, warning) = read_secret(source, file, policy)?;
            warnings.extend(warning);
            Wanted::Secret(value)
        }
        FileContent::Directory => Wanted::Directory,
        FileContent::Link(target) => Wanted::Link(target.display().to_string()),
        FileContent::Absent => Wanted::Absent,
    })
}

/// Resolves `machine`'s inputs (every `files:` entry, and checks where
/// `root_password: {file:}` lies). The first problem is the error.
pub fn resolve(machine: &Machine, policy: &InputPolicy) -> Result<Inputs, EngineError> {
    let err = |message: String| EngineError::Plan {
        machine: machine.name.clone(),
        message,
    };
    check_root_password(machine, policy).map_err(err)?;
    let mut inputs = Inputs::default();
    for (field, path, at) in account_secret_files(machine) {
        let place = Place {
            field: field.clone(),
            at,
        };
        let (_, meta) = open_input(path, &place, policy).map_err(err)?;
        if meta.permissions().mode() & 0o044 != 0 {
            inputs.warnings.push(Warning::AccountSecretReadable {
                field,
                path: path.display().to_string(),
            });
        }
    }
    for file in &machine.files {
        let wanted = resolve_entry(machine, file, policy, &mut inputs.warnings).map_err(err)?;
        inputs.files.push(wanted);
    }
    Ok(inputs)
}

/// The value of the `secret:` of `machine`'s entry at `path`, read again
/// from its source (apply writes it; the plan never held it).
pub fn secret_value(
    machine: &Machine,
    path: &str,
    policy: &InputPolicy,
) -> Result<SecretBytes, EngineError> {
    let err = |message: String| EngineError::Plan {
        machine: machine.name.clone(),
        message,
    };
    let file = machine
        .files
        .iter()
        .find(|f| f.path.as_os_str() == path)
        .ok_or_else(|| err(format!("files {path}: no such entry in the spec")))?;
    match &file.content {
        FileContent::Secret(source) => Ok(read_secret(source, file, policy).map_err(err)?.0),
        _ => Err(err(format!("files {path}: not a secret"))),
    }
}

/// What `berth validate` checks of `machine`'s inputs, without reading a
/// secret: every `source:` and `template:` exists and lies where the spec
/// may read, every template renders, and secret files that exist (they are
/// often kept out of the repository, and given only where plan runs) lie
/// where the spec may read. All problems, one message each.
pub fn check(machine: &Machine, policy: &InputPolicy) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(RootPassword::File(path)) = &machine.root_password
        && path.exists()
    {
        problems.extend(check_root_password(machine, policy).err());
    }
    problems.extend(check_account_secrets(machine, policy, true));
    for file in &machine.files {
        let result = match &file.content {
            FileContent::Source(path) => {
                open_input(path, &file_place(file, "source"), policy).map(drop)
            }
            FileContent::Template(path) => {
                let place = file_place(file, "template");
                read_input(path, &place, policy)
                    .and_then(|(bytes, _)| render(machine, path, &place, &bytes).map(drop))
            }
            FileContent::Secret(SecretSource::File(path)) if path.exists() => {
                open_input(path, &file_place(file, "secret: file"), policy).map(drop)
            }
            _ => Ok(()),
        };
        problems.extend(result.err());
    }
    problems
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use berth_schema::Source;

    use super::*;

    fn entry(dir: &Path, path: &str, content: FileContent) -> ManagedFile {
        ManagedFile {
            path: PathBuf::from(path),
            content,
            mode: None,
            owner: None,
            group: None,
            replace: false,
            source: Source {
                file: dir.join("machines.yaml"),
                line: Some(12),
                column: Some(7),
            },
        }
    }

    fn machine(dir: &Path, files: Vec<ManagedFile>) -> Machine {
        let mut vars = std::collections::BTreeMap::new();
        vars.insert("domain".to_owned(), serde_json::json!("example.org"));
        vars.insert("ports".to_owned(), serde_json::json!([80, 443]));
        let mut m = Machine::builder("web").files(files).vars(vars).build();
        m.source = Source {
            file: dir.join("machines.yaml"),
            line: Some(2),
            column: Some(3),
        };
        m
    }

    fn bytes(wanted: &Wanted) -> &[u8] {
        match wanted {
            Wanted::Bytes(b) => b.as_slice(),
            other => panic!("not bytes: {other:?}"),
        }
    }

    #[test]
    fn templates_render_with_vars_and_machine_facts_and_keep_the_last_newline() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("templates")).unwrap();
        let template = dir.path().join("templates/site.conf.j2");
        fs::write(
            &template,
            "server {{ machine.name }} {{ machine.hostname }} {{ machine.distro }}\n\
             name {{ domain }} {{ vars.domain }}\n{% for p in ports %}listen {{ p }};\n{% endfor %}",
        )
        .unwrap();
        fs::write(dir.path().join("bin"), [0u8, 1, 2, 255]).unwrap();
        let m = machine(
            dir.path(),
            vec![
                entry(
                    dir.path(),
                    "/etc/site.conf",
                    FileContent::Template(template.clone()),
                ),
                entry(
                    dir.path(),
                    "/usr/bin/x",
                    FileContent::Source(dir.path().join("bin")),
                ),
                entry(dir.path(), "/etc/motd", FileContent::Content("hi\n".into())),
            ],
        );
        let inputs = resolve(&m, &InputPolicy::default()).unwrap();
        assert_eq!(
            std::str::from_utf8(bytes(&inputs.files[0])).unwrap(),
            "server web web debian\nname example.org example.org\nlisten 80;\nlisten 443;\n"
        );
        assert_eq!(bytes(&inputs.files[1]), [0u8, 1, 2, 255]);
        assert_eq!(bytes(&inputs.files[2]), b"hi\n");
        assert!(check(&m, &InputPolicy::default()).is_empty());
    }

    #[test]
    fn an_undefined_variable_names_the_template_line_and_value() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("templates")).unwrap();
        let template = dir.path().join("templates/site.conf.j2");
        fs::write(&template, "a\nb\nserver_name {{ domian }};\n").unwrap();
        let m = machine(
            dir.path(),
            vec![entry(
                dir.path(),
                "/etc/site.conf",
                FileContent::Template(template),
            )],
        );
        let err = resolve(&m, &InputPolicy::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("templates/site.conf.j2:3: undefined value 'domian'"),
            "{err}"
        );
        assert!(
            err.contains("machines.yaml:12:7: files /etc/site.conf: template"),
            "{err}"
        );
        let problems = check(&m, &InputPolicy::default());
        assert_eq!(problems.len(), 1, "{problems:?}");
        // A nested one too.
        fs::write(dir.path().join("templates/site.conf.j2"), "{{ vars.nope }}").unwrap();
        let err = resolve(&m, &InputPolicy::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("site.conf.j2:1: undefined value 'vars.nope'"),
            "{err}"
        );
        // No loader: an include reaches nothing.
        fs::write(
            dir.path().join("templates/site.conf.j2"),
            "{% include '/etc/passwd' %}",
        )
        .unwrap();
        let err = resolve(&m, &InputPolicy::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("site.conf.j2:1:"), "{err}");
    }

    #[test]
    fn files_outside_the_spec_directory_are_refused_unless_allowed() {
        let top = tempfile::tempdir().unwrap();
        let spec_dir = top.path().join("spec");
        let outside = top.path().join("outside");
        fs::create_dir_all(&spec_dir).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("key"), "k").unwrap();
        symlink(outside.join("key"), spec_dir.join("link")).unwrap();
        for source in [
            spec_dir.join("../outside/key"),
            outside.join("key"),
            spec_dir.join("link"),
        ] {
            let m = machine(
                &spec_dir,
                vec![entry(
                    &spec_dir,
                    "/etc/k",
                    FileContent::Source(source.clone()),
                )],
            );
            let err = resolve(&m, &InputPolicy::default())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("machines.yaml:12:7: files /etc/k: source: ")
                    && err.contains("outside the spec's directory")
                    && err.contains("--allow-files-from"),
                "{}: {err}",
                source.display()
            );
            let allowed = InputPolicy::allowing(std::slice::from_ref(&outside)).unwrap();
            assert!(resolve(&m, &allowed).is_ok(), "{}", source.display());
        }
        // root_password: {file:} is held to the same rule.
        let mut m = machine(&spec_dir, Vec::new());
        m.root_password = Some(RootPassword::File(outside.join("key")));
        let err = resolve(&m, &InputPolicy::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("root_password: file: "), "{err}");
        // So are users' password files and credential files.
        let mut m = machine(&spec_dir, Vec::new());
        m.credentials = vec![berth_schema::Credential {
            name: "db".into(),
            source: SecretSource::File(outside.join("key")),
        }];
        let err = resolve(&m, &InputPolicy::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("credentials db: file: ") && err.contains("--allow-files-from"),
            "{err}"
        );
        assert_eq!(check(&m, &InputPolicy::default()).len(), 1);
        let allowed = InputPolicy::allowing(std::slice::from_ref(&outside)).unwrap();
        fs::set_permissions(outside.join("key"), fs::Permissions::from_mode(0o644)).unwrap();
        let resolved = resolve(&m, &allowed).expect("allowed");
        let warning = resolved.warnings[0].to_string();
        assert!(
            warning.contains("credentials db: file") && warning.contains("chmod 600"),
            "{warning}"
        );
        // A git work tree above the spec's directory is the limit instead.
        fs::create_dir(top.path().join(".git")).unwrap();
        let m = machine(
            &spec_dir,
            vec![entry(
                &spec_dir,
                "/etc/k",
                FileContent::Source(spec_dir.join("../outside/key")),
            )],
        );
        assert!(resolve(&m, &InputPolicy::default()).is_ok());
    }

    #[test]
    fn missing_files_and_secrets_are_clear_and_secrets_never_show() {
        let dir = tempfile::tempdir().unwrap();
        let m = machine(
            dir.path(),
            vec![entry(
                dir.path(),
                "/etc/x",
                FileContent::Source(dir.path().join("nope.txt")),
            )],
        );
        let err = resolve(&m, &InputPolicy::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("machines.yaml:12:7: files /etc/x: source: nope.txt does not exist"),
            "{err}"
        );
        let key = dir.path().join("token");
        fs::write(&key, "t0ps3cret").unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        let m = machine(
            dir.path(),
            vec![entry(
                dir.path(),
                "/etc/token",
                FileContent::Secret(SecretSource::File(key.clone())),
            )],
        );
        let inputs = resolve(&m, &InputPolicy::default()).unwrap();
        assert!(matches!(&inputs.files[0], Wanted::Secret(s) if s.expose() == b"t0ps3cret"));
        assert!(!format!("{inputs:?}").contains("t0ps3cret"));
        assert_eq!(
            inputs.warnings,
            [Warning::FileSecretReadable {
                target: "/etc/token".into(),
                path: key.display().to_string()
            }]
        );
        let value = secret_value(&m, "/etc/token", &InputPolicy::default()).unwrap();
        assert!(value.matches(b"t0ps3cret"));
        let m = machine(
            dir.path(),
            vec![entry(
                dir.path(),
                "/etc/token",
                FileContent::Secret(SecretSource::Env("BERTH_TEST_SURELY_UNSET_VAR".into())),
            )],
        );
        let err = resolve(&m, &InputPolicy::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("environment variable BERTH_TEST_SURELY_UNSET_VAR is not set"),
            "{err}"
        );
        assert!(check(&m, &InputPolicy::default()).is_empty());
        // A secret file kept out of the repository: validate does not need it.
        let m = machine(
            dir.path(),
            vec![entry(
                dir.path(),
                "/etc/token",
                FileContent::Secret(SecretSource::File(dir.path().join("not-here"))),
            )],
        );
        assert!(check(&m, &InputPolicy::default()).is_empty());
        assert!(resolve(&m, &InputPolicy::default()).is_err());
    }
}
