//! The spec file as written: serde types mirroring the YAML, every value
//! validated later wrapped in [`Spanned`] so it keeps its line and column.
//!
//! Nothing here checks values; [`crate::validate`] does. These types also
//! describe the file for the JSON Schema.

use std::cell::RefCell;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use crate::spec::{DesiredState, Distro, Launcher};

/// A berth spec file: machines, and defaults merged under each of them.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "berth spec", extend("additionalProperties" = false))]
pub(crate) struct RawFile {
    #[serde(default)]
    /// Fields merged under every machine of this file; a machine's own value
    /// wins, field by field (a machine's `units` replaces these `units` whole).
    pub defaults: Option<RawMachine>,
    /// The machines, by name, in order. A name is 1–64 of `[A-Za-z0-9._-]`,
    /// not starting with `-` or `.`.
    #[serde(default)]
    #[schemars(schema_with = "machines_schema")]
    pub machines: Option<RawMachines>,
}

/// The machine map, keeping each name's location.
#[derive(Debug, Default)]
pub(crate) struct RawMachines(pub Vec<(Spanned<String>, RawMachine)>);

/// A machine. Any field may instead come from `defaults`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Machine", extend("additionalProperties" = false))]
pub(crate) struct RawMachine {
    /// The distribution to bootstrap (required, here or under `defaults`).
    #[schemars(with = "Option<Distro>")]
    pub distro: Option<Spanned<String>>,
    /// The release: a suite for Debian/Ubuntu (`bookworm`), a version for
    /// Fedora (`40`). Required for debian, ubuntu and fedora.
    #[schemars(
        with = "Option<String>",
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"),
        length(max = 64)
    )]
    pub release: Option<Spanned<String>>,
    /// The mirror to bootstrap from: an `http://`, `https://` or `file:/` URL.
    #[schemars(
        with = "Option<String>",
        regex(pattern = r"^(https?://[^\s/?#]+|file:/)\S*$")
    )]
    pub mirror: Option<Spanned<String>>,
    /// Packages to install at bootstrap.
    #[schemars(with = "Option<Vec<PackageName>>")]
    pub packages: Option<Vec<Spanned<String>>>,
    /// The hostname (RFC 1123); defaults to the machine name.
    #[schemars(with = "Option<String>", length(min = 1, max = 64))]
    pub hostname: Option<Spanned<String>>,
    /// Units to enable, disable and mask. A name without a type suffix means
    /// `.service`.
    pub units: Option<RawUnits>,
    /// Where the root password comes from: exactly one of `hash`, `env`,
    /// `file`. Plaintext passwords are refused.
    #[schemars(with = "Option<RootPasswordSchema>")]
    pub root_password: Option<Spanned<RawRootPassword>>,
    /// Entries that must be in `/etc/securetty`, relative to /dev (`pts/0`).
    #[schemars(with = "Option<Vec<SecurettyName>>")]
    pub securetty: Option<Vec<Spanned<String>>>,
    /// How the machine is started and stopped.
    #[schemars(with = "Option<Launcher>")]
    pub launcher: Option<Spanned<String>>,
    /// Whether the machine should be running.
    #[schemars(with = "Option<DesiredState>")]
    pub state: Option<Spanned<String>>,
}

/// Units to enable, disable and mask.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Units", extend("additionalProperties" = false))]
pub(crate) struct RawUnits {
    /// Units that must be enabled.
    #[schemars(with = "Option<Vec<UnitName>>")]
    pub enable: Option<Vec<Spanned<String>>>,
    /// Units that must be disabled.
    #[schemars(with = "Option<Vec<UnitName>>")]
    pub disable: Option<Vec<Spanned<String>>>,
    /// Units that must be masked.
    #[schemars(with = "Option<Vec<UnitName>>")]
    pub mask: Option<Vec<Spanned<String>>>,
}

/// A package name.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct PackageName(
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9+._@:~-]*$"),
        length(max = 128)
    )]
    String,
);

/// A unit name; without a type suffix it means `.service`.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct UnitName(
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9:_\\][A-Za-z0-9:_.\\@-]*$"),
        length(max = 255)
    )]
    String,
);

/// A tty relative to /dev, e.g. `pts/0`.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct SecurettyName(
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9._:][A-Za-z0-9/._:-]*$"),
        length(max = 64)
    )]
    String,
);

/// The JSON Schema of `root_password`: exactly one of hash, env, file.
struct RootPasswordSchema;

impl JsonSchema for RootPasswordSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RootPassword".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Where the root password comes from: exactly one of `hash`, `env`, `file`. Plaintext passwords are refused.",
            "type": "object",
            "properties": {
                "hash": {
                    "description": "A crypt(3) hash (`$6$SALT$HASH`, `$y$...`), written to /etc/shadow as is.",
                    "type": "string",
                    "pattern": "^\\$(1|5|6|y|gy|7|2a|2b|2y|sha1|md5)\\$[A-Za-z0-9./$=,]+\\$[A-Za-z0-9./=,]+$"
                },
                "env": {
                    "description": "The name of an environment variable holding the password.",
                    "type": "string",
                    "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"
                },
                "file": {
                    "description": "A file holding the password, relative to the spec file's directory.",
                    "type": "string",
                    "minLength": 1
                }
            },
            "additionalProperties": false,
            "minProperties": 1,
            "maxProperties": 1
        })
    }
}

