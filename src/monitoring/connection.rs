//! One connection's share of the traffic metrics: its client id's and principal's
//! counters, the topic counters it has used, and the facts `proxyctl clients` shows.
//!
//! The request side and the response side each keep their own [`Tally`], so neither
//! waits on the other: the request side counts Produce requests and reads the client
//! facts (acks, codecs, idempotence, transactional id, groups, software), the response
//! side counts Fetch responses, partition errors and latency. What they share (the client
//! and principal slots, which change when the client id does or the client logs in) sits
//! behind an `ArcSwap`, read without a lock.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use prometheus::{IntCounter, IntGauge};

use super::metrics::{ClientSlot, PrincipalSlot, TopicSlot, ZoneSlot};
use super::topic_ids::TopicId;
use super::Traffic;
use crate::protocol::batches::{summarize, Codecs};
use crate::protocol::header::RequestMeta;
use crate::protocol::topic_scan::{self, PartitionView, TopicRef};
use crate::proxy::clients::{ClientFacts, Connected};

/// Kafka's principal for a client that has not authenticated.
const ANONYMOUS: &str = "User:ANONYMOUS";
/// Topic slots one side of a connection keeps; a client naming more topics than this
/// still gets counted, through the node's label table.
const CACHED_TOPICS: usize = 1024;
/// Unknown topic ids one side counts aside while their names are looked up.
const PENDING_IDS: usize = 64;
/// How long an id may wait for its name before it is counted under the id itself.
const PENDING_FOR: Duration = Duration::from_secs(30);
/// Groups remembered per connection.
const GROUPS: usize = 16;

/// What both sides of one connection share.
pub struct ConnectionTraffic {
    traffic: Arc<Traffic>,
    connection: Arc<Connected>,
    labels: ArcSwap<ClientLabels>,
    site: Option<Site>,
}

struct ClientLabels {
    client: Arc<ClientSlot>,
    principal: Arc<PrincipalSlot>,
    /// The client's zone (`none` if unknown) and its counters; only on a node with a zone.
    zone: Option<(String, Arc<ZoneSlot>)>,
}

/// Where a connection runs, for the zone byte counters: the node's zone and the rack of
/// the broker it forwards to. Only nodes with a zone count zone bytes.
pub struct Site {
    node_zone: String,
    /// Bytes to and from the broker, by the node's zone and the broker's rack.
    rack_in: IntCounter,
    rack_out: IntCounter,
}

impl Site {
    /// The site of a connection of a node in `node_zone` to a broker in `broker_rack`.
    pub fn new(traffic: &Traffic, node_zone: &str, broker_rack: &str) -> Site {
        let racks = &traffic.metrics().rack_bytes;
        Site {
            node_zone: node_zone.to_string(),
            rack_in: racks.with_label_values(&[node_zone, broker_rack, "in"]),
            rack_out: racks.with_label_values(&[node_zone, broker_rack, "out"]),
        }
    }
}

impl ConnectionTraffic {
    pub fn new(
        traffic: Arc<Traffic>,
        connection: Arc<Connected>,
        principal: Option<&str>,
        site: Option<Site>,
    ) -> ConnectionTraffic {
        let metrics = traffic.metrics();
        let labels = ClientLabels {
            client: metrics.clients.slot(""),
            principal: metrics.principals.slot(principal.unwrap_or(ANONYMOUS)),
            zone: None,
        };
        connection.change(|f| f.principal = principal.map(str::to_string));
        let traffic = ConnectionTraffic {
            traffic,
            connection,
            labels: ArcSwap::from_pointee(labels),
            site,
        };
        traffic.place(None);
        traffic
    }

    /// Whether this connection counts zone bytes (its node has a zone).
    pub fn counts_zones(&self) -> bool {
        self.site.is_some()
    }

