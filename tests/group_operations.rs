//! The proxy's own consumer group operations (`backend::groups`) and reset planning
//! (`cluster::offset_resets::plan`) against the real Kafka cluster, with real librdkafka
//! consumers in classic and KIP-848 groups: describing a running group, removing its
//! members, committing offsets to an empty group (and being refused while it has
//! members), and planning each kind of target against records with known offsets and
//! timestamps.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla::backend::groups::{self, GroupDescription, GroupProtocol, OffsetSpec};
use flotilla::backend::{BrokerClient, Link};
use flotilla::cluster::error::ClusterError;
use flotilla::cluster::fleet::Fleet;
use flotilla::cluster::offset_resets::driver::{drive, evict_fenced};
use flotilla::cluster::offset_resets::evictions::{Eviction, GroupProtocol as FencedProtocol};
use flotilla::cluster::offset_resets::plan::{
    parse_datetime, plan, ResetRequest, ResetTarget, TopicSelection,
};
use flotilla::cluster::offset_resets::LEVEL;
use flotilla::cluster::writes::commit;
use flotilla::context::{Context, Transports};
use flotilla_config::Config;
use flotilla_raft::governance::unix_millis;
use flotilla_raft::offset_resets::{OffsetReset, PartitionReset, ResetPhase};
use flotilla_raft::{Command, ControlState};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::TopicPartitionList;
use support::rdkafka::{client_config, create_topic, create_topic_with};
use support::{kafka, unique_topic};

const DEADLINE: Duration = Duration::from_secs(60);

