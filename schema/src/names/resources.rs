//! `resources:`: memory sizes, CPU quota, weights and the task limit.

use std::ops::RangeInclusive;

use super::messages::quote;
use crate::spec::Limit;

/// The CPU quota range, in percent of one CPU.
pub(crate) const CPU_QUOTA: RangeInclusive<u32> = 1..=100_000;

/// The range of `cpu_weight` and `io_weight`.
pub(crate) const WEIGHT: RangeInclusive<u64> = 1..=10_000;

/// Size suffixes and their factors (powers of 1024, as systemd reads them).
const SUFFIXES: &[(char, u64)] = &[
    ('K', 1 << 10),
    ('M', 1 << 20),
    ('G', 1 << 30),
    ('T', 1 << 40),
];

/// Spellings of "no limit" that mean `infinity`.
const INFINITY_ALIASES: &[&str] = &["max", "unlimited", "none", "inf"];

/// Whether `text` is a non-empty run of ASCII digits.
fn digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// ` (did you mean `infinity`?)` for another spelling of "no limit".
fn infinity_hint(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    (lower == "infinity" || INFINITY_ALIASES.contains(&lower.as_str()))
        .then(|| " (did you mean `infinity`?)".to_owned())
}

/// A size in bytes (`memory_max`, `memory_high`; `what` is the key): a whole
/// number, a whole number with `K`, `M`, `G` or `T` (powers of 1024), or
/// `infinity`. Zero is refused: the machine could not run.
pub(crate) fn size(what: &str, text: &str) -> Result<Limit, String> {
    let q = quote(text);
    if text == "infinity" {
        return Ok(Limit::Infinity);
    }
    let shape = |hint: &str| {
        format!(
            "{what} {q} is not a size: write a number of bytes, or a whole number with K, M, G or T (powers of 1024, e.g. `512M`, `2G`), or `infinity`{hint}"
        )
    };
    if let Some(hint) = infinity_hint(text) {
        return Err(shape(&hint));
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if !digits(number) {
        return Err(shape(""));
    }
    let factor = match suffix {
        "" => 1,
        _ => {
            let mut chars = suffix.chars();
            let letter = chars.next().map(|c| c.to_ascii_uppercase());
            let rest = chars.as_str();
            let known = SUFFIXES.iter().find(|(c, _)| Some(*c) == letter);
            match known {
                Some((c, factor)) if rest.is_empty() && suffix.starts_with(*c) => *factor,
                Some((c, _)) if matches!(rest, "" | "B" | "b" | "i" | "iB" | "ib") => {
                    return Err(shape(&format!(" (did you mean `{number}{c}`?)")));
                }
                _ if suffix.starts_with('.') => {
                    return Err(shape(
                        " (sizes are whole numbers: use a smaller unit, e.g. `1536M` for 1.5G)",
                    ));
                }
                _ => return Err(shape("")),
            }
        }
    };
    let value = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("{what} {q} is too large (at most 2^64 - 1 bytes)"))?;
    if value == 0 {
        return Err(format!(
            "{what} {q} would leave the machine no memory: give a positive size or `infinity`"
        ));
    }
    Ok(Limit::Value(value))
}

/// `cpu_quota`: a whole percentage of one CPU with `%` (`150%` is 1.5
/// CPUs), in [`CPU_QUOTA`].
pub(crate) fn cpu_quota(text: &str) -> Result<u32, String> {
    let q = quote(text);
    let range = format!("{}%–{}%", CPU_QUOTA.start(), CPU_QUOTA.end());
    let Some(number) = text.strip_suffix('%') else {
        return Err(if digits(text) {
            format!(
                "cpu_quota {q} must be a percentage of one CPU, with `%`: write `{text}%` ({range}; `100%` is one whole CPU)"
            )
        } else {
            format!(
                "cpu_quota {q} must be a whole percentage of one CPU, e.g. `150%` for 1.5 CPUs ({range})"
            )
        });
    };
    if !digits(number) {
        return Err(format!(
            "cpu_quota {q} must be a whole percentage of one CPU, e.g. `150%` for 1.5 CPUs ({range})"
        ));
    }
    match number.parse::<u32>() {
        Ok(n) if CPU_QUOTA.contains(&n) => Ok(n),
        _ => Err(format!("cpu_quota {q} is out of range ({range})")),
    }
}

