//! The names systemd-nspawn gives the host side of a machine's link,
//! computed the way systemd-nspawn computes them (src/nspawn/nspawn-network.c,
//! `setup_veth` and `shorten_ifname`):
//!
//! - a plain veth link: `ve-` + the machine name; a link joined to a zone or
//!   bridge: `vb-` + the machine name;
//! - a zone's bridge: `vz-` + the zone name;
//! - a name of 16 characters or more (IFNAMSIZ) is shortened: since
//!   systemd 245's naming scheme (`NAMING_NSPAWN_LONG_HASH`), its first 11
//!   characters and 4 characters of URL-safe base64 of the low 24 bits of
//!   SipHash-2-4 of the whole name under a fixed key; before, the first 15
//!   characters. systemd-nspawn also gives the link the whole name as an
//!   alternative name.

/// The longest interface name (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// systemd's `SHORTEN_IFNAME_HASH_KEY`.
const SHORTEN_IFNAME_HASH_KEY: [u8; 16] = [
    0xe1, 0x90, 0xa4, 0x04, 0xa8, 0xef, 0x4b, 0x51, 0x8c, 0xcc, 0xc3, 0x3a, 0x9f, 0x11, 0xfc, 0xa2,
];

/// systemd's `urlsafe_base64char` alphabet.
const URLSAFE_BASE64: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The host side of machine `name`'s plain veth link.
pub fn veth_host(name: &str) -> String {
    shorten(&format!("ve-{name}"))
}

/// The bridge systemd-nspawn makes for zone `zone`.
pub fn zone_bridge(zone: &str) -> String {
    shorten(&format!("vz-{zone}"))
}

/// The name as systemd-nspawn shortens it (see the module documentation).
pub fn shorten(name: &str) -> String {
    if name.len() <= IFNAME_MAX {
        return name.to_owned();
    }
    let h = siphash24(name.as_bytes(), &SHORTEN_IFNAME_HASH_KEY);
    let mut out: Vec<u8> = name.as_bytes()[..IFNAME_MAX - 4].to_vec();
    for shift in [18u32, 12, 6, 0] {
        // The low 6 bits of the shifted value pick the character.
        let index = usize::try_from((h >> shift) & 63).unwrap_or(0);
        out.push(URLSAFE_BASE64[index]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// SipHash-2-4 of `data` under the 128-bit `key` (as systemd's `siphash24`).
pub fn siphash24(data: &[u8], key: &[u8; 16]) -> u64 {
    let k0 = u64::from_le_bytes([
        key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
    ]);
    let k1 = u64::from_le_bytes([
        key[8], key[9], key[10], key[11], key[12], key[13], key[14], key[15],
    ]);
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13);
        v[1] ^= v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16);
        v[3] ^= v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21);
        v[3] ^= v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17);
        v[1] ^= v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let m = u64::from_le_bytes(word);
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    }
    let mut last = [0u8; 8];
    let rest = chunks.remainder();
    last[..rest.len()].copy_from_slice(rest);
    // The length's low byte goes into the top byte.
    last[7] = (data.len() & 0xff) as u8;
    let b = u64::from_le_bytes(last);
    v[3] ^= b;
    round(&mut v);
    round(&mut v);
    v[0] ^= b;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siphash_matches_the_reference_vectors() {
        // The SipHash paper's test vectors: key 00..0f, input 00..(n-1).
        let key: [u8; 16] = std::array::from_fn(|i| i as u8);
        let data: Vec<u8> = (0u8..64).collect();
        assert_eq!(siphash24(&data[..0], &key), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash24(&data[..1], &key), 0x74f8_39c5_93dc_67fd);
        assert_eq!(siphash24(&data[..8], &key), 0x93f5_f579_9a93_2462);
        assert_eq!(siphash24(&data[..15], &key), 0xa129_ca61_49be_45e5);
        assert_eq!(siphash24(&data[..63], &key), 0x958a_324c_eb06_4572);
    }

    #[test]
    fn short_names_are_kept_and_long_ones_hashed_to_15_characters() {
        assert_eq!(veth_host("web"), "ve-web");
        assert_eq!(veth_host("abcdefghijkl"), "ve-abcdefghijkl");
        assert_eq!(zone_bridge("lab"), "vz-lab");
        let long = veth_host("abcdefghijklm");
        assert_eq!(long.len(), 15, "{long}");
        assert!(long.starts_with("ve-abcdefgh"), "{long}");
        assert_ne!(long, veth_host("abcdefghijkln"));
        // What systemd-nspawn 252 (naming scheme v252) named this machine's
        // link on a Debian 12 host: "Network interface name
        // 've-averyverylongmachine' has been changed to 've-averyverhjFR'".
        assert_eq!(veth_host("averyverylongmachine"), "ve-averyverhjFR");
        assert!(
            long[11..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{long}"
        );
    }
}
