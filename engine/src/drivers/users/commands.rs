//! The command lines of the guest's account tools (shadow's `useradd`,
//! `usermod`, `gpasswd`, `userdel`), run inside the machine. Names and
//! paths are checked by the planner first (no leading `-`, no `,` or `:`).

use berth_schema::User;

fn strings<const N: usize>(words: [&str; N]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// `useradd --create-home [--system] [--shell S] [--home-dir H] [--groups G,..] -- NAME`:
/// the home made from the guest's `/etc/skel`, the password locked.
pub fn useradd(user: &User) -> Vec<String> {
    let mut argv = strings(["useradd", "--create-home"]);
    if user.system {
        argv.push("--system".into());
    }
    if let Some(shell) = &user.shell {
        argv.extend(["--shell".into(), shell.clone()]);
    }
    if let Some(home) = &user.home {
        argv.extend(["--home-dir".into(), home.display().to_string()]);
    }
    if !user.groups.is_empty() {
        argv.extend(["--groups".into(), user.groups.join(",")]);
    }
    argv.extend(["--".into(), user.name.clone()]);
    argv
}

/// `usermod --shell SHELL -- NAME`.
pub fn set_shell(name: &str, shell: &str) -> Vec<String> {
    strings(["usermod", "--shell", shell, "--", name])
}

/// `usermod --home HOME --move-home -- NAME`: the home's contents move along.
pub fn set_home(name: &str, home: &str) -> Vec<String> {
    strings(["usermod", "--home", home, "--move-home", "--", name])
}

/// `usermod --append --groups G,.. -- NAME`.
pub fn add_groups(name: &str, groups: &[String]) -> Vec<String> {
    strings([
        "usermod",
        "--append",
        "--groups",
        &groups.join(","),
        "--",
        name,
    ])
}

/// `gpasswd --delete NAME GROUP`.
pub fn remove_from_group(name: &str, group: &str) -> Vec<String> {
    strings(["gpasswd", "--delete", name, group])
}

/// `userdel [--remove] -- NAME` (`--remove`: the home and mail spool too).
pub fn userdel(name: &str, remove_home: bool) -> Vec<String> {
    let mut argv = strings(["userdel"]);
    if remove_home {
        argv.push("--remove".into());
    }
    argv.extend(["--".into(), name.to_owned()]);
    argv
}
