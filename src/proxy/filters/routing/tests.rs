use std::collections::BTreeMap;
use std::sync::Arc;

use flotilla_raft::routes::{RouteKey, RouteResource};
use flotilla_raft::{BrokerAddr, Command, ControlState};
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{
    NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{
    fetch_response, ApiKey, BrokerId, FetchRequest, FetchResponse, MetadataRequest,
    MetadataResponse, ProduceResponse, RequestKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::metadata::{merge, plan};
use super::{renumber, Routed};
use crate::backend::Clusters;
use crate::protocol::header::{parse_request, tests::encode_request};
use crate::proxy::filter::{Env, Listener, Session, Transport};
use crate::proxy::filters::test_support::broker_response;
use crate::proxy::message::{Request, Response};

/// A fleet with cluster `b` (brokers 1 and 2) and topics `orders.*` routed to it.
fn routed_state() -> ControlState {
    let mut state = ControlState::default();
    state.apply(&Command::SetFeatureLevel { level: 6 });
    state.apply(&Command::RegisterCluster { name: "b".into() });
    let addr = |port| BrokerAddr {
        host: "10.9.9.9".into(),
        port,
        rack: None,
    };
    state.apply(&Command::SyncBrokers {
        brokers: vec![(1, addr(1)), (2, addr(2))],
    });
    state.apply(&Command::SyncClusterBrokers {
        cluster: "b".into(),
        brokers: vec![(1, addr(11)), (2, addr(12))],
    });
    state.apply(&Command::SetRoute {
        key: RouteKey {
            resource: RouteResource::Topic,
            pattern: "orders.*".parse().unwrap(),
        },
        cluster: "b".into(),
    });
    state
}

fn routed() -> Routed {
    let backend = flotilla_config::Config::parse(
        "[node]\nid = 1\n[backend]\nbootstrap_servers = [\"h:1\"]\n",
    )
    .unwrap()
    .backend;
    Routed {
        clusters: Arc::new(Clusters::new(&backend, BTreeMap::new())),
        state: Arc::new(routed_state()),
    }
}

fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_string()))
}

fn topic(text: &str, leader: i32) -> MetadataResponseTopic {
    let partition = MetadataResponsePartition::default()
        .with_leader_id(BrokerId(leader))
        .with_replica_nodes(vec![BrokerId(leader), BrokerId(1)])
        .with_isr_nodes(vec![BrokerId(leader)]);
    MetadataResponseTopic::default()
        .with_name(Some(name(text)))
        .with_partitions(vec![partition])
}

fn answer(brokers: &[i32], topics: Vec<MetadataResponseTopic>) -> MetadataResponse {
    let brokers = brokers
        .iter()
        .map(|id| MetadataResponseBroker::default().with_node_id(BrokerId(*id)))
        .collect();
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_topics(topics)
        .with_cluster_id(Some(StrBytes::from_static_str("default-id")))
        .with_controller_id(BrokerId(1))
}

#[test]
fn each_named_topic_is_asked_of_its_cluster_and_the_others_give_brokers_only() {
    let routed = routed();
    let asked = |names: &[&str]| {
        MetadataRequest::default().with_topics(Some(
            names
                .iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(name(n))))
                .collect(),
        ))
    };
    let asks = plan(&routed, &asked(&["payments", "orders.eu"]), false);
    let topics_of = |cluster: &str| -> Vec<String> {
        let ask = asks.iter().find(|a| a.cluster == cluster).unwrap();
        let topics = ask.request.topics.as_ref().unwrap();
        topics
            .iter()
            .map(|t| t.name.as_ref().unwrap().to_string())
            .collect()
    };
    assert_eq!(topics_of("default"), ["payments"]);
    assert_eq!(topics_of("b"), ["orders.eu"]);
}