    /// The client is (now known to be) in `zone`.
    pub fn place(&self, zone: Option<&str>) {
        let Some(site) = &self.site else {
            return;
        };
        let zone = zone.unwrap_or("none");
        if matches!(&self.labels.load().zone, Some((placed, _)) if placed == zone) {
            return;
        }
        let key = format!("{zone}\0{}", site.node_zone);
        let slot = self.traffic.metrics().zones.slot(&key);
        self.labels.rcu(|labels| ClientLabels {
            client: labels.client.clone(),
            principal: labels.principal.clone(),
            zone: Some((zone.to_string(), slot.clone())),
        });
        self.connection.change(|f| f.zone = Some(zone.to_string()));
    }

    /// The client sent a new client id.
    pub fn set_client_id(&self, client_id: Option<&str>) {
        let client = self.traffic.metrics().clients.slot(client_id.unwrap_or(""));
        self.labels.rcu(|labels| ClientLabels {
            client: client.clone(),
            principal: labels.principal.clone(),
            zone: labels.zone.clone(),
        });
        self.connection
            .change(|f| f.client_id = client_id.map(str::to_string));
    }

    /// The client logged in as `principal`.
    pub fn set_principal(&self, principal: &str) {
        let slot = self.traffic.metrics().principals.slot(principal);
        self.labels.rcu(|labels| ClientLabels {
            client: labels.client.clone(),
            principal: slot.clone(),
            zone: labels.zone.clone(),
        });
        self.connection
            .change(|f| f.principal = Some(principal.to_string()));
    }

    /// Starts the request side's tally.
    pub fn requests(&self) -> RequestTally<'_> {
        RequestTally {
            shared: self,
            topics: TopicCache::default(),
            reported: ClientFacts::default(),
            software: None,
        }
    }

    /// Starts the response side's tally.
    pub fn responses(&self) -> ResponseTally<'_> {
        ResponseTally {
            shared: self,
            topics: TopicCache::default(),
        }
    }
}

/// The request side: bytes from the client, Produce requests and the client's facts.
pub struct RequestTally<'a> {
    shared: &'a ConnectionTraffic,
    topics: TopicCache,
    /// The facts as last written to the registry.
    reported: ClientFacts,
    /// The connection's count in `flotilla_client_software`.
    software: Option<Arc<IntGauge>>,
}

