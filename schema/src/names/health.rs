//! `health:`: the timeout (a duration) and the command's arguments.

use std::time::Duration;

use super::messages::quote;

/// The longest health check timeout: one day.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// A duration: seconds (`90`), or a whole number with `s`, `m` or `h`
/// (`90s`, `2m`, `1h`); at least one second, at most a day.
pub(crate) fn duration(what: &str, text: &str) -> Result<Duration, String> {
    let q = quote(text);
    let bad = || {
        format!(
            "{what} {q} is not a duration: write seconds, or a whole number with s, m or h (`60s`, `2m`)"
        )
    };
    let (digits, factor) = match text.char_indices().last() {
        Some((i, 's')) => (&text[..i], 1),
        Some((i, 'm')) => (&text[..i], 60),
        Some((i, 'h')) => (&text[..i], 3600),
        _ => (text, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("{what} {q} is longer than a day"))?;
    if secs == 0 {
        return Err(format!("{what} {q} must be at least one second"));
    }
    let duration = Duration::from_secs(secs);
    if duration > MAX_TIMEOUT {
        return Err(format!("{what} {q} is longer than a day"));
    }
    Ok(duration)
}

/// One argument of a health check's command: no NUL (it could not be
/// passed), and the program (the first) not empty.
pub(crate) fn command_arg(first: bool, arg: &str) -> Result<(), String> {
    if arg.contains('\0') {
        return Err(format!(
            "command argument {} contains a NUL character",
            quote(arg)
        ));
    }
    if first && arg.trim().is_empty() {
        return Err("the command's program (its first item) is empty".to_owned());
    }
    if arg.len() > 4096 {
        return Err("a command argument is longer than 4096 bytes".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("timeout", "60"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("timeout", "90s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("timeout", "2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("timeout", "1h"), Ok(Duration::from_secs(3600)));
        assert!(
            duration("timeout", "0s")
                .expect_err("an error")
                .contains("at least one second")
        );
        assert!(
            duration("timeout", "25h")
                .expect_err("an error")
                .contains("longer than a day")
        );
        assert!(
            duration("timeout", "99999999999999999999")
                .expect_err("an error")
                .contains("longer than a day")
        );
        for bad in ["", "s", "1.5s", "-1", "10 s", "1d", "ten"] {
            assert!(
                duration("timeout", bad)
                    .expect_err("an error")
                    .contains("not a duration"),
                "{bad}"
            );
        }
    }

    #[test]
    fn command_args() {
        assert!(command_arg(true, "curl").is_ok());
        assert!(command_arg(false, "").is_ok());
        assert!(command_arg(true, " ").is_err());
        assert!(command_arg(false, "a\0b").is_err());
    }
}
