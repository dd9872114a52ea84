//! Online offset resets of running Java consumer groups, with the classic protocol and with
//! KIP-848's: a reset forward (`--shift-by`, then `--to-latest`) on a group that lags
//! behind its topic. After each reset is done, the group delivers exactly the records from
//! the target on, each once: none below the target, none at or above it skipped, and the
//! consumer process is never restarted.
//!
//! The group is made to lag by a real consumer quota on its client id, so there is
//! something to skip.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::fleet::Fleet;
use support::groups::{committed, fill_partitions, last_reset, proxyctl, JavaGroupConsumer};
use support::{kafka, unique_topic, wait_for, Node};

const PARTITIONS: i32 = 3;
/// Records per partition before the resets.
const BACKLOG: i64 = 1_000;
/// Bytes a second the lagging group may fetch.
const LAGGING_RATE: u64 = 20_000;

/// Runs a reset to completion; returns its targets by partition and when it was done.
fn reset(node: &Node, group: &str, topic: &str, target: &[&str]) -> (BTreeMap<i32, i64>, Instant) {
    let asked = Instant::now();
    let mut args = vec!["group", "reset", group, "--topic", topic, "--wait"];
    args.extend_from_slice(target);
    proxyctl(node, &args);
    let done = Instant::now();
    let summary = last_reset(node, group).expect("the reset listed");
    assert_eq!(summary.state, "done", "{summary:?}");
    println!(
        "reset {} ({}) of {group}: done {:?} after proxyctl was called",
        summary.id,
        summary.spec,
        done - asked
    );
    let targets = summary
        .partitions
        .iter()
        .map(|p| (p.partition, p.target))
        .collect();
    (targets, done)
}

/// Every partition delivered exactly the offsets from its target on, each once, in order.
fn assert_delivered_from(
    what: &str,
    delivered: &BTreeMap<i32, Vec<i64>>,
    targets: &BTreeMap<i32, i64>,
    up_to: &BTreeMap<i32, i64>,
) {
    for (partition, target) in targets {
        let offsets = delivered.get(partition).cloned().unwrap_or_default();
        let end = up_to[partition];
        let expected: Vec<i64> = (*target..end).collect();
        let below: Vec<&i64> = offsets.iter().filter(|o| **o < *target).collect();
        assert!(
            below.is_empty(),
            "{what}: partition {partition} delivered {} records below the target {target} \
             after the reset (first {:?})",
            below.len(),
            below.first()
        );
        let within: Vec<i64> = offsets.iter().copied().filter(|o| *o < end).collect();
        assert_eq!(
            within.len(),
            expected.len(),
            "{what}: partition {partition} delivered {} of the {} records in [{target}, {end}) \
             (duplicates or skips; first delivered {:?})",
            within.len(),
            expected.len(),
            within.first()
        );
        assert_eq!(
            within, expected,
            "{what}: partition {partition} out of order"
        );
    }
}

fn ends(per_partition: i64) -> BTreeMap<i32, i64> {
    (0..PARTITIONS).map(|p| (p, per_partition)).collect()
}

async fn forward_resets_of_a_lagging_group(protocol: &str) {
    let topic = unique_topic(&format!("reset-java-{protocol}"));
    support::rdkafka::create_topic(kafka(), &topic, PARTITIONS).await;
    fill_partitions(&topic, PARTITIONS, BACKLOG, &"v".repeat(100)).await;
    let fleet = Fleet::start(1, kafka(), "2s");
    let node = &fleet.nodes[0];
    let group = unique_topic(&format!("reset-java-group-{protocol}"));
    let client_id = unique_topic("reset-java-client");
    support::quotas::set_client_quota(&fleet, &client_id, "--consumer-byte-rate", LAGGING_RATE);
    // Small fetches, so the quota paces the group record by record.
    let properties =
        format!("client.id={client_id}\nmax.partition.fetch.bytes=4096\nfetch.max.bytes=8192\n");
    let consumer =
        JavaGroupConsumer::start(&fleet.bootstrap(), &topic, &group, protocol, &properties);
    wait_for(
        "the group consuming and committing",
        Duration::from_secs(60),
        || {
            let offsets = committed(node, &group, &topic)?;
            let everywhere = offsets.iter().all(Option::is_some);
            (everywhere && consumer.records_delivered() >= 150).then_some(())
        },
    );

    // A shift forward from wherever the group has committed.
    let (shifted, shift_done) = reset(node, &group, &topic, &["--shift-by", "300"]);
    wait_for(
        "the group consuming after the shift",
        Duration::from_secs(60),
        || {
            let delivered = consumer.delivered_after(shift_done);
            (delivered.values().map(Vec::len).sum::<usize>() >= 100).then_some(())
        },
    );

    // Then to the end, while the group still lags.
    let latest_asked = Instant::now();
    let (latest, latest_done) = reset(node, &group, &topic, &["--to-latest"]);
    assert_eq!(
        latest,
        ends(BACKLOG),
        "--to-latest targets the high watermarks"
    );
    // Until the second reset began, the group read on from the shift's targets.
    let after_shift = consumer.delivered_between(shift_done, latest_asked);
    let read_to: BTreeMap<i32, i64> = shifted
        .iter()
        .map(|(p, target)| {
            let last = after_shift.get(p).and_then(|o| o.last().copied());
            (*p, last.map_or(*target, |last| last + 1))
        })
        .collect();
    assert_delivered_from("--shift-by", &after_shift, &shifted, &read_to);

    proxyctl(node, &["quota", "delete", "--client-id", &client_id]);
    fill_partitions(&topic, PARTITIONS, 100, &"v".repeat(100)).await;
    let end = ends(BACKLOG + 100);
    wait_for("the group at the end", Duration::from_secs(60), || {
        consumer.reached(latest_done, &end).then_some(())
    });
    let after_latest = consumer.delivered_after(latest_done);
    assert_delivered_from("--to-latest", &after_latest, &latest, &end);
    println!("{protocol} consumer saw: {}", consumer.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_resets_of_a_lagging_classic_java_group() {
    forward_resets_of_a_lagging_group("classic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_resets_of_a_lagging_kip848_java_group() {
    forward_resets_of_a_lagging_group("consumer").await;
}
