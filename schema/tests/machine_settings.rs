//! The machine's bootstrap and runtime settings: bootstrapper and its
//! options, pacman.conf, dnf repositories, autostart, network, binds, user
//! namespacing, capabilities, environment; their defaults merging, and the
//! errors they give.

mod common;

use common::{errors, load, only, web};

use std::path::{Path, PathBuf};

use berth_schema::{
    Bind, BootstrapOptions, BootstrapperKind, Network, NetworkMode, Port, PrivateUsers, Protocol,
    Repo, load_str,
};

fn tcp(host: u16, machine: u16) -> Port {
    Port {
        protocol: Protocol::Tcp,
        host,
        machine,
    }
}

fn bind(host: &str, machine: &str, read_only: bool) -> Bind {
    Bind {
        host: host.into(),
        machine: machine.into(),
        read_only,
    }
}

const FULL: &str = r#"machines:
  web:
    distro: debian
    release: bookworm
    bootstrapper: mmdebstrap
    bootstrap_options:
      host_cache: true
      variant: minbase
      components: [main, universe, main]
      install_weak_deps: false
    autostart: true
    network:
      mode: veth
      ports: ["tcp:8080:80", "udp:53:53", "8443:443", 9000:9001]
    binds:
      - host: /srv/www/
        machine: /var/www
        read_only: true
      - /srv/data
      - /srv/a:/mnt/a
      - /srv/b:/mnt/b:ro
      - /srv/c:/mnt/c:rw
      - {host: /srv//d/./e}
    private_users: pick
    capabilities: [CAP_NET_ADMIN, CAP_SYS_TIME, CAP_NET_ADMIN]
    drop_capabilities: [CAP_SYS_ADMIN]
    environment:
      LANG: C.UTF-8
      _EMPTY: ""
      PORT: 8080
      RATIO: 1.50
      DEBUG: true
      TAB: "a	b"
  build:
    distro: arch
    bootstrapper: pacstrap
    bootstrap_options: {host_cache: true}
    pacman_conf: ./pacman.conf
    autostart: false
    network: {zone: build}
    private_users: identity
    capabilities: [all]
  f40:
    distro: fedora
    release: 40
    bootstrapper: dnf
    bootstrap_options: {install_weak_deps: true}
    repos:
      - id: local
        url: file:///srv/repo
        gpgcheck: false
      - {id: "updates:x86_64.1", url: "https://mirror.example/fedora/40?x=1"}
    network: {bridge: br0.10, ports: ["udp:5353:53"]}
    private_users: "no"
"#;

#[test]
fn every_new_field_loads() {
    let spec = load(FULL);
    let web = &spec.machines["web"];
    assert_eq!(web.bootstrapper, Some(BootstrapperKind::Mmdebstrap));
    assert_eq!(
        web.bootstrap_options,
        BootstrapOptions {
            host_cache: true,
            variant: Some("minbase".into()),
            components: vec!["main".into(), "universe".into()],
            install_weak_deps: false,
        }
    );
    assert_eq!(web.pacman_conf, None);
    assert!(web.repos.is_empty());
    assert_eq!(web.autostart, Some(true));
    assert_eq!(
        web.network,
        Network {
            mode: Some(NetworkMode::Veth),
            zone: None,
            bridge: None,
            ports: vec![
                tcp(8080, 80),
                Port {
                    protocol: Protocol::Udp,
                    host: 53,
                    machine: 53
                },
                tcp(8443, 443),
                tcp(9000, 9001),
            ],
            ..Network::default()
        }
    );
    assert_eq!(
        web.binds,
        [
            bind("/srv/www", "/var/www", true),
            bind("/srv/data", "/srv/data", false),
            bind("/srv/a", "/mnt/a", false),
            bind("/srv/b", "/mnt/b", true),
            bind("/srv/c", "/mnt/c", false),
            bind("/srv/d/e", "/srv/d/e", false),
        ]
    );
    assert_eq!(web.private_users, Some(PrivateUsers::Pick));
    assert_eq!(web.capabilities, ["CAP_NET_ADMIN", "CAP_SYS_TIME"]);
    assert_eq!(web.drop_capabilities, ["CAP_SYS_ADMIN"]);
    let env: Vec<(&str, &str)> = web
        .environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("LANG", "C.UTF-8"),
            ("_EMPTY", ""),
            ("PORT", "8080"),
            ("RATIO", "1.50"),
            ("DEBUG", "true"),
            ("TAB", "a\tb"),
        ]
    );

    let build = &spec.machines["build"];
    assert_eq!(build.bootstrapper, Some(BootstrapperKind::Pacstrap));
    assert!(build.bootstrap_options.host_cache);
    assert_eq!(
        build.pacman_conf,
        Some(PathBuf::from("/etc/berth/pacman.conf"))
    );
    assert_eq!(build.autostart, Some(false));
    // A zone implies veth.
    assert_eq!(build.network.mode, Some(NetworkMode::Veth));
    assert_eq!(build.network.zone.as_deref(), Some("build"));
    assert_eq!(build.private_users, Some(PrivateUsers::Identity));
    assert_eq!(build.capabilities, ["all"]);

    let f40 = &spec.machines["f40"];
    assert_eq!(f40.bootstrapper, Some(BootstrapperKind::Dnf));
    assert!(f40.bootstrap_options.install_weak_deps);
    assert_eq!(
        f40.repos,
        [
            Repo {
                id: "local".into(),
                url: "file:///srv/repo".into(),
                gpgcheck: false,
            },
            Repo {
                id: "updates:x86_64.1".into(),
                url: "https://mirror.example/fedora/40?x=1".into(),
                gpgcheck: true,
            },
        ]
    );
    // A bridge implies veth, and allows port forwards.
    assert_eq!(f40.network.mode, Some(NetworkMode::Veth));
    assert_eq!(f40.network.bridge.as_deref(), Some("br0.10"));
    assert_eq!(f40.network.ports.len(), 1);
    assert_eq!(f40.private_users, Some(PrivateUsers::No));
}

