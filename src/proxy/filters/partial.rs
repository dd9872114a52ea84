//! Produce and Fetch requests answered in part by the proxy: some of their topics are taken
//! out on the way to the broker, and the broker's response gets them back, answered as the
//! filter decided, so the client reads one response naming every partition it asked for.
//!
//! ACLs take out the topics a principal may not use, breakers the topics they hold. Both
//! need the same three steps, kept here once: [`take_out`] removes the marked topics from
//! the decoded request, [`RequestNotes`](crate::proxy::filter::RequestNotes) carries them
//! to the response, and [`merge_back`] adds them to it. When every topic is taken out,
//! [`answer_all`] builds the whole answer instead and the broker never sees the request.
//!
//! Record batches are never touched: a topic goes to the broker whole, bytes as they came,
//! or not at all.

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    BrokerId, FetchResponse, ProduceResponse, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::proxy::filter::Env;
use crate::proxy::message::{Request, Response};

/// What the proxy answers for every partition of a topic it took out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionAnswer {
    /// The partition error code; 0 for a Fetch answered with no records.
    pub error: i16,
    /// The per-partition error message, where the version has one (Produce v8+).
    pub message: Option<StrBytes>,
}

impl PartitionAnswer {
    pub fn error(code: i16) -> PartitionAnswer {
        PartitionAnswer {
            error: code,
            message: None,
        }
    }
}

/// A topic taken out of a request, with the partitions it named.
#[derive(Debug, Clone)]
pub struct TakenOut {
    pub name: TopicName,
    pub id: Uuid,
    pub partitions: Vec<i32>,
    pub answer: PartitionAnswer,
}

/// Removes from a Produce or Fetch request the topics `answers` marks (one entry per topic,
/// in request order), and returns them. Other requests are left alone.
pub fn take_out(request: &mut Request, answers: &[Option<PartitionAnswer>]) -> Vec<TakenOut> {
    match request.body_mut() {
        Ok(RequestKind::Produce(r)) => retain_unmarked(&mut r.topic_data, answers, |t| {
            (
                t.name.clone(),
                t.topic_id,
                t.partition_data.iter().map(|p| p.index).collect(),
            )
        }),
        Ok(RequestKind::Fetch(r)) => retain_unmarked(&mut r.topics, answers, |t| {
            (
                t.topic.clone(),
                t.topic_id,
                t.partitions.iter().map(|p| p.partition).collect(),
            )
        }),
        _ => Vec::new(),
    }
}

fn retain_unmarked<T>(
    entries: &mut Vec<T>,
    answers: &[Option<PartitionAnswer>],
    describe: impl Fn(&T) -> (TopicName, Uuid, Vec<i32>),
) -> Vec<TakenOut> {
    let mut taken = Vec::new();
    let mut index = 0;
    entries.retain(|entry| {
        let answer = answers.get(index).cloned().flatten();
        index += 1;
        let Some(answer) = answer else {
            return true;
        };
        let (name, id, partitions) = describe(entry);
        taken.push(TakenOut {
            name,
            id,
            partitions,
            answer,
        });
        false
    });
    taken
}

/// Puts the topics `filter` took out of a Produce or Fetch back into its response;
/// responses of requests nothing was taken from pass untouched, without a lock.
pub fn merge_back(response: &mut Response, env: &Env, filter: &'static str) -> Result<(), String> {
    let Some(correlation_id) = response.correlation_id() else {
        return Ok(());
    };
    let Some(taken) = env
        .session
        .notes
        .take::<Vec<TakenOut>>(filter, correlation_id)
    else {
        return Ok(());
    };
    response.edit(|body| match body {
        ResponseKind::Produce(body) => {
            body.responses.extend(taken.iter().map(produce_entry));
            true
        }
        ResponseKind::Fetch(body) => {
            body.responses.extend(taken.iter().map(fetch_entry));
            true
        }
        _ => false,
    })
}

/// The whole answer to a Produce or Fetch every topic of which was taken out; a Fetch
/// answer starts no fetch session (id 0), so the client's next fetch is a full one.
pub fn answer_all(
    request: &RequestKind,
    taken: &[TakenOut],
    throttle_time_ms: i32,
) -> Option<ResponseKind> {
    match request {
        RequestKind::Produce(_) => Some(ResponseKind::Produce(
            ProduceResponse::default()
                .with_responses(taken.iter().map(produce_entry).collect())
                .with_throttle_time_ms(throttle_time_ms),
        )),
        RequestKind::Fetch(_) => Some(ResponseKind::Fetch(
            FetchResponse::default()
                .with_responses(taken.iter().map(fetch_entry).collect())
                .with_throttle_time_ms(throttle_time_ms)
                .with_session_id(0),
        )),
        _ => None,
    }
}

fn produce_entry(taken: &TakenOut) -> TopicProduceResponse {
    let partitions = taken.partitions.iter().map(|&index| {
        PartitionProduceResponse::default()
            .with_index(index)
            .with_error_code(taken.answer.error)
            .with_error_message(taken.answer.message.clone())
            .with_base_offset(-1)
            .with_log_append_time_ms(-1)
            .with_log_start_offset(-1)
    });
    TopicProduceResponse::default()
        .with_name(taken.name.clone())
        .with_topic_id(taken.id)
        .with_partition_responses(partitions.collect())
}

/// Offsets are Kafka's "unknown" (-1); records are an empty set rather than null, which
/// every client reads as "nothing yet".
fn fetch_entry(taken: &TakenOut) -> FetchableTopicResponse {
    let partitions = taken.partitions.iter().map(|&index| {
        PartitionData::default()
            .with_partition_index(index)
            .with_error_code(taken.answer.error)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1)
            .with_preferred_read_replica(BrokerId(-1))
            .with_records(Some(Bytes::new()))
    });
    FetchableTopicResponse::default()
        .with_topic(taken.name.clone())
        .with_topic_id(taken.id)
        .with_partitions(partitions.collect())
}
