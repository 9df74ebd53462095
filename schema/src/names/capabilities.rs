//! `capabilities:` and `drop_capabilities:`: capability names.

use std::fmt::Write as _;

use super::messages::quote;

/// Longest capability name accepted.
const MAX_CAPABILITY: usize = 64;

/// A capability to grant: `CAP_[A-Z_]+`, or `all`.
pub(crate) fn capability(name: &str) -> Result<(), String> {
    if name == "all" {
        return Ok(());
    }
    capability_name(name, "or `all`")
}

/// A capability to drop: `CAP_[A-Z_]+`.
pub(crate) fn drop_capability(name: &str) -> Result<(), String> {
    if name == "all" {
        return Err(
            "`all` is only allowed in capabilities: list the capabilities to drop".to_owned(),
        );
    }
    capability_name(name, "")
}

/// `CAP_[A-Z_]+`, at most [`MAX_CAPABILITY`] characters, with a hint for a
/// lowercase or unprefixed name.
fn capability_name(name: &str, alternative: &str) -> Result<(), String> {
    let shaped = |n: &str| {
        n.len() <= MAX_CAPABILITY
            && n.strip_prefix("CAP_").is_some_and(|rest| {
                !rest.is_empty() && rest.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            })
    };
    if shaped(name) {
        return Ok(());
    }
    let mut msg = format!(
        "capability {} must be `CAP_` followed by capital letters and `_` (e.g. `CAP_NET_ADMIN`){}",
        quote(name),
        if alternative.is_empty() {
            String::new()
        } else {
            format!(", {alternative}")
        }
    );
    let upper = name.to_ascii_uppercase();
    let guess = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if shaped(&guess) {
        let _ = write!(msg, " (did you mean `{guess}`?)");
    }
    Err(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities() {
        assert!(capability("CAP_NET_ADMIN").is_ok());
        assert!(capability("all").is_ok());
        assert!(drop_capability("CAP_SYS_ADMIN").is_ok());
        assert!(drop_capability("all").is_err());
        for bad in [
            "cap_net_admin",
            "-CAP_X",
            "CAP_",
            "CAP_NET-ADMIN",
            "NET_ADMIN",
            "CAP_X1",
        ] {
            assert!(capability(bad).is_err(), "{bad}");
        }
        let msg = capability("net_admin").expect_err("refused");
        assert!(msg.contains("did you mean `CAP_NET_ADMIN`?"), "{msg}");
    }
}