#[test]
fn absent_fields_take_their_defaults() {
    let m = only("machines:\n  box:\n    distro: arch\n");
    assert_eq!(m.bootstrapper, None);
    assert_eq!(m.bootstrap_options, BootstrapOptions::default());
    assert!(!m.bootstrap_options.host_cache && !m.bootstrap_options.install_weak_deps);
    assert_eq!(m.pacman_conf, None);
    assert!(m.repos.is_empty());
    assert_eq!(m.autostart, None);
    assert_eq!(m.network, Network::default());
    // No mode written: the launcher's default.
    assert_eq!(m.network.mode, None);
    assert!(m.binds.is_empty());
    assert_eq!(m.private_users, None);
    assert!(m.capabilities.is_empty() && m.drop_capabilities.is_empty());
    assert!(m.environment.is_empty());
}

#[test]
fn null_means_not_set_here() {
    let text = "defaults:
  autostart: true
  network: {mode: private}
machines:
  box:
    distro: arch
    autostart: ~
    network:
    binds: ~
    environment: ~
";
    let m = only(text);
    assert_eq!(m.autostart, Some(true));
    assert_eq!(m.network.mode, Some(NetworkMode::Private));
    assert!(m.binds.is_empty() && m.environment.is_empty());
}

#[test]
fn defaults_merge_per_top_level_field_and_replace_whole() {
    let text = r#"defaults:
  distro: debian
  release: bookworm
  bootstrapper: debootstrap
  bootstrap_options: {variant: buildd, components: [main, contrib]}
  autostart: true
  network: {mode: veth, ports: ["80:80"]}
  binds: [/srv/shared]
  private_users: pick
  capabilities: [CAP_NET_ADMIN]
  drop_capabilities: [CAP_SYS_MODULE]
  environment: {LANG: C.UTF-8, TZ: UTC}
machines:
  plain: {}
  own:
    bootstrapper: mmdebstrap
    bootstrap_options: {host_cache: true}
    autostart: false
    network: {mode: private}
    binds: ["/srv/own:/own:ro"]
    private_users: identity
    capabilities: []
    environment: {TZ: Europe/Paris}
"#;
    let spec = load(text);
    let plain = &spec.machines["plain"];
    assert_eq!(plain.bootstrapper, Some(BootstrapperKind::Debootstrap));
    assert_eq!(plain.bootstrap_options.variant.as_deref(), Some("buildd"));
    assert_eq!(plain.bootstrap_options.components, ["main", "contrib"]);
    assert_eq!(plain.autostart, Some(true));
    assert_eq!(plain.network.mode, Some(NetworkMode::Veth));
    assert_eq!(plain.network.ports, [tcp(80, 80)]);
    assert_eq!(plain.binds, [bind("/srv/shared", "/srv/shared", false)]);
    assert_eq!(plain.private_users, Some(PrivateUsers::Pick));
    assert_eq!(plain.capabilities, ["CAP_NET_ADMIN"]);
    assert_eq!(plain.drop_capabilities, ["CAP_SYS_MODULE"]);
    assert_eq!(plain.environment.len(), 2);

    let own = &spec.machines["own"];
    assert_eq!(own.bootstrapper, Some(BootstrapperKind::Mmdebstrap));
    // bootstrap_options, network, binds and environment replace the defaults' whole.
    assert_eq!(
        own.bootstrap_options,
        BootstrapOptions {
            host_cache: true,
            ..BootstrapOptions::default()
        }
    );
    assert_eq!(own.autostart, Some(false));
    assert_eq!(
        own.network,
        Network {
            mode: Some(NetworkMode::Private),
            ..Network::default()
        }
    );
    assert_eq!(own.binds, [bind("/srv/own", "/own", true)]);
    assert_eq!(own.private_users, Some(PrivateUsers::Identity));
    assert!(own.capabilities.is_empty());
    // Not written on the machine: from the defaults.
    assert_eq!(own.drop_capabilities, ["CAP_SYS_MODULE"]);
    assert_eq!(
        own.environment,
        [("TZ".to_owned(), "Europe/Paris".to_owned())]
    );
}

