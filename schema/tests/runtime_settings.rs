//! The machine's addressing and runtime settings: `network.address`,
//! `pool`, `gateway`, `nat`, `hosts`; `resources`; `devices`;
//! `nspawn_extra`. Their valid forms, every error (with its field path,
//! line and column), their defaults merging, and what the JSON Schema
//! accepts and refuses of them.

mod common;

use common::{errors, load, one_error, only, web};

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use berth_schema::{
    Address, DEFAULT_POOL, Device, Diagnostic, Ipv4Cidr, Limit, Network, NetworkMode, NspawnExtra,
    Resources, load_str,
};

/// `network:` as a block under `web`, one key per line from line 6
/// (values start at column 7 + the key's length + 2).
fn network(lines: &[&str]) -> String {
    let body: String = lines.iter().map(|l| format!("      {l}\n")).collect();
    web(&format!("    network:\n{body}"))
}

fn cidr(a: [u8; 4], prefix: u8) -> Ipv4Cidr {
    Ipv4Cidr {
        address: Ipv4Addr::from(a),
        prefix,
    }
}

/// Asserts `d` is at `field` (under `machines.web.`), `line:column`, with
/// `part` in its message.
fn assert_at(d: &Diagnostic, field: &str, line: usize, column: usize, part: &str) {
    assert_eq!(
        d.field.as_deref(),
        Some(&*format!("machines.web.{field}")),
        "{d}"
    );
    assert_eq!((d.line, d.column), (Some(line), Some(column)), "{d}");
    assert!(d.message.contains(part), "expected {part:?} in:\n{d}");
    assert!(
        d.to_string().starts_with(&format!(
            "spec.yaml:{line}:{column}: machines.web.{field}: "
        )),
        "{d}"
    );
}

// ---------------------------------------------------------------- network

#[test]
fn static_and_automatic_addresses() {
    let m = only(&network(&["address: 10.0.0.5/24"]));
    assert_eq!(
        m.network,
        Network {
            address: Some(Address::Static(cidr([10, 0, 0, 5], 24))),
            ..Network::default()
        }
    );
    // No mode written: left to the launcher.
    assert_eq!(m.network.mode, None);

    let m = only(&network(&[
        "mode: veth",
        "address: 192.168.50.2/30",
        "gateway: 192.168.50.1",
        "nat: true",
        "hosts: true",
    ]));
    assert_eq!(
        m.network,
        Network {
            mode: Some(NetworkMode::Veth),
            address: Some(Address::Static(cidr([192, 168, 50, 2], 30))),
            gateway: Some(Ipv4Addr::new(192, 168, 50, 1)),
            nat: true,
            hosts: true,
            ..Network::default()
        }
    );

    let m = only(&network(&[
        "zone: web",
        "address: auto",
        "pool: 10.99.0.0/24",
        "nat: true",
    ]));
    assert_eq!(m.network.mode, Some(NetworkMode::Veth));
    assert_eq!(m.network.address, Some(Address::Auto));
    assert_eq!(m.network.pool, Some(cidr([10, 99, 0, 0], 24)));
    assert!(m.network.nat && !m.network.hosts);

    // `auto` without a pool: the engine uses DEFAULT_POOL.
    let m = only(&network(&["bridge: br0", "address: auto"]));
    assert_eq!(m.network.pool, None);
    assert_eq!(DEFAULT_POOL, cidr([10, 231, 0, 0], 16));

    // nat: false and hosts need nothing; hosts works with any mode.
    let m = only(&network(&["mode: host", "nat: false", "hosts: true"]));
    assert_eq!(m.network.mode, Some(NetworkMode::Host));
    assert!(!m.network.nat && m.network.hosts);
    let m = only(&web("    network: {hosts: false}\n"));
    assert_eq!(m.network, Network::default());
}

#[test]
fn a_zone_or_bridge_gives_veth_and_no_mode_gives_none() {
    assert_eq!(
        only(&web("    network: {zone: z}\n")).network.mode,
        Some(NetworkMode::Veth)
    );
    assert_eq!(
        only(&web("    network: {bridge: br0}\n")).network.mode,
        Some(NetworkMode::Veth)
    );
    assert_eq!(only(&web("    network: {}\n")).network.mode, None);
    assert_eq!(only(&web("")).network.mode, None);
    assert_eq!(
        only(&web("    network: {mode: private}\n")).network.mode,
        Some(NetworkMode::Private)
    );
}

