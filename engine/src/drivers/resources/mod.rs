//! A machine's resource limits (`resources:`) and the device policy of its
//! devices (`devices:`): what the spec's values are in each place they are
//! kept or applied, and how each place is read back.
//!
//! A limit is one [`Knob`] with a [`Value`] in the spec's own unit (bytes,
//! percent of one CPU, a weight, a number of tasks). It lives in up to two
//! places at once:
//!
//! - **live**, in the running machine's cgroup: cgroup v2 files (`memory.max`,
//!   `cpu.max`, ...) or, where a controller is still bound to a cgroup v1
//!   hierarchy, the v1 files (`memory.limit_in_bytes`, `cpu.cfs_quota_us`,
//!   ...). The cgroup is systemd's (`systemd-nspawn@NAME.service` under the
//!   unit launchers, machined's `machine-NAME.scope` under the nspawn
//!   launcher on a systemd host) or berth's own `berth-NAME` (the nspawn
//!   launcher without systemd, see `launcher/cgroup.rs`);
//! - **persisted**, for the next start: systemd's drop-ins in
//!   `/etc/systemd/system.control/systemd-nspawn@NAME.service.d/` (written by
//!   `systemctl set-property`) for the unit launchers, berth's record for the
//!   nspawn launcher (applied to the cgroup at every start).
//!
//! Values are compared in the encoding of the place they are read from (a
//! cgroup file's normalised contents, a drop-in's value), so what berth
//! writes reads back equal: memory limits are rounded down to the page size
//! as the kernel does, and lossy conversions (a CPU weight as cgroup v1
//! `cpu.shares`) are compared after conversion.

pub mod cgroupfs;
pub mod observe;
pub mod start;
pub mod systemd;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use berth_schema::{Device, Limit, Resources};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One limit berth manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Knob {
    /// `memory_max`: `memory.max`, `MemoryMax=`.
    MemoryMax,
    /// `memory_high`: `memory.high`, `MemoryHigh=` (cgroup v2 only).
    MemoryHigh,
    /// `cpu_quota`: `cpu.max`, `CPUQuota=`, in percent of one CPU.
    CpuQuota,
    /// `cpu_weight`: `cpu.weight`, `CPUWeight=`.
    CpuWeight,
    /// `tasks_max`: `pids.max`, `TasksMax=`.
    TasksMax,
    /// `io_weight`: `io.weight`, `IOWeight=`.
    IoWeight,
}

/// The cgroup v2 period berth's CPU quotas use (systemd's default: 100 ms).
pub const CPU_PERIOD_US: u64 = 100_000;

impl Knob {
    /// Every knob, in the spec's order.
    pub const ALL: [Knob; 6] = [
        Knob::MemoryMax,
        Knob::MemoryHigh,
        Knob::CpuQuota,
        Knob::CpuWeight,
        Knob::TasksMax,
        Knob::IoWeight,
    ];

    /// Its name under `resources:` (`memory_max`).
    pub fn name(self) -> &'static str {
        match self {
            Knob::MemoryMax => "memory_max",
            Knob::MemoryHigh => "memory_high",
            Knob::CpuQuota => "cpu_quota",
            Knob::CpuWeight => "cpu_weight",
            Knob::TasksMax => "tasks_max",
            Knob::IoWeight => "io_weight",
        }
    }

    /// The cgroup controller that enforces it.
    pub fn controller(self) -> Controller {
        match self {
            Knob::MemoryMax | Knob::MemoryHigh => Controller::Memory,
            Knob::CpuQuota | Knob::CpuWeight => Controller::Cpu,
            Knob::TasksMax => Controller::Pids,
            Knob::IoWeight => Controller::Io,
        }
    }

    /// The systemd unit property (`MemoryMax`).
    pub fn property(self) -> &'static str {
        match self {
            Knob::MemoryMax => "MemoryMax",
            Knob::MemoryHigh => "MemoryHigh",
            Knob::CpuQuota => "CPUQuota",
            Knob::CpuWeight => "CPUWeight",
            Knob::TasksMax => "TasksMax",
            Knob::IoWeight => "IOWeight",
        }
    }

    /// What a limit is reset to when the spec no longer sets it: no limit,
    /// or the default weight 100.
    pub fn default_value(self) -> Value {
        match self {
            Knob::CpuWeight | Knob::IoWeight => Value::Number(100),
            _ => Value::Max,
        }
    }

    /// `value` as the plan shows it: bytes and counts as numbers, the CPU
    /// quota in percent, `max` for no limit.
    pub fn display(self, value: &Value) -> String {
        match (self, value) {
            (Knob::CpuQuota, Value::Number(n)) => format!("{n}%"),
            (_, value) => value.to_string(),
        }
    }
}

