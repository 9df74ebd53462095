//! `vars:`: template variable names.

use super::messages::quote;

/// Longest variable name accepted.
const MAX_VAR: usize = 255;

/// Names templates see besides the variables: a variable cannot take them.
pub(crate) const RESERVED_VARS: &[&str] = &["vars", "machine"];

/// A template variable name: `[A-Za-z_][A-Za-z0-9_]*` (a template names it
/// as is: `{{ domain }}`), at most 255 characters, not `vars` or `machine`.
pub(crate) fn var_name(name: &str) -> Result<(), String> {
    let q = quote(name);
    let mut chars = name.chars();
    let ok = name.len() <= MAX_VAR
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(format!(
            "variable name {q} must match `[A-Za-z_][A-Za-z0-9_]*` (at most {MAX_VAR} characters), so templates can name it"
        ));
    }
    if RESERVED_VARS.contains(&name) {
        return Err(format!(
            "variable name {q} is reserved: templates see all variables as `vars` and the machine's facts as `machine`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_names() {
        for ok in ["domain", "_x", "A1", "Machine", "var"] {
            assert!(var_name(ok).is_ok(), "{ok}");
        }
        for (bad, part) in [
            ("", "must match"),
            ("1a", "must match"),
            ("a-b", "must match"),
            ("a.b", "must match"),
            ("a\nb", "`a\\nb`"),
            ("vars", "is reserved"),
            ("machine", "is reserved"),
        ] {
            let msg = var_name(bad).expect_err(bad);
            assert!(msg.contains(part), "{bad:?}: {msg}");
        }
        assert!(var_name(&"x".repeat(256)).is_err());
    }
}
