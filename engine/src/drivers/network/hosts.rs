//! The block berth owns in a guest's `/etc/hosts` (`network.hosts: true`):
//! the spec's other machines with their addresses and hostnames, between
//! two marker lines. Lines outside the block are never changed.

use std::fmt::Write as _;

use super::address::Peer;

/// The line that opens berth's block.
pub const BEGIN: &str = "# berth: machines of this spec";
/// The line that closes it.
pub const END: &str = "# end berth";
/// The file, inside the root.
pub const PATH: &str = "/etc/hosts";

/// The block for `peers`: one `ADDRESS HOSTNAME [NAME]` line each (the
/// machine name as an alias when the hostname differs).
pub fn block(peers: &[Peer]) -> String {
    let mut out = format!("{BEGIN}\n");
    for peer in peers {
        let _ = write!(out, "{}\t{}", peer.address, peer.hostname);
        if peer.name != peer.hostname {
            let _ = write!(out, " {}", peer.name);
        }
        out.push('\n');
    }
    out.push_str(END);
    out.push('\n');
    out
}

/// The lines of `text` split around berth's block: (before, block, after);
/// the block is None when the file has none (an opening marker without a
/// closing one runs to the end of the file).
fn split(text: &str) -> (Vec<&str>, Option<Vec<&str>>, Vec<&str>) {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.iter().position(|l| l.trim_end() == BEGIN) else {
        return (lines, None, Vec::new());
    };
    let end = lines[start..]
        .iter()
        .position(|l| l.trim_end() == END)
        .map_or(lines.len(), |i| start + i + 1);
    (
        lines[..start].to_vec(),
        Some(lines[start..end].to_vec()),
        lines[end..].to_vec(),
    )
}

/// Whether `text` holds berth's block.
pub fn has_block(text: &str) -> bool {
    split(text).1.is_some()
}

/// `current` (None: no file) with berth's block for `peers` in place of the
/// old one (appended when there was none); `peers` None removes the block.
pub fn with_block(current: Option<&str>, peers: Option<&[Peer]>) -> String {
    let text = current.unwrap_or("");
    let (before, old, after) = split(text);
    let mut out = String::new();
    for line in &before {
        out.push_str(line);
        out.push('\n');
    }
    if let Some(peers) = peers {
        out.push_str(&block(peers));
    } else if old.is_none() {
        // Nothing to remove: the file as it is.
        return text.to_owned();
    }
    for line in &after {
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn peers() -> Vec<Peer> {
        vec![
            Peer {
                name: "b".into(),
                hostname: "b".into(),
                address: Ipv4Addr::new(10, 77, 0, 3),
            },
            Peer {
                name: "c".into(),
                hostname: "cee".into(),
                address: Ipv4Addr::new(10, 77, 0, 4),
            },
        ]
    }

    #[test]
    fn the_block_is_appended_replaced_and_removed_leaving_other_lines() {
        let original = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n";
        let with = with_block(Some(original), Some(&peers()));
        assert_eq!(
            with,
            format!("{original}{BEGIN}\n10.77.0.3\tb\n10.77.0.4\tcee c\n{END}\n")
        );
        assert!(has_block(&with));
        // A line the user added after the block stays where it is.
        let edited = format!("{with}192.0.2.9\tprinter\n");
        let fewer = with_block(Some(&edited), Some(&peers()[..1]));
        assert_eq!(
            fewer,
            format!("{original}{BEGIN}\n10.77.0.3\tb\n{END}\n192.0.2.9\tprinter\n")
        );
        assert_eq!(
            with_block(Some(&fewer), None),
            format!("{original}192.0.2.9\tprinter\n")
        );
        assert_eq!(with_block(Some(original), None), original);
        assert_eq!(with_block(None, Some(&[])), format!("{BEGIN}\n{END}\n"));
    }

    #[test]
    fn a_hand_edit_inside_the_block_is_drift() {
        let with = with_block(None, Some(&peers()));
        let edited = with.replace("10.77.0.3", "10.77.0.9");
        assert_ne!(with_block(Some(&edited), Some(&peers())), edited);
        assert_eq!(with_block(Some(&edited), Some(&peers())), with);
    }
}