/// `cpu_weight`, `io_weight` (`what` is the key): a whole number in [`WEIGHT`].
pub(crate) fn weight(what: &str, text: &str) -> Result<u64, String> {
    let q = quote(text);
    let range = format!("{}–{}, default 100", WEIGHT.start(), WEIGHT.end());
    if !digits(text) {
        return Err(format!("{what} {q} must be a whole number ({range})"));
    }
    match text.parse::<u64>() {
        Ok(n) if WEIGHT.contains(&n) => Ok(n),
        _ => Err(format!("{what} {q} is out of range ({range})")),
    }
}

/// `tasks_max`: a positive whole number of tasks, or `infinity`.
pub(crate) fn tasks_max(text: &str) -> Result<Limit, String> {
    let q = quote(text);
    if text == "infinity" {
        return Ok(Limit::Infinity);
    }
    if !digits(text) {
        let hint = infinity_hint(text).unwrap_or_default();
        return Err(format!(
            "tasks_max {q} must be a whole number of tasks or `infinity`{hint}"
        ));
    }
    match text.parse::<u64>() {
        Ok(0) => Err(format!(
            "tasks_max {q} would let the machine start no process: give a positive number or `infinity`"
        )),
        Ok(n) => Ok(Limit::Value(n)),
        Err(_) => Err(format!("tasks_max {q} is too large")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (text, bytes) in [
            ("1", 1),
            ("1073741824", 1 << 30),
            ("512K", 512 << 10),
            ("512M", 512 << 20),
            ("1G", 1 << 30),
            ("2T", 2 << 40),
            ("0001K", 1024),
        ] {
            assert_eq!(size("memory_max", text), Ok(Limit::Value(bytes)), "{text}");
        }
        assert_eq!(size("memory_max", "infinity"), Ok(Limit::Infinity));
        for (bad, part) in [
            ("", "is not a size"),
            ("0", "no memory"),
            ("0M", "no memory"),
            ("-1", "is not a size"),
            ("512m", "did you mean `512M`?"),
            ("512MB", "did you mean `512M`?"),
            ("1GiB", "did you mean `1G`?"),
            ("1Gi", "did you mean `1G`?"),
            ("1P", "is not a size"),
            ("1.5G", "whole numbers"),
            ("G", "is not a size"),
            ("1 G", "is not a size"),
            ("1KK", "is not a size"),
            ("max", "did you mean `infinity`?"),
            ("Infinity", "did you mean `infinity`?"),
            ("18446744073709551616", "too large"),
            ("16777216T", "too large"),
            ("1e9", "is not a size"),
            ("0x10", "is not a size"),
            ("1é", "is not a size"),
        ] {
            let msg = size("memory_max", bad).expect_err(bad);
            assert!(msg.contains(part), "{bad}: {msg}");
            assert!(msg.starts_with("memory_max"), "{bad}: {msg}");
        }
        assert_eq!(
            size("memory_max", "16777215T"),
            Ok(Limit::Value(16_777_215 << 40))
        );
    }

    #[test]
    fn quotas_and_weights() {
        assert_eq!(cpu_quota("150%"), Ok(150));
        assert_eq!(cpu_quota("1%"), Ok(1));
        assert_eq!(cpu_quota("100000%"), Ok(100_000));
        for (bad, part) in [
            ("150", "write `150%`"),
            ("0%", "out of range"),
            ("100001%", "out of range"),
            ("99999999999%", "out of range"),
            ("12.5%", "whole percentage"),
            ("%", "whole percentage"),
            ("-5%", "whole percentage"),
            ("1.5", "whole percentage"),
            ("lots", "whole percentage"),
        ] {
            let msg = cpu_quota(bad).expect_err(bad);
            assert!(msg.contains(part), "{bad}: {msg}");
        }
        assert_eq!(weight("cpu_weight", "1"), Ok(1));
        assert_eq!(weight("io_weight", "10000"), Ok(10_000));
        for bad in [
            "0",
            "10001",
            "-1",
            "1.5",
            "",
            "idle",
            "99999999999999999999999",
        ] {
            let msg = weight("io_weight", bad).expect_err(bad);
            assert!(msg.starts_with("io_weight"), "{bad}: {msg}");
        }
    }

    #[test]
    fn task_limits() {
        assert_eq!(tasks_max("512"), Ok(Limit::Value(512)));
        assert_eq!(tasks_max("infinity"), Ok(Limit::Infinity));
        assert!(tasks_max("0").expect_err("zero").contains("no process"));
        assert!(tasks_max("max").expect_err("max").contains("`infinity`?"));
        for bad in ["", "-1", "1K", "1.5", "99999999999999999999999"] {
            assert!(tasks_max(bad).is_err(), "{bad}");
        }
    }
}
