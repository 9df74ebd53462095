//! Executing the network actions, the host side after every start, and
//! what destroy removes.

use std::sync::{Mutex, PoisonError};

use berth_schema::{Launcher, Machine};

use super::address::{self, parse_cidr};
use super::{effective_mode, hosts, link, nat, networkd};
use crate::drivers::guest;
use crate::error::EngineError;
use crate::host::Host;
use crate::model::action::Action;

/// Serialises allocations among the machines one apply runs in parallel
/// (the state lock keeps other berth processes out).
static ALLOCATING: Mutex<()> = Mutex::new(());

/// Runs one network action for `machine`. `leader` is the running guest's
/// init, if it runs.
pub fn execute(
    host: &dyn Host,
    machine: &Machine,
    action: &Action,
    leader: Option<i32>,
) -> Result<(), EngineError> {
    let name = &machine.name;
    let root = || host.open_root(&host.paths().machine_root(name));
    match action {
        Action::AllocateAddress { address, .. } => allocate(host, name, address),
        Action::WriteNetworkConfig { after, .. } => {
            root()?.write_atomic(networkd::PATH, after.as_bytes(), 0o644)?;
            if let Some(leader) = leader {
                reload_guest_networkd(host, name, leader)?;
            }
            Ok(())
        }
        Action::RemoveNetworkConfig { .. } => {
            root()?.remove_file(networkd::PATH)?;
            set_recorded(host, name, None)?;
            if let Some(leader) = leader {
                reload_guest_networkd(host, name, leader)?;
            }
            Ok(())
        }
        Action::WriteHosts { after, .. } => {
            root()?.write_atomic(hosts::PATH, after.as_bytes(), 0o644)?;
            Ok(())
        }
        Action::ConfigureHostLink { commands, .. } => link::configure(host, name, commands),
        Action::AddNat { address, .. } => nat::add(host, name, address),
        Action::RemoveNat { .. } => nat::remove(host, name),
        Action::ForwardPorts {
            address, forwards, ..
        } => nat::set_forwards(host, name, address.as_deref().unwrap_or_default(), forwards),
        other => Err(EngineError::State(format!(
            "{} is not a network action",
            other.describe()
        ))),
    }
}

/// Records `address` as machine `name`'s, after checking again, under the
/// lock, that no other machine berth manages holds it.
fn allocate(host: &dyn Host, name: &str, address: &str) -> Result<(), EngineError> {
    let _guard = ALLOCATING.lock().unwrap_or_else(PoisonError::into_inner);
    let cidr = parse_cidr(address).map_err(EngineError::State)?;
    let records = host.state().all()?;
    if let Some(holder) = address::taken_by_records(&records, name).get(&cidr.address) {
        return Err(EngineError::Stale {
            machine: name.to_owned(),
            message: format!(
                "address {} was given to machine {holder} since the plan was made; run plan again",
                cidr.address
            ),
        });
    }
    set_recorded(host, name, Some(address.to_owned()))
}

/// Sets the address in machine `name`'s record.
fn set_recorded(host: &dyn Host, name: &str, address: Option<String>) -> Result<(), EngineError> {
    let store = host.state();
    let mut record = store
        .load(name)?
        .ok_or_else(|| EngineError::State(format!("machine {name} has a root but no record")))?;
    record.address = address;
    store.save(&record)
}

/// Makes the running guest's networkd read its files again and apply them
/// to `host0` (starting it first, in case it was only just enabled).
fn reload_guest_networkd(host: &dyn Host, name: &str, leader: i32) -> Result<(), EngineError> {
    for argv in [
        vec!["systemctl", "start", networkd::UNIT],
        vec!["networkctl", "reload"],
        vec!["networkctl", "reconfigure", "host0"],
    ] {
        let argv: Vec<String> = argv.into_iter().map(str::to_owned).collect();
        guest::run(host, name, Some(leader), &argv, &[])?;
    }
    Ok(())
}