#[test]
fn all_topics_show_each_topic_once_from_its_cluster_with_virtual_ids() {
    let routed = routed();
    let all = MetadataRequest::default().with_topics(None);
    let asks = plan(&routed, &all, true);
    // Both clusters hold `orders.eu` (as during a migration); only b's is routed.
    let default = answer(&[1, 2], vec![topic("payments", 2), topic("orders.eu", 1)]);
    let b = answer(&[1, 2], vec![topic("orders.eu", 2), topic("stray", 1)]);
    let merged = merge(&routed, &asks, vec![Ok(default), Ok(b)], true).unwrap();

    let ids: Vec<i32> = merged.brokers.iter().map(|b| b.node_id.0).collect();
    assert_eq!(ids, [1, 2, 1_000_001, 1_000_002]);
    let names: Vec<String> = merged
        .topics
        .iter()
        .map(|t| t.name.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(names, ["payments", "orders.eu"]);
    let orders = &merged.topics[1].partitions[0];
    assert_eq!(orders.leader_id.0, 1_000_002);
    assert_eq!(
        orders.replica_nodes,
        [BrokerId(1_000_002), BrokerId(1_000_001)]
    );
    assert_eq!(merged.cluster_id.as_deref(), Some("default-id"));
}

#[test]
fn a_silent_cluster_costs_only_its_own_named_topics() {
    let routed = routed();
    let asked = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(name("payments"))),
        MetadataRequestTopic::default().with_name(Some(name("orders.eu"))),
    ]));
    let asks = plan(&routed, &asked, false);
    let default = answer(&[1, 2], vec![topic("payments", 2)]);
    let merged = merge(
        &routed,
        &asks,
        vec![Ok(default.clone()), Err("down".into())],
        false,
    )
    .unwrap();
    let orders = merged
        .topics
        .iter()
        .find(|t| t.name == Some(name("orders.eu")));
    assert_eq!(
        orders.unwrap().error_code,
        ResponseError::LeaderNotAvailable.code()
    );
    // b's brokers still listed, from the control state, so leaders stay resolvable.
    assert_eq!(merged.brokers.len(), 4);

    let all = MetadataRequest::default().with_topics(None);
    let asks = plan(&routed, &all, true);
    let failed = merge(&routed, &asks, vec![Ok(default), Err("down".into())], true);
    assert!(
        failed.is_err(),
        "an all-topics answer without b would read as deletions"
    );
}

fn session() -> Session {
    Session::new(
        "127.0.0.1:1".parse().unwrap(),
        Listener::Identity { slot: 2 },
        Transport::Plaintext,
    )
}

#[test]
fn leader_hints_from_another_cluster_name_its_virtual_identities() {
    let state = routed_state();
    let session = session();
    let env = Env {
        session: &session,
        control: &state,
    };
    let mut partition = PartitionProduceResponse::default()
        .with_error_code(ResponseError::NotLeaderOrFollower.code());
    partition.current_leader.leader_id = BrokerId(2);
    let body = ProduceResponse::default()
        .with_responses(vec![TopicProduceResponse::default()
            .with_name(name("orders.eu"))
            .with_partition_responses(vec![partition])])
        .with_node_endpoints(vec![NodeEndpoint::default().with_node_id(BrokerId(2))]);
    let mut response = Response::new(
        ApiKey::Produce,
        10,
        broker_response(ApiKey::Produce, 10, &body),
    );
    renumber::response(&mut response, &env, "b").unwrap();
    let frame = response.into_frame().unwrap();
    let view: ProduceResponse = decode_body(frame, ApiKey::Produce, 10);
    assert_eq!(view.node_endpoints[0].node_id.0, 1_000_002);
    assert_eq!(
        view.responses[0].partition_responses[0]
            .current_leader
            .leader_id
            .0,
        1_000_002
    );
}

#[test]
fn a_preferred_replica_is_renumbered_only_for_a_fetch_that_named_a_rack() {
    let state = routed_state();
    let session = session();
    let env = Env {
        session: &session,
        control: &state,
    };
    let fetch = FetchRequest::default()
        .with_rack_id(StrBytes::from_static_str("zone-2"))
        .with_topics(vec![FetchTopic::default().with_topic(name("orders.eu"))]);
    let frame = encode_request(ApiKey::Fetch, 12, 77, &fetch);
    let mut request = Request::new(parse_request(&frame).unwrap(), frame);
    assert!(matches!(request.body(), Ok(RequestKind::Fetch(_))));
    renumber::note_request(&mut request, &env);

    let partition =
        fetch_response::PartitionData::default().with_preferred_read_replica(BrokerId(2));
    let body = FetchResponse::default().with_responses(vec![
        fetch_response::FetchableTopicResponse::default()
            .with_topic(name("orders.eu"))
            .with_partitions(vec![partition]),
    ]);
    let frame = broker_response(ApiKey::Fetch, 12, &body);
    let mut response = Response::new(ApiKey::Fetch, 12, frame.clone());
    renumber::response(&mut response, &env, "b").unwrap();
    let view: FetchResponse = decode_body(response.into_frame().unwrap(), ApiKey::Fetch, 12);
    assert_eq!(
        view.responses[0].partitions[0].preferred_read_replica.0,
        1_000_002
    );

    // Without the note (a Fetch naming no rack), the bytes pass untouched.
    let mut untouched = Response::new(ApiKey::Fetch, 12, frame.clone());
    renumber::response(&mut untouched, &env, "b").unwrap();
    assert_eq!(untouched.into_frame().unwrap(), frame);
}

fn decode_body<T: kafka_protocol::protocol::Decodable>(
    mut frame: bytes::Bytes,
    api_key: ApiKey,
    version: i16,
) -> T {
    use kafka_protocol::protocol::Decodable;
    kafka_protocol::messages::ResponseHeader::decode(
        &mut frame,
        api_key.response_header_version(version),
    )
    .unwrap();
    T::decode(&mut frame, version).unwrap()
}
