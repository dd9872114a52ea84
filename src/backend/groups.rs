//! Consumer group and offset operations in the proxy's own name, as an offset reset needs
//! them: find a group's coordinator, describe the group (classic or KIP-848), read and
//! commit its offsets, remove its members, and list partition offsets (log start, high
//! watermark, by timestamp). Each is one short exchange whose Kafka error codes become
//! messages naming the group, member or partition, so a caller can log or show them as
//! they are.
//!
//! Versions: for the classic APIs the newest that Kafka 3.0 already accepted (any 3.x and
//! 4.x broker answers them); the KIP-848 APIs at v0, which every broker that has such
//! groups accepts.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context as _};
use kafka_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    BrokerId, ConsumerGroupHeartbeatRequest, DescribeGroupsRequest, FindCoordinatorRequest,
    GroupId, LeaveGroupRequest, ListOffsetsRequest, OffsetCommitRequest, OffsetFetchRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::client::BrokerClient;
use super::link::Link;
use crate::protocol::error_name;

const FIND_COORDINATOR_VERSION: i16 = 4;
const DESCRIBE_GROUPS_VERSION: i16 = 5;
const CONSUMER_GROUP_DESCRIBE_VERSION: i16 = 0;
const OFFSET_FETCH_VERSION: i16 = 7;
const OFFSET_COMMIT_VERSION: i16 = 8;
const LEAVE_GROUP_VERSION: i16 = 4;
const CONSUMER_GROUP_HEARTBEAT_VERSION: i16 = 0;
const LIST_OFFSETS_VERSION: i16 = 7;

/// Kafka's error codes this module tells apart.
const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const UNKNOWN_MEMBER_ID: i16 = 25;
const UNSUPPORTED_VERSION: i16 = 35;
const GROUP_ID_NOT_FOUND: i16 = 69;

/// The member epoch with which a KIP-848 member leaves its group for good.
const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;

/// A topic's partition: topic name and partition index.
pub type TopicPartition = (String, i32);

/// The broker that coordinates a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    pub broker_id: i32,
    /// The broker's own `host:port` (the proxy connects to brokers directly).
    pub address: String,
}

/// Which group protocol a group runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupProtocol {
    /// JoinGroup/SyncGroup/Heartbeat, with client-side assignment.
    Classic,
    /// KIP-848: ConsumerGroupHeartbeat, with the coordinator assigning.
    Consumer,
}

/// A member of a group, as its coordinator knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
}

/// A group as its coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub protocol: GroupProtocol,
    /// Kafka's name of the state: `Empty`, `Stable`, `PreparingRebalance`, `Dead`, ...
    pub state: String,
    pub members: Vec<GroupMember>,
}

impl GroupDescription {
    /// Whether the coordinator knows the group at all (members, or only offsets).
    pub fn exists(&self) -> bool {
        !self.state.eq_ignore_ascii_case("dead")
    }

    /// Whether offsets can be committed without a member: the group has no members and
    /// no rebalance under way, or does not exist yet.
    pub fn accepts_simple_commits(&self) -> bool {
        self.members.is_empty() && (self.state.eq_ignore_ascii_case("empty") || !self.exists())
    }

    fn dead() -> GroupDescription {
        GroupDescription {
            protocol: GroupProtocol::Classic,
            state: "Dead".into(),
            members: Vec::new(),
        }
    }
}

/// Which offset of a partition [`list_offsets`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The high watermark.
    Latest,
    /// The first offset whose record's timestamp is at or after this many Unix ms.
    Timestamp(i64),
}

impl OffsetSpec {
    /// ListOffsets' encoding: -2 is the log start, -1 the high watermark.
    fn timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ms) => ms,
        }
    }
}

/// Topics' partitions with their leaders, and the brokers' addresses, from Metadata.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Broker id to `host:port`.
    pub brokers: BTreeMap<i32, String>,
    /// Each partition's leader (-1: none right now).
    pub leaders: BTreeMap<TopicPartition, i32>,
    /// Topics asked for that the cluster does not have.
    pub missing: Vec<String>,
}