impl fmt::Display for Knob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A limit's value in the spec's unit (bytes, percent, weight, tasks).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// No limit (`max`, `infinity`).
    Max,
    /// A number in the knob's unit.
    Number(u64),
    /// What a cgroup or drop-in held that is no value berth would write
    /// (e.g. a CPU period other than 100 ms); shown as read.
    Other(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Max => f.write_str("max"),
            Value::Number(n) => write!(f, "{n}"),
            Value::Other(text) => f.write_str(text),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Max => serializer.serialize_str("max"),
            Value::Number(n) => serializer.serialize_u64(*n),
            Value::Other(text) => serializer.serialize_str(text),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        Ok(match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Value::Number(n),
            Raw::Text(text) if text == "max" => Value::Max,
            Raw::Text(text) => Value::Other(text),
        })
    }
}

/// The limits the spec sets, in the spec's units; memory rounded down to
/// `page_size` as the kernel stores it.
pub fn wanted(resources: &Resources, page_size: u64) -> BTreeMap<Knob, Value> {
    let page = page_size.max(1);
    let limit = |limit: Limit, round: bool| match limit {
        Limit::Infinity => Value::Max,
        Limit::Value(n) if round => Value::Number(n / page * page),
        Limit::Value(n) => Value::Number(n),
    };
    let mut out = BTreeMap::new();
    if let Some(l) = resources.memory_max {
        out.insert(Knob::MemoryMax, limit(l, true));
    }
    if let Some(l) = resources.memory_high {
        out.insert(Knob::MemoryHigh, limit(l, true));
    }
    if let Some(p) = resources.cpu_quota {
        out.insert(Knob::CpuQuota, Value::Number(u64::from(p)));
    }
    if let Some(w) = resources.cpu_weight {
        out.insert(Knob::CpuWeight, Value::Number(w));
    }
    if let Some(l) = resources.tasks_max {
        out.insert(Knob::TasksMax, limit(l, false));
    }
    if let Some(w) = resources.io_weight {
        out.insert(Knob::IoWeight, Value::Number(w));
    }
    out
}

/// A cgroup controller berth sets limits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Controller {
    /// `memory`.
    Memory,
    /// `cpu`.
    Cpu,
    /// `pids`.
    Pids,
    /// `io` (cgroup v1: `blkio`).
    Io,
}

impl Controller {
    /// Every controller berth uses.
    pub const ALL: [Controller; 4] = [
        Controller::Memory,
        Controller::Cpu,
        Controller::Pids,
        Controller::Io,
    ];

    /// Its name in cgroup v2 (`cgroup.controllers`).
    pub fn v2_name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Pids => "pids",
            Controller::Io => "io",
        }
    }

    /// Its name as a cgroup v1 hierarchy (`/sys/fs/cgroup/blkio`).
    pub fn v1_name(self) -> &'static str {
        match self {
            Controller::Io => "blkio",
            other => other.v2_name(),
        }
    }
}

/// Where a controller lives on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hierarchy {
    /// The unified hierarchy (cgroup v2).
    V2,
    /// A cgroup v1 hierarchy of its own (legacy and hybrid hosts).
    V1,
}

/// One write of one file in a machine's cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CgroupWrite {
    /// The controller the file belongs to.
    pub controller: Controller,
    /// The hierarchy the file is in.
    pub hierarchy: Hierarchy,
    /// The file in the machine's cgroup directory (`memory.max`).
    pub file: String,
    /// What is written, which is also what reads back (normalised).
    pub value: String,
}

