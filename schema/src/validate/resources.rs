//! `resources:`: memory limits, CPU quota and weight, I/O weight, task limit.

use super::{Field, Validator, optional};
use crate::names::{self, quote};
use crate::raw::RawResources;
use crate::spec::{Limit, Resources};

impl Validator<'_, '_> {
    /// `resources:`: each limit parsed; `memory_high` not above `memory_max`.
    pub(super) fn resources(&mut self, raw: &RawResources, field: &str) -> Field<Resources> {
        let before = self.count();
        let memory_max = self.parsed(
            raw.memory_max.as_ref(),
            &format!("{field}.memory_max"),
            |t| names::size("memory_max", t),
        );
        let memory_high = self.parsed(
            raw.memory_high.as_ref(),
            &format!("{field}.memory_high"),
            |t| names::size("memory_high", t),
        );
        let cpu_quota = self.parsed(
            raw.cpu_quota.as_ref(),
            &format!("{field}.cpu_quota"),
            names::cpu_quota,
        );
        let cpu_weight = self.parsed(
            raw.cpu_weight.as_ref(),
            &format!("{field}.cpu_weight"),
            |t| names::weight("cpu_weight", t),
        );
        let io_weight = self.parsed(raw.io_weight.as_ref(), &format!("{field}.io_weight"), |t| {
            names::weight("io_weight", t)
        });
        let tasks_max = self.parsed(
            raw.tasks_max.as_ref(),
            &format!("{field}.tasks_max"),
            names::tasks_max,
        );
        if let (
            Field::Valid(Limit::Value(max)),
            Field::Valid(Limit::Value(high)),
            Some(max_text),
            Some(high_text),
        ) = (&memory_max, &memory_high, &raw.memory_max, &raw.memory_high)
            && high > max
        {
            self.error(
                &high_text.referenced,
                format!("{field}.memory_high"),
                format!(
                    "memory_high {} ({high} bytes) is above memory_max {} ({max} bytes): the throttling threshold must not be above the hard limit",
                    quote(&high_text.value),
                    quote(&max_text.value)
                ),
            );
        }
        if self.count() > before {
            return Field::Invalid;
        }
        let resources = || {
            Some(Resources {
                memory_max: optional(memory_max)?,
                memory_high: optional(memory_high)?,
                cpu_quota: optional(cpu_quota)?,
                cpu_weight: optional(cpu_weight)?,
                tasks_max: optional(tasks_max)?,
                io_weight: optional(io_weight)?,
            })
        };
        resources().map_or(Field::Invalid, Field::Valid)
    }
}
