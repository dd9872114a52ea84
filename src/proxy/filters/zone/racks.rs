//! The racks clients named in their Fetches, by source address and client id.
//!
//! A consumer names its rack only in Fetch requests, on identity connections, while the
//! addresses it is told come in Metadata responses, often on another connection. Keying by
//! address and client id joins the two for one client process. Writes happen once per
//! client (its first Fetch) and copy the map; reads take a lock-free snapshot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use kafka_protocol::protocol::StrBytes;

/// Clients remembered at most; past it the map starts over, and clients are placed again
/// by their next Fetch.
const MAX_CLIENTS: usize = 16_384;

type Key = (IpAddr, String);

#[derive(Default)]
pub struct ClientRacks {
    by_client: ArcSwap<HashMap<Key, StrBytes>>,
    writing: Mutex<()>,
}

impl ClientRacks {
    pub fn rack_of(&self, address: IpAddr, client_id: &str) -> Option<StrBytes> {
        let racks = self.by_client.load();
        if racks.is_empty() {
            return None;
        }
        racks.get(&(address, client_id.to_string())).cloned()
    }

    pub fn learn(&self, address: IpAddr, client_id: &str, rack: &StrBytes) {
        let key = (address, client_id.to_string());
        if self.by_client.load().get(&key) == Some(rack) {
            return;
        }
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let mut racks = HashMap::clone(&self.by_client.load());
        if racks.len() >= MAX_CLIENTS {
            racks.clear();
        }
        racks.insert(key, rack.clone());
        self.by_client.store(Arc::new(racks));
    }
}