#[test]
fn address_errors() {
    let cases = [
        ("10.0.0.0/24", "is the network's own address"),
        ("10.0.0.255/24", "is the network's broadcast address"),
        ("10.0.0.5", "has no prefix length"),
        ("10.0.0.5/31", "the prefix must be 8–30"),
        ("10.0.0.5/7", "the prefix must be 8–30"),
        ("10.0.0.5/33", "no valid prefix length"),
        ("10.0.0.256/24", "more than 255"),
        ("10.0.0.05/24", "without leading zeros"),
        ("127.0.0.2/8", "loopback"),
        ("224.1.1.1/24", "multicast"),
        ("fd00::2/64", "IPv6"),
        ("AUTO", "lowercase"),
        ("dhcp", "is not an IPv4 address"),
    ];
    for (value, part) in cases {
        let d = one_error(&network(&["mode: veth", &format!("address: '{value}'")]));
        assert_at(&d, "network.address", 7, 16, part);
        assert!(d.message.starts_with("network.address `"), "{d}");
    }
    let d = one_error(&network(&["address: 10.0.0.0/24"]));
    assert_eq!(
        d.to_string().lines().next(),
        Some(
            "spec.yaml:6:16: machines.web.network.address: network.address `10.0.0.0/24` is the network's own address (its host part is all zeros): use an address inside the network, such as `10.0.0.2/24`"
        )
    );
}

#[test]
fn address_gateway_and_nat_need_a_veth_link_when_the_mode_is_written() {
    for mode in ["host", "private"] {
        for (line, key, col) in [
            ("address: 10.0.0.5/24", "address", 16),
            ("address: auto", "address", 16),
            ("nat: true", "nat", 12),
        ] {
            let text = network(&[&format!("mode: {mode}"), line]);
            let err = errors(&text);
            let d = err
                .diagnostics
                .iter()
                .find(|d| d.field.as_deref() == Some(&*format!("machines.web.network.{key}")))
                .unwrap_or_else(|| panic!("{err}"));
            assert_at(
                d,
                &format!("network.{key}"),
                7,
                col,
                &format!(
                    "network.{key} needs a private network with a veth link, but network.mode is `{mode}`: set `mode: veth` or a zone"
                ),
            );
            // One error per line: `nat` is not also told it lacks an address.
            assert_eq!(err.diagnostics.len(), 1, "{err}");
        }
        let err = errors(&network(&[
            &format!("mode: {mode}"),
            "address: 10.0.0.5/24",
            "gateway: 10.0.0.1",
        ]));
        let fields: Vec<_> = err
            .diagnostics
            .iter()
            .filter_map(|d| d.field.as_deref())
            .collect();
        assert_eq!(
            fields,
            [
                "machines.web.network.address",
                "machines.web.network.gateway"
            ],
            "{err}"
        );
    }
    // Ports keep their own message.
    let d = one_error(&network(&["mode: private", "ports: ['80:80']"]));
    assert_at(
        &d,
        "network.ports",
        7,
        14,
        "port forwards need a private network with a veth link: set network.mode: veth",
    );
    // Left out, veth, a zone or a bridge: accepted.
    for link in ["", "mode: veth", "zone: z", "bridge: br0"] {
        let mut lines = vec![
            "address: 10.0.0.5/24",
            "gateway: 10.0.0.1",
            "nat: true",
            "ports: ['80:80']",
        ];
        if !link.is_empty() {
            lines.push(link);
        }
        let m = only(&network(&lines));
        assert!(m.network.nat, "{link}");
    }
}

#[test]
fn pool_only_with_automatic_address() {
    let d = one_error(&network(&["pool: 10.50.0.0/16"]));
    assert_at(
        &d,
        "network.pool",
        6,
        13,
        "network.pool is only used with `address: auto`, but network.address is not set",
    );
    let d = one_error(&network(&["address: 10.0.0.5/24", "pool: 10.50.0.0/16"]));
    assert_at(
        &d,
        "network.pool",
        7,
        13,
        "but network.address is the static `10.0.0.5/24`",
    );
    for (value, part) in [
        (
            "10.50.0.1/16",
            "has host bits set: a pool is a network, write `10.50.0.0/16`",
        ),
        ("10.50.0.0/29", "the prefix must be 8–28"),
        ("10.50.0.0/4", "the prefix must be 8–28"),
        ("10.50.0.0", "has no prefix length"),
        ("auto", "is not an IPv4 address"),
        ("127.0.0.0/8", "loopback"),
    ] {
        let d = one_error(&network(&["address: auto", &format!("pool: '{value}'")]));
        assert_at(&d, "network.pool", 7, 13, part);
    }
    // An invalid address is reported alone: the pool is not judged by it.
    let d = one_error(&network(&["address: bad", "pool: 10.50.0.0/16"]));
    assert_eq!(d.field.as_deref(), Some("machines.web.network.address"));
}

