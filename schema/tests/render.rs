//! Snapshots of rendered errors: what a user sees for representative mistakes.

use std::path::Path;

use berth_schema::load_str;

/// The rendered error for `text` loaded as `spec.yaml`.
fn render(text: &str) -> String {
    match load_str(text, Path::new("spec.yaml")) {
        Ok(spec) => panic!("accepted: {spec:?}"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn typo_in_field_name() {
    insta::assert_snapshot!(render(
        "machines:\n  web:\n    distro: debian\n    release: bookworm\n    pakages: [systemd]\n"
    ));
}

#[test]
fn option_like_package_and_unit() {
    insta::assert_snapshot!(render(
        "machines:
  web:
    distro: debian
    release: bookworm
    packages: [systemd, -oAPT::Get::AllowUnauthenticated=1]
    units:
      enable: [sshd, ../../etc/passwd]
      mask: [sshd.service]
"
    ));
}

#[test]
fn plaintext_password_is_never_echoed() {
    let out = render(
        "machines:
  web:
    distro: arch
    root_password: r00tpw
  db:
    distro: arch
    root_password:
      password: r00tpw
  cache:
    distro: arch
    root_password:
      hash: r00tpw
",
    );
    assert!(!out.contains("r00tpw"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn defaults_and_missing_fields() {
    insta::assert_snapshot!(render(
        "defaults:
  launcher: nspwn
machines:
  web:
    distro: debian
  web_1:
    distro: debain
  db: {}
"
    ));
}

#[test]
fn wrong_type() {
    insta::assert_snapshot!(render(
        "machines:\n  web:\n    distro: arch\n    packages: 5\n"
    ));
}

#[test]
fn tabs_and_control_characters_are_shown_safely() {
    insta::assert_snapshot!(render(
        "machines:\n  web:\n    distro: arch\n\thostname: x\n"
    ));
    insta::assert_snapshot!(render(
        "machines:\n  web:\n    distro: arch\n    securetty: [\"tty\\u001b[2J\"]\n"
    ));
}

#[test]
fn bootstrapper_does_not_fit_distro() {
    insta::assert_snapshot!(render(
        "defaults:
  bootstrapper: pacstrap
machines:
  web:
    distro: debian
    release: bookworm
    bootstrapper: dnf
    pacman_conf: ./pacman.conf
  box:
    distro: fedora
    release: 40
"
    ));
}

#[test]
fn network_errors() {
    insta::assert_snapshot!(render(
        "machines:
  web:
    distro: arch
    network:
      mode: private
      ports: [\"tcp:8080:80\", \"sctp:1:2\", \"tcp:99999:1\"]
  db:
    distro: arch
    network: {zone: db, bridge: br0}
"
    ));
}

#[test]
fn bind_errors() {
    insta::assert_snapshot!(render(
        "machines:
  web:
    distro: arch
    binds:
      - srv/www
      - /srv/../etc:/etc
      - host: /srv/a:b
      - host: /srv/data
        machine: /
      - /srv/x:/data
      - {host: /srv/y, machine: /data/, read_only: 1}
"
    ));
}

#[test]
fn booleans_capabilities_and_environment() {
    insta::assert_snapshot!(render(
        "machines:
  web:
    distro: arch
    autostart: \"yes\"
    private_users: yes
    capabilities: [cap_net_admin, -CAP_X]
    environment:
      MY-VAR: x
      GREETING: \"hello\\nworld\"
"
    ));
}

#[test]
fn addressing_and_runtime_errors() {
    insta::assert_snapshot!(render(
        "machines:
  web:
    distro: arch
    network:
      mode: host
      address: 10.0.0.5/24
  db:
    distro: arch
    network:
      address: 10.0.0.0/24
      pool: 10.231.0.0/16
      gateway: 10.1.0.1
      nat: true
    resources:
      memory_max: 512MB
      memory_high: 1G
      cpu_quota: 150
      io_weight: 0
      tasks_max: max
    devices:
      - {path: /dev/fuse, access: rx}
      - {path: /sys/kernel}
      - path: /dev/./fuse
    nspawn_extra:
      Exec:
        Bind: /srv
        boot: true
        Environment: [A=1, [B=2]]
      Files:
        Volatile: ~
"
    ));
    insta::assert_snapshot!(render(
        "machines:
  web:
    distro: arch
    resources: {memory_max: 1G, memory_high: 2G, cpu_wieght: 5}
"
    ));
    insta::assert_snapshot!(render(
        "machines:
  web:
    distro: arch
    nspawn_extra:
      exec: {Boot: true}
"
    ));
}

#[test]
fn files_users_keys_and_credentials_errors() {
    let out = render(
        "vars: {my-var: 1}
machines:
  web:
    distro: arch
    files:
      /etc/motd: {content: hi, mode: 0644}
      /run/app.conf: {content: x}
      /etc/app: {content: x, link: /y}
      /etc/issue: {content: x}
      /etc/issue/x: {type: directory}
      /etc/gone: {state: absent, owner: root}
      /etc/token: {secret: s3cr3t}
    users:
      root: {}
      bob: {state: absent, shell: /bin/sh}
      alice:
        groups: [sudo, sudo]
        password: s3cr3t
        ssh_authorized_keys:
          - ssh-ed25519
    ssh_authorized_keys: ['-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXk']
    credentials:
      db: s3cr3t
      a/b: {env: X}
",
    );
    assert!(!out.contains("s3cr3t") && !out.contains("b3Blbn"), "{out}");
    insta::assert_snapshot!(out);
}