impl RequestTally<'_> {
    /// Counts a request of `frame_bytes` read off the client. `acks` is the acks of a
    /// Produce request.
    pub fn on_request(&mut self, meta: &RequestMeta, frame: &Bytes, frame_bytes: u64, acks: i16) {
        let labels = self.shared.labels.load();
        labels.client.bytes_in.inc_by(frame_bytes);
        labels.client.add_requests(1);
        labels.principal.bytes_in.inc_by(frame_bytes);
        if let (Some((_, zone)), Some(site)) = (&labels.zone, &self.shared.site) {
            zone.bytes_in.inc_by(frame_bytes);
            site.rack_in.inc_by(frame_bytes);
        }
        let body = frame.get(meta.header_len..).unwrap_or_default();
        let flexible = meta.api_key.request_header_version(meta.api_version) >= 2;
        match meta.api_key {
            ApiKey::Produce => {
                let records = self.on_produce(body, meta.api_version, acks);
                labels.client.add_records(records);
            }
            ApiKey::ApiVersions => self.on_api_versions(body, meta.api_version),
            ApiKey::JoinGroup
            | ApiKey::SyncGroup
            | ApiKey::Heartbeat
            | ApiKey::LeaveGroup
            | ApiKey::OffsetCommit
            | ApiKey::ConsumerGroupHeartbeat => {
                if let Some(group) = first_string(body, flexible) {
                    self.on_group(group);
                }
            }
            ApiKey::InitProducerId => {
                if let Some(id) = first_string(body, flexible) {
                    self.on_transactional_id(id);
                }
            }
            _ => {}
        }
        if self.software.is_none() {
            self.on_software("unknown", "unknown");
        }
    }

    /// Counts the topics of a Produce request; returns its records.
    fn on_produce(&mut self, body: &[u8], version: i16, acks: i16) -> u64 {
        let mut codecs = Codecs::default();
        let mut idempotent = false;
        let mut records = 0;
        let traffic = &self.shared.traffic;
        let mut run = Run::default();
        let topics = &mut self.topics;
        let scanned = topic_scan::produce_request(body, version, |p: PartitionView| {
            let summary = summarize(p.records);
            codecs.0 |= summary.codecs.0;
            idempotent |= summary.idempotent;
            records += summary.records;
            run.add(p, summary.records, Flow::Produce, topics, traffic);
        });
        run.finish(Flow::Produce, topics, traffic);
        topics.retry_pending(traffic);
        let head = match scanned {
            Ok(head) => head,
            Err(e) => {
                tracing::debug!("produce request not counted: {e}");
                return records;
            }
        };
        let acks_bit = ClientFacts::acks_bit(acks);
        let new = (acks_bit & !self.reported.acks) != 0
            || (codecs.0 & !self.reported.codecs) != 0
            || (idempotent && !self.reported.idempotent);
        if new {
            self.reported.acks |= acks_bit;
            self.reported.codecs |= codecs.0;
            self.reported.idempotent |= idempotent;
            let reported = &self.reported;
            self.shared.connection.change(|f| {
                f.acks = reported.acks;
                f.codecs = reported.codecs;
                f.idempotent = reported.idempotent;
            });
        }
        if let Some(id) = head.transactional_id {
            self.on_transactional_id(id);
        }
        records
    }

    fn on_api_versions(&mut self, body: &[u8], version: i16) {
        if version < 3 {
            return;
        }
        let mut rest = body;
        let name = compact_string(&mut rest);
        let software_version = compact_string(&mut rest);
        if let (Some(name), Some(software_version)) = (name, software_version) {
            self.on_software(name, software_version);
        }
    }

    fn on_software(&mut self, name: &str, version: &str) {
        let known = self.reported.software.as_ref();
        if known.is_some_and(|(n, v)| n == name && v == version) {
            return;
        }
        if let Some(old) = self.software.take() {
            old.dec();
        }
        let gauge = self.shared.traffic.metrics().software_gauge(name, version);
        gauge.inc();
        self.software = Some(gauge);
        let software = (name.to_string(), version.to_string());
        self.reported.software = Some(software.clone());
        self.shared
            .connection
            .change(|f| f.software = Some(software));
    }

    fn on_group(&mut self, group: &str) {
        let groups = &mut self.reported.groups;
        if group.is_empty() || groups.len() >= GROUPS || groups.iter().any(|g| g == group) {
            return;
        }
        groups.push(group.to_string());
        let groups = groups.clone();
        self.shared.connection.change(|f| f.groups = groups);
    }

    fn on_transactional_id(&mut self, id: &str) {
        if self.reported.transactional_id.as_deref() == Some(id) {
            return;
        }
        self.reported.transactional_id = Some(id.to_string());
        self.shared
            .connection
            .change(|f| f.transactional_id = Some(id.to_string()));
    }
}

impl Drop for RequestTally<'_> {
    fn drop(&mut self) {
        if let Some(gauge) = self.software.take() {
            gauge.dec();
        }
        self.topics.flush_pending(&self.shared.traffic);
    }
}

/// The response side: bytes to the client, Fetch responses, partition errors, latency.
pub struct ResponseTally<'a> {
    shared: &'a ConnectionTraffic,
    topics: TopicCache,
}

