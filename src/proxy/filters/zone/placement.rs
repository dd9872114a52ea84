//! What places clients in zones besides the committed control state: the racks clients
//! named in their Fetches, and this node's configured CIDR map (`cluster.zone_map`).
//!
//! A consumer names its rack only in Fetch requests, on identity connections, while the
//! addresses it is told come in Metadata responses, often on another connection. Keying by
//! address and client id joins the two for one client process. Writes happen once per
//! client (its first Fetch) and copy the map; reads take a lock-free snapshot.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use flotilla_config::zones::{zone_in, IpNet};
use kafka_protocol::protocol::StrBytes;

/// Clients remembered at most; past it the map starts over, and clients are placed again
/// by their next Fetch.
const MAX_CLIENTS: usize = 16_384;

/// Racks by client address, then client id (nested, so a lookup allocates nothing).
type Racks = HashMap<IpAddr, HashMap<String, StrBytes>>;

#[derive(Default)]
pub struct Placement {
    by_client: ArcSwap<Racks>,
    /// Clients in `by_client`.
    count: AtomicUsize,
    writing: Mutex<()>,
    /// `cluster.zone_map`, validated at start.
    configured: BTreeMap<IpNet, String>,
}

impl Placement {
    pub fn new(configured: BTreeMap<IpNet, String>) -> Placement {
        Placement {
            configured,
            ..Placement::default()
        }
    }

    /// The zone this node's configuration gives a client address.
    pub fn configured_zone(&self, address: IpAddr) -> Option<&str> {
        zone_in(&self.configured, address)
    }

    pub fn rack_of(&self, address: IpAddr, client_id: &str) -> Option<StrBytes> {
        self.by_client.load().get(&address)?.get(client_id).cloned()
    }

    pub fn learn(&self, address: IpAddr, client_id: &str, rack: &StrBytes) {
        if self.rack_of(address, client_id).as_ref() == Some(rack) {
            return;
        }
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let mut racks = Racks::clone(&self.by_client.load());
        if self.count.load(Ordering::Relaxed) >= MAX_CLIENTS {
            racks.clear();
            self.count.store(0, Ordering::Relaxed);
        }
        let known = racks
            .entry(address)
            .or_default()
            .insert(client_id.to_string(), rack.clone());
        if known.is_none() {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        self.by_client.store(Arc::new(racks));
    }
}
