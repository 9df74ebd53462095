//! `environment:`: variable names and values.

use super::MAX_ENV;
use super::messages::quote;

/// An environment variable name for the machine: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn env_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = name.len() <= MAX_ENV
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "environment variable name {} must match `[A-Za-z_][A-Za-z0-9_]*`",
            quote(name)
        ))
    }
}

/// An environment variable's value: no NUL, line break or other control
/// character but tab. Never echoes the value (it may be a token).
pub(crate) fn env_value(name: &str, value: &str) -> Result<(), String> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(format!(
            "the value of {} contains a control character (NUL, line break, ...), which Environment= cannot hold",
            quote(name)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment() {
        assert!(env_name("LANG").is_ok() && env_name("_x1").is_ok());
        for bad in ["", "1A", "A-B", "A B", "A=B"] {
            assert!(env_name(bad).is_err(), "{bad}");
        }
        assert!(env_value("A", "a\tb c").is_ok());
        for bad in ["a\nb", "a\rb", "a\0b", "\u{1b}"] {
            let msg = env_value("A", bad).expect_err("refused");
            assert!(!msg.contains(bad), "{msg}");
        }
    }
}