#[test]
fn bootstrappers_fit_their_distros() {
    let cases = [
        ("debian", "bookworm", "debootstrap", true),
        ("debian", "bookworm", "mmdebstrap", true),
        ("ubuntu", "noble", "debootstrap", true),
        ("ubuntu", "noble", "mmdebstrap", true),
        ("arch", "~", "pacstrap", true),
        ("fedora", "40", "dnf", true),
        ("debian", "bookworm", "pacstrap", false),
        ("debian", "bookworm", "dnf", false),
        ("arch", "~", "debootstrap", false),
        ("arch", "~", "dnf", false),
        ("fedora", "40", "mmdebstrap", false),
        ("fedora", "40", "pacstrap", false),
    ];
    for (distro, release, tool, fits) in cases {
        let text = format!(
            "machines:\n  m:\n    distro: {distro}\n    release: {release}\n    bootstrapper: {tool}\n"
        );
        let result = load_str(&text, Path::new("s.yaml"));
        if fits {
            let spec = result.unwrap_or_else(|e| panic!("{distro}/{tool}: {e}"));
            assert_eq!(
                spec.machines["m"].bootstrapper.map(|b| b.as_str()),
                Some(tool)
            );
        } else {
            let err = result.expect_err("refused");
            assert_eq!(err.diagnostics.len(), 1, "{err}");
            let d = &err.diagnostics[0];
            assert_eq!(d.field.as_deref(), Some("machines.m.bootstrapper"));
            assert_eq!((d.line, d.column), (Some(5), Some(19)));
            assert!(d.message.contains(&format!("`{tool}`")), "{d}");
            assert!(d.message.contains(&format!("`{distro}`")), "{d}");
        }
    }
}

#[test]
fn a_default_bootstrapper_is_checked_against_each_machine() {
    let text = "defaults:\n  bootstrapper: pacstrap\nmachines:\n  a: {distro: arch}\n  b: {distro: debian, release: bookworm}\n";
    let err = errors(text);
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    let d = &err.diagnostics[0];
    assert_eq!(d.field.as_deref(), Some("defaults.bootstrapper"));
    assert_eq!(d.line, Some(2));
    assert!(d.message.contains("machine `b`"), "{d}");
}

