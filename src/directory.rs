//! The directory: which backend broker stands behind each identity slot, and which
//! address clients are told for each identity.
//!
//! Slots are handed out densely, in order of first sight, and never reused for another
//! broker: a client that cached `host:port` for an identity must keep reaching the same
//! broker through it. Broker ids may be sparse (100, 200, 300) without widening the port
//! range. Every rewrite of a broker address goes through [`Directory::advertise`], so
//! there is exactly one place that decides what a client may see.
//!
//! A standalone node learns slots itself and advertises every identity at its own host.
//! In a fleet, slots and owners are decided through Raft so that every node gives the same
//! answer; the cluster module installs them with [`Directory::install_routes`], and what
//! this node sees of the backend is only published for the leader's controller.
//!
//! In a fleet, an identity may also have an owner per zone: a client whose zone is known
//! is told the address of its zone's owner, when its zone has one (see `cluster::routes`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, Guard};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;
use tokio::sync::watch;

use flotilla_config::DEFAULT_CLUSTER;

use crate::proxy::filters::topic_names::TopicNames;
use crate::proxy::filters::zone::Placement;
use crate::stream::Transport;

/// A real broker of the backend cluster, as its own Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broker {
    pub id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
}

impl Broker {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Where this node serves identities.
#[derive(Debug, Clone)]
pub struct AdvertisedNode {
    pub host: String,
    pub identity_port_base: u16,
    /// Where identities are served over TLS, if this node has TLS listeners.
    pub tls_identity_port_base: Option<u16>,
    pub max_identities: u16,
}

/// An identity as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityView {
    pub id: i32,
    pub slot: u16,
    /// The backend cluster of the broker behind it.
    pub cluster: Arc<str>,
    pub address: String,
    pub broker: Broker,
    pub owner: Option<u64>,
    /// Per zone, the node that serves the identity to that zone's clients.
    pub zone_owners: BTreeMap<String, u64>,
}

/// One identity as the fleet decided it: its slot, broker and advertised owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub identity: i32,
    pub slot: u16,
    /// The backend cluster of `broker`.
    pub cluster: Arc<str>,
    /// The broker behind the identity; its id is the identity's.
    pub broker: Broker,
    pub owner: Option<u64>,
    /// `host:port` plaintext clients are told; `None` leaves the identity out of their
    /// responses.
    pub advertised: Option<(String, u16)>,
    /// The same for TLS clients: the owner's TLS identity port.
    pub advertised_tls: Option<(String, u16)>,
    /// The answers for clients of each zone that has live nodes.
    pub zones: Vec<ZoneRoute>,
}

/// An identity's owner and addresses for the clients of one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRoute {
    pub zone: String,
    pub owner: Option<u64>,
    pub advertised: Option<(String, u16)>,
    pub advertised_tls: Option<(String, u16)>,
}

#[derive(Debug, Default, Clone)]
struct Slots {
    brokers: Vec<Broker>,
    /// The backend cluster of each slot's broker.
    clusters: Vec<Arc<str>>,
    by_id: HashMap<i32, u16>,
    /// Fleet mode only: what the committed table says of each identity.
    routes: Option<HashMap<i32, Advertised>>,
}

/// An identity's owner and the addresses clients are told, ready for rewrites.
#[derive(Debug, Clone)]
struct Advertised {
    owner: Option<u64>,
    plaintext: Option<(StrBytes, i32)>,
    tls: Option<(StrBytes, i32)>,
    /// The same per zone; a handful at most, so a list.
    zones: Vec<(String, Advertised)>,
}

impl Advertised {
    fn new(
        owner: Option<u64>,
        plaintext: Option<(String, u16)>,
        tls: Option<(String, u16)>,
    ) -> Advertised {
        Advertised {
            owner,
            plaintext: wire_address(plaintext),
            tls: wire_address(tls),
            zones: Vec::new(),
        }
    }

    /// The answer for a client of `zone` (its zone's owner when the zone has live nodes,
    /// else the fleet-wide one) over `transport`.
    fn over(&self, transport: Transport, zone: Option<&str>) -> Option<&(StrBytes, i32)> {
        let chosen = zone
            .and_then(|zone| self.zones.iter().find(|(z, _)| z == zone))
            .map_or(self, |(_, advertised)| advertised);
        match transport {
            Transport::Plaintext => chosen.plaintext.as_ref(),
            Transport::Tls => chosen.tls.as_ref(),
        }
    }
}

fn wire_address(address: Option<(String, u16)>) -> Option<(StrBytes, i32)> {
    address.map(|(host, port)| (StrBytes::from_string(host), i32::from(port)))
}

