//! Near-source routing against the real Kafka cluster (brokers in racks zone-1 to zone-3,
//! rack-aware replica selector): a fleet in two zones tells each client the nodes of its
//! own zone, placed by source address (the CIDR map) or by a client id tag; when every
//! node of a zone dies its clients move to the other zone and keep producing, and they
//! come back when a node of their zone returns. A consumer that names no rack fetches from
//! the replica in its zone.

mod support;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use support::fleet::Fleet;
use support::groups::proxyctl;
use support::rdkafka::client_config;
use support::wire::RawClient;
use support::{kafka, unique_topic, wait_for, AdminAccess};

const ZONE_1: &str = "zone-1";
const ZONE_2: &str = "zone-2";

/// The hosts of the fleet's nodes `nodes`.
fn hosts_of(fleet: &Fleet, nodes: &[u64]) -> BTreeSet<String> {
    nodes
        .iter()
        .map(|id| fleet.nodes[*id as usize - 1].host.clone())
        .collect()
}

/// The hosts librdkafka client `client` is told for the brokers.
fn told_hosts<C: rdkafka::client::ClientContext>(
    client: &rdkafka::client::Client<C>,
) -> BTreeSet<String> {
    match client.fetch_metadata(None, Duration::from_secs(5)) {
        Ok(metadata) => metadata
            .brokers()
            .iter()
            .map(|b| b.host().to_string())
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// Waits until `client` is told only hosts of `expected`, and every identity.
fn wait_told<C: rdkafka::client::ClientContext>(
    what: &str,
    client: &rdkafka::client::Client<C>,
    expected: &BTreeSet<String>,
) {
    wait_for(what, Duration::from_secs(30), || {
        let told = told_hosts(client);
        (!told.is_empty() && told.is_subset(expected)).then_some(())
    });
}

/// The hosts a raw client from `source` is told in Metadata and FindCoordinator through
/// `bootstrap`.
fn raw_told_hosts(bootstrap: &str, source: IpAddr) -> BTreeSet<String> {
    let mut client = RawClient::connect_from(bootstrap, source);
    let mut hosts: BTreeSet<String> = client
        .metadata()
        .brokers
        .iter()
        .map(|b| b.host.to_string())
        .collect();
    let request = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![StrBytes::from_static_str("zones-group")]);
    let found: FindCoordinatorResponse = client.call(ApiKey::FindCoordinator, 4, &request);
    for coordinator in found.coordinators.iter().filter(|c| c.error_code == 0) {
        hosts.insert(coordinator.host.to_string());
    }
    hosts
}

fn producer(fleet: &Fleet, client_id: &str) -> FutureProducer {
    client_config(&fleet.bootstrap())
        .set("client.id", client_id)
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "60000")
        .create()
        .unwrap()
}

/// Produces `count` records and waits for every acknowledgement; returns how long the
/// first one took.
async fn produce(producer: &FutureProducer, topic: &str, from: u32, count: u32) -> Duration {
    let started = Instant::now();
    let mut first = None;
    for i in from..from + count {
        let payload = format!("record-{i}");
        let record = FutureRecord::to(topic).key(&payload).payload(&payload);
        producer
            .send(record, Duration::from_secs(60))
            .await
            .unwrap_or_else(|(e, _)| panic!("record {i} not acknowledged: {e}"));
        first.get_or_insert_with(|| started.elapsed());
    }
    first.unwrap_or_default()
}

/// Reads `partitions` of `topic` from the start until `count` records are in.
fn read_from_start(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: i32,
    count: usize,
) -> Vec<String> {
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut seen = Vec::new();
    wait_for("every record consumed", Duration::from_secs(60), || {
        while seen.len() < count {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => {
                    let payload = message.payload().unwrap_or_default();
                    seen.push(String::from_utf8_lossy(payload).to_string());
                }
                _ => break,
            }
        }
        (seen.len() >= count).then_some(())
    });
    seen
}