#[test]
fn gateway_must_fit_a_static_address() {
    for (gateway, part) in [
        ("10.0.1.1", "is not in the machine's network 10.0.0.0/24"),
        ("10.0.0.5", "is the machine's own address"),
        ("10.0.0.0", "is the network's own address"),
        ("10.0.0.255", "is the broadcast address of 10.0.0.0/24"),
        ("10.0.0.1/24", "without prefix length: write `10.0.0.1`"),
        ("10.0.0", "is not an IPv4 address"),
        ("0.0.0.0", "0.0.0.0/8"),
    ] {
        let d = one_error(&network(&[
            "address: 10.0.0.5/24",
            &format!("gateway: '{gateway}'"),
        ]));
        assert_at(&d, "network.gateway", 7, 16, part);
    }
    let d = one_error(&network(&["address: auto", "gateway: 10.0.0.1"]));
    assert_at(
        &d,
        "network.gateway",
        7,
        16,
        "network.gateway needs a static network.address: with `address: auto`",
    );
    let d = one_error(&network(&["gateway: 10.0.0.1"]));
    assert_at(
        &d,
        "network.gateway",
        6,
        16,
        "network.gateway needs a static network.address",
    );
}

#[test]
fn nat_needs_an_address_and_both_flags_are_booleans() {
    let d = one_error(&network(&["nat: true"]));
    assert_at(
        &d,
        "network.nat",
        6,
        12,
        "network.nat needs network.address (a static address or `auto`)",
    );
    for (key, col) in [("nat", 12), ("hosts", 14)] {
        let d = one_error(&network(&["address: auto", &format!("{key}: 'yes'")]));
        assert_at(
            &d,
            &format!("network.{key}"),
            7,
            col,
            &format!("`{key}` must be a boolean, `true` or `false`, not the string `yes`"),
        );
    }
    let d = one_error(&web("    network: {adress: auto}\n"));
    assert_eq!(d.field.as_deref(), Some("machines.web.network.adress"));
    assert!(d.message.contains("did you mean `address`?"), "{d}");
}

#[test]
fn a_machine_network_replaces_the_default_one_whole() {
    let text = "defaults:
  network: {address: auto, pool: 10.7.0.0/16, nat: true, hosts: true}
machines:
  a: {distro: arch}
  b:
    distro: arch
    network: {address: 10.1.0.5/16}
";
    let spec = load(text);
    let a = &spec.machines["a"].network;
    assert_eq!(a.address, Some(Address::Auto));
    assert_eq!(a.pool, Some(cidr([10, 7, 0, 0], 16)));
    assert!(a.nat && a.hosts);
    assert_eq!(
        spec.machines["b"].network,
        Network {
            address: Some(Address::Static(cidr([10, 1, 0, 5], 16))),
            ..Network::default()
        }
    );
    // An error in the defaults' network is reported once, there.
    let err = errors(
        "defaults:\n  network: {nat: true}\nmachines:\n  a: {distro: arch}\n  b: {distro: arch}\n",
    );
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    assert_eq!(
        err.diagnostics[0].field.as_deref(),
        Some("defaults.network.nat")
    );
}

// ---------------------------------------------------------------- resources

#[test]
fn resources_load() {
    let m = only(&web(
        "    resources:\n      memory_max: 2G\n      memory_high: 1536M\n      cpu_quota: 150%\n      cpu_weight: 200\n      io_weight: 50\n      tasks_max: 4096\n",
    ));
    assert_eq!(
        m.resources,
        Resources {
            memory_max: Some(Limit::Value(2 << 30)),
            memory_high: Some(Limit::Value(1536 << 20)),
            cpu_quota: Some(150),
            cpu_weight: Some(200),
            tasks_max: Some(Limit::Value(4096)),
            io_weight: Some(50),
        }
    );
    let m = only(&web(
        "    resources: {memory_max: 1073741824, memory_high: infinity, tasks_max: infinity, cpu_quota: '100000%'}\n",
    ));
    assert_eq!(m.resources.memory_max, Some(Limit::Value(1 << 30)));
    assert_eq!(m.resources.memory_high, Some(Limit::Infinity));
    assert_eq!(m.resources.tasks_max, Some(Limit::Infinity));
    assert_eq!(m.resources.cpu_quota, Some(100_000));
    assert!(only(&web("")).resources.is_empty());
    assert!(only(&web("    resources: {}\n")).resources.is_empty());
    assert!(only(&web("    resources:\n")).resources.is_empty());
    // memory_high equal to memory_max, or either one unlimited: fine.
    for pair in [
        "memory_max: 1G, memory_high: 1024M",
        "memory_max: infinity, memory_high: 1G",
        "memory_max: 1G, memory_high: infinity",
    ] {
        only(&web(&format!("    resources: {{{pair}}}\n")));
    }
}