/// Readers (every rewritten response) take a lock-free snapshot of the slots; the rare
/// writers (a new broker, a new committed table) build a new one under a mutex and swap
/// it in.
pub struct Directory {
    node: AdvertisedNode,
    advertised_host: StrBytes,
    slots: ArcSwap<Slots>,
    writing: Mutex<()>,
    slot_count: watch::Sender<usize>,
    observed: watch::Sender<Vec<Broker>>,
    /// Topic names by id, as Metadata responses (the clients' and the node's own) gave
    /// them; for filters that name topics a request gives by id.
    pub topic_names: Arc<TopicNames>,
    /// What places clients in zones besides the control state (their racks, the node's
    /// configured CIDR map).
    pub placement: Arc<Placement>,
}

/// The name of the cluster a standalone node serves, shared.
fn default_cluster() -> Arc<str> {
    static DEFAULT: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    DEFAULT.get_or_init(|| Arc::from(DEFAULT_CLUSTER)).clone()
}

/// A slot was wanted beyond `node.max_identities`.
#[derive(Debug, thiserror::Error)]
#[error("broker {broker_id} needs identity slot {slot}, beyond node.max_identities = {max}")]
pub struct SlotsExhausted {
    pub broker_id: i32,
    pub slot: usize,
    pub max: u16,
}

/// The address an operator is shown for an identity: plaintext, else TLS, else none.
fn shown(advertised: &Advertised) -> String {
    match advertised.plaintext.as_ref().or(advertised.tls.as_ref()) {
        Some((host, port)) => format!("{host}:{port}"),
        None => String::new(),
    }
}

impl Directory {
    pub fn new(node: AdvertisedNode) -> Self {
        Directory {
            advertised_host: StrBytes::from_string(node.host.clone()),
            node,
            slots: ArcSwap::default(),
            writing: Mutex::new(()),
            slot_count: watch::Sender::new(0),
            observed: watch::Sender::new(Vec::new()),
            topic_names: Arc::default(),
            placement: Arc::default(),
        }
    }

    /// The same directory, placing clients with `placement`.
    pub fn with_placement(mut self, placement: Placement) -> Self {
        self.placement = Arc::new(placement);
        self
    }

    /// Puts the node in fleet mode with the slots and owners the fleet committed.
    pub fn install_routes(&self, mut routes: Vec<Route>) {
        routes.sort_by_key(|r| r.slot);
        let count = {
            let _writing = self.lock_writes();
            let mut slots = Slots::default();
            let mut table = HashMap::new();
            for route in routes {
                // Slots are dense in a committed table; a gap would shift ports, so stop.
                if usize::from(route.slot) != slots.brokers.len() {
                    tracing::error!(slot = route.slot, "gap in the committed slot table");
                    break;
                }
                slots.by_id.insert(route.identity, route.slot);
                slots.brokers.push(route.broker);
                slots.clusters.push(route.cluster);
                let mut advertised =
                    Advertised::new(route.owner, route.advertised, route.advertised_tls);
                advertised.zones = route
                    .zones
                    .into_iter()
                    .map(|z| {
                        let zoned = Advertised::new(z.owner, z.advertised, z.advertised_tls);
                        (z.zone, zoned)
                    })
                    .collect();
                table.insert(route.identity, advertised);
            }
            slots.routes = Some(table);
            let count = slots.brokers.len();
            self.slots.store(Arc::new(slots));
            count
        };
        self.slot_count
            .send_if_modified(|c| std::mem::replace(c, count) != count);
    }

    /// The brokers this node last saw in the backend's own Metadata.
    pub fn watch_observed(&self) -> watch::Receiver<Vec<Broker>> {
        self.observed.subscribe()
    }

