//! Two real Kafka clusters behind one fleet: topics and consumer groups routed to each,
//! reached through one bootstrap list by unmodified clients, and the data checked where it
//! landed by reading each cluster directly.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use flotilla::api::{BackendClusterView, RouteTable};
use futures::future::join_all;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use support::fleet::Fleet;
use support::groups::JavaGroupConsumer;
use support::wire::{self, RawClient};
use support::{kafka, kafka_b, unique_topic, wait_for, AdminAccess};

const RECORDS: usize = 300;
const PARTITIONS: i32 = 3;

/// A fleet of `count` nodes with the cluster `b` configured besides `default`.
fn two_cluster_fleet(count: usize) -> Fleet {
    let b: Vec<String> = kafka_b().split(',').map(|a| format!("\"{a}\"")).collect();
    let fleet = Fleet::start_configured(count, kafka(), "2s", support::Launch::default(), |_| {
        format!(
            "[backend.clusters.b]\nbootstrap_servers = [{}]\n",
            b.join(", ")
        )
    });
    wait_for(
        "cluster b's brokers as identities",
        Duration::from_secs(60),
        || {
            let clusters = clusters(&fleet);
            let b = clusters.iter().find(|c| c.name == "b")?;
            let present = b.brokers.iter().filter(|b| b.present && b.owner.is_some());
            (present.count() == 3).then_some(())
        },
    );
    fleet
}

fn proxyctl(fleet: &Fleet, args: &[&str]) -> std::process::Output {
    AdminAccess::default().proxyctl(&fleet.nodes[0], args, "")
}