impl ResponseTally<'_> {
    /// Counts a broker response to `api_key` v`version` sent to the client, `received`
    /// being when its request was read off the client.
    pub fn on_response(&mut self, api_key: ApiKey, version: i16, frame: &Bytes, received: Instant) {
        let labels = self.shared.labels.load();
        let metrics = self.shared.traffic.metrics();
        let traffic = &self.shared.traffic;
        let topics = &mut self.topics;
        let mut run = Run::default();
        let (flow, scanned) = match api_key {
            ApiKey::Produce => {
                metrics
                    .produce_latency
                    .observe(received.elapsed().as_secs_f64());
                let scanned = topic_scan::produce_response(frame, version, |p| {
                    run.add(p, 0, Flow::ProduceAnswer, topics, traffic)
                });
                (Flow::ProduceAnswer, scanned)
            }
            ApiKey::Fetch => {
                metrics
                    .fetch_latency
                    .observe(received.elapsed().as_secs_f64());
                let mut records = 0;
                let scanned = topic_scan::fetch_response(frame, version, |p| {
                    let count = summarize(p.records).records;
                    records += count;
                    run.add(p, count, Flow::Fetch, topics, traffic)
                });
                labels.client.add_records(records);
                (Flow::Fetch, scanned)
            }
            _ => return,
        };
        run.finish(flow, topics, traffic);
        topics.retry_pending(traffic);
        if let Err(e) = scanned {
            tracing::debug!("response not fully counted: {e}");
        }
    }

    /// Counts `frame_bytes` written to the client.
    pub fn on_written(&self, frame_bytes: u64) {
        let labels = self.shared.labels.load();
        labels.client.bytes_out.inc_by(frame_bytes);
        labels.principal.bytes_out.inc_by(frame_bytes);
        if let (Some((_, zone)), Some(site)) = (&labels.zone, &self.shared.site) {
            zone.bytes_out.inc_by(frame_bytes);
            site.rack_out.inc_by(frame_bytes);
        }
    }
}

impl Drop for ResponseTally<'_> {
    fn drop(&mut self) {
        self.topics.flush_pending(&self.shared.traffic);
    }
}

/// Which counters a message's partitions go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// A Produce request: bytes and records in.
    Produce,
    /// A Produce response: its errors.
    ProduceAnswer,
    /// A Fetch response: bytes and records out, and its errors.
    Fetch,
}

/// What one message says of one topic.
#[derive(Debug, Default, Clone)]
struct Counts {
    bytes: u64,
    records: u64,
    /// Partitions with an error, by code; rare, so it allocates only when there is one.
    errors: Vec<i16>,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.bytes += other.bytes;
        self.records += other.records;
        self.errors.extend_from_slice(&other.errors);
    }

    fn apply(&self, slot: &TopicSlot, flow: Flow) {
        let api = match flow {
            Flow::Produce => {
                slot.produce_requests.inc();
                slot.bytes_in.inc_by(self.bytes);
                slot.records_in.inc_by(self.records);
                return;
            }
            Flow::ProduceAnswer => "produce",
            Flow::Fetch => {
                slot.fetch_requests.inc();
                slot.bytes_out.inc_by(self.bytes);
                slot.records_out.inc_by(self.records);
                "fetch"
            }
        };
        for &code in &self.errors {
            slot.error(api, code);
        }
    }
}

/// The partitions of one topic in a row: messages list partitions topic by topic, so
/// each topic is counted once per message, not once per partition.
#[derive(Default)]
struct Run<'a> {
    current: Option<(TopicRef<'a>, Counts)>,
}

impl<'a> Run<'a> {
    fn add(
        &mut self,
        p: PartitionView<'a>,
        records: u64,
        flow: Flow,
        topics: &mut TopicCache,
        traffic: &Traffic,
    ) {
        let counts = Counts {
            bytes: p.records.len() as u64,
            records,
            errors: if p.error_code != 0 {
                vec![p.error_code]
            } else {
                Vec::new()
            },
        };
        match &mut self.current {
            Some((topic, total)) if *topic == p.topic => total.add(&counts),
            _ => {
                self.finish(flow, topics, traffic);
                self.current = Some((p.topic, counts));
            }
        }
    }

    fn finish(&mut self, flow: Flow, topics: &mut TopicCache, traffic: &Traffic) {
        if let Some((topic, counts)) = self.current.take() {
            topics.count(topic, counts, flow, traffic);
        }
    }
}

/// The topic slots one side of a connection has resolved, and what it counts aside for
/// ids whose names are being looked up.
#[derive(Default)]
struct TopicCache {
    names: HashMap<Box<str>, Arc<TopicSlot>>,
    ids: HashMap<TopicId, Arc<TopicSlot>>,
    pending: Vec<Pending>,
}

struct Pending {
    id: TopicId,
    since: Instant,
    flow: Flow,
    counts: Counts,
}