impl Layout {
    /// The partition indexes of `topic`, in order (none for a missing topic).
    pub fn partitions_of(&self, topic: &str) -> Vec<i32> {
        self.leaders
            .keys()
            .filter(|(t, _)| t == topic)
            .map(|(_, p)| *p)
            .collect()
    }
}

/// `Err` with Kafka's name of `code` and the broker's message, unless `code` is NONE.
fn kafka_result(code: i16, message: Option<&StrBytes>) -> Result<(), String> {
    if code == NONE {
        return Ok(());
    }
    match message.filter(|m| !m.is_empty()) {
        Some(message) => Err(format!("{} ({message})", error_name(code))),
        None => Err(error_name(code).to_string()),
    }
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// Asks `addresses` in turn for the broker coordinating `group`.
pub async fn find_coordinator(
    link: &Link,
    addresses: &[String],
    group: &str,
) -> anyhow::Result<Coordinator> {
    let mut last_error = anyhow!("no broker address to ask");
    for address in addresses {
        match ask_coordinator(link, address, group).await {
            Ok(coordinator) => return Ok(coordinator),
            Err(e) => last_error = e,
        }
    }
    Err(last_error.context(format!("finding the coordinator of group {group}")))
}

async fn ask_coordinator(link: &Link, address: &str, group: &str) -> anyhow::Result<Coordinator> {
    let mut client = BrokerClient::connect(link, address).await?;
    let request = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![text(group)]);
    let response = client.call(FIND_COORDINATOR_VERSION, &request).await?;
    let answer = response
        .coordinators
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("{address} answered FindCoordinator without a coordinator"))?;
    kafka_result(answer.error_code, answer.error_message.as_ref())
        .map_err(|e| anyhow!("{address} answered FindCoordinator with {e}"))?;
    Ok(Coordinator {
        broker_id: answer.node_id.0,
        address: format!("{}:{}", answer.host.as_str(), answer.port),
    })
}

/// Describes `group` at its coordinator, whichever protocol it runs. A group the
/// coordinator does not know is described as `Dead`, with no members.
pub async fn describe_group(
    client: &mut BrokerClient,
    group: &str,
) -> anyhow::Result<GroupDescription> {
    let classic = describe_classic(client, group).await?;
    if classic.exists() {
        return Ok(classic);
    }
    // DescribeGroups does not see KIP-848 groups: it calls them Dead.
    Ok(describe_consumer(client, group)
        .await?
        .unwrap_or_else(GroupDescription::dead))
}

async fn describe_classic(
    client: &mut BrokerClient,
    group: &str,
) -> anyhow::Result<GroupDescription> {
    let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(text(group))]);
    let response = client.call(DESCRIBE_GROUPS_VERSION, &request).await?;
    let described = response
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("DescribeGroups answered without group {group}"))?;
    if described.error_code == GROUP_ID_NOT_FOUND {
        return Ok(GroupDescription::dead());
    }
    kafka_result(described.error_code, described.error_message.as_ref())
        .map_err(|e| anyhow!("describing group {group} at {}: {e}", client.address()))?;
    Ok(GroupDescription {
        protocol: GroupProtocol::Classic,
        state: described.group_state.to_string(),
        members: described
            .members
            .into_iter()
            .map(|m| GroupMember {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.map(|i| i.to_string()),
            })
            .collect(),
    })
}

/// `None` if the coordinator has no KIP-848 group of that name (or no such groups at all).
async fn describe_consumer(
    client: &mut BrokerClient,
    group: &str,
) -> anyhow::Result<Option<GroupDescription>> {
    let request =
        ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(text(group))]);
    let response = client
        .call(CONSUMER_GROUP_DESCRIBE_VERSION, &request)
        .await?;
    let described = response
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("ConsumerGroupDescribe answered without group {group}"))?;
    if matches!(
        described.error_code,
        GROUP_ID_NOT_FOUND | UNSUPPORTED_VERSION
    ) {
        return Ok(None);
    }
    kafka_result(described.error_code, described.error_message.as_ref())
        .map_err(|e| anyhow!("describing group {group} at {}: {e}", client.address()))?;
    Ok(Some(GroupDescription {
        protocol: GroupProtocol::Consumer,
        state: described.group_state.to_string(),
        members: described
            .members
            .into_iter()
            .map(|m| GroupMember {
                member_id: m.member_id.to_string(),
                instance_id: m.instance_id.map(|i| i.to_string()),
            })
            .collect(),
    }))
}

