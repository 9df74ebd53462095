//! berth's spec: the YAML users write, loaded with source locations,
//! validated, and described as a JSON Schema.
//!
//! This crate knows nothing of machines on disk: it turns text into a
//! validated [`Spec`] or into [`Diagnostic`]s that name the file, the line and
//! column, and the field path.
//!
//! - [`load`] reads a spec file or a directory of `*.yaml` files;
//! - [`load_str`] parses text as if it came from a given file;
//! - [`json_schema`] describes the file format;
//! - [`yaml`] writes specs (`berth import`);
//! - [`Machine::builder`] makes machines for tests.

#![forbid(unsafe_code)]

mod builder;
mod diagnostic;
pub mod hosts;
mod load;
mod names;
mod raw;
mod spec;
mod validate;
pub mod yaml;

pub use builder::MachineBuilder;
pub use diagnostic::{Diagnostic, LoadError};
pub use load::{MAX_FILE_SIZE, load, load_str};
pub use spec::Snapshots;
pub use spec::{
    Address, Bind, BootstrapOptions, BootstrapperKind, Credential, DEFAULT_POOL, DesiredState,
    Device, Distro, FileContent, Health, Ipv4Cidr, Launcher, Limit, Machine, ManagedFile, Moved,
    Network, NetworkMode, NspawnExtra, Port, PrivateUsers, Protocol, Repo, Resources, RootPassword,
    SecretSource, Source, Spec, Storage, Units, User,
};

/// The JSON Schema (draft 2020-12) of a spec file, for `berth schema` and
/// editors (yaml-language-server).
pub fn json_schema() -> serde_json::Value {
    schemars::generate::SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<raw::RawFile>()
        .to_value()
}

/// Whether `name` is a valid machine name (1–64 chars of `[A-Za-z0-9._-]`,
/// not starting with `-` or `.`, no `..`), for names given on a command line.
pub fn is_valid_machine_name(name: &str) -> bool {
    names::machine_name(name).is_ok()
}