/// After machine `machine` started with `launcher`: configures the host
/// side of its link where berth does (see [`link`]). The link is new at
/// every start.
pub fn after_start(
    host: &dyn Host,
    machine: &Machine,
    launcher: Launcher,
) -> Result<(), EngineError> {
    let name = &machine.name;
    let host_dhcp = host.facts().host_dhcp;
    let mode = effective_mode(&machine.network, launcher, host_dhcp);
    let Some(link) = link::managed(name, &machine.network, mode, host_dhcp) else {
        return Ok(());
    };
    let Some(address) = host
        .state()
        .load(name)?
        .and_then(|r| r.address)
        .and_then(|text| parse_cidr(&text).ok())
    else {
        return Ok(());
    };
    let gateway = address::gateway(&machine.network, address);
    link::configure(host, name, &link::commands(&link, gateway, address))
}

/// What `berth destroy` removes besides the root: the machine's NAT rule
/// (and berth's table and the forwarding it turned on, with the last one).
/// Its links went when it stopped.
pub fn teardown(host: &dyn Host, name: &str) -> Result<(), EngineError> {
    nat::remove_all(host, name)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use berth_schema::{Address, BootstrapperKind, DesiredState, Ipv4Cidr, Network};

    use super::*;
    use crate::engine::Engine;
    use crate::host::fake::FakeHost;
    use crate::report::Silent;

    fn machine(name: &str, state: DesiredState, nat: bool) -> Machine {
        Machine::builder(name)
            .packages(["systemd", "dbus"])
            .bootstrapper(BootstrapperKind::Debootstrap)
            .state(state)
            .network(Network {
                address: Some(Address::Auto),
                pool: Some(Ipv4Cidr {
                    address: std::net::Ipv4Addr::new(10, 9, 0, 0),
                    prefix: 24,
                }),
                nat,
                hosts: true,
                ..Network::default()
            })
            .build()
    }

    /// networkd as the fake's systemctl would have left it enabled.
    fn enable_networkd(fake: &FakeHost, name: &str) {
        let wants = fake
            .paths()
            .machine_root(name)
            .join("etc/systemd/system/multi-user.target.wants");
        std::fs::create_dir_all(&wants).unwrap();
        let link = wants.join("systemd-networkd.service");
        if !link.exists() {
            std::os::unix::fs::symlink("/usr/lib/systemd/system/systemd-networkd.service", link)
                .unwrap();
        }
    }

    fn read(fake: &FakeHost, name: &str, rel: &str) -> String {
        let rel = rel.trim_start_matches('/');
        std::fs::read_to_string(fake.paths().machine_root(name).join(rel)).unwrap_or_default()
    }

    #[test]
    fn two_auto_machines_of_one_run_get_distinct_recorded_addresses_and_list_each_other() {
        let fake = Arc::new(FakeHost::new(false));
        let engine = Engine::on(fake.clone());
        let a = machine("a", DesiredState::Stopped, false);
        let b = machine("b", DesiredState::Stopped, false);
        let plan = engine.plan([&a, &b]).unwrap();
        for (m, approved) in [&a, &b].into_iter().zip(&plan.machines) {
            engine.apply_machine(m, approved, false, &Silent).unwrap();
        }
        let address = |name: &str| fake.state().load(name).unwrap().unwrap().address;
        assert_eq!(address("a").as_deref(), Some("10.9.0.2/24"));
        assert_eq!(address("b").as_deref(), Some("10.9.0.3/24"));
        let config = read(&fake, "b", networkd::PATH);
        assert!(
            config.contains("Address=10.9.0.3/24\n") && config.contains("Gateway=10.9.0.1\n"),
            "{config}"
        );
        assert!(
            read(&fake, "a", "etc/hosts").contains("10.9.0.3\tb\n"),
            "{}",
            read(&fake, "a", "etc/hosts")
        );
        assert!(read(&fake, "b", "etc/hosts").contains("10.9.0.2\ta\n"));
        // Converged: the next plan keeps the recorded addresses.
        enable_networkd(&fake, "a");
        enable_networkd(&fake, "b");
        let plan = engine.plan([&a, &b]).unwrap();
        assert!(plan.is_empty(), "{:?}", plan.machines);
    }

    #[test]
    fn an_address_given_away_since_the_plan_is_refused_at_apply() {
        let fake = Arc::new(FakeHost::new(false));
        let engine = Engine::on(fake.clone());
        let a = machine("a", DesiredState::Stopped, false);
        let b = machine("b", DesiredState::Stopped, false);
        // Planned alone, each gets the pool's first free address.
        let plan_a = engine.plan([&a]).unwrap();
        let plan_b = engine.plan([&b]).unwrap();
        engine
            .apply_machine(&a, &plan_a.machines[0], false, &Silent)
            .unwrap();
        let err = engine
            .apply_machine(&b, &plan_b.machines[0], false, &Silent)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("address 10.9.0.2 was given to machine a since the plan was made"),
            "{err}"
        );
        assert_eq!(
            fake.state().load("b").unwrap().and_then(|r| r.address),
            None
        );
        // Planned again, b gets the next one.
        let plan_b = engine.plan([&b]).unwrap();
        engine
            .apply_machine(&b, &plan_b.machines[0], false, &Silent)
            .unwrap();
        assert_eq!(
            fake.state()
                .load("b")
                .unwrap()
                .and_then(|r| r.address)
                .as_deref(),
            Some("10.9.0.3/24")
        );
    }

    #[test]
    fn a_start_configures_the_host_side_and_nat_turns_forwarding_on_and_off_again() {
        let fake = Arc::new(FakeHost::new(false));
        let forward = fake.proc_dir().join("sys/net/ipv4/ip_forward");
        std::fs::create_dir_all(forward.parent().unwrap()).unwrap();
        std::fs::write(&forward, "0\n").unwrap();
        let engine = Engine::on(fake.clone());
        let a = machine("a", DesiredState::Running, true);
        let plan = engine.plan([&a]).unwrap();
        engine
            .apply_machine(&a, &plan.machines[0], false, &Silent)
            .unwrap();
        let lines = fake.lines();
        let at = |needle: &str| {
            lines
                .iter()
                .position(|l| l == needle)
                .unwrap_or_else(|| panic!("{needle}: {lines:#?}"))
        };
        let rule = at(
            "nft add rule ip berth postrouting ip saddr 10.9.0.2 masquerade comment \"berth:a\"",
        );
        let marker = at("nft add chain ip berth ip_forward_was_0");
        let start = lines
            .iter()
            .position(|l| l.starts_with("systemd-nspawn --quiet --boot"))
            .unwrap();
        let link = at("ip addr replace 10.9.0.1/32 dev ve-a");
        at("ip link set dev ve-a up");
        at("ip route replace 10.9.0.2/32 dev ve-a");
        assert!(
            rule < marker && marker < start && start < link,
            "{lines:#?}"
        );
        assert_eq!(std::fs::read_to_string(&forward).unwrap(), "1\n");
        // Destroy: the fake's nft shows a table with a's rule and the mark.
        fake.clear();
        teardown_with_table(&fake, "a");
        assert_eq!(
            fake.lines()
                .iter()
                .filter(|l| l.starts_with("nft delete"))
                .collect::<Vec<_>>(),
            [
                "nft delete rule ip berth postrouting handle 3",
                "nft delete table ip berth"
            ]
        );
        assert_eq!(std::fs::read_to_string(&forward).unwrap(), "0\n");
    }

    /// [`nat::remove`] against a table holding machine `name`'s rule and the
    /// forwarding mark (the fake's `nft` lists nothing by itself).
    fn teardown_with_table(fake: &FakeHost, name: &str) {
        let table = nat::parse(&format!(
            r#"{{"nftables": [{{"chain": {{"name": "ip_forward_was_0"}}}},
               {{"rule": {{"chain": "postrouting", "handle": 3, "comment": "berth:{name}",
                 "expr": [{{"match": {{"left": {{"payload": {{"field": "saddr"}}}}, "right": "10.9.0.2"}}}}]}}}}]}}"#
        ));
        assert!(table.forwarding_marker);
        nat::remove_from(fake, name, &table).unwrap();
    }
}
