//! One host's part of the spec, ready for its agent: the spec file's
//! machines on that host (rendered by `berth_schema::hosts::host_part`),
//! the files they reference carried along, and their secrets resolved
//! here, on the controller.
//!
//! Every `source:`, `template:` and `pacman_conf:` is read here (after the
//! same confinement checks as a local plan, `crate::inputs::check`),
//! sent under `inputs/N-NAME` and the spec points there. `env:` secrets
//! are read from berth's environment and sent by name; `file:` secrets are
//! read and sent as a generated `env:` name. On the target they stay in
//! the agent's memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_schema::Machine;
use berth_schema::hosts::{Fleet, Node, host_part_of};

use super::RemoteError;
use super::wire::{Options, PROTOCOL, Request, base64_encode};
use crate::inputs::InputPolicy;

/// The spec's files (path and text) parsed once for every host's
/// [`request`].
pub fn parse_sources(sources: &[(PathBuf, String)]) -> Result<Vec<(PathBuf, Node)>, RemoteError> {
    sources
        .iter()
        .map(|(file, text)| {
            berth_schema::hosts::parse_node(text)
                .map(|node| (file.clone(), node))
                .map_err(|e| RemoteError::new(format!("{}: {e}", file.display())))
        })
        .collect()
}

/// Builds the request for `host` from the spec at `spec_file` (a file, or
/// a directory) whose files are `sources` (path and parsed text, see
/// [`parse_sources`]), and whose
/// machines on that host are `machines`. One file goes as `spec_yaml`;
/// the files of a directory that place machines on the host go as
/// `spec_files`, by file name.
#[allow(clippy::too_many_arguments)]
pub fn request(
    command: &str,
    options: Options,
    spec_file: &Path,
    sources: &[(PathBuf, Node)],
    fleet: &Fleet,
    host: &str,
    machines: &[&Machine],
    policy: &InputPolicy,
    version: &str,
) -> Result<Request, RemoteError> {
    let problems: Vec<String> = machines
        .iter()
        .flat_map(|m| {
            crate::inputs::check(m, policy)
                .into_iter()
                .map(move |p| format!("machine {}: {p}", m.name))
        })
        .collect();
    if !problems.is_empty() {
        return Err(RemoteError::new(problems.join("\n")));
    }
    let mut b = Bundler {
        dir: PathBuf::from("."),
        files: BTreeMap::new(),
        secrets: BTreeMap::new(),
    };
    let mut parts = BTreeMap::new();
    for (file, parsed) in sources {
        let mut node = host_part_of(parsed, fleet, host);
        let placed = matches!(node.get("machines"), Some(Node::Map(m)) if !m.is_empty())
            || node.get("moved").is_some();
        if sources.len() > 1 && !placed {
            continue;
        }
        b.dir = file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        if let Some(defaults) = node.get_mut("defaults") {
            b.machine(defaults, "defaults")?;
        }
        if let Some(Node::Map(entries)) = node.get_mut("machines") {
            for (name, m) in entries.iter_mut() {
                b.machine(m, &format!("machines.{name}"))?;
            }
        }
        let name = file.file_name().map_or_else(
            || "spec.yaml".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        parts.insert(name, node.to_yaml());
    }
    // A host with nothing left in a spec directory still gets a directory
    // (its records name the directory, for prune to find them there).
    if sources.len() > 1
        && parts.is_empty()
        && let Some(name) = sources
            .first()
            .and_then(|(f, _)| f.file_name())
            .map(|n| n.to_string_lossy().into_owned())
    {
        parts.insert(name, Node::Map(Vec::new()).to_yaml());
    }
    let (spec_yaml, spec_files) = if sources.len() == 1 {
        (
            parts.into_values().next().unwrap_or_default(),
            BTreeMap::new(),
        )
    } else {
        (String::new(), parts)
    };
    Ok(Request {
        version: PROTOCOL,
        berth: version.to_owned(),
        command: command.to_owned(),
        host: host.to_owned(),
        saved: None,
        options,
        spec_yaml,
        spec_files,
        spec_label: std::fs::canonicalize(spec_file)
            .unwrap_or_else(|_| spec_file.to_path_buf())
            .display()
            .to_string(),
        controller: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default(),
        files: b.files,
        secrets: b.secrets,
    })
}

struct Bundler {
    /// The spec file's directory.
    dir: PathBuf,
    files: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
}

impl Bundler {
    /// Rewrites one machine's (or `defaults`') references.
    fn machine(&mut self, m: &mut Node, field: &str) -> Result<(), RemoteError> {
        if let Some(p) = m.get_mut("pacman_conf") {
            self.input(p, &format!("{field}.pacman_conf"))?;
        }
        if let Some(pw) = m.get_mut("root_password") {
            self.secret(pw, true, &format!("{field}.root_password"))?;
        }
        if let Some(Node::Map(files)) = m.get_mut("files") {
            for (path, entry) in files.iter_mut() {
                let f = format!("{field}.files.{path}");
                for key in ["source", "template"] {
                    if let Some(p) = entry.get_mut(key) {
                        self.input(p, &format!("{f}.{key}"))?;
                    }
                }
                if let Some(s) = entry.get_mut("secret") {
                    self.secret(s, false, &format!("{f}.secret"))?;
                }
            }
        }
        if let Some(Node::Map(users)) = m.get_mut("users") {
            for (name, user) in users.iter_mut() {
                if let Some(pw) = user.get_mut("password") {
                    self.secret(pw, true, &format!("{field}.users.{name}.password"))?;
                }
            }
        }
        if let Some(Node::Map(creds)) = m.get_mut("credentials") {
            for (name, c) in creds.iter_mut() {
                self.secret(c, false, &format!("{field}.credentials.{name}"))?;
            }
        }
        Ok(())
    }

    /// A path of the spec read and sent along; the spec points at the copy.
    fn input(&mut self, value: &mut Node, field: &str) -> Result<(), RemoteError> {
        let Some(path) = value.as_str() else {
            return Ok(());
        };
        let full = self.dir.join(path);
        let bytes = std::fs::read(&full).map_err(|e| {
            RemoteError::new(format!("{field}: cannot read {}: {e}", full.display()))
        })?;
        let name = Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        let rel = format!("inputs/{}-{name}", self.files.len());
        self.files.insert(rel.clone(), base64_encode(&bytes));
        *value = Node::Str(format!("./{rel}"));
        Ok(())
    }

    /// A secret's source: `env:` read here, `file:` read here and turned
    /// into a generated `env:`. `password` strips one trailing newline
    /// from a file, as a local password file is read.
    fn secret(&mut self, value: &mut Node, password: bool, field: &str) -> Result<(), RemoteError> {
        if let Some(var) = value.get("env").and_then(Node::as_str).map(str::to_owned) {
            if let Some(v) = crate::secret::env_value(&var) {
                let bytes = std::os::unix::ffi::OsStringExt::into_vec(v);
                self.secrets.insert(var, base64_encode(&bytes));
            }
            return Ok(());
        }
        if let Some(path) = value.get("file").and_then(Node::as_str).map(str::to_owned) {
            let full = self.dir.join(&path);
            let mut bytes = std::fs::read(&full).map_err(|e| {
                RemoteError::new(format!("{field}: cannot read {}: {e}", full.display()))
            })?;
            if password {
                if bytes.last() == Some(&b'\n') {
                    bytes.pop();
                }
                if bytes.last() == Some(&b'\r') {
                    bytes.pop();
                }
            }
            let var = format!("BERTH_SECRET_{}", self.secrets.len());
            self.secrets.insert(var.clone(), base64_encode(&bytes));
            *value = Node::Map(vec![("env".into(), Node::Str(var))]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::wire::base64_decode;

    #[test]
    fn a_hosts_part_carries_its_files_and_secrets_but_not_the_others() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("motd.j2"), "hi {{ machine.name }}\n").unwrap();
        std::fs::write(dir.path().join("pw"), "file-secret\n").unwrap();
        let text = "hosts:\n  a: {ssh: root@192.0.2.1}\n  b: {ssh: root@192.0.2.2}\n\
            defaults: {distro: debian, release: bookworm}\n\
            machines:\n  web:\n    host: a\n    root_password: {file: ./pw}\n    files:\n      /etc/motd: {template: ./motd.j2}\n      /etc/token: {secret: {env: BERTH_BUNDLE_TEST_UNSET}}\n  db: {host: b, root_password: {hash: \"$6$x$y\"}}\n";
        let file = dir.path().join("spec.yaml");
        std::fs::write(&file, text).unwrap();
        let spec = berth_schema::load(&file).unwrap();
        let web = &spec.machines["web"];
        let req = request(
            "plan",
            Options::default(),
            &file,
            &parse_sources(&[(file.clone(), text.to_owned())]).unwrap(),
            &spec.fleet,
            "a",
            &[web],
            &InputPolicy::default(),
            "berth 0",
        )
        .unwrap();
        assert!(!req.spec_yaml.contains("db"), "{}", req.spec_yaml);
        assert!(!req.spec_yaml.contains("file-secret"), "{}", req.spec_yaml);
        assert!(!req.spec_yaml.contains("\"host\""), "{}", req.spec_yaml);
        assert_eq!(req.files.len(), 1);
        let (rel, data) = req.files.iter().next().unwrap();
        assert!(
            rel.starts_with("inputs/") && rel.ends_with("motd.j2"),
            "{rel}"
        );
        assert_eq!(base64_decode(data).unwrap(), b"hi {{ machine.name }}\n");
        // The file secret travels as a generated env: name, newline stripped.
        assert_eq!(
            base64_decode(&req.secrets["BERTH_SECRET_0"]).unwrap(),
            b"file-secret"
        );
        assert!(
            req.spec_yaml.contains("BERTH_SECRET_0"),
            "{}",
            req.spec_yaml
        );
        // It loads back on the agent's side (files next to it).
        let back = tempfile::tempdir().unwrap();
        for (rel, data) in &req.files {
            let p = back.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, base64_decode(data).unwrap()).unwrap();
        }
        let spec_path = back.path().join("spec.yaml");
        std::fs::write(&spec_path, &req.spec_yaml).unwrap();
        let part = berth_schema::load(&spec_path).unwrap();
        assert_eq!(part.machines.len(), 1);
        assert!(crate::inputs::check(&part.machines["web"], &InputPolicy::default()).is_empty());
    }
}
