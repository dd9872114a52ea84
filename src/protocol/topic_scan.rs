//! Per-topic facts of the data path's messages, read by stepping over the wire format:
//! the record sets of a Produce request, the partition errors of a Produce response, and
//! the record sets and errors of a Fetch response.
//!
//! Monitoring looks at every Produce and Fetch, so it must cost next to nothing. Decoding
//! with kafka-protocol builds a struct per topic and partition and still leaves the
//! records as bytes; here nothing is built: each partition is handed to a visitor as a
//! topic reference (name or id, borrowed from the frame), its error code and its record
//! bytes, whose batch headers `batches` then reads. Every length is checked against the
//! bytes left; malformed input ends the scan with an error, never a panic, and the
//! message is forwarded as it is either way (monitoring never refuses anything).

use kafka_protocol::messages::ApiKey;

/// How a message names a topic: by name up to Produce v12 and Fetch v12, by id after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicRef<'a> {
    Name(&'a str),
    Id([u8; 16]),
}

/// One partition of a message, as the visitor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionView<'a> {
    pub topic: TopicRef<'a>,
    /// 0 in requests.
    pub error_code: i16,
    /// The record set (empty when null or absent).
    pub records: &'a [u8],
}

/// The head of a Produce request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceHead<'a> {
    pub transactional_id: Option<&'a str>,
    pub acks: i16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {api:?} v{version} at byte {offset}")]
pub struct ScanError {
    pub api: ApiKey,
    pub version: i16,
    pub offset: usize,
}

/// Visits every partition of a Produce request body (the bytes after the request
/// header), and returns its transactional id and acks.
pub fn produce_request<'a>(
    body: &'a [u8],
    version: i16,
    mut visit: impl FnMut(PartitionView<'a>),
) -> Result<ProduceHead<'a>, ScanError> {
    let mut r = Reader::new(body, ApiKey::Produce, version, version >= 9);
    let transactional_id = r.nullable_string()?;
    let acks = r.i16()?;
    r.skip(4)?; // timeout_ms
    for _ in 0..r.count()? {
        let topic = r.topic(version >= 13)?;
        for _ in 0..r.count()? {
            r.skip(4)?; // index
            let records = r.nullable_bytes()?;
            r.tagged_fields()?;
            visit(PartitionView {
                topic,
                error_code: 0,
                records,
            });
        }
        r.tagged_fields()?;
    }
    Ok(ProduceHead {
        transactional_id,
        acks,
    })
}

/// Visits every partition of a Produce response (the whole frame, header included).
pub fn produce_response<'a>(
    frame: &'a [u8],
    version: i16,
    mut visit: impl FnMut(PartitionView<'a>),
) -> Result<(), ScanError> {
    let mut r = Reader::new(frame, ApiKey::Produce, version, version >= 9);
    r.response_header()?;
    for _ in 0..r.count()? {
        let topic = r.topic(version >= 13)?;
        for _ in 0..r.count()? {
            r.skip(4)?; // index
            let error_code = r.i16()?;
            r.skip(8 + 8)?; // base_offset, log_append_time_ms
            if version >= 5 {
                r.skip(8)?; // log_start_offset
            }
            if version >= 8 {
                for _ in 0..r.count()? {
                    r.skip(4)?; // batch_index
                    r.nullable_string()?;
                    r.tagged_fields()?;
                }
                r.nullable_string()?; // error_message
            }
            r.tagged_fields()?;
            visit(PartitionView {
                topic,
                error_code,
                records: &[],
            });
        }
        r.tagged_fields()?;
    }
    Ok(())
}