fn consume_all(consumer: &BaseConsumer, topic: &str, count: usize) -> Vec<String> {
    read_from_start(consumer, topic, 1, count)
}

async fn create_topic_on(bootstrap: &str, topic: &str, replicas: &[i32]) {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create().unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let assignment: &[&[i32]] = &[replicas];
    let topics = [NewTopic::new(
        topic,
        1,
        TopicReplication::Variable(assignment),
    )];
    for result in admin.create_topics(&topics, &options).await.unwrap() {
        result.unwrap_or_else(|e| panic!("creating {topic}: {e:?}"));
    }
}

/// The fleet runs at the zones' feature level, and every identity has an owner in both
/// zones.
fn wait_zone_owners(fleet: &Fleet) {
    fleet.wait_for_status(1, "owners for every identity in both zones", |s| {
        s.feature_level >= flotilla_raft::zones::LEVEL
            && s.identities.iter().all(|i| {
                i.zone_owners
                    .get(ZONE_1)
                    .is_some_and(|n| [1, 2].contains(n))
                    && i.zone_owners
                        .get(ZONE_2)
                        .is_some_and(|n| [3, 4].contains(n))
            })
    });
}

/// What `proxyctl zone map set` answers on stderr, when it fails.
fn refused(fleet: &Fleet, cidr: &str, zone: &str) -> String {
    let args = ["zone", "map", "set", cidr, zone];
    let out = AdminAccess::default().proxyctl(&fleet.nodes[1], &args, "");
    assert!(!out.status.success(), "{cidr} -> {zone} was accepted");
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_are_served_in_their_zone_and_moved_while_it_has_no_live_node() {
    let mut fleet = Fleet::start_zoned(&[ZONE_1, ZONE_1, ZONE_2, ZONE_2], kafka(), "2s");
    wait_zone_owners(&fleet);
    let zone_1 = hosts_of(&fleet, &[1, 2]);
    let zone_2 = hosts_of(&fleet, &[3, 4]);

    // Local clients connect from 127.0.0.1: that address places them in zone-2.
    proxyctl(
        &fleet.nodes[0],
        &["zone", "map", "set", "127.0.0.1/32", ZONE_2],
    );
    proxyctl(
        &fleet.nodes[0],
        &["zone", "map", "set", "127.250.0.0/16", ZONE_1],
    );
    let overlap = refused(&fleet, "127.0.0.0/8", ZONE_1);
    assert!(
        overlap.contains("overlaps 127.0.0.1/32 (zone zone-2)"),
        "{overlap}"
    );
    assert!(refused(&fleet, "127.0.0.1", ZONE_1).contains("cidr:"));
    assert!(refused(&fleet, "127.9.0.0/16", "no such zone").contains("zone:"));
    let listed = proxyctl(&fleet.nodes[3], &["zone", "map", "list"]);
    assert!(
        listed.contains("127.250.0.0/16") && listed.contains("127.0.0.1/32"),
        "{listed}"
    );

    // By source address, through every node: every address is a node of the zone.
    for node in &fleet.nodes {
        let from_zone_1 = raw_told_hosts(&node.bootstrap, "127.250.0.9".parse().unwrap());
        assert!(
            from_zone_1.is_subset(&zone_1),
            "{from_zone_1:?} not in {zone_1:?}"
        );
        let from_zone_2 = raw_told_hosts(&node.bootstrap, "127.0.0.1".parse().unwrap());
        assert!(
            from_zone_2.is_subset(&zone_2),
            "{from_zone_2:?} not in {zone_2:?}"
        );
        assert_eq!(
            from_zone_1.len() + from_zone_2.len(),
            4,
            "both nodes of each zone"
        );
    }

    let topic = unique_topic("zones");
    create_topic_on(&fleet.bootstrap(), &topic, &[1, 2, 3]).await;
    let producer = producer(&fleet, "zones-producer");
    wait_told(
        "the zone-2 producer told zone-2 nodes",
        producer.client(),
        &zone_2,
    );
    // The tag beats the address map: this consumer also connects from 127.0.0.1.
    let consumer: BaseConsumer = client_config(&fleet.bootstrap())
        .set("client.id", "zones-consumer,flotilla_zone=zone-1")
        .set("group.id", "zones-consumer")
        .create()
        .unwrap();
    wait_told(
        "the tagged consumer told zone-1 nodes",
        consumer.client(),
        &zone_1,
    );
    produce(&producer, &topic, 0, 100).await;

    // Every node of zone-2 dies: its clients are told zone-1's nodes and keep producing.
    fleet.node(3).kill();
    fleet.node(4).kill();
    let killed = Instant::now();
    let first_ack = produce(&producer, &topic, 100, 100).await;
    println!(
        "zone-2 killed: first acknowledgement after {first_ack:?}, 100 records after {:?}",
        killed.elapsed()
    );
    wait_told(
        "the zone-2 producer moved to zone-1",
        producer.client(),
        &zone_1,
    );

    // A node of zone-2 returns: its clients come back to it.
    fleet.node(3).restart();
    fleet.node(3).wait_ready();
    let node_3 = hosts_of(&fleet, &[3]);
    wait_told(
        "the zone-2 producer back in zone-2",
        producer.client(),
        &node_3,
    );
    produce(&producer, &topic, 200, 100).await;
    producer.flush(Duration::from_secs(30)).unwrap();

    let records = consume_all(&consumer, &topic, 300);
    let expected: Vec<String> = (0..300).map(|i| format!("record-{i}")).collect();
    assert_eq!(records, expected, "every record, once, in order");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_naming_no_rack_fetches_from_the_replica_in_its_zone() {
    let fleet = Fleet::start_zoned(&[ZONE_1, ZONE_2], kafka(), "2s");
    let status = fleet.status(1).unwrap();
    assert!(
        status.identities.iter().all(|i| i.rack.is_some()),
        "the brokers have no racks (scripts/kafka-cluster.sh with KAFKA_RACKS=0?)"
    );
    // The only replica in zone-2 is broker 2, which does not lead.
    let topic = unique_topic("follower");
    create_topic_on(&fleet.bootstrap(), &topic, &[1, 2, 3]).await;
    let producer = producer(&fleet, "follower-producer");
    produce(&producer, &topic, 0, 50).await;
    producer.flush(Duration::from_secs(30)).unwrap();

    let fetches_from_broker_2 = || -> f64 {
        let filter = "api=\"Fetch\",identity=\"2\"";
        fleet
            .nodes
            .iter()
            .map(|n| n.metric("flotilla_requests_total", filter))
            .sum()
    };
    let consumer = |client_id: &str| -> BaseConsumer {
        client_config(&fleet.bootstrap())
            .set("client.id", client_id)
            .set("group.id", client_id)
            .create()
            .unwrap()
    };

    // A consumer with no zone reads from the leader only.
    let before = fetches_from_broker_2();
    let unplaced = consumer("follower-unplaced");
    assert_eq!(consume_all(&unplaced, &topic, 50).len(), 50);
    drop(unplaced);
    assert_eq!(
        fetches_from_broker_2(),
        before,
        "no zone, no follower fetching"
    );

    // In zone-2, it is sent to broker 2 by the broker itself (preferred read replica).
    let placed = consumer("follower-placed,flotilla_zone=zone-2");
    assert_eq!(consume_all(&placed, &topic, 50).len(), 50);
    wait_for("fetches from broker 2", Duration::from_secs(30), || {
        (fetches_from_broker_2() > before).then_some(())
    });
    let zone_out =
        |n: &support::Node| n.metric("flotilla_zone_bytes_total", "client_zone=\"zone-2\"");
    assert!(
        fleet.nodes.iter().map(zone_out).sum::<f64>() > 0.0,
        "zone bytes counted"
    );
}

/// Bytes counted by `node` for the client ids that start with `prefix`.
fn client_bytes(node: &support::Node, prefix: &str) -> f64 {
    node.metric(
        "flotilla_client_bytes_total",
        &format!("client_id=\"{prefix}"),
    )
}

/// Bytes between the fleet's nodes and brokers of another zone (their rack), so far.
fn cross_zone_broker_bytes(fleet: &Fleet, zones: &[&str]) -> f64 {
    let mut total = 0.0;
    for (node, zone) in fleet.nodes.iter().zip(zones) {
        for rack in zones.iter().filter(|r| *r != zone) {
            total += node.metric(
                "flotilla_rack_bytes_total",
                &format!("broker_rack=\"{rack}\""),
            );
        }
    }
    total
}

/// One client per zone producing to every partition and one reading them all, as `run`
/// (`off`: client ids without a zone; `on`: tagged with their zone).
async fn mixed_workload(fleet: &Fleet, zones: &[&str], topic: &str, run: &str) -> Crossing {
    let broker_before = cross_zone_broker_bytes(fleet, zones);
    let client_id = |zone: &str, role: &str| match run {
        "on" => format!("{run}-{zone}-{role},flotilla_zone={zone}"),
        _ => format!("{run}-{zone}-{role}"),
    };
    let payload = "x".repeat(1024);
    for zone in zones {
        let producer = producer(fleet, &client_id(zone, "producer"));
        for i in 0..600 {
            let record = FutureRecord::to(topic)
                .partition(i % 3)
                .key("k")
                .payload(&payload);
            producer
                .send(record, Duration::from_secs(30))
                .await
                .unwrap();
        }
    }
    for zone in zones {
        let consumer: BaseConsumer = client_config(&fleet.bootstrap())
            .set("client.id", client_id(zone, "consumer"))
            .set("group.id", client_id(zone, "consumer"))
            .create()
            .unwrap();
        read_from_start(&consumer, topic, 3, 600 * zones.len());
    }
    let (mut cross, mut total) = (0.0, 0.0);
    for (node, node_zone) in fleet.nodes.iter().zip(zones) {
        for zone in zones {
            let bytes = client_bytes(node, &format!("{run}-{zone}-"));
            total += bytes;
            if zone != node_zone {
                cross += bytes;
            }
        }
    }
    Crossing {
        client_share: cross / total,
        client: cross,
        broker: cross_zone_broker_bytes(fleet, zones) - broker_before,
    }
}

/// Bytes of one run that crossed zones.
struct Crossing {
    /// The share of client bytes that reached a node of another zone.
    client_share: f64,
    /// Client bytes that reached a node of another zone.
    client: f64,
    /// Bytes between nodes and brokers of different zones.
    broker: f64,
}

impl Crossing {
    fn total_mib(&self) -> f64 {
        (self.client + self.broker) / 1048576.0
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn zones_keep_client_traffic_in_its_zone() {
    let zones = [ZONE_1, ZONE_2, "zone-3"];
    let fleet = Fleet::start_zoned(&zones, kafka(), "2s");
    let topic = unique_topic("mixed");
    support::rdkafka::create_topic(&fleet.bootstrap(), &topic, 3).await;
    let off = mixed_workload(&fleet, &zones, &topic, "off").await;
    let on = mixed_workload(&fleet, &zones, &topic, "on").await;
    println!(
        "bytes crossing zones, zones off / on: client-node {:.1}% / {:.1}% of client bytes; \
         node-broker {:.1} / {:.1} MiB; in all {:.1} / {:.1} MiB (on/off {:.2})",
        off.client_share * 100.0,
        on.client_share * 100.0,
        off.broker / 1048576.0,
        on.broker / 1048576.0,
        off.total_mib(),
        on.total_mib(),
        on.total_mib() / off.total_mib()
    );
    assert!(
        off.client_share > 0.3,
        "without zones most clients reach another zone"
    );
    assert!(
        on.client_share < 0.05,
        "with zones only bootstrap requests cross zones"
    );
    // Produce must reach the leader's zone either way; consumers read in their own zone.
    assert!(on.total_mib() < off.total_mib() / 2.0);
}