/// The offsets `group` has committed, for every partition it has one for.
pub async fn committed_offsets(
    client: &mut BrokerClient,
    group: &str,
) -> anyhow::Result<BTreeMap<TopicPartition, i64>> {
    // No topic list: every partition the group has an offset for.
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_topics(None);
    let response = client.call(OFFSET_FETCH_VERSION, &request).await?;
    kafka_result(response.error_code, None).map_err(|e| {
        anyhow!(
            "fetching the offsets of group {group} at {}: {e}",
            client.address()
        )
    })?;
    let mut offsets = BTreeMap::new();
    for topic in response.topics {
        for partition in topic.partitions {
            let name = format!("{}-{}", topic.name.as_str(), partition.partition_index);
            kafka_result(partition.error_code, None)
                .map_err(|e| anyhow!("the offset of group {group} on {name}: {e}"))?;
            if partition.committed_offset >= 0 {
                let key = (topic.name.to_string(), partition.partition_index);
                offsets.insert(key, partition.committed_offset);
            }
        }
    }
    Ok(offsets)
}

/// Commits `offsets` for `group` with no member and generation -1, as Kafka's
/// `kafka-consumer-groups --reset-offsets` does: the coordinator takes it only while the
/// group has no members. `Ok` once every partition is committed.
pub async fn commit_offsets(
    client: &mut BrokerClient,
    group: &str,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> anyhow::Result<()> {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::default())
        .with_topics(commit_topics(offsets));
    let response = client.call(OFFSET_COMMIT_VERSION, &request).await?;
    let failures: Vec<String> = response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().filter_map(move |p| {
                kafka_result(p.error_code, None)
                    .err()
                    .map(|e| format!("{}-{}: {e}", t.name.as_str(), p.partition_index))
            })
        })
        .collect();
    if !failures.is_empty() {
        bail!(
            "committing offsets of group {group} at {}: {}",
            client.address(),
            failures.join(", ")
        );
    }
    Ok(())
}

fn commit_topics(offsets: &BTreeMap<TopicPartition, i64>) -> Vec<OffsetCommitRequestTopic> {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for ((topic, partition), offset) in offsets {
        let entry = OffsetCommitRequestPartition::default()
            .with_partition_index(*partition)
            .with_committed_offset(*offset)
            .with_committed_leader_epoch(-1)
            .with_committed_metadata(Some(StrBytes::default()));
        match topics.last_mut() {
            Some(last) if last.name.as_str() == topic => last.partitions.push(entry),
            _ => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(text(topic)))
                    .with_partitions(vec![entry]),
            ),
        }
    }
    topics
}

/// Removes `members` from `group` at its coordinator, as `kafka-consumer-groups
/// --remove-members` does for classic groups (LeaveGroup naming them) and as a leaving
/// KIP-848 member does (a heartbeat with member epoch -1). Returns how many were removed;
/// a member already gone counts as none, not as a failure.
pub async fn remove_members(
    client: &mut BrokerClient,
    group: &str,
    protocol: GroupProtocol,
    members: &[GroupMember],
) -> anyhow::Result<usize> {
    if members.is_empty() {
        return Ok(0);
    }
    match protocol {
        GroupProtocol::Classic => leave_classic(client, group, members).await,
        GroupProtocol::Consumer => {
            let mut removed = 0;
            for member in members {
                if leave_consumer(client, group, member).await? {
                    removed += 1;
                }
            }
            Ok(removed)
        }
    }
}