fn context() -> Arc<Context> {
    let text = format!(
        "[node]\nid = 1\n[backend]\nbootstrap_servers = [{}]\n",
        kafka()
            .split(',')
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let config = Config::parse(&text).unwrap();
    let transports = Transports::load(&config).unwrap();
    Arc::new(Context::new(config, None, transports))
}

fn addresses() -> Vec<String> {
    kafka().split(',').map(String::from).collect()
}

async fn coordinator_client(link: &Link, group: &str) -> BrokerClient {
    let coordinator = groups::find_coordinator(link, &addresses(), group)
        .await
        .unwrap();
    BrokerClient::connect(link, &coordinator.address)
        .await
        .unwrap()
}

/// Describes `group` until `check` accepts the description, polling `member` meanwhile
/// (a librdkafka consumer only completes a rebalance while it is polled).
async fn describe_until(
    link: &Link,
    group: &str,
    member: Option<&StreamConsumer>,
    what: &str,
    check: impl Fn(&GroupDescription) -> bool,
) -> GroupDescription {
    let start = Instant::now();
    loop {
        let mut client = coordinator_client(link, group).await;
        let description = groups::describe_group(&mut client, group).await.unwrap();
        if check(&description) {
            return description;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting for {what}; last {description:?}"
        );
        match member {
            Some(member) => {
                let _ = tokio::time::timeout(Duration::from_millis(100), member.recv()).await;
            }
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Produces `count` records to `partition`, the i-th with timestamp `first_ms + i`.
async fn produce(topic: &str, partition: i32, count: i64, first_ms: i64) {
    let producer: FutureProducer = client_config(kafka()).create().unwrap();
    for i in 0..count {
        let payload = format!("record {i}");
        let record = FutureRecord::<(), _>::to(topic)
            .partition(partition)
            .timestamp(first_ms + i)
            .payload(&payload);
        producer
            .send(record, Duration::from_secs(30))
            .await
            .unwrap_or_else(|(e, _)| panic!("producing to {topic}: {e}"));
    }
}

/// A consumer of `topic` in `group`, with the given `group.protocol`.
fn consumer(topic: &str, group: &str, protocol: &str) -> StreamConsumer {
    let mut config = client_config(kafka());
    config
        .set("group.id", group)
        .set("group.protocol", protocol)
        .set("enable.auto.commit", "false");
    if protocol == "classic" {
        config.set("session.timeout.ms", "30000");
    }
    let consumer: StreamConsumer = config.create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    consumer
}

async fn group_lifecycle(protocol: &str, expected: GroupProtocol) {
    let ctx = context();
    let link = &ctx.backend;
    let topic = unique_topic(&format!("groupops-{protocol}"));
    let group = format!("{topic}-group");
    create_topic_of_old_records(&topic, 2).await;
    produce(&topic, 0, 5, 1_000).await;

    let member = consumer(&topic, &group, protocol);
    let described = describe_until(link, &group, Some(&member), "the member to join", |d| {
        d.protocol == expected && d.members.len() == 1
    })
    .await;
    assert_eq!(described.protocol, expected);
    assert!(described.exists());
    let first_member = described.members[0].member_id.clone();

    // Kafka refuses a commit without a member while the group has members.
    let targets = BTreeMap::from([((topic.clone(), 0), 3), ((topic.clone(), 1), 0)]);
    let mut client = coordinator_client(link, &group).await;
    let refused = groups::commit_offsets(&mut client, &group, &targets).await;
    assert!(
        refused.is_err(),
        "a simple commit to a live group succeeded"
    );

    let removed =
        groups::remove_members(&mut client, &group, described.protocol, &described.members)
            .await
            .unwrap();
    assert_eq!(removed, 1);
    // Removing it again finds it gone: not an error, and nobody removed.
    if expected == GroupProtocol::Classic {
        let again = groups::remove_members(&mut client, &group, expected, &described.members).await;
        assert_eq!(again.unwrap(), 0);
        // The member notices on its next heartbeat and joins again, as a new member.
        describe_until(link, &group, Some(&member), "a new member", |d| {
            d.members.len() == 1 && d.members[0].member_id != first_member
        })
        .await;
    }

    // Once the consumer is gone, the group takes the commit.
    drop(member);
    let empty = describe_until(link, &group, None, "an empty group", |d| {
        d.accepts_simple_commits()
    })
    .await;
    assert!(empty.members.is_empty());
    let mut client = coordinator_client(link, &group).await;
    groups::commit_offsets(&mut client, &group, &targets)
        .await
        .unwrap();
    let committed = groups::committed_offsets(&mut client, &group)
        .await
        .unwrap();
    assert_eq!(committed, targets);

    // A librdkafka client reads the same offsets back.
    let reader: StreamConsumer = client_config(kafka())
        .set("group.id", &group)
        .create()
        .unwrap();
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition(&topic, 0);
    wanted.add_partition(&topic, 1);
    let seen = reader
        .committed_offsets(wanted, Duration::from_secs(30))
        .unwrap();
    let offset_of = |p| seen.find_partition(&topic, p).unwrap().offset().to_raw();
    assert_eq!(offset_of(0), Some(3));
    assert_eq!(offset_of(1), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_classic_group_is_described_emptied_and_committed_to() {
    group_lifecycle("classic", GroupProtocol::Classic).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kip_848_group_is_described_emptied_and_committed_to() {
    group_lifecycle("consumer", GroupProtocol::Consumer).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fenced_member_is_evicted_while_its_reset_applies() {
    let ctx = context();
    let link = &ctx.backend;
    let topic = unique_topic("groupops-evict");
    let group = format!("{topic}-group");
    create_topic(kafka(), &topic, 1).await;
    let member = consumer(&topic, &group, "classic");
    let joined = describe_until(link, &group, Some(&member), "the member to join", |d| {
        d.members.len() == 1
    })
    .await;
    let first_member = joined.members[0].member_id.clone();

    let reset = OffsetReset {
        id: "evict-1".into(),
        group: group.clone(),
        partitions: vec![PartitionReset {
            topic: topic.clone(),
            partition: 0,
            previous: None,
            target: 0,
            applied: false,
        }],
        phase: ResetPhase::Applying,
        spec: "to-earliest".into(),
        requested_by: "test".into(),
        created_at_ms: 0,
        start_at_ms: 0,
        deadline_ms: u64::MAX,
        finished_at_ms: None,
    };
    let mut state = ControlState::default();
    state.offset_resets.insert(reset.id.clone(), reset);
    ctx.control.store(Arc::new(state));
    let evictor = tokio::spawn(evict_fenced(ctx.clone()));
    ctx.evictions.request(Eviction {
        reset_id: "evict-1".into(),
        group: group.clone(),
        member_id: first_member.clone(),
        group_instance_id: None,
        protocol: FencedProtocol::Classic,
    });
    // Removed, the consumer joins again as a new member (no filter fences it here).
    describe_until(
        link,
        &group,
        Some(&member),
        "the member to be removed",
        |d| d.members.iter().all(|m| m.member_id != first_member),
    )
    .await;
    // The count follows the coordinator's answer, which may come after the describe.
    let start = Instant::now();
    while ctx.metrics.offset_resets.evicted_members.get() != 1 {
        assert!(start.elapsed() < DEADLINE, "the eviction was not counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    evictor.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_group_is_dead() {
    let ctx = context();
    let group = unique_topic("groupops-nobody");
    let mut client = coordinator_client(&ctx.backend, &group).await;
    let described = groups::describe_group(&mut client, &group).await.unwrap();
    assert!(!described.exists());
    assert!(described.members.is_empty());
    let committed = groups::committed_offsets(&mut client, &group)
        .await
        .unwrap();
    assert!(committed.is_empty());
}

/// Partition 0 holds offsets 0..10 with timestamps FIRST_MS + 0..10; partition 1 offsets
/// 0..5 with FIRST_MS + 0..5, and its first 2 records are deleted (log start 2).
const FIRST_MS: i64 = 1_700_000_000_000;

/// A topic for records stamped FIRST_MS: years old, so the brokers' time retention would
/// delete them at its next check (every 5 minutes) and move the log start under the test.
async fn create_topic_of_old_records(topic: &str, partitions: i32) {
    create_topic_with(kafka(), topic, partitions, &[("retention.ms", "-1")]).await
}

async fn planned(ctx: &Context, request: &ResetRequest) -> Vec<(i32, Option<i64>, i64)> {
    let reset: Vec<PartitionReset> = plan(ctx, request).await.unwrap();
    reset
        .into_iter()
        .map(|p| (p.partition, p.previous, p.target))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn plans_resolve_each_target_as_kafkas_tool_does() {
    let ctx = context();
    let link = &ctx.backend;
    let topic = unique_topic("groupops-plan");
    let group = format!("{topic}-group");
    create_topic_of_old_records(&topic, 2).await;
    produce(&topic, 0, 10, FIRST_MS).await;
    produce(&topic, 1, 5, FIRST_MS).await;
    delete_records(&topic, 1, 2).await;

    // The group exists through its committed offsets alone, like a group of `assign()`
    // consumers or one whose members are all gone.
    let mut client = coordinator_client(link, &group).await;
    let committed = BTreeMap::from([((topic.clone(), 0), 4), ((topic.clone(), 1), 3)]);
    groups::commit_offsets(&mut client, &group, &committed)
        .await
        .unwrap();

    let layout = groups::layout(link, &addresses(), std::slice::from_ref(&topic))
        .await
        .unwrap();
    let partitions = [(topic.clone(), 0), (topic.clone(), 1)];
    let earliest = groups::list_offsets(link, &layout, &partitions, OffsetSpec::Earliest)
        .await
        .unwrap();
    assert_eq!(earliest[&partitions[1]], Some(2));

    let request = |target| ResetRequest {
        group: group.clone(),
        topics: vec![TopicSelection {
            topic: topic.clone(),
            partitions: None,
        }],
        target,
    };
    let both = |t0: i64, t1: i64| vec![(0, Some(4), t0), (1, Some(3), t1)];
    assert_eq!(
        planned(&ctx, &request(ResetTarget::Earliest)).await,
        both(0, 2)
    );
    assert_eq!(
        planned(&ctx, &request(ResetTarget::Latest)).await,
        both(10, 5)
    );
    assert_eq!(
        planned(&ctx, &request(ResetTarget::Offset(7))).await,
        both(7, 5)
    );
    assert_eq!(
        planned(&ctx, &request(ResetTarget::Offset(0))).await,
        both(0, 2)
    );
    assert_eq!(
        planned(&ctx, &request(ResetTarget::ShiftBy(-2))).await,
        both(2, 2)
    );
    assert_eq!(
        planned(&ctx, &request(ResetTarget::ShiftBy(100))).await,
        both(10, 5)
    );
    let at = |offset: i64| ResetTarget::Datetime {
        unix_ms: FIRST_MS + offset,
    };
    assert_eq!(planned(&ctx, &request(at(3))).await, both(3, 3));
    // Past every record: the high watermark.
    assert_eq!(planned(&ctx, &request(at(7))).await, both(7, 5));
    assert_eq!(planned(&ctx, &request(at(1_000))).await, both(10, 5));
    // An ISO 8601 instant as an operator would type it.
    let typed = parse_datetime("2023-11-14T22:13:20.004Z").unwrap();
    assert_eq!(typed, FIRST_MS + 4);
    assert_eq!(
        planned(&ctx, &request(ResetTarget::Datetime { unix_ms: typed })).await,
        both(4, 4)
    );

    // Only the partitions named.
    let only_one = ResetRequest {
        topics: vec![TopicSelection {
            topic: topic.clone(),
            partitions: Some(vec![1]),
        }],
        ..request(ResetTarget::Latest)
    };
    assert_eq!(planned(&ctx, &only_one).await, vec![(1, Some(3), 5)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn plans_refuse_unknown_groups_topics_partitions_and_shifts_without_offsets() {
    let ctx = context();
    let topic = unique_topic("groupops-refuse");
    let group = format!("{topic}-group");
    create_topic_of_old_records(&topic, 2).await;
    produce(&topic, 0, 3, FIRST_MS).await;

    let request = |group: &str, topic: &str, partitions, target| ResetRequest {
        group: group.into(),
        topics: vec![TopicSelection {
            topic: topic.into(),
            partitions,
        }],
        target,
    };
    let refusal = |r: Result<Vec<PartitionReset>, ClusterError>| r.unwrap_err();

    let unknown_group =
        refusal(plan(&ctx, &request(&group, &topic, None, ResetTarget::Earliest)).await);
    assert_eq!(
        unknown_group,
        ClusterError::NotFound(format!("consumer group {group} does not exist"))
    );

    let mut client = coordinator_client(&ctx.backend, &group).await;
    let committed = BTreeMap::from([((topic.clone(), 0), 1)]);
    groups::commit_offsets(&mut client, &group, &committed)
        .await
        .unwrap();

    let missing = format!("{topic}-missing");
    let unknown_topic = refusal(
        plan(
            &ctx,
            &request(&group, &missing, None, ResetTarget::Earliest),
        )
        .await,
    );
    assert_eq!(
        unknown_topic,
        ClusterError::NotFound(format!("topic {missing} does not exist"))
    );

    let unknown_partition = refusal(
        plan(
            &ctx,
            &request(&group, &topic, Some(vec![0, 7]), ResetTarget::Earliest),
        )
        .await,
    );
    assert_eq!(
        unknown_partition,
        ClusterError::NotFound(format!("topic {topic} has no partition 7 (it has 2)"))
    );

    // Partition 1 has no committed offset to shift from.
    let shift = refusal(
        plan(
            &ctx,
            &request(&group, &topic, None, ResetTarget::ShiftBy(1)),
        )
        .await,
    );
    match shift {
        ClusterError::Invalid(message) => {
            assert!(message.contains(&format!("{topic}-1")), "{message}");
            assert!(message.contains("no committed offset"), "{message}");
        }
        other => panic!("expected an invalid request, got {other:?}"),
    }
    // Partition 0 alone can be shifted.
    let shifted = plan(
        &ctx,
        &request(&group, &topic, Some(vec![0]), ResetTarget::ShiftBy(1)),
    )
    .await
    .unwrap();
    assert_eq!(shifted[0].target, 2);
}

/// Deletes the records of `topic`'s `partition` below `before`, moving its log start.
async fn delete_records(topic: &str, partition: i32, before: i64) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::Offset;
    let admin: AdminClient<DefaultClientContext> = client_config(kafka()).create().unwrap();
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(topic, partition, Offset::Offset(before))
        .unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let deleted = admin.delete_records(&offsets, &options).await.unwrap();
    for element in deleted.elements() {
        assert!(element.error().is_ok(), "{element:?}");
    }
}

/// A one-node fleet in this process, its Raft leader once the offset reset level is
/// committed, with the node's context (standalone data path: no filter fences anything).
async fn one_node_fleet(dir: &std::path::Path) -> (Arc<Fleet>, Arc<Context>) {
    let host = support::next_host();
    let text = format!(
        "[node]\nid = 1\nadvertised_host = \"{host}\"\nadmin_listen = \"{host}:9644\"\n\
         [backend]\nbootstrap_servers = [{}]\n\
         [cluster]\nid = \"groupops\"\ngossip_listen = \"{host}:7946\"\n\
         raft_listen = \"{host}:7947\"\ndata_dir = \"{}\"\ninitial_members = [1]\n",
        addresses()
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", "),
        dir.display()
    );
    let config = Config::parse(&text).unwrap();
    let transports = Transports::load(&config).unwrap();
    let fleet = Fleet::start(&config, None).await.unwrap();
    let ctx = Arc::new(Context::new(config, Some(fleet.clone()), transports));
    let running = fleet.clone();
    let (directory, control, metrics, clusters) = (
        ctx.directory.clone(),
        ctx.control.clone(),
        ctx.metrics.clone(),
        ctx.clusters.clone(),
    );
    tokio::spawn(async move { running.run(directory, control, metrics, clusters).await });
    let start = Instant::now();
    loop {
        let status = fleet.status();
        let level = fleet.raft.state().borrow().feature_level;
        if status.leader == Some(1) && level >= LEVEL {
            return (fleet, ctx);
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the fleet did not reach level {LEVEL}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn reset_of(
    id: &str,
    group: &str,
    partitions: Vec<PartitionReset>,
    deadline_ms: u64,
) -> OffsetReset {
    let now = unix_millis();
    OffsetReset {
        id: id.into(),
        group: group.into(),
        partitions,
        phase: ResetPhase::Pending,
        spec: "to-offset".into(),
        requested_by: "test".into(),
        created_at_ms: now,
        start_at_ms: now,
        deadline_ms,
        finished_at_ms: None,
    }
}

async fn wait_phase(fleet: &Fleet, id: &str, phase: ResetPhase) -> OffsetReset {
    let start = Instant::now();
    loop {
        let reset = fleet.raft.state().borrow().offset_resets.get(id).cloned();
        if let Some(reset) = reset.filter(|r| r.phase == phase) {
            return reset;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "reset {id} did not become {phase}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_leader_drives_resets_to_done_or_expired() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("flotilla::cluster::offset_resets=debug")
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let (fleet, ctx) = one_node_fleet(dir.path()).await;
    tokio::spawn(drive(fleet.clone(), ctx.clone()));
    let topic = unique_topic("groupops-drive");
    create_topic_of_old_records(&topic, 2).await;
    produce(&topic, 0, 6, FIRST_MS).await;
    produce(&topic, 1, 6, FIRST_MS).await;

    // A group whose consumer has gone: the reset commits the targets and is done.
    let idle = format!("{topic}-idle");
    let mut client = coordinator_client(&ctx.backend, &idle).await;
    let before = BTreeMap::from([((topic.clone(), 0), 6), ((topic.clone(), 1), 6)]);
    groups::commit_offsets(&mut client, &idle, &before)
        .await
        .unwrap();
    let targets = vec![
        PartitionReset {
            topic: topic.clone(),
            partition: 0,
            previous: Some(6),
            target: 1,
            applied: false,
        },
        PartitionReset {
            topic: topic.clone(),
            partition: 1,
            previous: Some(6),
            target: 4,
            applied: false,
        },
    ];
    let reset = reset_of("drive-done", &idle, targets, unix_millis() + 60_000);
    commit(&fleet, Command::CreateOffsetReset { reset })
        .await
        .unwrap();
    let done = wait_phase(&fleet, "drive-done", ResetPhase::Done).await;
    assert!(done.partitions.iter().all(|p| p.applied));
    let committed = groups::committed_offsets(&mut client, &idle).await.unwrap();
    assert_eq!(
        committed,
        BTreeMap::from([((topic.clone(), 0), 1), ((topic.clone(), 1), 4)])
    );
    assert_eq!(ctx.metrics.offset_resets.duration.get_sample_count(), 1);
    let by_state = |s: &str| {
        ctx.metrics
            .offset_resets
            .by_state
            .with_label_values(&[s])
            .get()
    };
    assert_eq!(by_state("done"), 1);

    // A live member no node has fenced (there is no proxy in front of it here) keeps its
    // place until the leader's fallback; a deadline before that expires the reset with
    // nothing committed and nobody removed.
    let busy = format!("{topic}-busy");
    let member = consumer(&topic, &busy, "classic");
    describe_until(
        &ctx.backend,
        &busy,
        Some(&member),
        "the member to join",
        |d| d.members.len() == 1,
    )
    .await;
    let target = PartitionReset {
        topic: topic.clone(),
        partition: 0,
        previous: None,
        target: 2,
        applied: false,
    };
    let reset = reset_of("drive-busy", &busy, vec![target], unix_millis() + 5_000);
    commit(&fleet, Command::CreateOffsetReset { reset })
        .await
        .unwrap();
    let start = Instant::now();
    let finished = loop {
        let phase = fleet.raft.state().borrow().offset_resets["drive-busy"].phase;
        if !phase.is_active() {
            break phase;
        }
        assert!(start.elapsed() < DEADLINE, "the reset did not finish");
        let _ = tokio::time::timeout(Duration::from_millis(100), member.recv()).await;
    };
    assert_eq!(finished, ResetPhase::Expired);
    assert_eq!(ctx.metrics.offset_resets.evicted_members.get(), 0);
    let mut client = coordinator_client(&ctx.backend, &busy).await;
    let committed = groups::committed_offsets(&mut client, &busy).await.unwrap();
    assert_eq!(committed.get(&(topic.clone(), 0)), None);
    drop(member);

    // A scheduled reset whose deadline comes before its start expires untouched.
    let late = format!("{topic}-late");
    let mut client = coordinator_client(&ctx.backend, &late).await;
    groups::commit_offsets(&mut client, &late, &before)
        .await
        .unwrap();
    let target = PartitionReset {
        topic: topic.clone(),
        partition: 0,
        previous: Some(6),
        target: 0,
        applied: false,
    };
    let mut reset = reset_of("drive-late", &late, vec![target], unix_millis() + 500);
    reset.start_at_ms = unix_millis() + 600_000;
    commit(&fleet, Command::CreateOffsetReset { reset })
        .await
        .unwrap();
    let expired = wait_phase(&fleet, "drive-late", ResetPhase::Expired).await;
    assert!(expired.partitions.iter().all(|p| !p.applied));
    assert!(by_state("expired") >= 1);
    let committed = groups::committed_offsets(&mut client, &late).await.unwrap();
    assert_eq!(committed, before);
}