/// Who manages the cgroup: the few conversions systemd makes its own way
/// (cgroup v1 I/O weights) are followed where systemd writes the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Manager {
    /// berth writes the files (its own `berth-NAME` cgroups).
    Berth,
    /// systemd writes them (a unit's or scope's cgroup).
    Systemd,
}

/// A cgroup v1 CPU weight: `cpu.shares` (systemd's conversion: weight × 1024 / 100).
fn shares(weight: u64) -> u64 {
    (weight.saturating_mul(1024) / 100).clamp(2, 262_144)
}

/// A cgroup v1 I/O weight as `blkio.bfq.weight`: BFQ's own range (1–1000,
/// default 100) for berth's cgroups (the same mapping systemd uses for
/// `io.bfq.weight`), systemd's legacy `blkio.weight` mapping (× 5) for its own.
fn blkio_weight(weight: u64, manager: Manager) -> u64 {
    match manager {
        Manager::Systemd => weight.saturating_mul(5).clamp(10, 1000),
        Manager::Berth if weight <= 100 => weight.max(1),
        Manager::Berth => (100 + (weight - 100).saturating_mul(900) / 9900).min(1000),
    }
}

/// The cgroup file writes that set `knob` to `value` in `hierarchy`, or
/// why `hierarchy` cannot hold it.
pub fn cgroup_writes(
    knob: Knob,
    value: &Value,
    hierarchy: Hierarchy,
    manager: Manager,
) -> Result<Vec<CgroupWrite>, String> {
    let number = |max: &str| match value {
        Value::Max => Ok(max.to_owned()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Other(text) => Err(format!("{knob}: {text} is no value berth writes")),
    };
    let weight = || match value {
        Value::Number(n) => Ok(*n),
        other => Err(format!("{knob}: {other} is no weight")),
    };
    let write = |file: &str, value: String| CgroupWrite {
        controller: knob.controller(),
        hierarchy,
        file: file.to_owned(),
        value,
    };
    Ok(match (hierarchy, knob) {
        (Hierarchy::V2, Knob::MemoryMax) => vec![write("memory.max", number("max")?)],
        (Hierarchy::V2, Knob::MemoryHigh) => vec![write("memory.high", number("max")?)],
        (Hierarchy::V2, Knob::CpuQuota) => {
            let quota = match value {
                Value::Number(percent) => (percent.saturating_mul(CPU_PERIOD_US) / 100).to_string(),
                _ => number("max")?,
            };
            vec![write("cpu.max", format!("{quota} {CPU_PERIOD_US}"))]
        }
        (Hierarchy::V2, Knob::CpuWeight) => vec![write("cpu.weight", weight()?.to_string())],
        (_, Knob::TasksMax) => vec![write("pids.max", number("max")?)],
        (Hierarchy::V2, Knob::IoWeight) => {
            vec![write("io.weight", format!("default {}", weight()?))]
        }
        (Hierarchy::V1, Knob::MemoryMax) => {
            vec![write("memory.limit_in_bytes", number("-1")?)]
        }
        (Hierarchy::V1, Knob::MemoryHigh) => {
            return Err(
                "memory_high needs cgroup v2 (memory.high); on this host the memory controller \
                 is a cgroup v1 hierarchy, which has no such limit: use memory_max"
                    .to_owned(),
            );
        }
        (Hierarchy::V1, Knob::CpuQuota) => {
            let quota = match value {
                Value::Number(percent) => (percent.saturating_mul(CPU_PERIOD_US) / 100).to_string(),
                _ => number("-1")?,
            };
            vec![
                write("cpu.cfs_period_us", CPU_PERIOD_US.to_string()),
                write("cpu.cfs_quota_us", quota),
            ]
        }
        (Hierarchy::V1, Knob::CpuWeight) => {
            vec![write("cpu.shares", shares(weight()?).to_string())]
        }
        (Hierarchy::V1, Knob::IoWeight) => vec![write(
            "blkio.bfq.weight",
            blkio_weight(weight()?, manager).to_string(),
        )],
    })
}

/// The files a knob is read from in `hierarchy` (none: it has no such limit).
pub fn cgroup_files(knob: Knob, hierarchy: Hierarchy) -> Vec<String> {
    cgroup_writes(knob, &knob.default_value(), hierarchy, Manager::Berth)
        .map(|writes| writes.into_iter().map(|w| w.file).collect())
        .unwrap_or_default()
}

/// A cgroup file's contents in the form berth writes them: trimmed; a
/// cgroup v1 memory limit beyond any real size is `-1` (no limit); only the
/// `default` line of `io.weight`.
pub fn normalize(file: &str, raw: &str) -> String {
    let text = raw.trim();
    match file {
        "memory.limit_in_bytes" => match text.parse::<u64>() {
            Ok(n) if n >= 1 << 62 => "-1".to_owned(),
            _ => text.to_owned(),
        },
        "io.weight" => text
            .lines()
            .find(|l| l.starts_with("default "))
            .unwrap_or(text)
            .trim()
            .to_owned(),
        _ => text.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// The value a knob's files hold (normalised, as read), in the spec's unit:
/// the value whose writes read back exactly so, else [`Value::Other`].
pub fn decode(
    knob: Knob,
    hierarchy: Hierarchy,
    manager: Manager,
    files: &[(String, String)],
) -> Value {
    let get = |name: &str| {
        files
            .iter()
            .find(|(file, _)| file == name)
            .map(|(_, v)| v.as_str())
    };
    let first = files.first().map(|(_, v)| v.as_str()).unwrap_or_default();
    let number = |text: &str| -> Option<Value> {
        match text {
            "max" | "-1" => Some(Value::Max),
            n => n.parse().ok().map(Value::Number),
        }
    };
    let candidate = match (hierarchy, knob) {
        (Hierarchy::V2, Knob::CpuQuota) => {
            let mut parts = first.split(' ');
            match (
                parts.next(),
                parts.next().and_then(|p| p.parse::<u64>().ok()),
            ) {
                (Some("max"), _) => Some(Value::Max),
                (Some(q), Some(period)) if period > 0 => q
                    .parse::<u64>()
                    .ok()
                    .map(|q| Value::Number(q.saturating_mul(100) / period)),
                _ => None,
            }
        }
        (Hierarchy::V1, Knob::CpuQuota) => {
            let period = get("cpu.cfs_period_us").and_then(|p| p.parse::<u64>().ok());
            match (get("cpu.cfs_quota_us"), period) {
                (Some("-1"), _) => Some(Value::Max),
                (Some(q), Some(period)) if period > 0 => q
                    .parse::<u64>()
                    .ok()
                    .map(|q| Value::Number(q.saturating_mul(100) / period)),
                _ => None,
            }
        }
        (Hierarchy::V2, Knob::IoWeight) => first
            .strip_prefix("default ")
            .and_then(|n| n.parse().ok())
            .map(Value::Number),
        (Hierarchy::V1, Knob::CpuWeight) => first.parse::<u64>().ok().map(|s| {
            // The weight whose shares these are (the conversion is injective).
            Value::Number((s * 100).div_ceil(1024))
        }),
        (Hierarchy::V1, Knob::IoWeight) => first.parse::<u64>().ok().and_then(|b| {
            (1..=10_000u64)
                .find(|w| blkio_weight(*w, manager) == b)
                .map(Value::Number)
        }),
        _ => number(first),
    };
    let reads_back = |value: &Value| {
        cgroup_writes(knob, value, hierarchy, manager).is_ok_and(|writes| {
            writes
                .iter()
                .all(|w| get(&w.file) == Some(w.value.as_str()))
        })
    };
    match candidate {
        Some(value) if reads_back(&value) => value,
        _ => Value::Other(
            files
                .iter()
                .map(|(file, v)| format!("{file}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
        ),
    }
}

/// The value of `knob`'s systemd property for `value`: what `systemctl
/// set-property` is given and writes to its drop-in (`536870912`,
/// `infinity`, `150%`).
pub fn property_value(knob: Knob, value: &Value) -> String {
    match (knob, value) {
        (Knob::CpuQuota, Value::Max) => String::new(),
        (Knob::CpuQuota, Value::Number(n)) => format!("{n}%"),
        (Knob::CpuWeight | Knob::IoWeight, Value::Max) => String::new(),
        (_, Value::Max) => "infinity".to_owned(),
        (_, Value::Number(n)) => n.to_string(),
        (_, Value::Other(text)) => text.clone(),
    }
}

/// `Property=value` for `systemctl set-property`.
pub fn property(knob: Knob, value: &Value) -> String {
    format!("{}={}", knob.property(), property_value(knob, value))
}

/// A drop-in's value of `knob` in the spec's unit.
pub fn parse_property(knob: Knob, text: &str) -> Value {
    let text = text.trim();
    match (knob, text) {
        (_, "infinity") | (Knob::CpuQuota, "") => Value::Max,
        (Knob::CpuQuota, t) => t
            .strip_suffix('%')
            .and_then(|n| n.parse().ok())
            .map_or_else(|| Value::Other(t.to_owned()), Value::Number),
        (_, t) => t
            .parse()
            .map_or_else(|_| Value::Other(t.to_owned()), Value::Number),
    }
}

/// One `DeviceAllow=` entry: a device node and the access granted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceRule {
    /// The device node (`/dev/fuse`).
    pub path: String,
    /// `r`, `w`, `m` in that order.
    pub access: String,
}

impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.path, self.access)
    }
}

/// The spec's devices as `DeviceAllow=` entries, in spec order.
pub fn device_rules(devices: &[Device]) -> Vec<DeviceRule> {
    devices
        .iter()
        .map(|d| DeviceRule {
            path: d.path.display().to_string(),
            access: d.access.clone(),
        })
        .collect()
}

/// One limit a plan changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceChange {
    /// The limit.
    pub knob: Knob,
    /// What the machine has now, where berth reads it (its running cgroup,
    /// else the drop-in or record it starts with); None when nothing is set
    /// there yet.
    pub from: Option<Value>,
    /// What it gets.
    pub to: Value,
    /// The spec no longer sets it: back to the default, and berth no
    /// longer manages it.
    pub reset: bool,
}