#[test]
fn resource_errors() {
    // (key, value, message part); each written on line 6 at column 9 + key.
    let cases = [
        ("memory_max", "512MB", "did you mean `512M`?"),
        ("memory_max", "512m", "did you mean `512M`?"),
        ("memory_max", "1.5G", "whole numbers"),
        ("memory_max", "0", "no memory"),
        ("memory_max", "-1", "is not a size"),
        ("memory_max", "max", "did you mean `infinity`?"),
        ("memory_max", "99999999999999999999", "too large"),
        ("memory_high", "lots", "memory_high `lots` is not a size"),
        ("cpu_quota", "150", "write `150%`"),
        ("cpu_quota", "0%", "out of range (1%–100000%)"),
        ("cpu_quota", "100001%", "out of range"),
        ("cpu_quota", "1.5%", "whole percentage"),
        (
            "cpu_weight",
            "0",
            "cpu_weight `0` is out of range (1–10000, default 100)",
        ),
        ("cpu_weight", "10001", "out of range"),
        ("cpu_weight", "1.5", "must be a whole number"),
        (
            "io_weight",
            "idle",
            "io_weight `idle` must be a whole number",
        ),
        ("tasks_max", "0", "no process"),
        ("tasks_max", "1K", "whole number of tasks"),
        ("tasks_max", "unlimited", "did you mean `infinity`?"),
    ];
    for (key, value, part) in cases {
        let d = one_error(&web(&format!("    resources:\n      {key}: '{value}'\n")));
        assert_at(&d, &format!("resources.{key}"), 6, 9 + key.len(), part);
    }
    let d = one_error(&web(
        "    resources:\n      memory_max: 1G\n      memory_high: 2G\n",
    ));
    assert_at(
        &d,
        "resources.memory_high",
        7,
        20,
        "memory_high `2G` (2147483648 bytes) is above memory_max `1G` (1073741824 bytes)",
    );
    let d = one_error(&web("    resources: {memory_mx: 1G}\n"));
    assert_eq!(d.field.as_deref(), Some("machines.web.resources.memory_mx"));
    assert!(d.message.contains("did you mean `memory_max`?"), "{d}");
    assert_eq!(d.line, Some(5));
    for (extra, field) in [
        ("    resources: 5\n", "resources"),
        ("    resources: {memory_max: [1]}\n", "resources.memory_max"),
    ] {
        let d = one_error(&web(extra));
        assert_eq!(
            d.field.as_deref(),
            Some(&*format!("machines.web.{field}")),
            "{d}"
        );
        assert_eq!(d.line, Some(5), "{d}");
    }
}

#[test]
fn resources_merge_from_defaults_and_a_machine_replaces_them_whole() {
    let text = "defaults:
  resources: {memory_max: 1G, cpu_weight: 50}
machines:
  a: {distro: arch}
  b:
    distro: arch
    resources: {tasks_max: 100}
  c:
    distro: arch
    resources: {}
";
    let spec = load(text);
    assert_eq!(
        spec.machines["a"].resources,
        Resources {
            memory_max: Some(Limit::Value(1 << 30)),
            cpu_weight: Some(50),
            ..Resources::default()
        }
    );
    assert_eq!(
        spec.machines["b"].resources,
        Resources {
            tasks_max: Some(Limit::Value(100)),
            ..Resources::default()
        }
    );
    assert!(spec.machines["c"].resources.is_empty());
    // The defaults' limits are checked once, there.
    let err = errors(
        "defaults:\n  resources: {cpu_quota: 50}\nmachines:\n  a: {distro: arch}\n  b: {distro: arch}\n",
    );
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    assert_eq!(
        err.diagnostics[0].field.as_deref(),
        Some("defaults.resources.cpu_quota")
    );
    assert_eq!(
        (err.diagnostics[0].line, err.diagnostics[0].column),
        (Some(2), Some(26))
    );
}

// ---------------------------------------------------------------- devices

fn device(path: &str, access: &str) -> Device {
    Device {
        path: PathBuf::from(path),
        access: access.to_owned(),
    }
}

#[test]
fn devices_load_normalised() {
    let m = only(&web(
        "    devices:\n      - path: /dev/fuse\n      - {path: /dev/net/./tun, access: wr}\n      - {path: /dev/kvm, access: mwr}\n      - {path: /dev/dri/card0, access: r}\n",
    ));
    assert_eq!(
        m.devices,
        [
            device("/dev/fuse", "rwm"),
            device("/dev/net/tun", "rw"),
            device("/dev/kvm", "rwm"),
            device("/dev/dri/card0", "r"),
        ]
    );
    assert!(only(&web("    devices: []\n")).devices.is_empty());
    assert!(only(&web("")).devices.is_empty());
}

