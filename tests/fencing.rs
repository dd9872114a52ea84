//! Self-fencing with a real process and real signals: a node stopped (SIGSTOP) past its
//! takeover deadline must not forward what its sockets buffered meanwhile, and must serve
//! new requests once it runs again.

mod support;

use std::time::Duration;

use kafka_protocol::messages::{ApiKey, ProduceResponse};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use support::wire::{self, RawClient};
use support::{kafka, unique_topic, Node};

const TAKEOVER_AFTER: Duration = Duration::from_secs(1);

fn fleet_toml() -> String {
    format!(
        "[cluster]\nid = \"fencing-test\"\ngossip_listen = \"{{host}}:7946\"\n\
         raft_listen = \"{{host}}:7947\"\ndata_dir = \"{{dir}}/data\"\ninitial_members = [1]\n\
         voters = 1\ntakeover_after = \"{}ms\"\n",
        TAKEOVER_AFTER.as_millis()
    )
}

/// Every value in partition 0 of `topic`, read straight from the brokers.
fn values_in_kafka(topic: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .set("group.id", unique_topic("fencing-check"))
        .create()
        .unwrap();
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut values = Vec::new();
    let mut next = 0;
    support::wait_for(
        "reading the partition to its end",
        Duration::from_secs(30),
        || {
            while next < high {
                match consumer.poll(Duration::from_millis(200)) {
                    Some(Ok(message)) => {
                        values
                            .push(String::from_utf8_lossy(message.payload().unwrap()).to_string());
                        next = message.offset() + 1;
                    }
                    _ => return None,
                }
            }
            Some(())
        },
    );
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_buffered_while_stopped_are_never_forwarded() {
    let topic = unique_topic("fencing");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .create()
        .unwrap();
    for result in admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(3))],
            &AdminOptions::new(),
        )
        .await
        .unwrap()
    {
        result.unwrap();
    }
    let mut node = Node::start_with(kafka(), &fleet_toml());

    let mut client = RawClient::connect(&node.bootstrap);
    let leader = {
        let metadata = client.metadata();
        let t = metadata
            .topics
            .iter()
            .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(topic.as_str()));
        let leader = t.expect("topic in metadata").partitions[0].leader_id;
        metadata
            .brokers
            .iter()
            .find(|b| b.node_id == leader)
            .unwrap()
            .port
    };
    let identity = format!("{}:{leader}", node.host);
    let mut producer = RawClient::connect(&identity);
    let response: ProduceResponse = producer.call(
        ApiKey::Produce,
        9,
        &wire::produce_request(&topic, "before-stop"),
    );
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);

    // Stopped longer than the takeover deadline, with a request arriving meanwhile.
    node.signal("STOP");
    node.wait_stopped();
    let frame = producer.encode(
        ApiKey::Produce,
        9,
        &wire::produce_request(&topic, "sent-while-stopped"),
    );
    producer.send_frame(&frame);
    std::thread::sleep(TAKEOVER_AFTER * 3); // the stall itself is the stimulus under test
    node.signal("CONT");

    producer.assert_closed_within(Duration::from_secs(15));
    node.wait_for_log(&["connection closed", "fenced"]);

    // New clients are served once the node has re-confirmed.
    let mut fresh = RawClient::connect(&identity);
    let response: ProduceResponse = fresh.call(
        ApiKey::Produce,
        9,
        &wire::produce_request(&topic, "after-resume"),
    );
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);

    let values = values_in_kafka(&topic);
    assert_eq!(
        values,
        vec!["before-stop", "after-resume"],
        "Kafka must hold exactly the two acknowledged records, not the one buffered while stopped"
    );
    assert!(node.is_running());
}