impl fmt::Display for ResourceChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.knob)?;
        if let Some(from) = &self.from {
            write!(f, " {} ->", self.knob.display(from))?;
        }
        write!(f, " {}", self.knob.display(&self.to))?;
        if self.reset {
            f.write_str(" (reset: no longer in the spec)")?;
        }
        Ok(())
    }
}

/// The exact writes that make a plan's limits so, by where they go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "via", rename_all = "kebab-case")]
pub enum ResourceWrites {
    /// The unit launchers: `systemctl set-property UNIT PROPERTY=VALUE...`
    /// (live if the unit runs, and persisted in its drop-ins), then the
    /// drop-ins of reset limits removed and `systemctl daemon-reload`.
    Unit {
        /// `systemd-nspawn@NAME.service`.
        unit: String,
        /// The properties set.
        set: Vec<String>,
        /// The drop-ins removed (limits reset).
        remove: Vec<String>,
    },
    /// The nspawn launcher on a systemd host: berth's record (given to
    /// systemd-nspawn as `--property=` at every start) and, while it runs,
    /// `systemctl set-property --runtime` on machined's scope.
    Scope {
        /// The properties set live (empty: the machine does not run).
        set: Vec<String>,
    },
    /// The nspawn launcher without systemd: berth's record (written into
    /// the machine's own cgroup at every start) and, while it runs, these
    /// writes into that cgroup.
    Cgroup {
        /// The files written (empty: the machine does not run).
        writes: Vec<CgroupWrite>,
        /// Where each of `writes` goes in the running machine's cgroup.
        paths: Vec<String>,
    },
}