async fn leave_classic(
    client: &mut BrokerClient,
    group: &str,
    members: &[GroupMember],
) -> anyhow::Result<usize> {
    let identities = members
        .iter()
        .map(|m| {
            MemberIdentity::default()
                .with_member_id(text(&m.member_id))
                .with_group_instance_id(m.instance_id.as_deref().map(text))
        })
        .collect();
    let request = LeaveGroupRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_members(identities);
    let response = client.call(LEAVE_GROUP_VERSION, &request).await?;
    let at = client.address().to_string();
    kafka_result(response.error_code, None)
        .map_err(|e| anyhow!("removing members of group {group} at {at}: {e}"))?;
    let mut removed = 0;
    let mut failures = Vec::new();
    for member in &response.members {
        match member.error_code {
            NONE => removed += 1,
            UNKNOWN_MEMBER_ID => {}
            code => failures.push(format!(
                "{}: {}",
                member.member_id.as_str(),
                error_name(code)
            )),
        }
    }
    if !failures.is_empty() {
        bail!(
            "removing members of group {group} at {at}: {}",
            failures.join(", ")
        );
    }
    Ok(removed)
}

/// Whether the coordinator removed `member` (false: it was already gone).
async fn leave_consumer(
    client: &mut BrokerClient,
    group: &str,
    member: &GroupMember,
) -> anyhow::Result<bool> {
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_member_id(text(&member.member_id))
        .with_member_epoch(LEAVE_GROUP_MEMBER_EPOCH)
        .with_instance_id(member.instance_id.as_deref().map(text))
        .with_rebalance_timeout_ms(-1);
    let response = client
        .call(CONSUMER_GROUP_HEARTBEAT_VERSION, &request)
        .await?;
    match response.error_code {
        NONE => Ok(true),
        UNKNOWN_MEMBER_ID => Ok(false),
        code => Err(anyhow!(
            "removing member {} of group {group} at {}: {}",
            member.member_id,
            client.address(),
            kafka_result(code, response.error_message.as_ref()).unwrap_err()
        )),
    }
}

/// Asks `addresses` in turn for the brokers and for `topics`' partitions and leaders.
pub async fn layout(
    link: &Link,
    addresses: &[String],
    topics: &[String],
) -> anyhow::Result<Layout> {
    let wanted: Vec<MetadataRequestTopic> = topics
        .iter()
        .map(|t| MetadataRequestTopic::default().with_name(Some(TopicName(text(t)))))
        .collect();
    let mut last_error = anyhow!("no broker address to ask");
    for address in addresses {
        match super::metadata(link, address, Some(wanted.clone())).await {
            Ok(response) => return layout_of(response),
            Err(e) => last_error = e.context(format!("asking {address} for Metadata")),
        }
    }
    Err(last_error)
}

fn layout_of(response: kafka_protocol::messages::MetadataResponse) -> anyhow::Result<Layout> {
    let mut layout = Layout {
        brokers: response
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect(),
        ..Layout::default()
    };
    for topic in response.topics {
        let name = topic.name.map(|n| n.to_string()).unwrap_or_default();
        match topic.error_code {
            NONE => {}
            UNKNOWN_TOPIC_OR_PARTITION => {
                layout.missing.push(name);
                continue;
            }
            code => bail!("Metadata of topic {name}: {}", error_name(code)),
        }
        for partition in topic.partitions {
            let key = (name.clone(), partition.partition_index);
            layout.leaders.insert(key, partition.leader_id.0);
        }
    }
    Ok(layout)
}