#[test]
fn distro_specific_fields_are_refused_elsewhere() {
    let err = errors(&web("    pacman_conf: ./pacman.conf\n"));
    assert_eq!(
        err.diagnostics[0].field.as_deref(),
        Some("machines.web.pacman_conf")
    );
    assert!(err.to_string().contains("only for distro `arch`"), "{err}");

    let err = errors(&web("    repos: [{id: a, url: 'http://x'}]\n"));
    assert_eq!(
        err.diagnostics[0].field.as_deref(),
        Some("machines.web.repos")
    );
    assert!(
        err.to_string().contains("only for distro `fedora`"),
        "{err}"
    );

    // An empty list of repositories is no repository.
    assert!(only(&web("    repos: []\n")).repos.is_empty());
}

#[test]
fn booleans_must_be_yaml_booleans() {
    for (value, shown) in [
        ("\"yes\"", "the string `yes`"),
        ("'true'", "the string `true`"),
        ("1", "the number 1"),
        ("[true]", "a list"),
        ("{a: b}", "a mapping"),
    ] {
        let text = format!(
            "machines:\n  m:\n    distro: arch\n    autostart: {value}\n    bootstrap_options: {{host_cache: {value}}}\n    binds: [{{host: /a, read_only: {value}}}]\n    repos: [{{id: a, url: 'http://x', gpgcheck: {value}}}]\n"
        );
        let err = errors(&text);
        let fields: Vec<_> = err
            .diagnostics
            .iter()
            .filter_map(|d| d.field.as_deref())
            .collect();
        assert_eq!(
            fields,
            [
                "machines.m.autostart",
                "machines.m.bootstrap_options.host_cache",
                "machines.m.binds[0].read_only",
                "machines.m.repos[0].gpgcheck",
            ],
            "{err}"
        );
        for d in &err.diagnostics {
            assert!(d.message.contains("must be a boolean"), "{d}");
            assert!(d.message.contains(shown), "{d}");
        }
    }
}

#[test]
fn bind_forms_and_normalisation() {
    let m = only(&web(
        "    binds:\n      - /srv/x/\n      - /srv/y:/y:rw\n      - {host: /srv/z, read_only: false}\n      - {host: /h, machine: /m/./n/}\n",
    ));
    assert_eq!(
        m.binds,
        [
            bind("/srv/x", "/srv/x", false),
            bind("/srv/y", "/y", false),
            bind("/srv/z", "/srv/z", false),
            bind("/h", "/m/n", false),
        ]
    );
}

#[test]
fn two_binds_cannot_share_a_machine_path() {
    let err = errors(&web(
        "    binds:\n      - /srv/a:/data\n      - {host: /srv/b, machine: /data/}\n",
    ));
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    let d = &err.diagnostics[0];
    assert_eq!(d.field.as_deref(), Some("machines.web.binds[1].machine"));
    assert!(d.message.contains("already bound by binds[0]"), "{d}");
}

#[test]
fn port_forwards_need_veth() {
    for network in [
        "{mode: host, ports: ['80:80']}",
        "{mode: private, ports: ['80:80']}",
    ] {
        let err = errors(&web(&format!("    network: {network}\n")));
        assert_eq!(err.diagnostics.len(), 1, "{err}");
        let d = &err.diagnostics[0];
        assert_eq!(d.field.as_deref(), Some("machines.web.network.ports"));
        assert_eq!(
            d.message,
            "port forwards need a private network with a veth link: set network.mode: veth"
        );
    }
    for network in [
        "{mode: veth, ports: ['80:80']}",
        "{zone: z, ports: ['80:80']}",
        "{bridge: br0, ports: ['80:80']}",
        "{mode: veth, zone: z, ports: ['80:80']}",
        "{mode: host, ports: []}",
        // No mode: the launcher's default may be veth (the engine checks
        // the effective mode when it plans).
        "{ports: ['80:80']}",
    ] {
        only(&web(&format!("    network: {network}\n")));
    }
    let m = only(&web("    network: {ports: ['80:80']}\n"));
    assert_eq!(m.network.mode, None);
    assert_eq!(m.network.ports, [tcp(80, 80)]);
}