fn proxyctl_ok(fleet: &Fleet, args: &[&str]) -> String {
    let out = proxyctl(fleet, args);
    assert!(
        out.status.success(),
        "proxyctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn proxyctl_refused(fleet: &Fleet, args: &[&str]) -> String {
    let out = proxyctl(fleet, args);
    assert!(!out.status.success(), "proxyctl {args:?} was accepted");
    String::from_utf8(out.stderr).unwrap()
}

fn clusters(fleet: &Fleet) -> Vec<BackendClusterView> {
    let out = proxyctl(fleet, &["-o", "json", "cluster", "list"]);
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

async fn produce(bootstrap: &str, topic: &str) -> BTreeSet<String> {
    let producer: FutureProducer = support::rdkafka::client_config(bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .unwrap();
    let values: Vec<String> = (0..RECORDS).map(|i| format!("{topic}-{i}")).collect();
    let sends = values.iter().map(|value| {
        let producer = &producer;
        async move {
            producer
                .send(
                    FutureRecord::<(), _>::to(topic).payload(value),
                    Duration::from_secs(60),
                )
                .await
        }
    });
    for (i, sent) in join_all(sends).await.into_iter().enumerate() {
        sent.unwrap_or_else(|(e, _)| panic!("record {i} of {topic} not acknowledged: {e}"));
    }
    values.into_iter().collect()
}

/// Consumes `topic` as `group` until `count` records arrived, commits, and returns them.
async fn consume(bootstrap: &str, topic: &str, group: &str, count: usize) -> Vec<String> {
    let consumer: StreamConsumer = support::rdkafka::client_config(bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut received = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while received.len() < count {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {count}",
            received.len()
        );
        match tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await {
            Ok(Ok(message)) => {
                received.push(String::from_utf8(message.payload().unwrap().to_vec()).unwrap())
            }
            Ok(Err(e)) => panic!("consumer error: {e}"),
            Err(_) => continue,
        }
    }
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    received
}

/// The offsets `group` committed for `topic`, read from the cluster at `bootstrap`.
fn committed_on(bootstrap: &str, group: &str, topic: &str) -> Vec<Offset> {
    let consumer: StreamConsumer = support::rdkafka::client_config(bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut partitions = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        partitions.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(partitions, Duration::from_secs(10))
        .unwrap();
    committed.elements().iter().map(|e| e.offset()).collect()
}

/// The number of records in `topic` on the cluster at `bootstrap`, or `None` if the
/// cluster has no such topic.
fn records_on(bootstrap: &str, topic: &str, partitions: i32) -> Option<i64> {
    let consumer: StreamConsumer = support::rdkafka::client_config(bootstrap).create().unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let found = &metadata.topics()[0];
    if found.error().is_some() || found.partitions().is_empty() {
        return None;
    }
    let mut total = 0;
    for p in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .unwrap();
        total += high - low;
    }
    Some(total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_and_groups_of_two_clusters_through_one_bootstrap_list() {
    let fleet = two_cluster_fleet(2);
    let listed = clusters(&fleet);
    let b = listed.iter().find(|c| c.name == "b").unwrap();
    let ids: BTreeSet<i32> = b.brokers.iter().map(|b| b.identity).collect();
    assert_eq!(ids, BTreeSet::from([1_000_001, 1_000_002, 1_000_003]));
    assert_eq!(b.reachable, Some(true));

    // Routes: prefixes for topics and groups; overlaps and unknown clusters refused.
    let run = unique_topic("mc");
    let b_prefix = format!("{run}-b-");
    proxyctl_ok(&fleet, &["route", "set", "--topic-prefix", &b_prefix, "b"]);
    proxyctl_ok(&fleet, &["route", "set", "--group-prefix", &b_prefix, "b"]);
    let overlap = proxyctl_refused(
        &fleet,
        &[
            "route",
            "set",
            "--topic-prefix",
            &format!("{b_prefix}x"),
            "default",
        ],
    );
    assert!(overlap.contains("overlaps the topic prefix"), "{overlap}");
    let unknown = proxyctl_refused(&fleet, &["route", "set", "--topic", "t", "c"]);
    assert!(
        unknown.contains("`c` is not a backend cluster"),
        "{unknown}"
    );
    let table: RouteTable =
        serde_json::from_str(&proxyctl_ok(&fleet, &["-o", "json", "route", "list"])).unwrap();
    assert_eq!(table.routes.len(), 2);
    assert_eq!(table.default_cluster, "default");

    let topic_a = format!("{run}-a-topic");
    let topic_b = format!("{b_prefix}topic");
    support::rdkafka::create_topic(kafka(), &topic_a, PARTITIONS).await;
    support::rdkafka::create_topic(kafka_b(), &topic_b, PARTITIONS).await;

    let bootstrap = fleet.bootstrap();
    let sent_a = produce(&bootstrap, &topic_a).await;
    let sent_b = produce(&bootstrap, &topic_b).await;

    // Each topic's records are on its own cluster, and only there.
    assert_eq!(
        records_on(kafka(), &topic_a, PARTITIONS),
        Some(RECORDS as i64)
    );
    assert_eq!(
        records_on(kafka_b(), &topic_b, PARTITIONS),
        Some(RECORDS as i64)
    );
    assert_eq!(records_on(kafka(), &topic_b, PARTITIONS), None);
    assert_eq!(records_on(kafka_b(), &topic_a, PARTITIONS), None);

    // A consumer group on each cluster reads its topic through the fleet, exactly once.
    let group_a = format!("{run}-a-group");
    let group_b = format!("{b_prefix}group");
    let got_a = consume(&bootstrap, &topic_a, &group_a, RECORDS).await;
    let got_b = consume(&bootstrap, &topic_b, &group_b, RECORDS).await;
    assert_eq!(got_a.len(), RECORDS);
    assert_eq!(got_a.into_iter().collect::<BTreeSet<_>>(), sent_a);
    assert_eq!(got_b.len(), RECORDS);
    assert_eq!(got_b.into_iter().collect::<BTreeSet<_>>(), sent_b);

    // The groups' commits are on their clusters: past every record, and nowhere else.
    let committed_total = |offsets: Vec<Offset>| -> i64 {
        offsets
            .iter()
            .map(|o| match o {
                Offset::Offset(n) => *n,
                _ => 0,
            })
            .sum()
    };
    let total = RECORDS as i64;
    assert_eq!(
        committed_total(committed_on(kafka(), &group_a, &topic_a)),
        total
    );
    assert_eq!(
        committed_total(committed_on(kafka_b(), &group_b, &topic_b)),
        total
    );
    assert_eq!(
        committed_total(committed_on(kafka(), &group_b, &topic_b)),
        0
    );

    // An online offset reset of the group on cluster b moves its offsets there; a topic of
    // another cluster than the group's is refused by name.
    proxyctl_ok(
        &fleet,
        &[
            "group",
            "reset",
            &group_b,
            "--topic",
            &topic_b,
            "--to-earliest",
        ],
    );
    let (reset, _) =
        support::groups::wait_reset_finished(&fleet.nodes[0], &group_b, Duration::from_secs(60));
    assert_eq!(reset.state, "done", "{reset:?}");
    assert_eq!(
        committed_total(committed_on(kafka_b(), &group_b, &topic_b)),
        0
    );
    let elsewhere = proxyctl_refused(
        &fleet,
        &[
            "group",
            "reset",
            &group_b,
            "--topic",
            &topic_a,
            "--to-earliest",
            "--dry-run",
        ],
    );
    assert!(
        elsewhere.contains(&format!(
            "topic {topic_a} is served by backend cluster default"
        )),
        "{elsewhere}"
    );

    // The fleet's Metadata lists both clusters' topics and every identity.
    let client: StreamConsumer = support::rdkafka::client_config(&bootstrap)
        .create()
        .unwrap();
    let metadata = client
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    let names: BTreeSet<&str> = metadata.topics().iter().map(|t| t.name()).collect();
    assert!(names.contains(topic_a.as_str()) && names.contains(topic_b.as_str()));
    let broker_ids: BTreeSet<i32> = metadata.brokers().iter().map(|b| b.id()).collect();
    assert_eq!(
        broker_ids,
        BTreeSet::from([1, 2, 3, 1_000_001, 1_000_002, 1_000_003])
    );
    let b_leaders: BTreeSet<i32> = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic_b)
        .unwrap()
        .partitions()
        .iter()
        .map(|p| p.leader())
        .collect();
    assert!(b_leaders.iter().all(|l| *l > 1_000_000), "{b_leaders:?}");
}

/// The leader of partition 0 of `topic` on the cluster at `bootstrap`, once the broker
/// asked knows it (a topic just created reaches every broker's metadata a little later).
fn leader_on(bootstrap: &str, topic: &str) -> i32 {
    let consumer: StreamConsumer = support::rdkafka::client_config(bootstrap).create().unwrap();
    wait_for(
        "the topic's leader in metadata",
        Duration::from_secs(30),
        || {
            let metadata = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .ok()?;
            let leader = metadata.topics().first()?.partitions().first()?.leader();
            (leader >= 0).then_some(leader)
        },
    )
}

/// The fleet's address of identity `id`, from its Metadata.
fn identity_address(fleet: &Fleet, id: i32) -> String {
    let mut client = RawClient::connect(&fleet.bootstrap());
    let metadata = client.metadata();
    let broker = metadata.brokers.iter().find(|b| b.node_id.0 == id).unwrap();
    format!("{}:{}", broker.host, broker.port)
}

/// `produce_error` once the leader knows the topic: a broker answers a topic created a
/// moment ago UNKNOWN_TOPIC_OR_PARTITION until its metadata has it (nothing is written).
fn produce_to_known(address: &str, topic: &str) -> i16 {
    wait_for(
        "the leader to know the topic",
        Duration::from_secs(30),
        || {
            let error = produce_error(address, topic);
            (error != ResponseError::UnknownTopicOrPartition.code()).then_some(error)
        },
    )
}

fn produce_error(address: &str, topic: &str) -> i16 {
    let mut client = RawClient::connect(address);
    let response: ProduceResponse = client.call(
        ApiKey::Produce,
        9,
        &wire::produce_request(topic, "one record"),
    );
    response.responses[0].partition_responses[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_for_another_clusters_topic_is_refused_not_forwarded() {
    let fleet = two_cluster_fleet(1);
    let run = unique_topic("misrouted");
    let (topic_a, topic_b) = (format!("{run}-a"), format!("{run}-b"));
    proxyctl_ok(&fleet, &["route", "set", "--topic", &topic_b, "b"]);
    // Cluster b holds a topic of the same name as the default cluster's, as it would
    // after a migration: a stale client must not write into it.
    support::rdkafka::create_topic(kafka(), &topic_a, 1).await;
    support::rdkafka::create_topic(kafka_b(), &topic_a, 1).await;
    support::rdkafka::create_topic(kafka_b(), &topic_b, 1).await;

    let b_leader_of_a = identity_address(&fleet, 1_000_000 + leader_on(kafka_b(), &topic_a));
    assert_eq!(
        produce_error(&b_leader_of_a, &topic_a),
        ResponseError::NotLeaderOrFollower.code()
    );
    let b_leader_of_b = identity_address(&fleet, 1_000_000 + leader_on(kafka_b(), &topic_b));
    assert_eq!(produce_to_known(&b_leader_of_b, &topic_b), 0);
    let a_leader_of_a = identity_address(&fleet, leader_on(kafka(), &topic_a));
    assert_eq!(produce_to_known(&a_leader_of_a, &topic_a), 0);

    assert_eq!(records_on(kafka_b(), &topic_b, 1), Some(1));
    assert_eq!(records_on(kafka(), &topic_a, 1), Some(1));
    assert_eq!(records_on(kafka_b(), &topic_a, 1), Some(0));
}

const TOPICS: &str = "org.apache.kafka.tools.TopicCommand";
const GROUPS: &str = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";

fn tool(class: &str, args: &[&str]) -> String {
    String::from_utf8_lossy(&support::run_tool(class, args).stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafkas_own_tools_administer_both_clusters_through_the_fleet() {
    let fleet = two_cluster_fleet(1);
    let run = unique_topic("tools");
    let b_prefix = format!("{run}-b-");
    proxyctl_ok(&fleet, &["route", "set", "--topic-prefix", &b_prefix, "b"]);
    proxyctl_ok(&fleet, &["route", "set", "--group-prefix", &b_prefix, "b"]);
    let bootstrap = fleet.bootstrap();
    let fleet_args = ["--bootstrap-server", bootstrap.as_str()];
    let (topic_a, topic_b) = (format!("{run}-a-topic"), format!("{b_prefix}topic"));

    // CreateTopics lands on each topic's cluster.
    support::create_topic_with_tool(&bootstrap, &topic_a, 2);
    support::create_topic_with_tool(&bootstrap, &topic_b, 2);
    assert_eq!(records_on(kafka_b(), &topic_b, 2), Some(0));
    assert_eq!(records_on(kafka(), &topic_b, 2), None);
    assert_eq!(records_on(kafka(), &topic_a, 2), Some(0));

    let listed = tool(TOPICS, &[&fleet_args[..], &["--list"]].concat());
    assert!(listed.lines().any(|l| l == topic_a), "{listed}");
    assert!(listed.lines().any(|l| l == topic_b), "{listed}");

    // CreatePartitions, then Metadata and DescribeConfigs, on cluster b.
    tool(
        TOPICS,
        &[
            &fleet_args[..],
            &["--alter", "--topic", &topic_b, "--partitions", "3"],
        ]
        .concat(),
    );
    let described = tool(
        TOPICS,
        &[&fleet_args[..], &["--describe", "--topic", &topic_b]].concat(),
    );
    assert!(described.contains("PartitionCount: 3"), "{described}");
    assert_eq!(
        described.matches("Leader: 100000").count(),
        3,
        "{described}"
    );
    assert_eq!(records_on(kafka_b(), &topic_b, 3), Some(0));

    // A group on cluster b, listed and described with ConsumerGroupCommand.
    let group_b = format!("{b_prefix}group");
    let consumer: StreamConsumer = support::rdkafka::client_config(&bootstrap)
        .set("group.id", &group_b)
        .create()
        .unwrap();
    let mut offsets = TopicPartitionList::new();
    for p in 0..3 {
        offsets
            .add_partition_offset(&topic_b, p, Offset::Offset(0))
            .unwrap();
    }
    wait_for("the group's first commit", Duration::from_secs(30), || {
        consumer.commit(&offsets, CommitMode::Sync).ok()
    });
    drop(consumer);
    wait_for("the group in --list", Duration::from_secs(30), || {
        let listed = tool(GROUPS, &[&fleet_args[..], &["--list"]].concat());
        listed.lines().any(|l| l.trim() == group_b).then_some(())
    });
    let described = tool(
        GROUPS,
        &[&fleet_args[..], &["--describe", "--group", &group_b]].concat(),
    );
    assert_eq!(described.matches(&topic_b).count(), 3, "{described}");
    assert_eq!(committed_on(kafka_b(), &group_b, &topic_b).len(), 3);

    // DeleteTopics removes it from its cluster.
    tool(
        TOPICS,
        &[&fleet_args[..], &["--delete", "--topic", &topic_b]].concat(),
    );
    wait_for(
        "the topic gone from cluster b",
        Duration::from_secs(30),
        || records_on(kafka_b(), &topic_b, 3).is_none().then_some(()),
    );
}

fn transactional(bootstrap: &str, transactional_id: &str) -> FutureProducer {
    let producer: FutureProducer = support::rdkafka::client_config(bootstrap)
        .set("transactional.id", transactional_id)
        .set("transaction.timeout.ms", "30000")
        .create()
        .unwrap();
    producer.init_transactions(Duration::from_secs(30)).unwrap();
    producer
}

/// The end of partition 0 of `topic` on the cluster at `bootstrap`, as a read_committed
/// client sees it (librdkafka's default).
fn end_of(bootstrap: &str, topic: &str) -> i64 {
    let consumer: StreamConsumer = support::rdkafka::client_config(bootstrap).create().unwrap();
    consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .unwrap()
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_stays_within_its_transactional_ids_cluster() {
    let fleet = two_cluster_fleet(1);
    let run = unique_topic("txn");
    let b_prefix = format!("{run}-b-");
    proxyctl_ok(&fleet, &["route", "set", "--topic-prefix", &b_prefix, "b"]);
    proxyctl_ok(
        &fleet,
        &["route", "set", "--transactional-id-prefix", &b_prefix, "b"],
    );
    let topic = format!("{b_prefix}topic");
    support::rdkafka::create_topic(kafka_b(), &topic, 1).await;
    let bootstrap = fleet.bootstrap();

    // A transactional id of cluster b writes cluster b's topic.
    let local = transactional(&bootstrap, &format!("{b_prefix}tx"));
    local.begin_transaction().unwrap();
    for i in 0..10 {
        let value = format!("in-txn-{i}");
        let record = FutureRecord::<(), _>::to(&topic).payload(&value);
        local.send(record, Duration::from_secs(30)).await.unwrap();
    }
    local.commit_transaction(Duration::from_secs(30)).unwrap();
    // The end as a read_committed client sees it follows once the markers are written.
    wait_for(
        "the commit markers on cluster b",
        Duration::from_secs(30),
        || (end_of(kafka_b(), &topic) == 11).then_some(()),
    );
    let committed_end = 11;

    // One of the default cluster cannot: refused, and nothing reaches cluster b.
    let foreign = transactional(&bootstrap, &format!("{run}-a-tx"));
    foreign.begin_transaction().unwrap();
    let record = FutureRecord::<(), _>::to(&topic).payload("outside");
    let sent = foreign.send(record, Duration::from_secs(30)).await;
    assert!(
        sent.is_err(),
        "a record outside the transaction's cluster was acknowledged"
    );
    let refused = foreign
        .commit_transaction(Duration::from_secs(30))
        .expect_err("a transaction outside its cluster committed")
        .to_string();
    assert!(
        refused.contains("Failed to add partitions to transaction")
            && refused.contains("invalid state"),
        "{refused}"
    );
    assert_eq!(end_of(kafka_b(), &topic), committed_end);
}

/// Java's producer and consumer groups (the classic protocol and KIP-848's) on both
/// clusters through one bootstrap list: every acknowledged record consumed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_clients_work_on_both_clusters_through_one_bootstrap_list() {
    const JAVA_RECORDS: usize = 200;
    let fleet = two_cluster_fleet(1);
    let run = unique_topic("java");
    let b_prefix = format!("{run}-b-");
    proxyctl_ok(&fleet, &["route", "set", "--topic-prefix", &b_prefix, "b"]);
    proxyctl_ok(&fleet, &["route", "set", "--group-prefix", &b_prefix, "b"]);
    let bootstrap = fleet.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            format!("{run}-a-topic"),
            format!("{run}-a-group"),
            "classic",
            kafka(),
        ),
        (
            format!("{b_prefix}topic"),
            format!("{b_prefix}group"),
            "consumer",
            kafka_b(),
        ),
    ];
    for (topic, group, protocol, cluster) in &cases {
        support::rdkafka::create_topic(cluster, topic, PARTITIONS).await;
        let acknowledged = support::java::produce_with_properties(
            &bootstrap,
            topic,
            JAVA_RECORDS,
            "enable.idempotence=true\nacks=all\nretries=2147483647\n",
            dir.path(),
        );
        assert_eq!(acknowledged, JAVA_RECORDS, "{topic}");
        assert_eq!(
            records_on(cluster, topic, PARTITIONS),
            Some(JAVA_RECORDS as i64)
        );

        let consumer = JavaGroupConsumer::start(&bootstrap, topic, group, protocol, "");
        wait_for("every record consumed", Duration::from_secs(120), || {
            (consumer.records_delivered() >= JAVA_RECORDS).then_some(())
        });
        let delivered = consumer.delivered_after(Instant::now() - Duration::from_secs(3600));
        let mut seen = BTreeSet::new();
        for (partition, offsets) in delivered {
            for offset in offsets {
                assert!(
                    seen.insert((partition, offset)),
                    "{topic}: {partition}/{offset} twice"
                );
            }
        }
        assert_eq!(seen.len(), JAVA_RECORDS, "{topic}: {}", consumer.summary());
    }
}

/// Metadata of `topics` through `client`.
fn metadata_of(client: &mut RawClient, topics: &[&str]) -> MetadataResponse {
    let topics = topics
        .iter()
        .map(|t| {
            MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(t.to_string()))))
        })
        .collect();
    client.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(topics)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_cluster_costs_only_its_own_topics() {
    // Cluster c is configured and registered, and never answers.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let fleet = Fleet::start_configured(1, kafka(), "2s", support::Launch::default(), |_| {
        format!("[backend.clusters.c]\nbootstrap_servers = [\"127.0.0.1:{closed_port}\"]\n")
    });
    wait_for("cluster c registered", Duration::from_secs(30), || {
        let listed = clusters(&fleet);
        let c = listed.iter().find(|c| c.name == "c")?;
        (c.reachable == Some(false)).then_some(())
    });
    let run = unique_topic("silent");
    let (topic_a, topic_c) = (format!("{run}-a"), format!("{run}-c"));
    proxyctl_ok(&fleet, &["route", "set", "--topic", &topic_c, "c"]);
    support::rdkafka::create_topic(kafka(), &topic_a, PARTITIONS).await;

    // The default cluster's topics are served as ever.
    let sent = produce(&fleet.bootstrap(), &topic_a).await;
    assert_eq!(sent.len(), RECORDS);
    let mut client = RawClient::connect(&fleet.bootstrap());
    let metadata = metadata_of(&mut client, &[&topic_a, &topic_c]);
    let error_of = |name: &str| {
        let topic = metadata
            .topics
            .iter()
            .find(|t| t.name.as_ref().unwrap().0.as_str() == name);
        topic.unwrap().error_code
    };
    assert_eq!(error_of(&topic_a), 0);
    assert_eq!(error_of(&topic_c), ResponseError::LeaderNotAvailable.code());

    // All topics cannot be answered without c's: the connection closes (clients retry).
    let all = client.encode(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(None),
    );
    client.send_frame(&all);
    client.assert_closed_within(Duration::from_secs(15));
    let failures =
        fleet.nodes[0].metric("flotilla_backend_refresh_failures_total", "cluster=\"c\"");
    assert!(failures > 0.0, "refresh failures of c: {failures}");
}

/// The routes and the second cluster's identities are Raft state: kill -9 of the Raft
/// leader loses neither, the survivors take over its identities (of both clusters), and
/// clients keep producing to and consuming from cluster b through them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_and_cluster_b_identities_survive_kill_of_the_raft_leader() {
    let mut fleet = two_cluster_fleet(3);
    let run = unique_topic("leader-kill");
    let b_prefix = format!("{run}-b-");
    proxyctl_ok(&fleet, &["route", "set", "--topic-prefix", &b_prefix, "b"]);
    proxyctl_ok(&fleet, &["route", "set", "--group-prefix", &b_prefix, "b"]);
    let topic = format!("{b_prefix}topic");
    support::rdkafka::create_topic(kafka_b(), &topic, PARTITIONS).await;

    let leader = fleet
        .status(1)
        .and_then(|s| s.leader)
        .expect("a Raft leader");
    fleet.node(leader).kill();
    let survivor = if leader == 1 { 2 } else { 1 };
    let settled = fleet.wait_for_status(survivor, "a new leader, every identity owned", |s| {
        s.leader.is_some_and(|l| l != leader)
            && s.identities.len() == 6
            && s.all_owned_by_live_nodes()
    });
    assert!(settled.identities.iter().all(|i| i.owner != Some(leader)));

    // The routes are there, and a new one commits through the new leader.
    let survivor_node = &fleet.nodes[survivor as usize - 1];
    let access = AdminAccess::default();
    let listed = access.proxyctl(survivor_node, &["-o", "json", "route", "list"], "");
    let table: RouteTable = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(table.routes.len(), 2, "{table:?}");
    let added = access.proxyctl(
        survivor_node,
        &["route", "set", "--transactional-id-prefix", &b_prefix, "b"],
        "",
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );

    // Clients of cluster b carry on through the survivors.
    let survivors: Vec<String> = fleet
        .nodes
        .iter()
        .filter(|n| n.id != leader)
        .map(|n| n.bootstrap.clone())
        .collect();
    let bootstrap = survivors.join(",");
    let sent = produce(&bootstrap, &topic).await;
    let got = consume(&bootstrap, &topic, &format!("{b_prefix}group"), RECORDS).await;
    assert_eq!(got.len(), RECORDS);
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), sent);
    assert_eq!(
        records_on(kafka_b(), &topic, PARTITIONS),
        Some(RECORDS as i64)
    );
}