impl ResourceWrites {
    /// The commands and writes, as a user would type them (`--verbose`).
    pub fn commands(&self) -> Vec<String> {
        match self {
            ResourceWrites::Unit { unit, set, remove } => {
                let mut out = Vec::new();
                if !set.is_empty() {
                    out.push(format!(
                        "systemctl set-property -- {unit} {}",
                        set.join(" ")
                    ));
                }
                for file in remove {
                    out.push(format!("rm {file}"));
                }
                if !remove.is_empty() {
                    out.push("systemctl daemon-reload".to_owned());
                }
                out
            }
            ResourceWrites::Scope { set } if !set.is_empty() => vec![format!(
                "systemctl set-property --runtime -- MACHINE-SCOPE {}",
                set.join(" ")
            )],
            ResourceWrites::Scope { .. } => Vec::new(),
            ResourceWrites::Cgroup { writes, paths } => writes
                .iter()
                .zip(paths)
                .map(|(w, path)| format!("echo {:?} > {path}", w.value))
                .collect(),
        }
    }
}

/// What a device path is on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceNode {
    /// A character or block device node.
    Device,
    /// Something else (a file, a directory).
    NotDevice,
    /// Nothing.
    Missing,
}

/// What observation found about a machine's limits and devices (empty
/// when the spec and berth's record have none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceObservation {
    /// Whether the host runs systemd (limits go through systemd's units).
    pub systemd: bool,
    /// The host's page size (memory limits are rounded down to it).
    pub page_size: u64,
    /// Where each controller berth needs lives, or why it cannot be used.
    pub controllers: BTreeMap<Controller, Result<Hierarchy, String>>,
    /// The running machine's cgroup, read (None: not running under berth,
    /// or nothing to read).
    pub live: Option<LiveLimits>,
    /// The values of the unit launchers' drop-ins berth manages, by knob
    /// (`systemctl set-property`'s `50-PROPERTY.conf`), as written there.
    pub dropins: BTreeMap<Knob, String>,
    /// The drop-in directory of the machine's unit
    /// (`/etc/systemd/system.control/systemd-nspawn@NAME.service.d`).
    pub dropin_dir: PathBuf,
    /// berth's `DeviceAllow=` drop-in of the machine's unit, if present.
    pub device_dropin: Option<String>,
    /// What each of the spec's device paths is on the host.
    pub devices: Vec<(PathBuf, DeviceNode)>,
}