#[test]
fn ports_are_checked() {
    let err = errors(&web(
        "    network:\n      mode: veth\n      ports: ['tcp:0:80', 'tcp:99999:1', 'sctp:1:2', '80', 'tcp:80:0', 'x:y', 'udp:1:2', 'udp:1:3', '1:2', 'tcp:1:4']\n",
    ));
    let got: Vec<(String, String)> = err
        .diagnostics
        .iter()
        .map(|d| (d.field.clone().unwrap_or_default(), d.message.clone()))
        .collect();
    let expect = [
        (
            "[0]",
            "host port 0 in port forward `tcp:0:80` is out of range (1–65535)",
        ),
        (
            "[1]",
            "host port 99999 in port forward `tcp:99999:1` is out of range",
        ),
        ("[2]", "unknown protocol `sctp`"),
        ("[3]", "must be `PROTOCOL:HOST:MACHINE` or `HOST:MACHINE`"),
        ("[4]", "machine port 0"),
        ("[5]", "must be `PROTOCOL:HOST:MACHINE` or `HOST:MACHINE`"),
        (
            "[7]",
            "host port udp 1 is already forwarded by network.ports[6]",
        ),
        (
            "[9]",
            "host port tcp 1 is already forwarded by network.ports[8]",
        ),
    ];
    assert_eq!(got.len(), expect.len(), "{err}");
    for ((field, message), (index, part)) in got.iter().zip(expect) {
        assert_eq!(field, &format!("machines.web.network.ports{index}"));
        assert!(message.contains(part), "{message}");
    }
}

#[test]
fn zone_and_bridge() {
    let err = errors(&web("    network: {zone: a, bridge: br0}\n"));
    assert_eq!(
        err.diagnostics[0].field.as_deref(),
        Some("machines.web.network.bridge")
    );
    assert!(err.to_string().contains("cannot both be set"), "{err}");

    for (key, value) in [("zone", "a"), ("bridge", "br0")] {
        for mode in ["host", "private"] {
            let err = errors(&web(&format!(
                "    network: {{mode: {mode}, {key}: {value}}}\n"
            )));
            assert_eq!(err.diagnostics.len(), 1, "{err}");
            let d = &err.diagnostics[0];
            assert_eq!(
                d.field.as_deref(),
                Some(&*format!("machines.web.network.{key}"))
            );
            assert!(d.message.contains("needs a veth link"), "{d}");
            assert!(d.message.contains(&format!("`{mode}`")), "{d}");
        }
    }

    for bad in [
        "{zone: abcdefghijklm}",
        "{zone: 'a.b'}",
        "{zone: -a}",
        "{zone: ''}",
        "{bridge: abcdefghijklmnop}",
        "{bridge: '.'}",
        "{bridge: '..'}",
        "{bridge: 'br/0'}",
        "{bridge: 'br 0'}",
    ] {
        let err = errors(&web(&format!("    network: {bad}\n")));
        assert_eq!(err.diagnostics.len(), 1, "{bad}: {err}");
    }
    only(&web("    network: {zone: abcdefghijkl}\n"));
    only(&web("    network: {bridge: abcdefghijklmno}\n"));
}

