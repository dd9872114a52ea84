//! A filter for the integration tests only (the `test-hooks` feature), switched on with
//! `FLOTILLA_TEST_FILTER=on`. It gives every verdict a real client can observe, keyed on
//! topic-name prefixes so a test chooses the verdict by naming its topic:
//!
//! - `answered-`: a Produce naming only such topics is answered by the proxy with
//!   TOPIC_AUTHORIZATION_FAILED on every partition; the broker never sees it;
//! - `delayed-`: a Metadata request naming such a topic is held for [`DELAY`];
//! - `rewritten-`: a CreateTopics request for such a topic asks for 3 partitions, whatever
//!   the client asked for;
//! - `closed-`: a DeleteTopics request naming such a topic closes the connection.
//!
//! Everything else is forwarded.

use std::time::Duration;

use kafka_protocol::messages::{ApiKey, RequestKind};
use kafka_protocol::ResponseError;

use crate::protocol::error_response::error_response;
use crate::proxy::filter::{Env, Filter, Verdict};
use crate::proxy::message::Request;

pub const DELAY: Duration = Duration::from_millis(600);

pub fn from_env() -> Option<Box<dyn Filter>> {
    let on = std::env::var("FLOTILLA_TEST_FILTER").is_ok_and(|v| v == "on");
    on.then(|| Box::new(TestFilter) as Box<dyn Filter>)
}

struct TestFilter;

impl Filter for TestFilter {
    fn name(&self) -> &'static str {
        "test"
    }

    fn wants_request(&self, api_key: ApiKey, _version: i16) -> bool {
        matches!(
            api_key,
            ApiKey::Produce | ApiKey::Metadata | ApiKey::CreateTopics | ApiKey::DeleteTopics
        )
    }

    fn on_request(&self, request: &mut Request, _env: &Env) -> Verdict {
        let version = request.version();
        let body = match request.body() {
            Ok(body) => body,
            Err(e) => return Verdict::Close(format!("undecodable request: {e}")),
        };
        match body {
            RequestKind::Produce(produce) => {
                let names: Vec<&str> = produce.topic_data.iter().map(|t| t.name.as_str()).collect();
                if !names.is_empty() && names.iter().all(|n| n.starts_with("answered-")) {
                    return answer(body, version);
                }
            }
            RequestKind::Metadata(metadata) => {
                let topics = metadata.topics.iter().flatten();
                if topics
                    .filter_map(|t| t.name.as_deref())
                    .any(|n| n.starts_with("delayed-"))
                {
                    return Verdict::Delay(DELAY);
                }
            }
            RequestKind::DeleteTopics(delete) => {
                let by_name = delete.topic_names.iter().map(|n| n.as_str());
                let by_topic = delete
                    .topics
                    .iter()
                    .filter_map(|t| t.name.as_ref().map(|n| n.as_str()));
                if by_name.chain(by_topic).any(|n| n.starts_with("closed-")) {
                    return Verdict::Close("a test topic closes the connection".into());
                }
            }
            RequestKind::CreateTopics(_) => return rewrite_partitions(request),
            _ => {}
        }
        Verdict::Forward
    }
}

fn answer(request: &RequestKind, version: i16) -> Verdict {
    match error_response(request, version, ResponseError::TopicAuthorizationFailed, 0) {
        Ok(body) => Verdict::Answer(Box::new(body)),
        Err(e) => Verdict::Close(format!("cannot build the test answer: {e}")),
    }
}

fn rewrite_partitions(request: &mut Request) -> Verdict {
    if let Ok(RequestKind::CreateTopics(create)) = request.body_mut() {
        for topic in &mut create.topics {
            if topic.name.starts_with("rewritten-") {
                topic.num_partitions = 3;
            }
        }
    }
    Verdict::Forward
}