    /// Records brokers seen in a backend Metadata response: new ids get the next slots,
    /// known ids get their current address.
    pub fn learn<'a>(
        &self,
        brokers: impl IntoIterator<Item = &'a Broker>,
    ) -> Result<(), SlotsExhausted> {
        let brokers: Vec<&Broker> = brokers.into_iter().collect();
        self.observed
            .send_replace(brokers.iter().map(|b| (*b).clone()).collect());
        let mut added = false;
        let mut result = Ok(());
        {
            let _writing = self.lock_writes();
            if self.slots.load().routes.is_some() {
                return Ok(()); // in a fleet, the committed table decides slots
            }
            let mut slots = Slots::clone(&self.slots.load());
            for broker in brokers {
                match slots.by_id.get(&broker.id) {
                    Some(&slot) => {
                        let known = &mut slots.brokers[usize::from(slot)];
                        if known != broker {
                            *known = broker.clone();
                        }
                    }
                    None if slots.brokers.len() < usize::from(self.node.max_identities) => {
                        let slot = slots.brokers.len() as u16;
                        slots.by_id.insert(broker.id, slot);
                        slots.brokers.push(broker.clone());
                        slots.clusters.push(default_cluster());
                        added = true;
                    }
                    None => {
                        result = Err(SlotsExhausted {
                            broker_id: broker.id,
                            slot: slots.brokers.len(),
                            max: self.node.max_identities,
                        })
                    }
                }
            }
            self.slots.store(Arc::new(slots));
        }
        if added {
            let count = self.read().brokers.len();
            self.slot_count.send_replace(count);
        }
        result
    }

    /// The address clients of `transport` in `zone` are told for broker `id`, learning the
    /// broker first if this is its first sighting. `None` when no slot is left for it, or
    /// its owner has no listener of that transport.
    pub fn advertise(
        &self,
        broker: &Broker,
        transport: Transport,
        zone: Option<&str>,
    ) -> Option<(StrBytes, i32)> {
        if let Some(routes) = &self.read().routes {
            return routes.get(&broker.id)?.over(transport, zone).cloned();
        }
        if self.slot_of(broker.id).is_none() {
            if let Err(e) = self.learn([broker]) {
                tracing::error!("{e}; its address is left out of responses");
            }
        }
        let slot = self.slot_of(broker.id)?;
        let port = self.port_of(slot, transport)?;
        Some((self.advertised_host.clone(), i32::from(port)))
    }

    /// The broker behind a slot, as `host:port`.
    pub fn upstream(&self, slot: u16) -> Option<String> {
        self.read()
            .brokers
            .get(usize::from(slot))
            .map(Broker::address)
    }

    /// The backend cluster of the broker behind a slot.
    pub fn cluster_of_slot(&self, slot: u16) -> Option<Arc<str>> {
        self.read().clusters.get(usize::from(slot)).cloned()
    }

    /// Every known broker address of the cluster `default`, in slot order.
    pub fn upstreams(&self) -> Vec<String> {
        self.upstreams_of(DEFAULT_CLUSTER)
    }

    /// Every known broker address of `cluster`, in slot order.
    pub fn upstreams_of(&self, cluster: &str) -> Vec<String> {
        let slots = self.read();
        let of_cluster = slots.clusters.iter().map(|c| &**c == cluster);
        slots
            .brokers
            .iter()
            .zip(of_cluster)
            .filter(|(_, wanted)| *wanted)
            .map(|(b, _)| b.address())
            .collect()
    }

    pub fn slot_of(&self, broker_id: i32) -> Option<u16> {
        self.read().by_id.get(&broker_id).copied()
    }

    /// This node's port for identity slot `slot` over `transport`, if it listens on one.
    pub fn port_of(&self, slot: u16, transport: Transport) -> Option<u16> {
        let base = match transport {
            Transport::Plaintext => self.node.identity_port_base,
            Transport::Tls => self.node.tls_identity_port_base?,
        };
        Some(base + slot)
    }

    /// The rack of the broker behind `slot`, if the backend is rack-aware.
    pub fn rack_of_slot(&self, slot: u16) -> Option<String> {
        self.read().brokers.get(usize::from(slot))?.rack.clone()
    }

    pub fn identity_of_slot(&self, slot: u16) -> Option<i32> {
        self.read().brokers.get(usize::from(slot)).map(|b| b.id)
    }

    /// Follows the number of slots, so listeners can be opened for new ones.
    pub fn watch_slots(&self) -> watch::Receiver<usize> {
        self.slot_count.subscribe()
    }

    pub fn identities(&self) -> Vec<IdentityView> {
        let slots = self.read();
        slots
            .brokers
            .iter()
            .enumerate()
            .map(|(slot, broker)| {
                let routed = slots.routes.as_ref().map(|r| r.get(&broker.id));
                let (owner, address) = match routed {
                    Some(Some(advertised)) => (advertised.owner, shown(advertised)),
                    Some(None) => (None, String::new()),
                    None => (None, self.own_address(slot as u16)),
                };
                let zone_owners = routed
                    .flatten()
                    .map(|a| {
                        let owned = a.zones.iter();
                        owned
                            .filter_map(|(zone, z)| Some((zone.clone(), z.owner?)))
                            .collect()
                    })
                    .unwrap_or_default();
                IdentityView {
                    id: broker.id,
                    slot: slot as u16,
                    cluster: slots.clusters[slot].clone(),
                    address,
                    broker: broker.clone(),
                    owner,
                    zone_owners,
                }
            })
            .collect()
    }

    /// Every identity as the admin API shows it.
    pub fn identity_summaries(&self) -> Vec<crate::api::IdentitySummary> {
        self.identities()
            .into_iter()
            .map(|v| crate::api::IdentitySummary {
                id: v.id,
                slot: v.slot,
                cluster: v.cluster.to_string(),
                owner: v.owner,
                address: v.address,
                broker: v.broker.address(),
                rack: v.broker.rack,
                zone_owners: v.zone_owners,
            })
            .collect()
    }

    /// This node's address for a slot, plaintext unless it only listens over TLS.
    fn own_address(&self, slot: u16) -> String {
        let port = self
            .port_of(slot, Transport::Plaintext)
            .or_else(|| self.port_of(slot, Transport::Tls));
        port.map_or_else(String::new, |p| format!("{}:{p}", self.node.host))
    }

    fn read(&self) -> Guard<Arc<Slots>> {
        self.slots.load()
    }

    fn lock_writes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writing.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn broker(id: i32, port: u16) -> Broker {
        Broker {
            id,
            host: "10.9.9.9".into(),
            port,
            rack: None,
        }
    }

    pub fn directory(max: u16) -> Directory {
        Directory::new(AdvertisedNode {
            host: "proxy.example".into(),
            identity_port_base: 9200,
            tls_identity_port_base: Some(9300),
            max_identities: max,
        })
    }

    #[test]
    fn sparse_ids_get_dense_stable_slots() {
        let dir = directory(8);
        dir.learn(&[broker(300, 1), broker(100, 2)]).unwrap();
        dir.learn(&[broker(200, 3), broker(100, 4)]).unwrap();
        assert_eq!(dir.slot_of(300), Some(0));
        assert_eq!(dir.slot_of(100), Some(1));
        assert_eq!(dir.slot_of(200), Some(2));
        assert_eq!(dir.upstream(1).as_deref(), Some("10.9.9.9:4"));
        assert_eq!(*dir.watch_slots().borrow(), 3);
    }

    #[test]
    fn fleet_routes_replace_local_learning() {
        let dir = directory(8);
        dir.learn(&[broker(1, 1)]).unwrap();
        dir.install_routes(vec![
            Route {
                identity: 2,
                slot: 1,
                cluster: default_cluster(),
                broker: broker(2, 22),
                owner: Some(7),
                advertised: None,
                advertised_tls: None,
                zones: Vec::new(),
            },
            Route {
                identity: 1,
                slot: 0,
                cluster: default_cluster(),
                broker: broker(1, 11),
                owner: Some(7),
                advertised: Some(("node7".into(), 9200)),
                advertised_tls: Some(("node7".into(), 9300)),
                zones: vec![ZoneRoute {
                    zone: "b".into(),
                    owner: Some(8),
                    advertised: Some(("node8".into(), 9200)),
                    advertised_tls: None,
                }],
            },
        ]);
        let (host, port) = dir
            .advertise(&broker(1, 11), Transport::Plaintext, None)
            .unwrap();
        assert_eq!((host.as_str(), port), ("node7", 9200));
        let (_, tls_port) = dir.advertise(&broker(1, 11), Transport::Tls, None).unwrap();
        assert_eq!(tls_port, 9300);
        let (host, _) = dir
            .advertise(&broker(1, 11), Transport::Plaintext, Some("b"))
            .unwrap();
        assert_eq!(
            host.as_str(),
            "node8",
            "a client of zone b is told zone b's owner"
        );
        let (host, _) = dir
            .advertise(&broker(1, 11), Transport::Plaintext, Some("c"))
            .unwrap();
        assert_eq!(
            host.as_str(),
            "node7",
            "zone c has no owner: the fleet-wide one"
        );
        assert_eq!(dir.identities()[0].zone_owners["b"], 8);
        assert!(
            dir.advertise(&broker(2, 22), Transport::Plaintext, None)
                .is_none(),
            "no live owner: left out"
        );
        assert!(
            dir.advertise(&broker(9, 1), Transport::Plaintext, None)
                .is_none(),
            "not committed: left out"
        );
        dir.learn(&[broker(9, 1)]).unwrap();
        assert_eq!(dir.slot_of(9), None, "fleet mode does not learn locally");
        assert_eq!(dir.watch_observed().borrow().len(), 1);
        assert_eq!(dir.upstream(1).as_deref(), Some("10.9.9.9:22"));
    }

    #[test]
    fn advertise_learns_unknown_brokers_until_slots_run_out() {
        let dir = directory(1);
        let (host, port) = dir
            .advertise(&broker(7, 1), Transport::Plaintext, None)
            .unwrap();
        assert_eq!((host.as_str(), port), ("proxy.example", 9200));
        let (_, tls_port) = dir.advertise(&broker(7, 1), Transport::Tls, None).unwrap();
        assert_eq!(tls_port, 9300);
        assert!(dir
            .advertise(&broker(8, 1), Transport::Plaintext, None)
            .is_none());
    }
}