#[test]
fn names_and_values_are_checked() {
    // (extra lines under the machine, expected field, expected message part)
    let cases = [
        (
            "    bootstrapper: febootstrap\n",
            "bootstrapper",
            "unknown bootstrapper `febootstrap`",
        ),
        (
            "    bootstrap_options: {variant: Minbase}\n",
            "bootstrap_options.variant",
            "bootstrap variant `Minbase`",
        ),
        (
            "    bootstrap_options: {variant: 1base}\n",
            "bootstrap_options.variant",
            "must start with a lowercase letter",
        ),
        (
            "    bootstrap_options: {variant: --x}\n",
            "bootstrap_options.variant",
            "could be read as an option",
        ),
        (
            "    bootstrap_options: {components: [main, non/free]}\n",
            "bootstrap_options.components[1]",
            "contains `/`",
        ),
        (
            &format!(
                "    bootstrap_options: {{components: [{}]}}\n",
                "a".repeat(33)
            ),
            "bootstrap_options.components[0]",
            "at most 32",
        ),
        (
            "    pacman_conf: ''\n",
            "pacman_conf",
            "pacman_conf is empty",
        ),
        (
            "    pacman_conf: \"a\\nb\"\n",
            "pacman_conf",
            "control character",
        ),
        (
            "    private_users: maybe\n",
            "private_users",
            "unknown private_users value `maybe`",
        ),
        (
            "    capabilities: [cap_net_admin]\n",
            "capabilities[0]",
            "did you mean `CAP_NET_ADMIN`?",
        ),
        (
            "    capabilities: [-CAP_X]\n",
            "capabilities[0]",
            "capability `-CAP_X`",
        ),
        (
            "    capabilities: [CAP_]\n",
            "capabilities[0]",
            "capability `CAP_`",
        ),
        (
            "    drop_capabilities: [all]\n",
            "drop_capabilities[0]",
            "only allowed in capabilities",
        ),
        (
            "    drop_capabilities: [CAP_NET-ADMIN]\n",
            "drop_capabilities[0]",
            "capability `CAP_NET-ADMIN`",
        ),
        (
            "    environment: {A-B: x}\n",
            "environment.A-B",
            "environment variable name `A-B`",
        ),
        (
            "    environment: {1A: x}\n",
            "environment.1A",
            "environment variable name `1A`",
        ),
        (
            "    environment: {A: \"x\\ny\"}\n",
            "environment.A",
            "the value of `A` contains a control character",
        ),
        (
            "    environment: {A: \"x\\u0000y\"}\n",
            "environment.A",
            "control character",
        ),
        ("    environment: {A: }\n", "environment.A", "has no value"),
        (
            "    environment: {A: [x]}\n",
            "environment.A",
            "an environment value must be a string",
        ),
        (
            "    binds: [srv]\n",
            "binds[0]",
            "bind path `srv` must be absolute",
        ),
        (
            "    binds: ['/srv/../etc']\n",
            "binds[0]",
            "contains a `..` component",
        ),
        (
            "    binds: [{host: /srv/a:b}]\n",
            "binds[0].host",
            "contains `:`",
        ),
        (
            "    binds: [{host: /a, machine: rel}]\n",
            "binds[0].machine",
            "machine path `rel` must be absolute",
        ),
        (
            "    binds: [{host: '/a b'}]\n",
            "binds[0].host",
            "contains whitespace",
        ),
        (
            "    binds: [{host: '/a\\b'}]\n",
            "binds[0].host",
            "contains `\\`",
        ),
        (
            "    binds: [{host: \"/a\\tb\"}]\n",
            "binds[0].host",
            "control character",
        ),
        (
            "    binds: [{machine: /a}]\n",
            "binds[0]",
            "a bind needs `host:`",
        ),
        (
            "    binds: ['/srv:ro']\n",
            "binds[0]",
            "write `/srv:/srv:ro`",
        ),
        ("    binds: ['/a:/b:rx']\n", "binds[0]", "bind option `rx`"),
        ("    binds: ['/a:/b:ro:x']\n", "binds[0]", "too many `:`"),
        (
            "    binds: ['/srv:/']\n",
            "binds[0]",
            "cannot cover the machine's root `/`",
        ),
        (
            "    binds: [{host: /srv, machine: //}]\n",
            "binds[0].machine",
            "cannot cover the machine's root",
        ),
        (
            "    binds: [/]\n",
            "binds[0]",
            "cannot cover the machine's root",
        ),
        ("    binds: [5]\n", "binds[0]", "expected a path"),
    ];
    for (extra, field, part) in cases {
        let err = errors(&web(extra));
        let d = &err.diagnostics[0];
        assert_eq!(err.diagnostics.len(), 1, "{extra}: {err}");
        assert_eq!(
            d.field.as_deref(),
            Some(&*format!("machines.web.{field}")),
            "{extra}: {err}"
        );
        assert!(d.message.contains(part), "{extra}: {err}");
        assert_eq!(d.line, Some(5), "{extra}: {err}");
    }
}