/// Visits every partition of a Fetch response (the whole frame, header included).
pub fn fetch_response<'a>(
    frame: &'a [u8],
    version: i16,
    mut visit: impl FnMut(PartitionView<'a>),
) -> Result<(), ScanError> {
    let mut r = Reader::new(frame, ApiKey::Fetch, version, version >= 12);
    r.response_header()?;
    r.skip(4)?; // throttle_time_ms
    if version >= 7 {
        r.skip(2 + 4)?; // error_code, session_id
    }
    for _ in 0..r.count()? {
        let topic = r.topic(version >= 13)?;
        for _ in 0..r.count()? {
            r.skip(4)?; // partition_index
            let error_code = r.i16()?;
            r.skip(8)?; // high_watermark
            if version >= 4 {
                r.skip(8)?; // last_stable_offset
            }
            if version >= 5 {
                r.skip(8)?; // log_start_offset
            }
            if version >= 4 {
                // aborted_transactions: producer_id and first_offset each.
                for _ in 0..r.nullable_count()?.unwrap_or(0) {
                    r.skip(16)?;
                    r.tagged_fields()?;
                }
            }
            if version >= 11 {
                r.skip(4)?; // preferred_read_replica
            }
            let records = r.nullable_bytes()?;
            r.tagged_fields()?;
            visit(PartitionView {
                topic,
                error_code,
                records,
            });
        }
        r.tagged_fields()?;
    }
    Ok(())
}

/// A cursor over untrusted bytes that knows the message's flexibility.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    api: ApiKey,
    version: i16,
    flexible: bool,
}

