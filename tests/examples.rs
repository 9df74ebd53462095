//! The examples people copy, and berth's shell and documentation surface:
//! every spec under examples/ validates and points editors at the schema
//! shipped in the repository; the CI pipeline runs the documented
//! commands; completions, the man page, `--help` examples, colour and
//! `--quiet`/`--verbose` behave. No root needed.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::{Sandbox, code, describe};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn example_specs() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_spec_validates_and_names_the_shipped_schema() {
    let files = example_specs();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for wanted in [
        "arch-container.yaml",
        "debian-web.yaml",
        "fedora-build.yaml",
        "ci-runners.yaml",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "missing {wanted}: {names:?}"
        );
    }
    let sandbox = Sandbox::new("examples");
    for file in &files {
        let out = sandbox.berth(&["validate", "-f", file.to_str().unwrap()]);
        assert_eq!(code(&out), 0, "{}: {}", file.display(), describe(&out));
        let text = fs::read_to_string(file).unwrap();
        let first = text.lines().next().unwrap();
        let schema = first
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{}: first line is {first:?}", file.display()));
        let schema = file.parent().unwrap().join(schema);
        assert_eq!(
            fs::canonicalize(&schema).unwrap(),
            fs::canonicalize(repo().join("berth.schema.json")).unwrap(),
            "{}",
            file.display()
        );
    }
    assert!(sandbox.written_files().is_empty());
}

#[test]
fn the_examples_say_what_they_promise() {
    let read = |name: &str| fs::read_to_string(repo().join("examples").join(name)).unwrap();
    let web = read("debian-web.yaml");
    assert!(web.contains("nginx") && web.contains("ports:") && web.contains("binds:"));
    let arch = read("arch-container.yaml");
    assert!(arch.contains("distro: arch") && arch.contains("base-devel"));
    assert!(read("fedora-build.yaml").contains("distro: fedora"));
    let fleet = read("ci-runners.yaml");
    assert!(fleet.contains("\ndefaults:"), "{fleet}");
    // The fleet shares its base: every runner gets the defaults' packages.
    let sandbox = Sandbox::new("fleet");
    let path = repo().join("examples/ci-runners.yaml");
    let out = sandbox.berth(&["status", "--json", "-f", path.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(list.as_array().unwrap().len() >= 3, "{list}");
}

#[test]
fn the_ci_pipeline_validates_and_plans_on_pull_requests_and_applies_on_main() {
    let text = fs::read_to_string(repo().join("examples/ci/berth.yml")).unwrap();
    for needle in [
        "pull_request:",
        "branches: [main]",
        "berth validate",
        "berth plan -f machines.yaml --detailed-exitcode",
        "berth apply -f machines.yaml --yes",
        "refs/heads/main",
    ] {
        assert!(
            text.contains(needle),
            "examples/ci/berth.yml lacks {needle:?}"
        );
    }
    assert!(!text.contains('\t'), "YAML must not contain tabs");
}

#[test]
fn completions_for_bash_zsh_and_fish_know_the_subcommands() {
    let sandbox = Sandbox::new("completions");
    for shell in ["bash", "zsh", "fish"] {
        let out = sandbox.berth(&["completions", shell]);
        assert_eq!(code(&out), 0, "{shell}: {}", describe(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        for sub in ["plan", "apply", "import", "exclude"] {
            assert!(text.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let out = sandbox.berth(&["completions", "tcsh"]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
}

#[test]
fn the_man_page_is_roff_for_berth_and_each_subcommand() {
    let sandbox = Sandbox::new("man");
    let out = sandbox.berth(&["man"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH berth 1"), "{page}");
    assert!(page.contains("apply") && page.contains("import"), "{page}");
    let out = sandbox.berth(&["man", "plan"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.contains(".TH berth-plan 1") && page.contains("detailed"),
        "{page}"
    );
    let out = sandbox.berth(&["man", "nosuch"]);
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch"));
}

#[test]
fn every_subcommand_has_help_with_examples() {
    let sandbox = Sandbox::new("help");
    let out = sandbox.berth(&["--help"]);
    let help = String::from_utf8(out.stdout).unwrap();
    let subcommands: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|s| s != "help")
        .collect();
    assert!(subcommands.len() >= 12, "{subcommands:?}");
    for sub in &subcommands {
        let out = sandbox.berth(&[sub, "--help"]);
        assert_eq!(code(&out), 0, "{sub}: {}", describe(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("Example"),
            "`berth {sub} --help` has no example:\n{text}"
        );
        assert!(text.contains("berth "), "{sub}: {text}");
    }
}

/// berth with an explicit colour environment (the sandbox sets NO_COLOR),
/// failing (an error is what gets coloured): its stdout and stderr.
fn coloured(sandbox: &Sandbox, env: &[(&str, &str)], args: &[&str]) -> String {
    let mut cmd = sandbox
        .berth_cmd()
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE")
        .args(args);
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    let run = cmd.run();
    run.failure();
    format!("{}{}", run.stdout(), run.stderr())
}

#[test]
fn colour_honours_no_color_and_clicolor() {
    let sandbox = Sandbox::new("colour");
    sandbox.spec("machines: {}\n");
    let args = ["status", "--exclude", "nothing"];
    // An error is red when colour is forced...
    let forced = coloured(&sandbox, &[("CLICOLOR_FORCE", "1")], &args);
    assert!(forced.contains('\u{1b}'), "{forced:?}");
    // ...and plain when not a terminal, with NO_COLOR, or with CLICOLOR=0.
    for env in [&[][..], &[("NO_COLOR", "1")][..], &[("CLICOLOR", "0")][..]] {
        let plain = coloured(&sandbox, env, &args);
        assert!(!plain.contains('\u{1b}'), "{env:?}: {plain:?}");
    }
}

#[test]
fn quiet_and_verbose() {
    let sandbox = Sandbox::new("verbosity");
    sandbox.spec("machines: {}\n");
    let out = sandbox.berth(&["-v", "status"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("reading the spec"), "{err}");
    let out = sandbox.berth(&["--quiet", "apply", "--yes"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        describe(&out)
    );
    let out = sandbox.berth(&["apply", "--yes"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("No changes"));
    let out = sandbox.berth(&["-q", "-v", "status"]);
    assert_eq!(
        code(&out),
        1,
        "--quiet and --verbose conflict: {}",
        describe(&out)
    );
}