#[test]
fn dnf_repositories_are_checked() {
    let fedora = |repos: &str| {
        format!("machines:\n  f:\n    distro: fedora\n    release: 40\n    repos:\n{repos}")
    };
    let cases = [
        (
            "      - {id: 'my repo', url: 'http://x'}\n",
            "repos[0].id",
            "contains whitespace",
        ),
        (
            "      - {id: -x, url: 'http://x'}\n",
            "repos[0].id",
            "option",
        ),
        (
            "      - {id: .x, url: 'http://x'}\n",
            "repos[0].id",
            "must start with a letter or digit",
        ),
        (
            "      - {id: x, url: 'http://a/b,c'}\n",
            "repos[0].url",
            "contains `,`",
        ),
        (
            "      - {id: x, url: 'ftp://a'}\n",
            "repos[0].url",
            "must be an `http://`, `https://` or `file:/` URL",
        ),
        (
            "      - {id: x, url: 'http://'}\n",
            "repos[0].url",
            "has no host",
        ),
        ("      - {id: x}\n", "repos[0]", "a repository needs `url:`"),
        (
            "      - {url: 'http://a'}\n",
            "repos[0]",
            "a repository needs `id:`",
        ),
        (
            "      - {id: x, url: 'http://a'}\n      - {id: x, url: 'http://b'}\n",
            "repos[1].id",
            "already used by repos[0]",
        ),
        (
            "      - {id: x, url: 'http://a', gpgchek: false}\n",
            "repos[0].gpgchek",
            "did you mean `gpgcheck`?",
        ),
    ];
    for (repos, field, part) in cases {
        let err = errors(&fedora(repos));
        assert_eq!(err.diagnostics.len(), 1, "{repos}: {err}");
        let d = &err.diagnostics[0];
        assert_eq!(
            d.field.as_deref(),
            Some(&*format!("machines.f.{field}")),
            "{err}"
        );
        assert!(d.message.contains(part), "{repos}: {err}");
    }
}

#[test]
fn unknown_keys_in_new_mappings_suggest_the_field() {
    for (extra, field, suggestion) in [
        (
            "    bootstrap_options: {variants: x}\n",
            "bootstrap_options.variants",
            "variant",
        ),
        ("    network: {mod: veth}\n", "network.mod", "mode"),
        (
            "    binds: [{host: /a, readonly: true}]\n",
            "binds[0].readonly",
            "read_only",
        ),
        ("    autostrat: true\n", "autostrat", "autostart"),
        (
            "    capabilites: [CAP_NET_ADMIN]\n",
            "capabilites",
            "capabilities",
        ),
    ] {
        let err = errors(&web(extra));
        let d = &err.diagnostics[0];
        assert_eq!(
            d.field.as_deref(),
            Some(&*format!("machines.web.{field}")),
            "{err}"
        );
        assert!(
            d.message.contains(&format!("did you mean `{suggestion}`?")),
            "{err}"
        );
    }
}

#[test]
fn wrong_types_name_the_field() {
    for (extra, field) in [
        ("    network: 5\n", "network"),
        ("    binds: {a: b}\n", "binds"),
        ("    bootstrap_options: [x]\n", "bootstrap_options"),
        (
            "    bootstrap_options: {components: main}\n",
            "bootstrap_options.components",
        ),
        ("    capabilities: CAP_NET_ADMIN\n", "capabilities"),
        ("    environment: [A]\n", "environment"),
        ("    network: {ports: '80:80'}\n", "network.ports"),
    ] {
        let err = errors(&web(extra));
        assert_eq!(err.diagnostics.len(), 1, "{err}");
        let d = &err.diagnostics[0];
        assert_eq!(
            d.field.as_deref(),
            Some(&*format!("machines.web.{field}")),
            "{err}"
        );
        assert_eq!(d.line, Some(5), "{err}");
    }
}

#[test]
fn new_field_errors_in_defaults_are_reported_once_there() {
    let text = "defaults:\n  network: {mode: host, ports: ['80:80']}\n  capabilities: [x]\nmachines:\n  a: {distro: arch}\n  b: {distro: arch}\n";
    let err = errors(text);
    let fields: Vec<_> = err
        .diagnostics
        .iter()
        .filter_map(|d| d.field.as_deref())
        .collect();
    assert_eq!(
        fields,
        ["defaults.network.ports", "defaults.capabilities[0]"]
    );
}