#[test]
fn device_errors() {
    // (the item, field under devices[0], column, message part); line 6.
    let cases = [
        ("{path: dev/fuse}", ".path", 16, "must be absolute"),
        ("{path: /etc/passwd}", ".path", 16, "is not under `/dev/`"),
        ("{path: /dev}", ".path", 16, "is `/dev` itself"),
        ("{path: /dev/../etc/shadow}", ".path", 16, "`..` component"),
        ("{path: /dev//fuse}", ".path", 16, "empty component"),
        ("{path: /dev/fuse/}", ".path", 16, "empty component"),
        ("{path: '/dev/a:b'}", ".path", 16, "contains `:`"),
        ("{path: '/dev/a b'}", ".path", 16, "whitespace"),
        ("{path: \"/dev/a\\nb\"}", ".path", 16, "control character"),
        (
            "{path: /dev/fuse, access: rx}",
            ".access",
            35,
            "contains `x`",
        ),
        (
            "{path: /dev/fuse, access: rwr}",
            ".access",
            35,
            "gives `r` twice",
        ),
        (
            "{path: /dev/fuse, access: ''}",
            ".access",
            35,
            "device access is empty",
        ),
        ("{access: rw}", "", 9, "a device needs `path:`"),
    ];
    for (item, field, column, part) in cases {
        let d = one_error(&web(&format!("    devices:\n      - {item}\n")));
        assert_at(&d, &format!("devices[0]{field}"), 6, column, part);
    }
    let d = one_error(&web(
        "    devices:\n      - {path: /dev/fuse}\n      - {path: /dev/kvm}\n      - {path: /dev/./fuse, access: r}\n",
    ));
    assert_at(
        &d,
        "devices[2].path",
        8,
        16,
        "device `/dev/fuse` is already listed as devices[0]",
    );
    let d = one_error(&web("    devices: [{path: /dev/fuse, acess: rw}]\n"));
    assert_eq!(d.field.as_deref(), Some("machines.web.devices[0].acess"));
    assert!(d.message.contains("did you mean `access`?"), "{d}");
    for (extra, field) in [
        ("    devices: /dev/fuse\n", "devices"),
        ("    devices: [/dev/fuse]\n", "devices[0]"),
    ] {
        let d = one_error(&web(extra));
        assert_eq!(
            d.field.as_deref(),
            Some(&*format!("machines.web.{field}")),
            "{d}"
        );
    }
}

#[test]
fn devices_merge_from_defaults_whole() {
    let text = "defaults:
  devices: [{path: /dev/fuse}]
machines:
  a: {distro: arch}
  b:
    distro: arch
    devices: [{path: /dev/kvm, access: rw}]
  c:
    distro: arch
    devices: []
";
    let spec = load(text);
    assert_eq!(spec.machines["a"].devices, [device("/dev/fuse", "rwm")]);
    assert_eq!(spec.machines["b"].devices, [device("/dev/kvm", "rw")]);
    assert!(spec.machines["c"].devices.is_empty());
}

