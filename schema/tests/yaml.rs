//! Writing specs (`berth_schema::yaml`): every string reads back as itself,
//! whatever YAML would otherwise make of it, and a rendered machine loads,
//! validates and gives back the values that were put in.

mod common;

use std::path::{Path, PathBuf};

use berth_schema::yaml::{
    BindDoc, DeviceDoc, Document, Entry, MachineDoc, NetworkDoc, NspawnExtraDoc, ResourcesDoc,
    RootPasswordDoc, Style, UnitsDoc, flow_list, scalar,
};
use berth_schema::{
    Address, Bind, DesiredState, Device, Distro, Ipv4Cidr, Limit, NetworkMode, NspawnExtra, Port,
    PrivateUsers, Protocol, Resources, RootPassword,
};
use serde_json::Value;

/// Strings YAML would read as something else, or that need care in some
/// style or context.
const AWKWARD: &[&str] = &[
    "yes",
    "Yes",
    "no",
    "NO",
    "on",
    "off",
    "y",
    "n",
    "true",
    "False",
    "null",
    "Null",
    "~",
    "",
    "123",
    "-1",
    "+1",
    "1.5",
    "1e3",
    "0x1F",
    "0o17",
    "0b101",
    "1_000",
    "1:20",
    ".inf",
    "-.Inf",
    ".nan",
    "2024-01-01",
    "2001-12-14 21:59:43.10 -5",
    ": x",
    "a: b",
    "a:b",
    "# y",
    "a #b",
    "a#b",
    "  leading",
    "trailing  ",
    " ",
    "\t",
    "a\tb",
    "- x",
    "-",
    "?",
    "? x",
    "[x]",
    "{x}",
    "a, b",
    "&anchor",
    "*alias",
    "!tag",
    "%YAML",
    "@x",
    "`x",
    "|",
    ">",
    "'",
    "it's",
    "\"",
    "\"quoted\"",
    "back\\slash",
    "\\n",
    "=",
    "<<",
    "---",
    "...",
    "héllo ✓ 𝄞 日本",
    "line\nbreak",
    "crlf\r\n",
    "nul\0byte",
    "esc\u{1b}[0m",
    "del\u{7f}",
    "nel\u{85}x",
    "ls\u{2028}ps\u{2029}",
    "\u{feff}bom",
    "nonchar\u{fffe}\u{ffff}",
    "c1\u{9b}",
];

/// `text` read by serde-saphyr as a JSON value, with YAML 1.2 booleans
/// (`strict`) or also the YAML 1.1 ones (`yes`, `on`, ...).
fn read(text: &str, strict: bool) -> Value {
    let options = serde_saphyr::options! { strict_booleans: strict };
    serde_saphyr::from_str_with_options(text, options)
        .unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"))
}

#[test]
fn every_string_reads_back_as_itself_in_every_style_and_context() {
    for style in [Style::Quoted, Style::Plain] {
        for s in AWKWARD {
            let text = format!(
                "value: {v}\nlist: {l}\nblock:\n  - {v}\nflow: {{{v}: {v}}}\n{v}: key\n",
                v = scalar(s, style),
                l = flow_list(&[*s, "x", *s], style),
            );
            for strict in [true, false] {
                let doc = read(&text, strict);
                let want = Value::String((*s).to_owned());
                let ctx = format!("{style:?} {s:?} (strict booleans: {strict}):\n{text}");
                assert_eq!(doc["value"], want, "{ctx}");
                assert_eq!(doc["list"], serde_json::json!([s, "x", s]), "{ctx}");
                assert_eq!(doc["block"][0], want, "{ctx}");
                assert_eq!(doc["flow"][*s], want, "{ctx}");
                assert_eq!(doc[*s], "key", "{ctx}");
            }
        }
    }
}