/// One offset per partition of `partitions`, as `spec` asks, each from the partition's
/// leader; `None` where no record is at or after the timestamp asked for.
pub async fn list_offsets(
    link: &Link,
    layout: &Layout,
    partitions: &[TopicPartition],
    spec: OffsetSpec,
) -> anyhow::Result<BTreeMap<TopicPartition, Option<i64>>> {
    let mut by_leader: BTreeMap<i32, Vec<&TopicPartition>> = BTreeMap::new();
    for tp in partitions {
        match layout.leaders.get(tp) {
            Some(&leader) if leader >= 0 => by_leader.entry(leader).or_default().push(tp),
            Some(_) => bail!("partition {}-{} has no leader right now", tp.0, tp.1),
            None => bail!("there is no partition {}-{}", tp.0, tp.1),
        }
    }
    let asks = by_leader
        .into_iter()
        .map(|(leader, partitions)| async move {
            let address = layout
                .brokers
                .get(&leader)
                .ok_or_else(|| anyhow!("leader {leader} is not in the broker list"))?;
            list_at(link, address, &partitions, spec).await
        });
    let mut offsets = BTreeMap::new();
    for answer in futures::future::try_join_all(asks).await? {
        offsets.extend(answer);
    }
    Ok(offsets)
}

async fn list_at(
    link: &Link,
    address: &str,
    partitions: &[&TopicPartition],
    spec: OffsetSpec,
) -> anyhow::Result<Vec<(TopicPartition, Option<i64>)>> {
    let mut client = BrokerClient::connect(link, address).await?;
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(0)
        .with_topics(list_topics(partitions, spec));
    let response = client
        .call(LIST_OFFSETS_VERSION, &request)
        .await
        .context("listing partition offsets")?;
    let mut offsets = Vec::new();
    for topic in response.topics {
        for p in topic.partitions {
            let name = format!("{}-{}", topic.name.as_str(), p.partition_index);
            kafka_result(p.error_code, None)
                .map_err(|e| anyhow!("offsets of {name} at {address}: {e}"))?;
            let offset = (p.offset >= 0).then_some(p.offset);
            offsets.push(((topic.name.to_string(), p.partition_index), offset));
        }
    }
    Ok(offsets)
}

fn list_topics(partitions: &[&TopicPartition], spec: OffsetSpec) -> Vec<ListOffsetsTopic> {
    let mut topics: Vec<ListOffsetsTopic> = Vec::new();
    for (topic, partition) in partitions.iter().copied() {
        let entry = ListOffsetsPartition::default()
            .with_partition_index(*partition)
            .with_current_leader_epoch(-1)
            .with_timestamp(spec.timestamp());
        match topics.iter_mut().find(|t| t.name.as_str() == topic) {
            Some(existing) => existing.partitions.push(entry),
            None => topics.push(
                ListOffsetsTopic::default()
                    .with_name(TopicName(text(topic)))
                    .with_partitions(vec![entry]),
            ),
        }
    }
    topics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_empty_or_unknown_group_takes_simple_commits() {
        let member = GroupMember {
            member_id: "m".into(),
            instance_id: None,
        };
        let group = |state: &str, members: Vec<GroupMember>| GroupDescription {
            protocol: GroupProtocol::Classic,
            state: state.into(),
            members,
        };
        assert!(group("Empty", vec![]).accepts_simple_commits());
        assert!(group("Dead", vec![]).accepts_simple_commits());
        assert!(!group("Dead", vec![]).exists());
        assert!(!group("PreparingRebalance", vec![]).accepts_simple_commits());
        assert!(!group("Stable", vec![member]).accepts_simple_commits());
    }

    #[test]
    fn commits_group_partitions_by_topic() {
        let offsets = BTreeMap::from([
            (("a".to_string(), 0), 5),
            (("a".to_string(), 1), 6),
            (("b".to_string(), 0), 7),
        ]);
        let topics = commit_topics(&offsets);
        assert_eq!(topics.len(), 2);
        assert_eq!(topics[0].partitions.len(), 2);
        assert_eq!(topics[1].partitions[0].committed_offset, 7);
    }

    #[test]
    fn errors_are_named_as_kafka_names_them() {
        assert_eq!(
            kafka_result(UNKNOWN_MEMBER_ID, None),
            Err("UNKNOWN_MEMBER_ID".to_string())
        );
        let message = StrBytes::from_static_str("gone");
        assert_eq!(
            kafka_result(GROUP_ID_NOT_FOUND, Some(&message)),
            Err("GROUP_ID_NOT_FOUND (gone)".to_string())
        );
        assert_eq!(kafka_result(NONE, Some(&message)), Ok(()));
    }
}
