//! What observation finds of a machine's network beyond its `.nspawn`
//! file: the guest's networkd file and `/etc/hosts` (read confined to the
//! root), whether the guest has networkd, the address berth recorded and
//! the ones other machines hold, the host's nameservers, the host side of a
//! running machine's link (`ip`), and its NAT rule (`nft`). The commands
//! run only for machines that need them: `ip` for a running machine whose
//! link berth configures, `nft` for one with `nat:` or an address.

use std::net::Ipv4Addr;

use berth_schema::{Ipv4Cidr, Machine};

use super::address::{self, Peer, RunAddresses, Taken};
use super::link::{self, LinkFacts};
use super::{effective_mode, hosts, nat, networkd};
use crate::confined::{FileKind, Root};
use crate::drivers::units::{self, UnitState};
use crate::error::EngineError;
use crate::host::Host;
use crate::host::state::MachineRecord;
use crate::model::observed::RunState;

/// The host's resolver configuration, whose nameservers a machine with an
/// address gets.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// A machine's network as observed; part of
/// [`Observed`](crate::model::observed::Observed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkObservation {
    /// The address berth's record holds for the machine.
    pub recorded: Option<Ipv4Cidr>,
    /// Who else holds which address: berth's records of other machines and,
    /// when planned with others, what the run gives them.
    pub taken: Taken,
    /// The spec's other machines with an address (for `/etc/hosts`).
    pub peers: Vec<Peer>,
    /// What the root holds (None: no root).
    pub guest: Option<GuestNetwork>,
    /// The host's IPv4 nameservers a machine can reach (not loopback).
    pub nameservers: Vec<Ipv4Addr>,
    /// The host side of the running machine's link, where berth configures
    /// it (None: not running, or not berth's to configure).
    pub host_link: Option<LinkFacts>,
    /// The machine's NAT rule and the host's forwarding.
    pub nat: NatObservation,
}

/// The network configuration inside a root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestNetwork {
    /// systemd-networkd's enablement (None: the root has no unit file for it).
    pub networkd: Option<UnitState>,
    /// Whether `/etc/systemd/network` is a directory.
    pub network_dir: bool,
    /// berth's networkd file for `host0`, if present.
    pub config: Option<String>,
    /// `/etc/hosts`, if present.
    pub hosts: Option<String>,
}

/// NAT as observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatObservation {
    /// Whether `nft` is installed.
    pub nft: bool,
    /// The source addresses of the machine's masquerade rules in berth's table.
    pub rules: Vec<String>,
    /// The comments of the machine's port forwarding rules, sorted, once each.
    pub forwards: Vec<String>,
    /// The host's `net.ipv4.ip_forward` (None: not read).
    pub forwarding: Option<bool>,
}

/// Reads the guest's side from its root.
pub fn read_guest(root: &Root) -> Result<GuestNetwork, EngineError> {
    let networkd = if units::unit_file_exists(root, networkd::UNIT)? {
        Some(units::native_state(root, networkd::UNIT)?)
    } else {
        None
    };
    Ok(GuestNetwork {
        networkd,
        network_dir: root.kind(networkd::DIR)? == Some(FileKind::Dir),
        config: root.read_string(networkd::PATH)?,
        hosts: root.read_string(hosts::PATH)?,
    })
}

/// Observes `machine`'s network on `host`; `guest` is what [`read_guest`]
/// found in its root, `run` whether it runs.
pub fn observe(
    host: &dyn Host,
    machine: &Machine,
    record: Option<&MachineRecord>,
    run: &RunState,
    guest: Option<GuestNetwork>,
) -> Result<NetworkObservation, EngineError> {
    let name = &machine.name;
    let net = &machine.network;
    let recorded = record
        .and_then(|r| r.address.as_deref())
        .and_then(|text| address::parse_cidr(text).ok());
    // Other machines' addresses matter only to a machine with one; reading
    // every record for every machine would make a plan quadratic.
    let taken = if net.address.is_some() || recorded.is_some() {
        address::taken_by_records(&host.state().all()?, name)
    } else {
        Taken::default()
    };
    let nameservers = if net.address.is_some() {
        std::fs::read_to_string(RESOLV_CONF)
            .map(|text| networkd::nameservers(&text))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let host_link = match run {
        RunState::Running { launcher, .. } if recorded.is_some() || net.address.is_some() => {
            let mode = effective_mode(net, *launcher, host.facts().host_dhcp);
            match link::managed(name, net, mode, host.facts().host_dhcp) {
                Some(l) => Some(link::observe(host, &l)?),
                None => None,
            }
        }
        _ => None,
    };
    let nft = host.which(nat::NFT).is_some();
    let (rules, forwards) = if nft && (net.nat || recorded.is_some() || net.address.is_some()) {
        nat::observe(host, name)?
    } else {
        (Vec::new(), Vec::new())
    };
    let forwarding = if net.nat { nat::forwarding(host) } else { None };
    Ok(NetworkObservation {
        recorded,
        taken,
        peers: Vec::new(),
        guest,
        nameservers,
        host_link,
        nat: NatObservation {
            nft,
            rules,
            forwards,
            forwarding,
        },
    })
}

impl NetworkObservation {
    /// Adds what planning `name` together with the rest of `run` knows:
    /// the addresses the run gives other machines, and the spec's peers.
    pub fn with_run(&mut self, name: &str, run: &RunAddresses) {
        self.taken = run.taken_by_others(name);
        self.peers = run.peers_of(name);
    }

    /// Takes the peers from an approved plan (its `/etc/hosts` block), to
    /// plan a new root's configuration again once it exists, as approved.
    pub fn carry_approved(&mut self, approved: &[crate::model::action::Action]) {
        for action in approved {
            if let crate::model::action::Action::WriteHosts {
                peers,
                remove: false,
                ..
            } = action
            {
                self.peers = peers.clone();
            }
        }
    }

    /// What a fingerprint covers: the files berth writes in the root.
    pub fn fingerprint_text(&self) -> String {
        match &self.guest {
            Some(g) => format!("{:?} {:?} {:?}", g.networkd, g.config, g.hosts),
            None => String::new(),
        }
    }
}