#[test]
fn quoting_is_only_as_much_as_needed() {
    assert_eq!(scalar("bookworm", Style::Quoted), "'bookworm'");
    assert_eq!(scalar("it's", Style::Quoted), "'it''s'");
    assert_eq!(scalar("a\tb", Style::Quoted), "'a\tb'");
    assert_eq!(scalar("héllo", Style::Quoted), "'héllo'");
    assert_eq!(scalar("a\nb", Style::Quoted), r#""a\nb""#);
    assert_eq!(scalar("x\u{1b}\0\"\\", Style::Quoted), r#""x\e\0\"\\""#);
    assert_eq!(scalar("debian", Style::Plain), "debian");
    assert_eq!(scalar("nspawn-unit", Style::Plain), "nspawn-unit");
    assert_eq!(scalar("web.example.org", Style::Plain), "web.example.org");
    assert_eq!(scalar("no", Style::Plain), r#""no""#);
    assert_eq!(scalar("123", Style::Plain), r#""123""#);
    assert_eq!(scalar("", Style::Plain), r#""""#);
    assert_eq!(scalar(": x", Style::Plain), r#"": x""#);
    assert_eq!(flow_list::<&str>(&[], Style::Quoted), "[]");
    assert_eq!(flow_list(&["a", "b'c"], Style::Quoted), "['a', 'b''c']");
}

/// A machine using every key, with awkward (but valid) values wherever a
/// key takes free text.
fn awkward_machine(name: &str) -> MachineDoc {
    let mut m = MachineDoc::new(name);
    m.distro = Entry::new(Distro::Debian).comment("a comment: with # and 'quotes'");
    m.release = Entry::new("123".to_owned()).note("# not a number");
    m.packages = Entry::new(
        [
            "yes", "null", "123", "true", "1e3", "0x1F", "on", "g++", "a:b", "a~b",
        ]
        .map(String::from)
        .to_vec(),
    );
    m.hostname = Entry::new("null".to_owned());
    m.units = Entry::new(UnitsDoc {
        enable: Entry::new(vec!["null".to_owned(), "yes@x".to_owned()]),
        disable: Entry::new(vec!["true".to_owned()]).comment("nested comment"),
        mask: Entry::new(vec!["123.timer".to_owned()]),
    })
    .note("a note");
    m.root_password = Entry::new(RootPasswordDoc {
        hash: Entry::new("$6$salt$abc./XYZ".to_owned()).note("from /etc/shadow"),
        ..RootPasswordDoc::default()
    });
    m.securetty = Entry::new(vec!["null".to_owned(), "0".to_owned(), "pts/0".to_owned()]);
    m.network = Entry::new(NetworkDoc {
        mode: Entry::new(NetworkMode::Veth),
        zone: Entry::new("null".to_owned()),
        ports: Entry::new(vec!["tcp:8080:80".to_owned(), "udp:53:53".to_owned()]),
        ..NetworkDoc::default()
    });
    m.binds = Entry::new(vec![
        BindDoc {
            host: "/srv/it's".to_owned(),
            machine: Some("/mnt/ü#x".to_owned()),
            read_only: true,
        },
        BindDoc {
            host: "/yes".to_owned(),
            machine: None,
            read_only: false,
        },
    ]);
    m.private_users = Entry::new(PrivateUsers::No);
    m.capabilities = Entry::new(vec!["CAP_NET_ADMIN".to_owned()]);
    m.drop_capabilities = Entry::new(vec!["CAP_SYS_MODULE".to_owned()]);
    m.environment = Entry::new(environment());
    m.state = Entry::new(DesiredState::Stopped).comment("before state");
    m
}

/// Environment values: every awkward string `Environment=` can hold (no
/// control characters but tab).
fn environment() -> Vec<(String, String)> {
    AWKWARD
        .iter()
        .filter(|s| !s.chars().any(|c| c.is_control() && c != '\t'))
        .enumerate()
        .map(|(i, s)| (format!("V{i}"), (*s).to_owned()))
        .collect()
}

#[test]
fn a_rendered_machine_loads_back_to_the_same_values() {
    for name in ["web", "123", "null", "true", "no", "1.5", "0x1F", "x-y_z.1"] {
        let mut other = MachineDoc::new("other");
        other.distro = Entry::new(Distro::Arch);
        let doc = Document {
            header: vec!["written by a test".to_owned(), String::new()],
            machines: vec![awkward_machine(name), other],
        };
        let text = doc.render();
        let spec = berth_schema::load_str(&text, Path::new("/etc/berth/spec.yaml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let names: Vec<&str> = spec.machines.keys().map(String::as_str).collect();
        assert_eq!(names, [name, "other"], "{text}");
        let m = &spec.machines[name];
        assert_eq!(m.distro, Distro::Debian);
        assert_eq!(m.release.as_deref(), Some("123"));
        assert_eq!(
            m.packages,
            [
                "yes", "null", "123", "true", "1e3", "0x1F", "on", "g++", "a:b", "a~b"
            ]
        );
        assert_eq!(m.hostname, "null");
        assert_eq!(m.units.enable, ["null.service", "yes@x.service"]);
        assert_eq!(m.units.disable, ["true.service"]);
        assert_eq!(m.units.mask, ["123.timer"]);
        assert_eq!(
            m.root_password,
            Some(RootPassword::Hash("$6$salt$abc./XYZ".to_owned()))
        );
        assert_eq!(m.securetty, ["null", "0", "pts/0"]);
        assert_eq!(m.network.mode, Some(NetworkMode::Veth));
        assert_eq!(m.network.zone.as_deref(), Some("null"));
        assert_eq!(m.network.bridge, None);
        assert_eq!(
            m.network.ports,
            [
                Port {
                    protocol: Protocol::Tcp,
                    host: 8080,
                    machine: 80
                },
                Port {
                    protocol: Protocol::Udp,
                    host: 53,
                    machine: 53
                }
            ]
        );
        assert_eq!(
            m.binds,
            [
                Bind {
                    host: PathBuf::from("/srv/it's"),
                    machine: PathBuf::from("/mnt/ü#x"),
                    read_only: true
                },
                Bind {
                    host: PathBuf::from("/yes"),
                    machine: PathBuf::from("/yes"),
                    read_only: false
                }
            ]
        );
        assert_eq!(m.private_users, Some(PrivateUsers::No));
        assert_eq!(m.capabilities, ["CAP_NET_ADMIN"]);
        assert_eq!(m.drop_capabilities, ["CAP_SYS_MODULE"]);
        assert_eq!(m.environment, environment(), "{text}");
        assert_eq!(m.state, DesiredState::Stopped);
        assert_eq!(spec.machines["other"].distro, Distro::Arch);
    }
}

#[test]
fn the_format_is_stable() {
    let mut m = MachineDoc::new("web");
    m.distro = Entry::new(Distro::Fedora);
    m.release = Entry::new("40".to_owned());
    m.packages = Entry::new(Vec::new())
        .comment("two comment lines,")
        .comment("before the key");
    m.hostname = Entry::omitted("no hostname");
    m.units = Entry::new(UnitsDoc {
        mask: Entry::new(vec!["a.timer".to_owned()]),
        ..UnitsDoc::default()
    })
    .note("a note");
    m.root_password = Entry::new(RootPasswordDoc {
        hash: Entry::new("$6$s$h".to_owned()).note("from /etc/shadow"),
        ..RootPasswordDoc::default()
    });
    m.network = Entry::new(NetworkDoc::default());
    m.binds = Entry::new(vec![BindDoc {
        host: "/a".to_owned(),
        machine: Some("/b".to_owned()),
        read_only: true,
    }]);
    m.private_users = Entry::new(PrivateUsers::Pick);
    m.environment = Entry::new(vec![("LANG".to_owned(), "C.UTF-8".to_owned())]);
    m.state = Entry::new(DesiredState::Running).comment("  indented");
    let doc = Document {
        header: vec!["header".to_owned()],
        machines: vec![m, MachineDoc::new("empty")],
    };
    assert_eq!(
        doc.render(),
        "# header
machines:
  web:
    distro: fedora
    release: '40'
    # two comment lines,
    # before the key
    packages: []
    # no hostname
    units:   # a note
      mask: ['a.timer']
    root_password:
      hash: '$6$s$h'   # from /etc/shadow
    network: {}
    binds:
      - {host: '/a', machine: '/b', read_only: true}
    private_users: pick
    environment:
      'LANG': 'C.UTF-8'
    #   indented
    state: running

  empty:
"
    );
    assert_eq!(Document::default().render(), "machines: {}\n");
}

#[test]
fn comments_and_notes_cannot_break_the_document() {
    let mut m = MachineDoc::new("web");
    m.distro = Entry::new(Distro::Arch)
        .comment("two\nlines")
        .comment("esc \u{1b} and cr \r")
        .note("a note\nwith a break");
    let text = Document {
        header: vec!["top\nline".to_owned()],
        machines: vec![m],
    }
    .render();
    assert_eq!(
        text,
        "# top\n# line\nmachines:\n  web:\n    # two\n    # lines\n    # esc \\u{1b} and cr \\u{d}\n    distro: arch   # a note with a break\n"
    );
    let spec = berth_schema::load_str(&text, Path::new("s.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.machines["web"].distro, Distro::Arch);
}

#[test]
fn the_new_keys_have_a_stable_format() {
    let mut m = MachineDoc::new("web");
    m.distro = Entry::new(Distro::Arch);
    m.network = Entry::new(NetworkDoc {
        zone: Entry::new("web".to_owned()),
        address: Entry::new("10.0.0.5/24".to_owned()),
        gateway: Entry::new("10.0.0.1".to_owned()),
        nat: Entry::new(true),
        hosts: Entry::new(false),
        ..NetworkDoc::default()
    });
    m.resources = Entry::new(ResourcesDoc {
        memory_max: Entry::new(Limit::Value(2 << 30)),
        memory_high: Entry::new(Limit::Value((1 << 30) + 1)),
        cpu_quota: Entry::new(150),
        cpu_weight: Entry::new(200),
        io_weight: Entry::new(50),
        tasks_max: Entry::new(Limit::Infinity),
    })
    .comment("limits");
    m.devices = Entry::new(vec![
        DeviceDoc {
            path: "/dev/fuse".to_owned(),
            access: None,
        },
        DeviceDoc {
            path: "/dev/net/tun".to_owned(),
            access: Some("rw".to_owned()),
        },
    ]);
    m.nspawn_extra = Entry::new(NspawnExtraDoc {
        exec: Entry::new(vec![
            ("LimitNOFILE".to_owned(), "4096".to_owned()),
            ("Parameters".to_owned(), "a".to_owned()),
            ("Boot".to_owned(), "yes".to_owned()),
            ("Parameters".to_owned(), "b c".to_owned()),
        ]),
        files: Entry::new(Vec::new()),
        ..NspawnExtraDoc::default()
    });
    let mut auto = MachineDoc::new("auto");
    auto.distro = Entry::new(Distro::Arch);
    auto.network = Entry::new(NetworkDoc {
        address: Entry::new("auto".to_owned()),
        pool: Entry::new("10.9.0.0/16".to_owned()),
        ..NetworkDoc::default()
    });
    auto.resources = Entry::new(ResourcesDoc::default());
    auto.devices = Entry::new(Vec::new());
    auto.nspawn_extra = Entry::new(NspawnExtraDoc::default());
    let text = Document {
        header: Vec::new(),
        machines: vec![m, auto],
    }
    .render();
    assert_eq!(
        text,
        "machines:
  web:
    distro: arch
    network:
      zone: 'web'
      address: '10.0.0.5/24'
      gateway: '10.0.0.1'
      nat: true
      hosts: false
    # limits
    resources:
      memory_max: 2G
      memory_high: 1073741825
      cpu_quota: 150%
      cpu_weight: 200
      io_weight: 50
      tasks_max: infinity
    devices:
      - {path: '/dev/fuse'}
      - {path: '/dev/net/tun', access: rw}
    nspawn_extra:
      Exec:
        LimitNOFILE: '4096'
        Parameters: ['a', 'b c']
        Boot: 'yes'
      Files: {}

  auto:
    distro: arch
    network:
      address: 'auto'
      pool: '10.9.0.0/16'
    resources: {}
    devices: []
    nspawn_extra: {}
"
    );
    let spec = berth_schema::load_str(&text, Path::new("s.yaml")).unwrap_or_else(|e| panic!("{e}"));
    common::assert_schema_accepts("rendered new keys", &text);
    let web = &spec.machines["web"];
    assert_eq!(
        web.network.address,
        Some(Address::Static(Ipv4Cidr {
            address: [10, 0, 0, 5].into(),
            prefix: 24
        }))
    );
    assert_eq!(web.resources.memory_high, Some(Limit::Value((1 << 30) + 1)));
    // A key given more than once is grouped at its first place.
    assert_eq!(
        web.nspawn_extra.exec,
        [
            ("LimitNOFILE".to_owned(), "4096".to_owned()),
            ("Parameters".to_owned(), "a".to_owned()),
            ("Parameters".to_owned(), "b c".to_owned()),
            ("Boot".to_owned(), "yes".to_owned()),
        ]
    );
    let auto = &spec.machines["auto"];
    assert_eq!(auto.network.address, Some(Address::Auto));
    assert!(auto.resources.is_empty() && auto.devices.is_empty());
}

#[test]
fn rendered_runtime_settings_load_back_to_the_same_values() {
    // Values an `.nspawn` line can hold: no control characters at all.
    let awkward: Vec<(String, String)> = AWKWARD
        .iter()
        .filter(|s| !s.chars().any(char::is_control))
        .map(|s| ("Environment".to_owned(), (*s).to_owned()))
        .collect();
    let extra = NspawnExtra {
        exec: awkward,
        files: vec![
            ("Bind".to_owned(), "/srv/a:/a".to_owned()),
            ("Bind".to_owned(), "/srv/b:/b".to_owned()),
        ],
        network: vec![("Port".to_owned(), "tcp:8080:80".to_owned())],
    };
    let devices = vec![
        Device {
            path: PathBuf::from("/dev/fuse"),
            access: "rwm".to_owned(),
        },
        Device {
            path: PathBuf::from("/dev/kvm"),
            access: "rm".to_owned(),
        },
    ];
    for resources in [
        Resources {
            memory_max: Some(Limit::Value(1 << 40)),
            memory_high: Some(Limit::Value(3 << 10)),
            cpu_quota: Some(1),
            cpu_weight: Some(10_000),
            tasks_max: Some(Limit::Value(1)),
            io_weight: Some(1),
        },
        Resources {
            memory_max: Some(Limit::Infinity),
            memory_high: Some(Limit::Value(u64::MAX)),
            cpu_quota: Some(100_000),
            tasks_max: Some(Limit::Value(u64::MAX)),
            ..Resources::default()
        },
        Resources::default(),
    ] {
        let mut m = MachineDoc::new("web");
        m.distro = Entry::new(Distro::Arch);
        m.resources = Entry::new(ResourcesDoc::from(&resources));
        m.devices = Entry::new(devices.iter().map(DeviceDoc::from).collect());
        m.nspawn_extra = Entry::new(NspawnExtraDoc::from(&extra));
        let text = Document {
            header: Vec::new(),
            machines: vec![m],
        }
        .render();
        let spec = berth_schema::load_str(&text, Path::new("s.yaml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let web = &spec.machines["web"];
        assert_eq!(web.resources, resources, "{text}");
        assert_eq!(web.devices, devices, "{text}");
        assert_eq!(web.nspawn_extra, extra, "{text}");
    }
    // Empty sections are left out.
    assert_eq!(
        NspawnExtraDoc::from(&NspawnExtra::default()),
        NspawnExtraDoc::default()
    );
    assert_eq!(
        DeviceDoc::from(&Device {
            path: PathBuf::from("/dev/kvm"),
            access: "rw".to_owned()
        }),
        DeviceDoc {
            path: "/dev/kvm".to_owned(),
            access: Some("rw".to_owned())
        }
    );
}