// ---------------------------------------------------------------- nspawn_extra

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn nspawn_extra_loads_in_order_with_lists_expanded() {
    let m = only(&web(r#"    nspawn_extra:
      Exec:
        LimitNOFILE: 65536
        NoNewPrivileges: true
        Parameters: ""
        SystemCallFilter: ["@system-service", "~@mount"]
        Ephemeral: false
        OOMScoreAdjust: -500
      Files:
        BindReadOnly: [/etc/ssl, /etc/ca-certificates]
        Volatile: state
      Network:
        VirtualEthernetExtra: ve-web:host0
"#));
    assert_eq!(
        m.nspawn_extra,
        NspawnExtra {
            exec: pairs(&[
                ("LimitNOFILE", "65536"),
                ("NoNewPrivileges", "yes"),
                ("Parameters", ""),
                ("SystemCallFilter", "@system-service"),
                ("SystemCallFilter", "~@mount"),
                ("Ephemeral", "no"),
                ("OOMScoreAdjust", "-500"),
            ]),
            files: pairs(&[
                ("BindReadOnly", "/etc/ssl"),
                ("BindReadOnly", "/etc/ca-certificates"),
                ("Volatile", "state"),
            ]),
            network: pairs(&[("VirtualEthernetExtra", "ve-web:host0")]),
        }
    );
    // A quoted "yes" stays the text it is; a YAML boolean becomes yes/no.
    let m = only(&web(
        "    nspawn_extra: {Exec: {Hostname: 'true', Boot: yes}}\n",
    ));
    assert_eq!(
        m.nspawn_extra.exec,
        pairs(&[("Hostname", "true"), ("Boot", "yes")])
    );
    assert!(only(&web("    nspawn_extra: {}\n")).nspawn_extra.is_empty());
    assert!(
        only(&web("    nspawn_extra: {Exec: ~, Files: {}}\n"))
            .nspawn_extra
            .is_empty()
    );
}

#[test]
fn nspawn_extra_keys_are_systemds() {
    let extra = |section: &str, key: &str| {
        web(&format!(
            "    nspawn_extra:\n      {section}:\n        {key}: x\n"
        ))
    };
    let d = one_error(&extra("Exec", "Foo"));
    assert_eq!(
        d.to_string().lines().next(),
        Some(
            "spec.yaml:7:9: machines.web.nspawn_extra.Exec.Foo: systemd.nspawn(5) has no key `Foo` in [Exec]"
        )
    );
    for (section, key, part) in [
        (
            "Exec",
            "Bind",
            "has no key `Bind` in [Exec]: it belongs in [Files]",
        ),
        ("Network", "Boot", "it belongs in [Exec]"),
        ("Files", "Zone", "it belongs in [Network]"),
        (
            "Exec",
            "boot",
            "has no key `boot` in [Exec] (did you mean `Boot`?)",
        ),
        ("Exec", "Hostnme", "(did you mean `Hostname`?)"),
        ("Exec", "LIMITNOFILE", "(did you mean `LimitNOFILE`?)"),
        (
            "Exec",
            "bindreadonly",
            "(did you mean `BindReadOnly`? it belongs in [Files])",
        ),
        ("Files", "Private", "it belongs in [Network]"),
    ] {
        let d = one_error(&extra(section, key));
        assert_at(&d, &format!("nspawn_extra.{section}.{key}"), 7, 9, part);
    }
    // Sections: exact case, a suggestion for a near miss.
    for (section, part) in [
        (
            "exec",
            "unknown section `exec`: systemd.nspawn(5) sections here are `Exec`, `Files` or `Network` (did you mean `Exec`?)",
        ),
        ("FILES", "(did you mean `Files`?)"),
        ("Netwrok", "(did you mean `Network`?)"),
        ("Service", "unknown section `Service`"),
        (
            "Boot",
            "`Boot` is a key of [Exec], not a section: write it under `Exec:`",
        ),
    ] {
        let d = one_error(&web(&format!("    nspawn_extra:\n      {section}: {{}}\n")));
        assert_at(&d, &format!("nspawn_extra.{section}"), 6, 7, part);
    }
}

#[test]
fn nspawn_extra_values_fit_a_line() {
    // (the value, field suffix, line, column, message part)
    let cases = [
        ("\"a\\nb\"", "", 7, 22, "contains a control character"),
        ("\"a\\tb\"", "", 7, 22, "contains a control character"),
        ("~", "", 7, 22, "`Environment` has no value"),
        ("", "", 7, 20, "`Environment` has no value"),
        ("{A: b}", "", 7, 22, "not a mapping"),
        ("[]", "", 7, 22, "is given an empty list"),
        ("[a, [b]]", "[1]", 7, 26, "a list inside a list"),
        ("[a, \"b\\rc\"]", "[1]", 7, 26, "control character"),
        ("[a, ~]", "[1]", 7, 26, "has no value"),
    ];
    for (value, suffix, line, column, part) in cases {
        let text = web(&format!(
            "    nspawn_extra:\n      Exec:\n        Environment: {value}\n"
        ));
        let d = one_error(&text);
        assert_at(
            &d,
            &format!("nspawn_extra.Exec.Environment{suffix}"),
            line,
            column,
            part,
        );
    }
    // The message never echoes the value (Environment= may carry a token),
    // as for `environment:`; the snippet shows the source line as written.
    let err = errors(&web(
        "    nspawn_extra: {Exec: {Environment: \"TOKEN=s3cr3t\\n\"}}\n",
    ));
    assert!(!err.diagnostics[0].message.contains("s3cr3t"), "{err}");
    // Wrong shapes name the field.
    for (extra, field) in [
        ("    nspawn_extra: [Exec]\n", "nspawn_extra"),
        ("    nspawn_extra: {Exec: [Boot]}\n", "nspawn_extra.Exec"),
    ] {
        let d = one_error(&web(extra));
        assert_eq!(
            d.field.as_deref(),
            Some(&*format!("machines.web.{field}")),
            "{d}"
        );
    }
}

#[test]
fn nspawn_extra_merges_from_defaults_whole() {
    let text = "defaults:
  nspawn_extra: {Exec: {LimitNOFILE: 1024}, Files: {Volatile: overlay}}
machines:
  a: {distro: arch}
  b:
    distro: arch
    nspawn_extra: {Exec: {Timezone: off}}
";
    let spec = load(text);
    assert_eq!(
        spec.machines["a"].nspawn_extra,
        NspawnExtra {
            exec: pairs(&[("LimitNOFILE", "1024")]),
            files: pairs(&[("Volatile", "overlay")]),
            network: Vec::new(),
        }
    );
    // `off` is a YAML 1.1 boolean: written `no`, which Timezone= takes too.
    assert_eq!(
        spec.machines["b"].nspawn_extra,
        NspawnExtra {
            exec: pairs(&[("Timezone", "no")]),
            ..NspawnExtra::default()
        }
    );
}

// ---------------------------------------------------------------- all together

#[test]
fn nothing_panics_on_odd_values() {
    let values = [
        "",
        "~",
        "0",
        "-1",
        "1.5",
        "1e400",
        ".nan",
        "-.inf",
        "0x7fffffffffffffffffff",
        "true",
        "'yes'",
        "[]",
        "[[]]",
        "{}",
        "{a: {b: c}}",
        "'\\u0000'",
        "\"\\u0000\"",
        "\"\\u202e\"",
        "99999999999999999999999999999999999999999",
        "/",
        "//",
        "'%'",
        "'/dev/'",
        "'/32'",
        "'1.2.3.4/'",
        "'...'",
        "'1..2.3/4'",
        "'1.2.3.4/99999999999999'",
        "'é'",
        "&a x",
        "*nope",
    ];
    let templates = [
        "    network: {address: V}\n",
        "    network: {pool: V, address: auto}\n",
        "    network: {gateway: V, address: 10.0.0.5/24}\n",
        "    network: {nat: V, hosts: V}\n",
        "    resources: {memory_max: V, memory_high: V, cpu_quota: V}\n",
        "    resources: {cpu_weight: V, io_weight: V, tasks_max: V}\n",
        "    devices: [{path: V, access: V}]\n",
        "    devices: V\n",
        "    nspawn_extra: {Exec: {Boot: V, Parameters: [V, V]}}\n",
        "    nspawn_extra: {Exec: V}\n",
        "    nspawn_extra: V\n",
        "    resources: V\n",
        // Odd keys.
        "    nspawn_extra: {Exec: {V: x}}\n",
        "    nspawn_extra: {V: {Boot: x}}\n",
        "    resources: {V: 1}\n",
        "    devices: [{V: /dev/fuse}]\n",
    ];
    for template in templates {
        for value in values {
            let text = web(&template.replace('V', value));
            // Either outcome is fine; a panic is not.
            let _ = load_str(&text, Path::new("spec.yaml"));
        }
    }
}

#[test]
fn everything_at_once_under_defaults_and_machines() {
    let text = r#"defaults:
  network: {address: auto, nat: true}
  resources: {memory_max: 4G, tasks_max: 2048}
  devices: [{path: /dev/fuse}]
  nspawn_extra:
    Exec: {LimitNOFILE: 65536}
machines:
  web:
    distro: debian
    release: bookworm
  db:
    distro: debian
    release: bookworm
    network:
      zone: data
      address: 10.20.0.10/24
      gateway: 10.20.0.254
      hosts: true
    resources:
      memory_max: 8G
      memory_high: 6G
      cpu_quota: 200%
    devices: []
    nspawn_extra:
      Files: {BindReadOnly: /srv/backup}
"#;
    let spec = load(text);
    let web = &spec.machines["web"];
    assert_eq!(web.network.address, Some(Address::Auto));
    assert!(web.network.nat);
    assert_eq!(web.resources.memory_max, Some(Limit::Value(4 << 30)));
    assert_eq!(web.devices, [device("/dev/fuse", "rwm")]);
    assert_eq!(web.nspawn_extra.exec, pairs(&[("LimitNOFILE", "65536")]));
    let db = &spec.machines["db"];
    assert_eq!(db.network.mode, Some(NetworkMode::Veth));
    assert_eq!(
        db.network.address,
        Some(Address::Static(cidr([10, 20, 0, 10], 24)))
    );
    assert_eq!(db.network.gateway, Some(Ipv4Addr::new(10, 20, 0, 254)));
    assert!(!db.network.nat && db.network.hosts);
    assert_eq!(db.resources.tasks_max, None);
    assert_eq!(db.resources.memory_high, Some(Limit::Value(6 << 30)));
    assert!(db.devices.is_empty());
    assert!(db.nspawn_extra.exec.is_empty());
    assert_eq!(
        db.nspawn_extra.files,
        pairs(&[("BindReadOnly", "/srv/backup")])
    );
}

// ---------------------------------------------------------------- JSON Schema

#[test]
fn json_schema_describes_every_new_field() {
    let schema = berth_schema::json_schema();
    let defs = &schema["$defs"];
    let described = |object: &str, fields: &[&str]| {
        for field in fields {
            assert!(
                defs[object]["properties"][field]["description"].is_string(),
                "{object}.{field}: {schema:#}"
            );
        }
        assert_eq!(
            defs[object]["additionalProperties"], false,
            "{object}: {schema:#}"
        );
    };
    described("Machine", &["resources", "devices", "nspawn_extra"]);
    described(
        "Network",
        &["mode", "address", "pool", "gateway", "nat", "hosts"],
    );
    described(
        "Resources",
        &[
            "memory_max",
            "memory_high",
            "cpu_quota",
            "cpu_weight",
            "io_weight",
            "tasks_max",
        ],
    );
    described("Device", &["path", "access"]);
    described("NspawnExtra", &["Exec", "Files", "Network"]);
    assert_eq!(defs["Device"]["required"], serde_json::json!(["path"]));
    let exec_keys = &defs["NspawnExec"]["propertyNames"]["enum"];
    assert!(
        exec_keys
            .as_array()
            .is_some_and(|k| k.len() == 41 && k.contains(&"Boot".into())),
        "{exec_keys}"
    );
}

#[test]
fn the_schema_accepts_the_new_fields() {
    for text in [
        "machines:\n  a:\n    distro: arch\n    network: {address: 10.0.0.5/24, gateway: 10.0.0.1, nat: true, hosts: false}\n",
        "machines:\n  a:\n    distro: arch\n    network: {address: auto, pool: 10.231.0.0/16}\n",
        "machines:\n  a:\n    distro: arch\n    resources: {memory_max: 1073741824, memory_high: 512M, cpu_quota: 150%, cpu_weight: 100, io_weight: 10000, tasks_max: infinity}\n",
        "machines:\n  a:\n    distro: arch\n    resources: {memory_max: infinity, tasks_max: 12}\n",
        "machines:\n  a:\n    distro: arch\n    devices: [{path: /dev/fuse}, {path: /dev/net/tun, access: rw}]\n",
        "machines:\n  a:\n    distro: arch\n    nspawn_extra: {Exec: {Boot: true, LimitNOFILE: 1024, Parameters: [a, b]}, Files: {Volatile: state}, Network: {Port: ['tcp:1:2']}}\n",
        "defaults:\n  resources: {cpu_weight: 1}\n  devices: []\n  nspawn_extra: {}\nmachines: {}\n",
    ] {
        berth_schema::load_str(text, Path::new("s.yaml")).unwrap_or_else(|e| panic!("{e}"));
        common::assert_schema_accepts("new fields", text);
    }
}

#[test]
fn the_schema_refuses_mistakes_in_the_new_fields() {
    for (extra, what) in [
        ("network: {address: 10.0.0.5}", "address without prefix"),
        ("network: {address: 10.0.0.5/31}", "address prefix /31"),
        ("network: {address: dhcp}", "address word"),
        ("network: {pool: 10.0.0.0/29}", "pool prefix /29"),
        ("network: {gateway: 10.0.0.1/24}", "gateway with prefix"),
        ("network: {gateway: 300.0.0.1}", "gateway octet"),
        ("network: {nat: 'yes'}", "nat string"),
        ("network: {hosts: 1}", "hosts number"),
        ("network: {adress: auto}", "network typo"),
        ("resources: {memory_max: 1.5G}", "fractional size"),
        ("resources: {memory_max: 512MB}", "size unit"),
        ("resources: {memory_max: 0}", "zero memory"),
        ("resources: {cpu_quota: 150}", "quota without %"),
        ("resources: {cpu_weight: 0}", "weight 0"),
        ("resources: {io_weight: 10001}", "weight too large"),
        ("resources: {tasks_max: 0}", "zero tasks"),
        ("resources: {tasks_max: max}", "tasks word"),
        ("resources: {memory_mx: 1G}", "resources typo"),
        ("devices: [{access: rw}]", "device without path"),
        ("devices: [{path: /etc/passwd}]", "path outside /dev"),
        ("devices: [{path: /dev/../etc}]", "path with .."),
        ("devices: [{path: /dev/fuse, access: rx}]", "access letter"),
        (
            "devices: [{path: /dev/fuse, access: rr}]",
            "access repeated",
        ),
        ("devices: [/dev/fuse]", "device as a string"),
        ("nspawn_extra: {exec: {Boot: true}}", "section case"),
        ("nspawn_extra: {Exec: {Foo: x}}", "unknown key"),
        ("nspawn_extra: {Exec: {Bind: /x}}", "key of another section"),
        ("nspawn_extra: {Exec: {Boot: {a: b}}}", "mapping value"),
        ("nspawn_extra: {Exec: {Parameters: []}}", "empty list"),
        ("nspawn_extra: {Exec: {Parameters: [[a]]}}", "nested list"),
    ] {
        let text = format!("machines:\n  a:\n    distro: arch\n    {extra}\n");
        let doc = common::yaml_to_json(&text).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            !common::schema_errors(&doc).is_empty(),
            "{what}: the schema accepts\n{text}"
        );
        assert!(
            berth_schema::load_str(&text, Path::new("s.yaml")).is_err(),
            "{what}: berth accepts\n{text}"
        );
    }
}
