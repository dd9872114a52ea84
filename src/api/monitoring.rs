//! The JSON of `/api/v1/traffic` and `/api/v1/clients`: what each node measures, and the
//! fleet's sum of it as the node asked puts it together.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /api/v1/traffic`: rates per second over the last window, busiest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrafficReport {
    pub answered_by: u64,
    /// Nodes whose rates are in the sums.
    pub nodes: Vec<u64>,
    /// Live nodes that did not answer in time; their traffic is missing from the sums.
    #[serde(default)]
    pub missing: Vec<u64>,
    pub window_seconds: f64,
    pub topics: Vec<TopicTraffic>,
    pub clients: Vec<ClientTraffic>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TopicTraffic {
    pub topic: String,
    pub bytes_in_per_sec: f64,
    pub bytes_out_per_sec: f64,
    pub records_in_per_sec: f64,
    pub records_out_per_sec: f64,
    /// Produce requests naming the topic and Fetch responses carrying it.
    pub requests_per_sec: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientTraffic {
    pub client_id: String,
    pub bytes_in_per_sec: f64,
    pub bytes_out_per_sec: f64,
    /// Records produced and fetched.
    pub records_per_sec: f64,
    pub requests_per_sec: f64,
}

impl TopicTraffic {
    pub fn is_busy(&self) -> bool {
        self.bytes_in_per_sec + self.bytes_out_per_sec + self.requests_per_sec > 0.0
    }

    fn bytes(&self) -> f64 {
        self.bytes_in_per_sec + self.bytes_out_per_sec
    }

    fn add(&mut self, other: &TopicTraffic) {
        self.bytes_in_per_sec += other.bytes_in_per_sec;
        self.bytes_out_per_sec += other.bytes_out_per_sec;
        self.records_in_per_sec += other.records_in_per_sec;
        self.records_out_per_sec += other.records_out_per_sec;
        self.requests_per_sec += other.requests_per_sec;
    }
}

impl ClientTraffic {
    pub fn is_busy(&self) -> bool {
        self.bytes_in_per_sec + self.bytes_out_per_sec + self.requests_per_sec > 0.0
    }

    fn bytes(&self) -> f64 {
        self.bytes_in_per_sec + self.bytes_out_per_sec
    }

    fn add(&mut self, other: &ClientTraffic) {
        self.bytes_in_per_sec += other.bytes_in_per_sec;
        self.bytes_out_per_sec += other.bytes_out_per_sec;
        self.records_per_sec += other.records_per_sec;
        self.requests_per_sec += other.requests_per_sec;
    }
}

/// Busiest (most bytes in and out) first; ties by name, so the order is stable.
pub fn sort_busiest(topics: &mut [TopicTraffic], clients: &mut [ClientTraffic]) {
    topics.sort_by(|a, b| b.bytes().total_cmp(&a.bytes()).then(a.topic.cmp(&b.topic)));
    clients.sort_by(|a, b| {
        b.bytes()
            .total_cmp(&a.bytes())
            .then(a.client_id.cmp(&b.client_id))
    });
}

impl TrafficReport {
    /// The fleet's traffic: every node's report summed by topic and by client id.
    pub fn sum(answered_by: u64, reports: &[TrafficReport], missing: Vec<u64>) -> TrafficReport {
        let mut topics: BTreeMap<String, TopicTraffic> = BTreeMap::new();
        let mut clients: BTreeMap<String, ClientTraffic> = BTreeMap::new();
        for report in reports {
            for t in &report.topics {
                topics
                    .entry(t.topic.clone())
                    .or_insert_with(|| TopicTraffic {
                        topic: t.topic.clone(),
                        ..Default::default()
                    })
                    .add(t);
            }
            for c in &report.clients {
                clients
                    .entry(c.client_id.clone())
                    .or_insert_with(|| ClientTraffic {
                        client_id: c.client_id.clone(),
                        ..Default::default()
                    })
                    .add(c);
            }
        }
        let mut topics: Vec<_> = topics.into_values().collect();
        let mut clients: Vec<_> = clients.into_values().collect();
        sort_busiest(&mut topics, &mut clients);
        let mut nodes: Vec<u64> = reports.iter().flat_map(|r| r.nodes.clone()).collect();
        nodes.sort_unstable();
        TrafficReport {
            answered_by,
            nodes,
            missing,
            window_seconds: reports.iter().map(|r| r.window_seconds).fold(0.0, f64::max),
            topics,
            clients,
        }
    }
}

/// `GET /api/v1/clients`: the client connections open on the fleet now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientsReport {
    pub answered_by: u64,
    pub nodes: Vec<u64>,
    #[serde(default)]
    pub missing: Vec<u64>,
    pub clients: Vec<ClientConnection>,
}

/// One client connection, and what it has been seen doing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConnection {
    pub node: u64,
    /// The client's address as this node sees it.
    pub address: String,
    /// The identity it connected to (`bootstrap` for the bootstrap port).
    pub identity: String,
    pub client_id: Option<String>,
    /// From ApiVersions v3+ (`client.software.name` and `.version`).
    pub software_name: Option<String>,
    pub software_version: Option<String>,
    /// Who it authenticated as; `None` if it did not.
    pub principal: Option<String>,
    pub connected_seconds: u64,
    /// The acks levels of its Produce requests (-1 is all).
    pub acks: Vec<i16>,
    /// The compression codecs of the record batches it produced.
    pub codecs: Vec<String>,
    /// Its batches carry a producer id (idempotent or transactional producer).
    pub idempotent: bool,
    pub transactional_id: Option<String>,
    /// Groups it joined, synced, heartbeat or committed offsets in.
    pub groups: Vec<String>,
    /// The zone the node placed it in (`none`); absent where the node has no zone.
    #[serde(default)]
    pub zone: Option<String>,
}

impl ClientsReport {
    pub fn merge(answered_by: u64, reports: Vec<ClientsReport>, missing: Vec<u64>) -> Self {
        let mut nodes: Vec<u64> = reports.iter().flat_map(|r| r.nodes.clone()).collect();
        nodes.sort_unstable();
        let mut clients: Vec<ClientConnection> =
            reports.into_iter().flat_map(|r| r.clients).collect();
        clients.sort_by(|a, b| {
            (&a.client_id, a.node, &a.address).cmp(&(&b.client_id, b.node, &b.address))
        });
        ClientsReport {
            answered_by,
            nodes,
            missing,
            clients,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, bytes_in: f64) -> TopicTraffic {
        TopicTraffic {
            topic: name.into(),
            bytes_in_per_sec: bytes_in,
            requests_per_sec: 1.0,
            ..Default::default()
        }
    }

    #[test]
    fn the_fleet_sum_adds_nodes_per_topic_busiest_first() {
        let a = TrafficReport {
            nodes: vec![1],
            window_seconds: 10.0,
            topics: vec![topic("x", 5.0), topic("y", 1.0)],
            ..Default::default()
        };
        let b = TrafficReport {
            nodes: vec![2],
            window_seconds: 10.0,
            topics: vec![topic("y", 9.0)],
            ..Default::default()
        };
        let sum = TrafficReport::sum(1, &[a, b], vec![3]);
        assert_eq!(sum.nodes, vec![1, 2]);
        assert_eq!(sum.missing, vec![3]);
        let names: Vec<_> = sum
            .topics
            .iter()
            .map(|t| (t.topic.as_str(), t.bytes_in_per_sec))
            .collect();
        assert_eq!(names, vec![("y", 10.0), ("x", 5.0)]);
        assert_eq!(sum.topics[0].requests_per_sec, 2.0);
    }
}
