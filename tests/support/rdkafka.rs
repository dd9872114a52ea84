//! librdkafka clients for tests, as every test configures them.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

/// A client of `bootstrap`; IPv4 only, since nodes listen on 127.x loopback addresses.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4");
    config
}

/// Creates `topic` with replication factor 3 through `bootstrap`, failing the test if the
/// admin client reports an error.
pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    create_topic_with(bootstrap, topic, partitions, &[]).await
}

/// Like [`create_topic`], with topic configs (`retention.ms` and so on).
pub async fn create_topic_with(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create().unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(3));
    for (key, value) in configs {
        new_topic = new_topic.set(key, value);
    }
    let results = admin.create_topics(&[new_topic], &options).await;
    for result in results.unwrap_or_else(|e| panic!("creating {topic}: {e}")) {
        result.unwrap_or_else(|e| panic!("creating {topic}: {e:?}"));
    }
}