type Scanned<T> = Result<T, ScanError>;

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], api: ApiKey, version: i16, flexible: bool) -> Reader<'a> {
        Reader {
            bytes,
            pos: 0,
            api,
            version,
            flexible,
        }
    }

    fn error(&self) -> ScanError {
        ScanError {
            api: self.api,
            version: self.version,
            offset: self.pos,
        }
    }

    fn take(&mut self, n: usize) -> Scanned<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.error())?;
        let taken = self.bytes.get(self.pos..end).ok_or_else(|| self.error())?;
        self.pos = end;
        Ok(taken)
    }

    fn skip(&mut self, n: usize) -> Scanned<()> {
        self.take(n).map(drop)
    }

    fn i16(&mut self) -> Scanned<i16> {
        let bytes = self.take(2)?;
        Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn i32(&mut self) -> Scanned<i32> {
        let bytes = self.take(4)?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn varint(&mut self) -> Scanned<u32> {
        let mut value = 0u32;
        for shift in [0, 7, 14, 21, 28] {
            let byte = self.take(1)?[0];
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error())
    }

    /// A length or count; `None` for null.
    fn length(&mut self, rigid_i16: bool) -> Scanned<Option<usize>> {
        let raw = if self.flexible {
            i64::from(self.varint()?) - 1
        } else if rigid_i16 {
            i64::from(self.i16()?)
        } else {
            i64::from(self.i32()?)
        };
        match raw {
            -1 => Ok(None),
            0.. => Ok(Some(raw as usize)),
            _ => Err(self.error()),
        }
    }

    fn nullable_string(&mut self) -> Scanned<Option<&'a str>> {
        let Some(len) = self.length(true)? else {
            return Ok(None);
        };
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| self.error())
    }

    fn nullable_bytes(&mut self) -> Scanned<&'a [u8]> {
        match self.length(false)? {
            Some(len) => self.take(len),
            None => Ok(&[]),
        }
    }

    /// An array count; every element takes at least a byte, so a count larger than the
    /// bytes left is malformed (and no loop runs 2^31 times on a short frame).
    fn count(&mut self) -> Scanned<usize> {
        self.nullable_count()?.ok_or_else(|| self.error())
    }

    fn nullable_count(&mut self) -> Scanned<Option<usize>> {
        let count = self.length(false)?;
        if count.is_some_and(|n| n > self.bytes.len() - self.pos) {
            return Err(self.error());
        }
        Ok(count)
    }

    fn topic(&mut self, by_id: bool) -> Scanned<TopicRef<'a>> {
        if by_id {
            let id = self.take(16)?.try_into().map_err(|_| self.error())?;
            return Ok(TopicRef::Id(id));
        }
        match self.nullable_string()? {
            Some(name) => Ok(TopicRef::Name(name)),
            None => Err(self.error()),
        }
    }

    fn tagged_fields(&mut self) -> Scanned<()> {
        if !self.flexible {
            return Ok(());
        }
        for _ in 0..self.varint()? {
            self.varint()?; // tag
            let size = self.varint()? as usize;
            self.skip(size)?;
        }
        Ok(())
    }

    /// The correlation id, and in flexible versions the header's tagged fields.
    fn response_header(&mut self) -> Scanned<()> {
        self.skip(4)?;
        self.tagged_fields()
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::produce_response::{
        BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::{
        FetchResponse, ProduceRequest, ProduceResponse, ResponseHeader, TopicName, TransactionalId,
    };
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;
    use crate::protocol::batches::tests::batch;
    use crate::protocol::batches::{summarize, Codec};

    const ID: Uuid = Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);

    fn expected_topic(version: i16, by_id_since: i16, name: &'static str) -> TopicRef<'static> {
        if version >= by_id_since {
            TopicRef::Id(*ID.as_bytes())
        } else {
            TopicRef::Name(name)
        }
    }

    fn produce_body(version: i16) -> Bytes {
        let partitions = [(0, batch(3, Codec::Lz4, 7)), (1, batch(2, Codec::None, 7))];
        let topic = TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("orders")))
            .with_topic_id(ID)
            .with_partition_data(
                partitions
                    .into_iter()
                    .map(|(index, records)| {
                        PartitionProduceData::default()
                            .with_index(index)
                            .with_records(Some(records))
                    })
                    .collect(),
            );
        let request = ProduceRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx"))))
            .with_acks(-1)
            .with_topic_data(vec![topic]);
        let mut out = BytesMut::new();
        request.encode(&mut out, version).unwrap();
        out.freeze()
    }

    fn response_frame<T: Encodable>(api: ApiKey, version: i16, body: &T) -> Bytes {
        let mut out = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(5)
            .encode(&mut out, api.response_header_version(version))
            .unwrap();
        body.encode(&mut out, version).unwrap();
        out.freeze()
    }

    #[test]
    fn reads_every_produce_request_version() {
        for version in 3..=13 {
            let body = produce_body(version);
            let mut seen = Vec::new();
            let head = produce_request(&body, version, |p| seen.push(p)).unwrap();
            assert_eq!(head.acks, -1, "v{version}");
            assert_eq!(head.transactional_id, Some("tx"));
            assert_eq!(seen.len(), 2);
            assert!(seen
                .iter()
                .all(|p| p.topic == expected_topic(version, 13, "orders")));
            let records: u64 = seen.iter().map(|p| summarize(p.records).records).sum();
            assert_eq!(records, 5, "v{version}");
            assert!(summarize(seen[0].records).codecs.contains(Codec::Lz4));
        }
    }

    #[test]
    fn reads_every_produce_response_version() {
        for version in 3..=13 {
            let partition = |index, error_code| {
                PartitionProduceResponse::default()
                    .with_index(index)
                    .with_error_code(error_code)
                    .with_record_errors(vec![BatchIndexAndErrorMessage::default()
                        .with_batch_index_error_message(Some(StrBytes::from_static_str("bad")))])
                    .with_error_message(Some(StrBytes::from_static_str("why")))
            };
            let topic = TopicProduceResponse::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_topic_id(ID)
                .with_partition_responses(vec![partition(0, 0), partition(1, 6)]);
            let frame = response_frame(
                ApiKey::Produce,
                version,
                &ProduceResponse::default()
                    .with_responses(vec![topic])
                    .with_throttle_time_ms(3),
            );
            let mut seen = Vec::new();
            produce_response(&frame, version, |p| seen.push(p)).unwrap();
            let errors: Vec<i16> = seen.iter().map(|p| p.error_code).collect();
            assert_eq!(errors, vec![0, 6], "v{version}");
            assert_eq!(seen[1].topic, expected_topic(version, 13, "orders"));
        }
    }

    fn fetch_frame(version: i16, records: &Bytes) -> Bytes {
        let partition = |index, error_code, records: Option<Bytes>| {
            PartitionData::default()
                .with_partition_index(index)
                .with_error_code(error_code)
                .with_aborted_transactions(Some(vec![AbortedTransaction::default()
                    .with_producer_id(kafka_protocol::messages::ProducerId(3))
                    .with_first_offset(1)]))
                .with_records(records)
        };
        let mut topic = FetchableTopicResponse::default();
        if version >= 13 {
            topic.topic_id = ID;
        } else {
            topic.topic = TopicName(StrBytes::from_static_str("clicks"));
        }
        let topic = topic.with_partitions(vec![
            partition(0, 0, Some(records.clone())),
            partition(1, 1, None),
        ]);
        let body = FetchResponse::default()
            .with_session_id(if version >= 7 { 9 } else { 0 })
            .with_responses(vec![topic]);
        response_frame(ApiKey::Fetch, version, &body)
    }

    #[test]
    fn reads_every_fetch_response_version() {
        let records = batch(6, Codec::Zstd, -1);
        for version in 4..=18 {
            let frame = fetch_frame(version, &records);
            let mut seen = Vec::new();
            fetch_response(&frame, version, |p| seen.push(p)).unwrap();
            assert_eq!(seen.len(), 2, "v{version}");
            assert_eq!(seen[0].topic, expected_topic(version, 13, "clicks"));
            assert_eq!(seen[0].records, &records[..]);
            assert_eq!((seen[0].error_code, seen[1].error_code), (0, 1));
            assert!(seen[1].records.is_empty());
        }
    }

    #[test]
    fn truncated_messages_are_errors_not_panics() {
        let records = batch(2, Codec::None, -1);
        for version in [4, 11, 12, 13, 18] {
            let frame = fetch_frame(version, &records);
            for cut in 0..frame.len() {
                // Only the cut that leaves nothing of the trailing tagged fields may pass.
                let _ = fetch_response(&frame[..cut], version, |_| {});
            }
            assert!(fetch_response(&frame[..frame.len() / 2], version, |_| {}).is_err());
        }
        let body = produce_body(9);
        assert!(produce_request(&body[..body.len() - 3], 9, |_| {}).is_err());
    }

    /// What the scan saves against decoding with kafka-protocol (both then read the batch
    /// headers). Run with `cargo test --release --lib scan_against_decode -- --ignored
    /// --nocapture`; the figures are in the monitoring report.
    #[test]
    #[ignore]
    fn scan_against_decode() {
        use crate::protocol::decode::decode_request;
        use kafka_protocol::messages::{RequestKind, ResponseKind};
        let version = 9;
        let request = ProduceRequest::default().with_acks(-1).with_topic_data(
            ["orders", "audit"]
                .iter()
                .map(|name| {
                    TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_static_str(name)))
                        .with_partition_data(
                            (0..4)
                                .map(|index| {
                                    PartitionProduceData::default()
                                        .with_index(index)
                                        .with_records(Some(batch(20, Codec::Lz4, 7)))
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
        let mut body = BytesMut::new();
        request.encode(&mut body, version).unwrap();
        let body = body.freeze();
        let fetch = fetch_frame(12, &batch(200, Codec::None, -1));
        let rounds = 200_000;
        let time = |what: &str, f: &mut dyn FnMut() -> u64| {
            let start = std::time::Instant::now();
            let mut total = 0;
            for _ in 0..rounds {
                total += std::hint::black_box(f());
            }
            let ns = start.elapsed().as_nanos() as f64 / rounds as f64;
            println!("{what}: {ns:.0} ns ({total})");
        };
        time("produce request, scan", &mut || {
            let mut records = 0;
            produce_request(&body, version, |p| records += summarize(p.records).records).unwrap();
            records
        });
        time("produce request, kafka-protocol decode", &mut || {
            let Ok(RequestKind::Produce(r)) = decode_request(ApiKey::Produce, version, &body)
            else {
                panic!()
            };
            r.topic_data
                .iter()
                .flat_map(|t| &t.partition_data)
                .map(|p| summarize(p.records.as_deref().unwrap_or_default()).records)
                .sum()
        });
        time("fetch response, scan", &mut || {
            let mut records = 0;
            fetch_response(&fetch, 12, |p| records += summarize(p.records).records).unwrap();
            records
        });
        time("fetch response, kafka-protocol decode", &mut || {
            let mut frame = fetch.clone();
            ResponseHeader::decode(&mut frame, 1).unwrap();
            let ResponseKind::Fetch(r) =
                ResponseKind::decode(ApiKey::Fetch, &mut frame, 12).unwrap()
            else {
                panic!()
            };
            r.responses
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| summarize(p.records.as_deref().unwrap_or_default()).records)
                .sum()
        });
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            version in 3i16..=18,
        ) {
            let _ = produce_request(&bytes, version.min(13), |_| {});
            let _ = produce_response(&bytes, version.min(13), |_| {});
            let _ = fetch_response(&bytes, version.max(4), |_| {});
        }
    }
}
