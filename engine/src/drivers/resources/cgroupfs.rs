//! The cgroup filesystem: where each controller lives on this host, where a
//! machine's cgroup is in each hierarchy, reading its limits and writing
//! berth's own.
//!
//! The layout is the one systemd and berth's `launcher/cgroup.rs` assume:
//! the unified hierarchy at the cgroup mount itself (cgroup v2 hosts) or at
//! `unified/` (hybrid hosts), each cgroup v1 hierarchy at its controller's
//! name (`memory/`, `cpu/`, `pids/`, `blkio/`).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{
    CgroupWrite, Controller, Hierarchy, Knob, LiveLimits, LiveValue, Manager, cgroup_files,
    normalize,
};

/// The unified hierarchy's mount under `cgroup_fs`, if any.
pub fn v2_mount(cgroup_fs: &Path) -> Option<PathBuf> {
    if cgroup_fs.join("cgroup.controllers").is_file() {
        Some(cgroup_fs.to_path_buf())
    } else {
        let unified = cgroup_fs.join("unified");
        unified
            .join("cgroup.controllers")
            .is_file()
            .then_some(unified)
    }
}

/// The cgroup v1 hierarchy of `controller` under `cgroup_fs`, if mounted.
pub fn v1_mount(cgroup_fs: &Path, controller: Controller) -> Option<PathBuf> {
    let dir = cgroup_fs.join(controller.v1_name());
    dir.join("cgroup.procs").is_file().then_some(dir)
}

/// Where each controller lives: in the unified hierarchy when it lists it
/// (`cgroup.controllers` of `v2_parent`, the cgroup machines are made
/// under, else of the mount), else in a writable cgroup v1 hierarchy; or
/// why neither holds it.
pub fn layout(
    cgroup_fs: &Path,
    v2_parent: Option<&Path>,
) -> BTreeMap<Controller, Result<Hierarchy, String>> {
    let v2 = v2_mount(cgroup_fs);
    let listed = v2
        .as_ref()
        .map(|mount| {
            let dir = v2_parent.filter(|p| p.starts_with(mount)).unwrap_or(mount);
            fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default()
        })
        .unwrap_or_default();
    Controller::ALL
        .into_iter()
        .map(|controller| {
            let found = if listed.split_whitespace().any(|c| c == controller.v2_name()) {
                Ok(Hierarchy::V2)
            } else if let Some(dir) = v1_mount(cgroup_fs, controller) {
                match nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK) {
                    Ok(()) => Ok(Hierarchy::V1),
                    Err(e) => Err(format!(
                        "the {} controller is a cgroup v1 hierarchy at {} that this host cannot \
                         write ({e}; a container whose cgroups are read-only)",
                        controller.v2_name(),
                        dir.display()
                    )),
                }
            } else {
                Err(format!(
                    "the {} controller is neither in the unified cgroup hierarchy{} nor a cgroup \
                     v1 hierarchy at {}",
                    controller.v2_name(),
                    v2.as_ref()
                        .map(|m| format!(" ({} lists {:?})", m.display(), listed.trim()))
                        .unwrap_or_default(),
                    cgroup_fs.join(controller.v1_name()).display()
                ))
            };
            (controller, found)
        })
        .collect()
}

/// A machine's cgroup directory in each hierarchy berth limits in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineCgroup {
    /// In the unified hierarchy.
    pub v2: Option<PathBuf>,
    /// In each cgroup v1 hierarchy.
    pub v1: BTreeMap<Controller, PathBuf>,
}

/// `/proc/PID/cgroup`'s path of `pid` in each hierarchy: `""` for the
/// unified one, else the controller list (`cpu,cpuacct`).
fn proc_cgroups(proc_dir: &Path, pid: i32) -> Vec<(String, String)> {
    fs::read_to_string(proc_dir.join(format!("{pid}/cgroup")))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some((controllers.to_owned(), path.to_owned()))
        })
        .collect()
}

/// `mount` + a cgroup path (`/a/b`).
fn under(mount: &Path, path: &str) -> PathBuf {
    mount.join(path.trim_start_matches('/'))
}