#[test]
fn json_schema_describes_the_new_fields() {
    let schema = berth_schema::json_schema();
    let defs = &schema["$defs"];
    let machine = &defs["Machine"]["properties"];
    for field in [
        "bootstrapper",
        "bootstrap_options",
        "pacman_conf",
        "repos",
        "autostart",
        "network",
        "binds",
        "private_users",
        "capabilities",
        "drop_capabilities",
        "environment",
    ] {
        assert!(
            machine[field]["description"].is_string(),
            "{field}: {schema:#}"
        );
    }
    for object in ["BootstrapOptions", "Repo", "Network", "Bind"] {
        assert_eq!(
            defs[object]["additionalProperties"], false,
            "{object}: {schema:#}"
        );
    }
    assert_eq!(machine["autostart"]["type"][0], "boolean");
    assert_eq!(defs["Repo"]["required"], serde_json::json!(["id", "url"]));
    let bind = &defs["BindEntry"]["oneOf"];
    assert_eq!(bind[0]["type"], "string");
    assert_eq!(bind[1]["$ref"], "#/$defs/Bind");
    let text = schema.to_string();
    for word in [
        "mmdebstrap",
        "pacstrap",
        "identity",
        "veth",
        "^CAP_[A-Z_]+$",
        "^((tcp|udp):)?[0-9]{1,5}:[0-9]{1,5}$",
    ] {
        assert!(text.contains(word), "schema lacks {word}: {schema:#}");
    }
}

#[test]
fn storage_is_copy_or_overlay_and_merges_from_defaults() {
    use berth_schema::Storage;
    assert_eq!(only(&web("")).storage, Storage::Copy);
    assert_eq!(only(&web("    storage: copy\n")).storage, Storage::Copy);
    assert_eq!(
        only(&web("    storage: overlay\n")).storage,
        Storage::Overlay
    );
    let spec = load(
        "defaults:\n  storage: overlay\nmachines:\n  a:\n    distro: debian\n    release: bookworm\n  b:\n    distro: debian\n    release: bookworm\n    storage: copy\n",
    );
    assert_eq!(spec.machines["a"].storage, Storage::Overlay);
    assert_eq!(spec.machines["b"].storage, Storage::Copy);
    // Identity and no user namespacing go with an overlay.
    for users in ["identity", "\"no\""] {
        let m = only(&web(&format!(
            "    storage: overlay\n    private_users: {users}\n"
        )));
        assert_eq!(m.storage, Storage::Overlay);
    }

    let err = errors(&web("    storage: overlayfs\n"));
    let d = &err.diagnostics[0];
    assert_eq!(d.field.as_deref(), Some("machines.web.storage"));
    assert_eq!((d.line, d.column), (Some(5), Some(14)));
    assert!(err.to_string().contains("spec.yaml:5:14"), "{err}");
    assert!(err.to_string().contains("overlay"), "{err}");
}

#[test]
fn an_overlay_with_picked_private_users_is_refused_at_the_storage_field() {
    let err = errors(&web("    private_users: pick\n    storage: overlay\n"));
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    let d = &err.diagnostics[0];
    assert_eq!(d.field.as_deref(), Some("machines.web.storage"));
    assert_eq!((d.line, d.column), (Some(6), Some(14)));
    assert!(
        d.message.contains("does not go with private_users: pick"),
        "{d}"
    );
    assert!(err.to_string().contains("spec.yaml:6:14"), "{err}");

    // From the defaults: the error names the machine.
    let err = errors(
        "defaults:\n  storage: overlay\nmachines:\n  web:\n    distro: debian\n    release: bookworm\n    private_users: pick\n",
    );
    let d = &err.diagnostics[0];
    assert_eq!(d.field.as_deref(), Some("defaults.storage"));
    assert_eq!(d.line, Some(2));
    assert!(d.message.contains("machine `web`"), "{d}");
}