impl TopicCache {
    fn count(&mut self, topic: TopicRef, counts: Counts, flow: Flow, traffic: &Traffic) {
        match self.slot(topic, traffic) {
            Some(slot) => counts.apply(&slot, flow),
            None => {
                if let TopicRef::Id(id) = topic {
                    self.set_aside(id, counts, flow, traffic);
                }
            }
        }
    }

    /// The topic's slot; `None` for an id whose name is not known yet.
    fn slot(&mut self, topic: TopicRef, traffic: &Traffic) -> Option<Arc<TopicSlot>> {
        let labels = &traffic.metrics().topics;
        let room = self.names.len() + self.ids.len() < CACHED_TOPICS;
        match topic {
            TopicRef::Name(name) => {
                if let Some(slot) = self.names.get(name) {
                    return Some(slot.clone());
                }
                let slot = labels.slot(name);
                if room {
                    self.names.insert(name.into(), slot.clone());
                }
                Some(slot)
            }
            TopicRef::Id(id) => {
                if let Some(slot) = self.ids.get(&id) {
                    return Some(slot.clone());
                }
                let slot = labels.slot(&traffic.topic_ids.name(&id)?);
                if room {
                    self.ids.insert(id, slot.clone());
                }
                Some(slot)
            }
        }
    }

    fn set_aside(&mut self, id: TopicId, counts: Counts, flow: Flow, traffic: &Traffic) {
        if let Some(p) = self
            .pending
            .iter_mut()
            .find(|p| p.id == id && p.flow == flow)
        {
            p.counts.add(&counts);
        } else if self.pending.len() < PENDING_IDS {
            self.pending.push(Pending {
                id,
                since: Instant::now(),
                flow,
                counts,
            });
        } else {
            counts.apply(&traffic.metrics().topics.slot(super::labels::OTHER), flow);
        }
    }

    /// Counts what waited for a name, once it is known (or has waited too long).
    fn retry_pending(&mut self, traffic: &Traffic) {
        if self.pending.is_empty() {
            return;
        }
        for p in std::mem::take(&mut self.pending) {
            match self.slot(TopicRef::Id(p.id), traffic) {
                Some(slot) => p.counts.apply(&slot, p.flow),
                None if p.since.elapsed() >= PENDING_FOR => {
                    p.counts.apply(&id_slot(&p.id, traffic), p.flow)
                }
                None => self.pending.push(p),
            }
        }
    }

    /// The connection ends: what still waits is counted under its name, or its id.
    fn flush_pending(&mut self, traffic: &Traffic) {
        for p in std::mem::take(&mut self.pending) {
            let slot = self
                .slot(TopicRef::Id(p.id), traffic)
                .unwrap_or_else(|| id_slot(&p.id, traffic));
            p.counts.apply(&slot, p.flow);
        }
    }
}

/// The slot of a topic known only by its id.
fn id_slot(id: &TopicId, traffic: &Traffic) -> Arc<TopicSlot> {
    let id = uuid::Uuid::from_bytes(*id).to_string();
    traffic.metrics().topics.slot(&id)
}

/// The first field of a request body when it is a string (a group or transactional id).
fn first_string(body: &[u8], flexible: bool) -> Option<&str> {
    let mut rest = body;
    if flexible {
        return compact_string(&mut rest);
    }
    let len = i16::from_be_bytes(rest.get(..2)?.try_into().ok()?);
    let text = rest.get(2..2 + usize::try_from(len).ok()?)?;
    std::str::from_utf8(text).ok()
}

/// A compact string (unsigned varint of length + 1), advancing `rest` past it.
fn compact_string<'a>(rest: &mut &'a [u8]) -> Option<&'a str> {
    let mut len = 0usize;
    let mut read = 0;
    for (i, &byte) in rest.iter().enumerate().take(5) {
        len |= usize::from(byte & 0x7f) << (7 * i);
        read = i + 1;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let len = len.checked_sub(1)?;
    let text = rest.get(read..read.checked_add(len)?)?;
    *rest = &rest[read + len..];
    std::str::from_utf8(text).ok()
}