impl MachineCgroup {
    /// berth's own cgroup of machine `name` (the nspawn launcher without
    /// systemd), found from its systemd-nspawn process `pid`: in the
    /// unified hierarchy nspawn's cgroup without its `supervisor` leaf, in
    /// each cgroup v1 hierarchy nspawn's cgroup itself. Only directories
    /// named `berth-NAME` count: a machine started before berth limited
    /// resources runs in its caller's v1 cgroups, which are not its own.
    pub fn of_berth(cgroup_fs: &Path, proc_dir: &Path, pid: i32, name: &str) -> Self {
        let own = format!("berth-{name}");
        let is_own = |dir: &Path| dir.file_name().is_some_and(|n| n == own.as_str());
        let mut out = MachineCgroup::default();
        for (controllers, path) in proc_cgroups(proc_dir, pid) {
            if controllers.is_empty() {
                let path = path.strip_suffix("/supervisor").unwrap_or(&path);
                if let Some(mount) = v2_mount(cgroup_fs) {
                    let dir = under(&mount, path);
                    if is_own(&dir) {
                        out.v2 = Some(dir);
                    }
                }
                continue;
            }
            for controller in Controller::ALL {
                if controllers.split(',').any(|c| c == controller.v1_name())
                    && let Some(mount) = v1_mount(cgroup_fs, controller)
                {
                    let dir = under(&mount, &path);
                    if is_own(&dir) {
                        out.v1.insert(controller, dir);
                    }
                }
            }
        }
        out
    }

    /// The cgroup of a systemd unit (`ControlGroup=`, e.g.
    /// `/machine.slice/systemd-nspawn@web.service`): systemd uses the same
    /// path in every hierarchy.
    pub fn of_unit(cgroup_fs: &Path, path: &str) -> Self {
        MachineCgroup {
            v2: v2_mount(cgroup_fs).map(|m| under(&m, path)),
            v1: Controller::ALL
                .into_iter()
                .filter_map(|c| v1_mount(cgroup_fs, c).map(|m| (c, under(&m, path))))
                .collect(),
        }
    }

    /// The directory holding `controller`'s files in `hierarchy`.
    pub fn dir(&self, controller: Controller, hierarchy: Hierarchy) -> Option<&Path> {
        match hierarchy {
            Hierarchy::V2 => self.v2.as_deref(),
            Hierarchy::V1 => self.v1.get(&controller).map(PathBuf::as_path),
        }
    }

    /// A path to show for the machine's cgroup.
    pub fn describe(&self) -> String {
        self.v2
            .as_ref()
            .or_else(|| self.v1.values().next())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(none)".to_owned())
    }

    /// Reads `knobs` from the machine's cgroup, each in the hierarchy
    /// `layout` places its controller in.
    pub fn read(
        &self,
        knobs: impl IntoIterator<Item = Knob>,
        layout: &BTreeMap<Controller, Result<Hierarchy, String>>,
        manager: Manager,
    ) -> LiveLimits {
        let values = knobs
            .into_iter()
            .map(|knob| (knob, self.read_knob(knob, layout)))
            .collect();
        LiveLimits {
            cgroup: self.describe(),
            manager,
            values,
        }
    }

    fn read_knob(
        &self,
        knob: Knob,
        layout: &BTreeMap<Controller, Result<Hierarchy, String>>,
    ) -> Result<LiveValue, String> {
        let controller = knob.controller();
        let hierarchy = match layout.get(&controller) {
            Some(Ok(h)) => *h,
            Some(Err(why)) => return Err(why.clone()),
            None => {
                return Err(format!(
                    "the {} controller was not looked for",
                    controller.v2_name()
                ));
            }
        };
        let dir = self.dir(controller, hierarchy).ok_or_else(|| {
            format!(
                "the running machine has no cgroup of its own in the {} hierarchy of the {} \
                 controller (it was started before berth limited its resources)",
                match hierarchy {
                    Hierarchy::V2 => "unified",
                    Hierarchy::V1 => "cgroup v1",
                },
                controller.v2_name()
            )
        })?;
        let mut files = Vec::new();
        for file in cgroup_files(knob, hierarchy) {
            let path = dir.join(&file);
            let raw = fs::read_to_string(&path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            files.push((file.clone(), normalize(&file, &raw)));
        }
        if files.is_empty() {
            return Err(format!("{knob} cannot be set in this cgroup hierarchy"));
        }
        Ok(LiveValue {
            hierarchy,
            dir: dir.display().to_string(),
            files,
        })
    }

    /// Writes `writes` into the machine's cgroup, which berth manages. In
    /// the unified hierarchy each controller is first enabled in the
    /// `cgroup.subtree_control` of every ancestor below `v2_mount` that lacks it,
    /// top down (its files then appear in the machine's cgroup).
    pub fn write(&self, v2_mount: Option<&Path>, writes: &[CgroupWrite]) -> Result<(), String> {
        for write in writes {
            let dir = self.dir(write.controller, write.hierarchy).ok_or_else(|| {
                format!(
                    "the machine has no cgroup of its own for the {} controller",
                    write.controller.v2_name()
                )
            })?;
            if write.hierarchy == Hierarchy::V2
                && let Some(mount) = v2_mount
            {
                enable_controller(mount, dir, write.controller)?;
            }
            let path = dir.join(&write.file);
            fs::write(&path, &write.value)
                .map_err(|e| format!("writing {:?} to {}: {e}", write.value, path.display()))?;
        }
        Ok(())
    }
}

/// Enables `controller` for `dir`: in the `cgroup.subtree_control` of each
/// of its ancestors from `mount` down that lacks it.
fn enable_controller(mount: &Path, dir: &Path, controller: Controller) -> Result<(), String> {
    let Ok(rel) = dir.strip_prefix(mount) else {
        return Ok(());
    };
    let mut ancestors = vec![mount.to_path_buf()];
    let mut current = mount.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        current.push(part);
        ancestors.push(current.clone());
    }
    let name = controller.v2_name();
    for ancestor in ancestors {
        let file = ancestor.join("cgroup.subtree_control");
        let enabled = fs::read_to_string(&file).unwrap_or_default();
        if enabled.split_whitespace().any(|c| c == name) {
            continue;
        }
        fs::write(&file, format!("+{name}")).map_err(|e| {
            let hint = if e.raw_os_error() == Some(libc::EBUSY) {
                "; cgroup v2 passes no controller on from a cgroup that holds processes of its \
                 own: run berth from a cgroup with no other processes (machines' cgroups are \
                 made under berth's own)"
            } else {
                ""
            };
            format!(
                "enabling the {name} controller in {}: {e}{hint}",
                file.display()
            )
        })?;
    }
    Ok(())
}