impl Default for ResourceObservation {
    fn default() -> Self {
        ResourceObservation {
            systemd: false,
            page_size: 4096,
            controllers: BTreeMap::new(),
            live: None,
            dropins: BTreeMap::new(),
            dropin_dir: PathBuf::new(),
            device_dropin: None,
            devices: Vec::new(),
        }
    }
}

/// A running machine's cgroup as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveLimits {
    /// Its cgroup (the unified hierarchy's path, or the first one found).
    pub cgroup: String,
    /// Who writes its files.
    pub manager: Manager,
    /// Each knob's files, normalised, or why they cannot be read.
    pub values: BTreeMap<Knob, Result<LiveValue, String>>,
}

/// A knob's files as read from a running machine's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveValue {
    /// The hierarchy they are in.
    pub hierarchy: Hierarchy,
    /// The cgroup directory they are in.
    pub dir: String,
    /// (file, normalised contents).
    pub files: Vec<(String, String)>,
}

impl LiveValue {
    /// Whether the files hold exactly `writes`.
    pub fn holds(&self, writes: &[CgroupWrite]) -> bool {
        writes.iter().all(|w| {
            self.files
                .iter()
                .any(|(file, value)| *file == w.file && *value == w.value)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(f, v)| ((*f).to_owned(), normalize(f, v)))
            .collect()
    }

    #[test]
    fn spec_values_are_in_spec_units_and_memory_is_page_rounded() {
        let r = Resources {
            memory_max: Some(Limit::Value(536_870_912 + 100)),
            memory_high: Some(Limit::Infinity),
            cpu_quota: Some(150),
            cpu_weight: Some(200),
            tasks_max: Some(Limit::Value(500)),
            io_weight: None,
        };
        let w = wanted(&r, 4096);
        assert_eq!(w[&Knob::MemoryMax], Value::Number(536_870_912));
        assert_eq!(w[&Knob::MemoryHigh], Value::Max);
        assert_eq!(Knob::CpuQuota.display(&w[&Knob::CpuQuota]), "150%");
        assert_eq!(w[&Knob::TasksMax], Value::Number(500));
        assert!(!w.contains_key(&Knob::IoWeight));
    }

    #[test]
    fn cgroup_v2_writes_read_back() {
        let quota = cgroup_writes(
            Knob::CpuQuota,
            &Value::Number(150),
            Hierarchy::V2,
            Manager::Berth,
        )
        .unwrap();
        assert_eq!(quota[0].file, "cpu.max");
        assert_eq!(quota[0].value, "150000 100000");
        let read = files(&[("cpu.max", "150000 100000\n")]);
        assert_eq!(
            decode(Knob::CpuQuota, Hierarchy::V2, Manager::Berth, &read),
            Value::Number(150)
        );
        let unset = files(&[("cpu.max", "max 100000\n")]);
        assert_eq!(
            decode(Knob::CpuQuota, Hierarchy::V2, Manager::Berth, &unset),
            Value::Max
        );
        let odd = files(&[("cpu.max", "150000 200000")]);
        assert_eq!(
            decode(Knob::CpuQuota, Hierarchy::V2, Manager::Berth, &odd),
            Value::Other("cpu.max=150000 200000".into())
        );
        let io = files(&[("io.weight", "default 200\n8:0 50\n")]);
        assert_eq!(
            decode(Knob::IoWeight, Hierarchy::V2, Manager::Berth, &io),
            Value::Number(200)
        );
        let mem = files(&[("memory.max", "max\n")]);
        assert_eq!(
            decode(Knob::MemoryMax, Hierarchy::V2, Manager::Berth, &mem),
            Value::Max
        );
    }

    #[test]
    fn cgroup_v1_writes_read_back_and_memory_high_is_refused() {
        let unlimited = files(&[("memory.limit_in_bytes", "9223372036854771712\n")]);
        assert_eq!(unlimited[0].1, "-1");
        assert_eq!(
            decode(Knob::MemoryMax, Hierarchy::V1, Manager::Berth, &unlimited),
            Value::Max
        );
        for weight in [1, 7, 100, 150, 9999, 10_000] {
            let w = cgroup_writes(
                Knob::CpuWeight,
                &Value::Number(weight),
                Hierarchy::V1,
                Manager::Berth,
            )
            .unwrap();
            let read = files(&[("cpu.shares", &w[0].value)]);
            assert_eq!(
                decode(Knob::CpuWeight, Hierarchy::V1, Manager::Berth, &read),
                Value::Number(weight)
            );
        }
        let quota = cgroup_writes(
            Knob::CpuQuota,
            &Value::Number(150),
            Hierarchy::V1,
            Manager::Berth,
        )
        .unwrap();
        let read: Vec<(String, String)> = quota
            .iter()
            .map(|w| (w.file.clone(), w.value.clone()))
            .collect();
        assert_eq!(
            decode(Knob::CpuQuota, Hierarchy::V1, Manager::Berth, &read),
            Value::Number(150)
        );
        let io = cgroup_writes(
            Knob::IoWeight,
            &Value::Number(100),
            Hierarchy::V1,
            Manager::Berth,
        )
        .unwrap();
        assert_eq!(
            (io[0].file.as_str(), io[0].value.as_str()),
            ("blkio.bfq.weight", "100")
        );
        let err = cgroup_writes(
            Knob::MemoryHigh,
            &Value::Number(1),
            Hierarchy::V1,
            Manager::Berth,
        )
        .unwrap_err();
        assert!(err.contains("cgroup v2"), "{err}");
    }

    #[test]
    fn properties_are_what_set_property_writes_to_its_drop_ins() {
        assert_eq!(
            property(Knob::MemoryMax, &Value::Number(536_870_912)),
            "MemoryMax=536870912"
        );
        assert_eq!(property(Knob::MemoryMax, &Value::Max), "MemoryMax=infinity");
        assert_eq!(
            property(Knob::CpuQuota, &Value::Number(150)),
            "CPUQuota=150%"
        );
        assert_eq!(parse_property(Knob::CpuQuota, "150%"), Value::Number(150));
        assert_eq!(parse_property(Knob::TasksMax, "infinity"), Value::Max);
    }

    #[test]
    fn values_serialise_as_numbers_or_max() {
        let json = serde_json::to_string(&[Value::Max, Value::Number(5)]).unwrap();
        assert_eq!(json, r#"["max",5]"#);
        let back: Vec<Value> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, [Value::Max, Value::Number(5)]);
    }
}