/// The schema of the machine map: names as property names, machines as values.
fn machines_schema(generator: &mut SchemaGenerator) -> Schema {
    let machine = generator.subschema_for::<Option<RawMachine>>();
    json_schema!({
        "description": "The machines, by name, in order.",
        "type": ["object", "null"],
        "propertyNames": {
            "pattern": "^[A-Za-z0-9_][A-Za-z0-9._-]*$",
            "maxLength": 64
        },
        "additionalProperties": machine
    })
}

thread_local! {
    /// The machine whose fields are being read, to name it in error paths
    /// (serde_path_to_error cannot see the name through `Spanned`).
    static CURRENT_MACHINE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The name of the machine being deserialized when an error stopped it.
pub(crate) fn current_machine() -> Option<String> {
    CURRENT_MACHINE.with(|c| c.borrow().clone())
}

/// Forgets the machine being deserialized (before a new parse).
pub(crate) fn reset_current_machine() {
    set_current_machine(None);
}

fn set_current_machine(name: Option<String>) {
    CURRENT_MACHINE.with(|c| *c.borrow_mut() = name);
}

impl<'de> Deserialize<'de> for RawMachines {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MachinesVisitor;

        impl<'de> Visitor<'de> for MachinesVisitor {
            type Value = RawMachines;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of machine names to machines")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut machines = Vec::new();
                loop {
                    set_current_machine(None);
                    let Some(name) = map.next_key::<Spanned<String>>()? else {
                        break;
                    };
                    set_current_machine(Some(name.value.clone()));
                    let machine = map.next_value::<Option<RawMachine>>()?;
                    machines.push((name, machine.unwrap_or_default()));
                }
                set_current_machine(None);
                Ok(RawMachines(machines))
            }
        }

        deserializer.deserialize_map(MachinesVisitor)
    }
}

/// `root_password` as written, read without ever failing on (and so without
/// ever echoing) its values: checks happen in validation.
#[derive(Debug)]
pub(crate) enum RawRootPassword {
    /// A bare scalar: a plaintext password (its value is dropped).
    Scalar,
    /// A sequence: not a valid form.
    Sequence,
    /// A mapping: its keys and values, in order.
    Map(Vec<(Spanned<String>, Spanned<SecretValue>)>),
}

/// A value under `root_password:`, kept only as far as validation needs.
#[derive(Debug)]
pub(crate) enum SecretValue {
    /// A scalar, as text.
    Text(String),
    /// `null` or nothing.
    Null,
    /// A sequence or mapping.
    Collection,
}

impl<'de> Deserialize<'de> for RawRootPassword {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RootPasswordVisitor;

        impl<'de> Visitor<'de> for RootPasswordVisitor {
            type Value = RawRootPassword;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping with one of hash, env, file")
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(RawRootPassword::Scalar)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(RawRootPassword::Scalar)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(RawRootPassword::Scalar)
            }
            fn visit_i128<E: de::Error>(self, _: i128) -> Result<Self::Value, E> {
                Ok(RawRootPassword::Scalar)
            }
            fn visit_u128<E: de::Error>(self, _: u128) -> Result<Self::Value, E> {
                Ok(RawRootPassword::Scalar)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(RawRootPassword::Scalar)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(RawRootPassword::Scalar)
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
                Ok(RawRootPassword::Scalar)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(RawRootPassword::Map(Vec::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(RawRootPassword::Map(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RawRootPassword::Sequence)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value = map.next_value::<Spanned<SecretValue>>()?;
                    entries.push((key, value));
                }
                Ok(RawRootPassword::Map(entries))
            }
        }

        deserializer.deserialize_any(RootPasswordVisitor)
    }
}

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;

        impl<'de> Visitor<'de> for SecretVisitor {
            type Value = SecretValue;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(SecretValue::Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(SecretValue::Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(SecretValue::Text(v.to_string()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
                Ok(SecretValue::Text(v.to_string()))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
                Ok(SecretValue::Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(SecretValue::Text(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(SecretValue::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(SecretValue::Text(v))
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
                Ok(SecretValue::Collection)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(SecretValue::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(SecretValue::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(SecretValue::Collection)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(SecretValue::Collection)
            }
        }

        deserializer.deserialize_any(SecretVisitor)
    }
}

/// A location as `(line, column)`, `None` when unknown.
pub(crate) fn position(location: &Location) -> (Option<usize>, Option<usize>) {
    let line = usize::try_from(location.line()).ok().filter(|&l| l > 0);
    let column = usize::try_from(location.column())
        .ok()
        .filter(|&c| c > 0 && line.is_some());
    (line, column)
}