/// Whether `path` names a character or block device.
pub fn is_device(path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::FileTypeExt;
    let meta = fs::metadata(path)?;
    Ok(meta.file_type().is_char_device() || meta.file_type().is_block_device())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::resources::{Value, cgroup_writes};

    #[test]
    fn a_hybrid_host_uses_v1_hierarchies_for_controllers_unified_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let fs_root = dir.path();
        fs::create_dir_all(fs_root.join("unified")).unwrap();
        fs::write(fs_root.join("unified/cgroup.controllers"), "hugetlb\n").unwrap();
        for v1 in ["memory", "cpu", "pids"] {
            fs::create_dir_all(fs_root.join(v1)).unwrap();
            fs::write(fs_root.join(v1).join("cgroup.procs"), "").unwrap();
        }
        let found = layout(fs_root, None);
        assert_eq!(found[&Controller::Memory], Ok(Hierarchy::V1));
        assert_eq!(found[&Controller::Pids], Ok(Hierarchy::V1));
        let io = found[&Controller::Io].as_ref().unwrap_err();
        assert!(io.contains("io controller") && io.contains("blkio"), "{io}");
    }

    #[test]
    fn berths_cgroup_is_found_from_nspawns_proc_entry_and_written() {
        let dir = tempfile::tempdir().unwrap();
        let cg = dir.path().join("cg");
        let proc_dir = dir.path().join("proc");
        fs::create_dir_all(cg.join("a/berth-web/supervisor")).unwrap();
        fs::write(cg.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        fs::write(cg.join("cgroup.subtree_control"), "").unwrap();
        fs::write(cg.join("a/cgroup.subtree_control"), "memory\n").unwrap();
        fs::create_dir_all(proc_dir.join("7")).unwrap();
        fs::write(proc_dir.join("7/cgroup"), "0::/a/berth-web/supervisor\n").unwrap();
        let machine = MachineCgroup::of_berth(&cg, &proc_dir, 7, "web");
        assert_eq!(machine.v2, Some(cg.join("a/berth-web")));
        let writes = cgroup_writes(
            Knob::CpuQuota,
            &Value::Number(150),
            Hierarchy::V2,
            Manager::Berth,
        )
        .unwrap();
        machine.write(Some(&cg), &writes).unwrap();
        assert_eq!(
            fs::read_to_string(cg.join("a/berth-web/cpu.max")).unwrap(),
            "150000 100000"
        );
        // cpu was enabled top down; memory was there already and is kept.
        assert_eq!(
            fs::read_to_string(cg.join("cgroup.subtree_control")).unwrap(),
            "+cpu"
        );
        assert_eq!(
            fs::read_to_string(cg.join("a/cgroup.subtree_control")).unwrap(),
            "+cpu"
        );
        let layout = super::layout(&cg, None);
        let live = machine.read([Knob::CpuQuota, Knob::MemoryMax], &layout, Manager::Berth);
        let quota = live.values[&Knob::CpuQuota].as_ref().unwrap();
        assert!(quota.holds(&writes), "{quota:?}");
        assert!(live.values[&Knob::MemoryMax].is_err());
        // Another process's cgroup is never taken for the machine's.
        fs::write(proc_dir.join("7/cgroup"), "0::/a/supervisor\n").unwrap();
        assert_eq!(MachineCgroup::of_berth(&cg, &proc_dir, 7, "web").v2, None);
    }
}
