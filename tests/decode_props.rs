//! Property tests of `protocol::decode` against kafka-protocol itself.
//!
//! The schemas are written by hand, so the main danger is a schema that disagrees with
//! kafka-protocol: the walker would then pass counts that kafka-protocol reads from
//! somewhere else. Random valid bodies are generated from our schemas for every API and
//! version and must decode with kafka-protocol to exactly the same bytes when re-encoded.
//! Malformed bodies must never panic, and decoding them must allocate no more than a small
//! multiple of their size, which a counting global allocator measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{Bytes, BytesMut};
use flotilla::protocol::decode::schema::{Field, MessageSchema, Type};
use flotilla::protocol::decode::{
    decode_body, decode_request, request_schema, validate, DecodeError,
};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Counting allocator: bytes requested by the current thread, so parallel tests do not
// disturb each other.

struct CountingAllocator;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    // `try_with` because a thread being torn down still frees and allocates.
    let _ = ALLOCATED.try_with(|total| total.set(total.get() + bytes));
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size.saturating_sub(layout.size()));
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Runs `f` and returns its result with the bytes this thread allocated meanwhile.
fn allocated_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATED.with(Cell::get);
    let result = f();
    (result, ALLOCATED.with(Cell::get) - before)
}

/// The allocation bound asserted for `decode_request`, measured as all bytes requested
/// (not net of frees): 64 times the body plus 64 KiB.
///
/// What kafka-protocol builds is proportional to what the walker let through:
/// - a `Vec` reserves `count * size_of::<T>()`, and the walker allows at most one element
///   per `min_size(T)` body bytes. The worst ratio among the request types is about 40
///   (`worst_case_bodies_stay_within_the_allocation_bound` measures it for every array of
///   every version): a 120-byte OffsetFetch v8 group from 3 wire bytes; an array of empty
///   compact strings gives 32;
/// - an unknown tagged field costs at most a 408-byte `BTreeMap` leaf, and the walker
///   admits only 64 + body/32 of them: at most 26 KiB + 12.75 bytes per body byte;
/// - strings, bytes and records are slices of the body and allocate nothing; the rest
///   (sharing the body's buffer, error messages) is a few hundred bytes.
///
/// So the worst case is about 53 times the body plus 26 KiB, inside the bound.
fn allocation_bound(body_len: usize) -> usize {
    64 * body_len + 64 * 1024
}

// ---------------------------------------------------------------------------------------
// A schema-driven generator of valid bodies.

/// SplitMix64: tiny, and seeded by proptest so failures replay.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Deviation {
    Null,
    InvalidUtf8,
}

/// Where the generator wrote a length or count, so mutations can inflate it.
#[derive(Clone, Copy, Debug)]
enum LengthField {
    Int16(usize),
    Int32(usize),
    Varint(usize, usize),
}

struct BodyWriter<'a> {
    rng: &'a mut Rng,
    /// Which value to write wrongly by the schema (null where it may not be, invalid UTF-8
    /// in a string, a known tag outside its versions), to find out whether kafka-protocol
    /// agrees.
    deviate_at: Option<usize>,
    /// How many strings, bytes and arrays have been written (or could have deviated).
    deviation_chances: usize,
    version: i16,
    flexible: bool,
    out: Vec<u8>,
    lengths: Vec<LengthField>,
}

/// A random valid body of `schema` at `version`, and where its lengths are.
fn generate(schema: &MessageSchema, version: i16, rng: &mut Rng) -> (Vec<u8>, Vec<LengthField>) {
    let writer = write_body(schema, version, rng, None);
    (writer.out, writer.lengths)
}

/// A random body with exactly one value written against the schema, if the body has a
/// value that can be.
fn generate_with_one_deviation(schema: &MessageSchema, version: i16, rng: &mut Rng) -> Vec<u8> {
    let chances = write_body(schema, version, &mut rng.clone(), None).deviation_chances;
    let deviate_at = (chances > 0).then(|| rng.below(chances as u64) as usize);
    write_body(schema, version, rng, deviate_at).out
}

fn write_body<'a>(
    schema: &MessageSchema,
    version: i16,
    rng: &'a mut Rng,
    deviate_at: Option<usize>,
) -> BodyWriter<'a> {
    let mut writer = BodyWriter {
        rng,
        deviate_at,
        deviation_chances: 0,
        version,
        flexible: schema.is_flexible(version),
        out: Vec::new(),
        lengths: Vec::new(),
    };
    writer.fields(schema.fields);
    writer
}

const SAMPLE_CHARS: &[char] = &['a', 'Z', '0', '-', '.', 'é', 'ß', '字', '🦀'];

impl BodyWriter<'_> {
    fn fields(&mut self, fields: &'static [Field]) {
        let version = self.version;
        for field in fields.iter().filter(|f| f.is_plain_in(version)) {
            self.value(&field.ty, false);
        }
        if self.flexible {
            self.tagged_section(fields);
        }
    }

    /// `tagged` values avoid the type's default (null, empty), which kafka-protocol
    /// leaves out when it re-encodes a known tagged field.
    fn value(&mut self, ty: &'static Type, tagged: bool) {
        let deviation = self.deviation_chance(ty);
        let may_be_null = |nullable: bool, rng: &mut Rng| {
            (nullable && !tagged && rng.one_in(4)) || deviation == Some(Deviation::Null)
        };
        match *ty {
            Type::Int8 => self.random(1),
            Type::Int16 | Type::UInt16 => self.random(2),
            Type::Int32 => self.random(4),
            Type::Int64 | Type::Float64 => self.random(8),
            Type::Uuid => self.random(16),
            Type::Bool => {
                let bit = self.rng.below(2) as u8;
                self.out.push(bit)
            }
            Type::String { nullable } if may_be_null(nullable, self.rng) => self.null(true),
            Type::String { .. } if deviation == Some(Deviation::InvalidUtf8) => {
                self.length(1, true);
                self.out.push(0xff);
            }
            Type::String { .. } => {
                let chars = self.rng.below(6) as usize;
                let text: String = (0..chars)
                    .map(|_| SAMPLE_CHARS[self.rng.below(SAMPLE_CHARS.len() as u64) as usize])
                    .collect();
                self.length(text.len(), true);
                self.out.extend_from_slice(text.as_bytes());
            }
            Type::Bytes { nullable } if may_be_null(nullable, self.rng) => self.null(false),
            Type::Records if may_be_null(true, self.rng) => self.null(false),
            Type::Bytes { .. } | Type::Records => {
                let len = self.rng.below(8) as usize;
                self.length(len, false);
                self.random(len);
            }
            Type::Array { nullable, .. } if may_be_null(nullable, self.rng) => self.null(false),
            Type::Array { element, .. } => {
                let count = if tagged {
                    1 + self.rng.below(3)
                } else {
                    self.rng.below(4)
                };
                self.length(count as usize, false);
                for _ in 0..count {
                    self.value(element, false);
                }
            }
            Type::Struct { fields, nullable } => {
                if nullable {
                    if may_be_null(true, self.rng) {
                        self.out.push(0xff);
                        return;
                    }
                    self.out.push(1);
                }
                self.fields(fields);
            }
        }
    }

    /// Whether and how to write this value wrongly. Counts every string, and bytes and
    /// arrays that cannot be null.
    fn deviation_chance(&mut self, ty: &Type) -> Option<Deviation> {
        let deviation = match *ty {
            Type::String { nullable: false } if self.rng.one_in(2) => Deviation::Null,
            Type::String { .. } => Deviation::InvalidUtf8,
            Type::Bytes { nullable: false }
            | Type::Array {
                nullable: false, ..
            } => Deviation::Null,
            _ => return None,
        };
        self.deviation_chances += 1;
        (self.deviate_at == Some(self.deviation_chances - 1)).then_some(deviation)
    }

    /// Whether to send a known tag in a version where it does not exist.
    fn tag_deviation_chance(&mut self) -> bool {
        self.deviation_chances += 1;
        self.deviate_at == Some(self.deviation_chances - 1)
    }

    fn random(&mut self, n: usize) {
        let bytes = self.rng.bytes(n);
        self.out.extend_from_slice(&bytes);
    }

    /// A length or count prefix; strings use int16 where others use int32.
    fn length(&mut self, len: usize, is_string: bool) {
        if self.flexible {
            self.varint(len as u32 + 1);
        } else if is_string {
            self.lengths.push(LengthField::Int16(self.out.len()));
            self.out.extend_from_slice(&(len as i16).to_be_bytes());
        } else {
            self.lengths.push(LengthField::Int32(self.out.len()));
            self.out.extend_from_slice(&(len as i32).to_be_bytes());
        }
    }

    fn null(&mut self, is_string: bool) {
        if self.flexible {
            self.out.push(0);
        } else if is_string {
            self.out.extend_from_slice(&(-1i16).to_be_bytes());
        } else {
            self.out.extend_from_slice(&(-1i32).to_be_bytes());
        }
    }

    fn varint(&mut self, mut value: u32) {
        let start = self.out.len();
        while value >= 0x80 {
            self.out.push(value as u8 | 0x80);
            value >>= 7;
        }
        self.out.push(value as u8);
        self.lengths
            .push(LengthField::Varint(start, self.out.len() - start));
    }

    /// Some of the known tags valid in this version and some unknown ones, ascending.
    /// Unknown tags take any number the schema does not know, so a known tag given the
    /// wrong number in a schema is sent under its real number and caught.
    fn tagged_section(&mut self, fields: &'static [Field]) {
        let highest = fields
            .iter()
            .filter_map(|f| f.tag)
            .max()
            .map_or(0, |t| t + 1);
        let mut entries: Vec<(u32, Vec<u8>)> = Vec::new();
        for tag in 0..=highest + 3 {
            match fields.iter().find(|f| f.tag == Some(tag)) {
                Some(field) => {
                    let send = if field.versions.contains(self.version) {
                        self.rng.one_in(2)
                    } else {
                        self.tag_deviation_chance()
                    };
                    if send {
                        let value = self.nested(|writer| writer.value(&field.ty, true));
                        entries.push((tag, value));
                    }
                }
                None if self.rng.one_in(4) => {
                    let len = self.rng.below(4) as usize;
                    entries.push((tag, self.rng.bytes(len)));
                }
                None => {}
            }
        }
        self.varint(entries.len() as u32);
        for (tag, value) in entries {
            self.varint(tag);
            self.varint(value.len() as u32);
            self.out.extend_from_slice(&value);
        }
    }

    /// Writes with `write` into a buffer of its own (for a tagged value, whose size must
    /// precede it).
    fn nested(&mut self, write: impl FnOnce(&mut BodyWriter<'_>)) -> Vec<u8> {
        let mut writer = BodyWriter {
            rng: self.rng,
            deviate_at: self.deviate_at,
            deviation_chances: self.deviation_chances,
            version: self.version,
            flexible: self.flexible,
            out: Vec::new(),
            lengths: Vec::new(),
        };
        write(&mut writer);
        self.deviation_chances = writer.deviation_chances;
        writer.out
    }
}

/// Every API key with its decodable versions.
fn every_api_version() -> impl Iterator<Item = (ApiKey, i16, &'static MessageSchema)> {
    ApiKey::iter().flat_map(|api_key| {
        let schema = request_schema(api_key).expect("every API key has a schema");
        (schema.versions.min..=schema.versions.max).map(move |version| (api_key, version, schema))
    })
}

fn encode(request: &RequestKind, version: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    request.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A valid body must pass the walker, decode to the end, and re-encode to itself.
fn check_round_trip(api_key: ApiKey, version: i16, body: &[u8]) -> Result<(), TestCaseError> {
    let context = || format!("{api_key:?} v{version} body {}", hex(body));
    let body = Bytes::copy_from_slice(body);
    prop_assert_eq!(validate(api_key, version, &body), Ok(()), "{}", context());
    let decoded = decode_request(api_key, version, &body);
    prop_assert!(decoded.is_ok(), "{}: {:?}", context(), decoded);
    let encoded = encode(&decoded.unwrap(), version);
    prop_assert_eq!(hex(&encoded), hex(&body), "{}", context());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// a. Generated valid bodies of every API and version.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn generated_bodies_walk_decode_and_reencode_identically(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        for (api_key, version, schema) in every_api_version() {
            let (body, _) = generate(schema, version, &mut rng);
            check_round_trip(api_key, version, &body)?;
        }
    }
}

#[test]
fn validating_a_valid_body_allocates_nothing() {
    let mut rng = Rng(7);
    for (api_key, version, schema) in every_api_version() {
        for _ in 0..4 {
            let (body, _) = generate(schema, version, &mut rng);
            let (result, allocated) = allocated_during(|| validate(api_key, version, &body));
            assert_eq!(result, Ok(()), "{api_key:?} v{version}");
            assert_eq!(allocated, 0, "{api_key:?} v{version} allocated");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The generated bodies above only hold what the schema allows, so a schema stricter
    /// than kafka-protocol (non-null where it takes null, a string where it takes any
    /// bytes, a tag in fewer versions) would go unnoticed there. Here one value is written against the schema, and
    /// the walker must accept exactly what kafka-protocol decodes. Counts stay small, so
    /// kafka-protocol can safely read these bodies unchecked.
    #[test]
    fn walker_accepts_exactly_what_kafka_protocol_decodes(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        for (api_key, version, schema) in every_api_version().flat_map(|v| [v; 4]) {
            let body = generate_with_one_deviation(schema, version, &mut rng);
            let mut rest = Bytes::copy_from_slice(&body);
            let decoded = RequestKind::decode(api_key, &mut rest, version);
            let kafka_protocol_accepts = decoded.is_ok() && rest.is_empty();
            let walker_accepts = validate(api_key, version, &body).is_ok();
            prop_assert_eq!(
                walker_accepts,
                kafka_protocol_accepts,
                "{:?} v{} body {}: walker {:?}, kafka-protocol {:?}",
                api_key,
                version,
                hex(&body),
                validate(api_key, version, &body),
                decoded.map(drop),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// b. Bodies kafka-protocol encodes: defaults of every request, and populated ones.

macro_rules! default_request_of {
    ($api_key:expr; $($key:ident),* $(,)?) => {
        match $api_key {
            $(ApiKey::$key => RequestKind::$key(Default::default()),)*
        }
    };
}

fn default_request(api_key: ApiKey) -> RequestKind {
    default_request_of!(api_key;
        Produce, Fetch, ListOffsets, Metadata, OffsetCommit, OffsetFetch, FindCoordinator,
        JoinGroup, Heartbeat, LeaveGroup, SyncGroup, DescribeGroups, ListGroups, SaslHandshake,
        ApiVersions, CreateTopics, DeleteTopics, DeleteRecords, InitProducerId,
        OffsetForLeaderEpoch, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, WriteTxnMarkers,
        TxnOffsetCommit, DescribeAcls, CreateAcls, DeleteAcls, DescribeConfigs, AlterConfigs,
        AlterReplicaLogDirs, DescribeLogDirs, SaslAuthenticate, CreatePartitions,
        CreateDelegationToken, RenewDelegationToken, ExpireDelegationToken,
        DescribeDelegationToken, DeleteGroups, ElectLeaders, IncrementalAlterConfigs,
        AlterPartitionReassignments, ListPartitionReassignments, OffsetDelete,
        DescribeClientQuotas, AlterClientQuotas, DescribeUserScramCredentials,
        AlterUserScramCredentials, Vote, BeginQuorumEpoch, EndQuorumEpoch, DescribeQuorum,
        AlterPartition, UpdateFeatures, Envelope, FetchSnapshot, DescribeCluster,
        DescribeProducers, BrokerRegistration, BrokerHeartbeat, UnregisterBroker,
        DescribeTransactions, ListTransactions, AllocateProducerIds, ConsumerGroupHeartbeat,
        ConsumerGroupDescribe, ControllerRegistration, GetTelemetrySubscriptions,
        PushTelemetry, AssignReplicasToDirs, ListConfigResources, DescribeTopicPartitions,
        ShareGroupHeartbeat, ShareGroupDescribe, ShareFetch, ShareAcknowledge, AddRaftVoter,
        RemoveRaftVoter, UpdateRaftVoter, InitializeShareGroupState, ReadShareGroupState,
        WriteShareGroupState, DeleteShareGroupState, ReadShareGroupStateSummary,
        DescribeShareGroupOffsets, AlterShareGroupOffsets, DeleteShareGroupOffsets,
    )
}

#[test]
fn default_requests_of_every_api_and_version_are_accepted() {
    for (api_key, version, _) in every_api_version() {
        let body = encode(&default_request(api_key), version);
        check_round_trip(api_key, version, &body).unwrap();
    }
}

fn name(s: &'static str) -> StrBytes {
    StrBytes::from_static_str(s)
}

fn produce_request(records: &Bytes) -> ProduceRequest {
    let partition = |index| {
        PartitionProduceData::default()
            .with_index(index)
            .with_records(Some(records.clone()))
    };
    ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(name("tx"))))
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(name("orders")))
            .with_partition_data(vec![partition(0), partition(7)])])
}

fn fetch_request() -> FetchRequest {
    let partition = FetchPartition::default()
        .with_partition(3)
        .with_fetch_offset(1234)
        .with_partition_max_bytes(1 << 20);
    FetchRequest::default()
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(name("orders")))
            .with_partitions(vec![
                partition.clone(),
                partition.with_partition(4),
            ])])
}

fn populated_requests() -> Vec<RequestKind> {
    let records = Bytes::from_static(b"not really a record batch, but opaque to the walker");
    vec![
        RequestKind::Produce(produce_request(&records)),
        RequestKind::Fetch(fetch_request()),
        RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(TopicName(name("orders")))),
        ]))),
        RequestKind::ListOffsets(ListOffsetsRequest::default().with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName(name("orders")))
                .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(-1)]),
        ])),
        RequestKind::OffsetCommit(
            OffsetCommitRequest::default()
                .with_group_id(GroupId(name("billing")))
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(TopicName(name("orders")))
                    .with_partitions(vec![OffsetCommitRequestPartition::default()
                        .with_committed_offset(99)
                        .with_committed_metadata(Some(name("meta")))])]),
        ),
        RequestKind::FindCoordinator(FindCoordinatorRequest::default().with_key(name("billing"))),
        RequestKind::JoinGroup(
            JoinGroupRequest::default()
                .with_group_id(GroupId(name("billing")))
                .with_protocol_type(name("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(name("range"))
                    .with_metadata(Bytes::from_static(b"\x00\x01subscription"))]),
        ),
        RequestKind::SyncGroup(
            SyncGroupRequest::default()
                .with_group_id(GroupId(name("billing")))
                .with_assignments(vec![SyncGroupRequestAssignment::default()
                    .with_member_id(name("member-1"))
                    .with_assignment(Bytes::from_static(b"assignment"))]),
        ),
        RequestKind::SaslAuthenticate(
            SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"\0user\0pw")),
        ),
        RequestKind::CreateTopics(CreateTopicsRequest::default().with_topics(vec![
            CreatableTopic::default()
                .with_name(TopicName(name("orders")))
                .with_configs(vec![CreatableTopicConfig::default()
                    .with_name(name("retention.ms"))
                    .with_value(Some(name("1000")))]),
        ])),
    ]
}

fn api_key_of(request: &RequestKind) -> ApiKey {
    match request {
        RequestKind::Produce(_) => ApiKey::Produce,
        RequestKind::Fetch(_) => ApiKey::Fetch,
        RequestKind::Metadata(_) => ApiKey::Metadata,
        RequestKind::ListOffsets(_) => ApiKey::ListOffsets,
        RequestKind::OffsetCommit(_) => ApiKey::OffsetCommit,
        RequestKind::FindCoordinator(_) => ApiKey::FindCoordinator,
        RequestKind::JoinGroup(_) => ApiKey::JoinGroup,
        RequestKind::SyncGroup(_) => ApiKey::SyncGroup,
        RequestKind::SaslAuthenticate(_) => ApiKey::SaslAuthenticate,
        RequestKind::CreateTopics(_) => ApiKey::CreateTopics,
        other => unimplemented!("{other:?}"),
    }
}

#[test]
fn populated_requests_are_accepted_in_every_version_they_encode_in() {
    for request in populated_requests() {
        let api_key = api_key_of(&request);
        let schema = request_schema(api_key).unwrap();
        let mut encoded_versions = 0;
        for version in schema.versions.min..=schema.versions.max {
            // A populated field absent from an old version makes kafka-protocol refuse.
            let mut buf = BytesMut::new();
            if request.encode(&mut buf, version).is_err() {
                continue;
            }
            encoded_versions += 1;
            check_round_trip(api_key, version, &buf).unwrap();
        }
        assert!(encoded_versions > 0, "{api_key:?} never encoded");
    }
}

#[test]
fn produce_records_are_slices_of_the_body_not_copies() {
    let records = Bytes::from_static(b"opaque record batch bytes");
    for version in 3..=13 {
        let body = Bytes::from(encode(
            &RequestKind::Produce(produce_request(&records)),
            version,
        ));
        let request: ProduceRequest = decode_body(version, &body).unwrap();
        let decoded = request.topic_data[0].partition_data[1]
            .records
            .as_ref()
            .unwrap();
        let body_range = body.as_ptr_range();
        assert!(
            body_range.contains(&decoded.as_ptr()),
            "v{version} copied the records"
        );
        assert_eq!(decoded, &records);
    }
}

#[test]
fn versions_kafka_protocol_cannot_decode_are_refused_not_guessed() {
    for (api_key, version) in [
        (ApiKey::OffsetCommit, 10),
        (ApiKey::OffsetFetch, 10),
        (ApiKey::InitProducerId, 6),
    ] {
        assert!(api_key.valid_versions().max >= version);
        assert_eq!(
            decode_request(api_key, version, &Bytes::new()),
            Err(DecodeError::UnsupportedVersion { api_key, version })
        );
    }
}

// ---------------------------------------------------------------------------------------
// c. Malformed bodies: no panic, and bounded allocation.

/// Decodes `body` and checks the allocation bound; the result does not matter.
fn decode_within_bound(api_key: ApiKey, version: i16, body: &[u8]) -> Result<(), TestCaseError> {
    let body = Bytes::copy_from_slice(body);
    let (_, allocated) = allocated_during(|| decode_request(api_key, version, &body).map(drop));
    prop_assert!(
        allocated <= allocation_bound(body.len()),
        "{:?} v{} allocated {} bytes for a body of {}: {}",
        api_key,
        version,
        allocated,
        body.len(),
        hex(&body)
    );
    Ok(())
}

fn mutate(body: &mut Vec<u8>, lengths: &[LengthField], rng: &mut Rng) {
    match rng.below(5) {
        0 if !body.is_empty() => body.truncate(rng.below(body.len() as u64) as usize),
        1 if !body.is_empty() => {
            for _ in 0..=rng.below(3) {
                let at = rng.below(body.len() as u64) as usize;
                body[at] ^= 1 << rng.below(8);
            }
        }
        2 => {
            let at = rng.below(body.len() as u64 + 1) as usize;
            let len = 1 + rng.below(8) as usize;
            let junk = rng.bytes(len);
            body.splice(at..at, junk);
        }
        _ if !lengths.is_empty() => {
            let field = lengths[rng.below(lengths.len() as u64) as usize];
            inflate(body, field, rng);
        }
        _ => body.push(rng.next() as u8),
    }
}

/// Replaces a length or count with a huge or negative one.
fn inflate(body: &mut Vec<u8>, field: LengthField, rng: &mut Rng) {
    match field {
        LengthField::Int16(at) => {
            let value = [i16::MAX, -2, 0x4000][rng.below(3) as usize];
            body[at..at + 2].copy_from_slice(&value.to_be_bytes());
        }
        LengthField::Int32(at) => {
            let value = [i32::MAX, 1 << 30, -2, i32::MIN][rng.below(4) as usize];
            body[at..at + 4].copy_from_slice(&value.to_be_bytes());
        }
        LengthField::Varint(at, len) => {
            let huge: &[u8] = [
                &[0xff, 0xff, 0xff, 0xff, 0x0f][..],
                &[0xff, 0xff, 0xff, 0x7f],
            ][rng.below(2) as usize];
            body.splice(at..at + len, huge.iter().copied());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn mutated_bodies_never_panic_and_stay_within_the_allocation_bound(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        for (api_key, version, schema) in every_api_version() {
            let (mut body, lengths) = generate(schema, version, &mut rng);
            mutate(&mut body, &lengths, &mut rng);
            decode_within_bound(api_key, version, &body)?;
        }
    }

    #[test]
    fn random_bytes_never_panic_and_stay_within_the_allocation_bound(
        seed in any::<u64>(),
        len in 0usize..48,
    ) {
        let mut rng = Rng(seed);
        for (api_key, version, _) in every_api_version() {
            let body = rng.bytes(len);
            decode_within_bound(api_key, version, &body)?;
        }
    }
}

/// A body that is as cheap on the wire as the schema allows except for one array, which
/// holds `elements` minimal elements: the shape that makes kafka-protocol allocate the
/// most per body byte. With `unknown_tags`, every struct also carries an empty unknown
/// tagged field, which costs kafka-protocol a map node.
struct WorstCaseWriter {
    target: &'static Field,
    elements: usize,
    unknown_tags: bool,
    version: i16,
    flexible: bool,
    out: Vec<u8>,
}

impl WorstCaseWriter {
    fn fields(&mut self, fields: &'static [Field]) {
        let version = self.version;
        for field in fields.iter().filter(|f| f.is_plain_in(version)) {
            self.field(field);
        }
        if !self.flexible {
            return;
        }
        let leading_to_target: Vec<&'static Field> = fields
            .iter()
            .filter(|f| f.tag.is_some() && f.versions.contains(version))
            .filter(|f| self.leads_to_target(f))
            .collect();
        let unknown = self.unknown_tags as usize;
        self.out.push((leading_to_target.len() + unknown) as u8);
        for field in leading_to_target {
            let mut value = WorstCaseWriter {
                out: Vec::new(),
                ..*self
            };
            value.field(field);
            push_varint(&mut self.out, field.tag.unwrap());
            push_varint(&mut self.out, value.out.len() as u32);
            self.out.extend_from_slice(&value.out);
        }
        if self.unknown_tags {
            let unknown_tag = fields
                .iter()
                .filter_map(|f| f.tag)
                .max()
                .map_or(0, |t| t + 1);
            push_varint(&mut self.out, unknown_tag);
            self.out.push(0);
        }
    }

    fn leads_to_target(&self, field: &'static Field) -> bool {
        std::ptr::eq(field, self.target) || type_contains(&field.ty, self.target, self.version)
    }

    fn field(&mut self, field: &'static Field) {
        let count = if std::ptr::eq(field, self.target) {
            self.elements
        } else {
            usize::from(self.leads_to_target(field))
        };
        self.value(&field.ty, count);
    }

    /// `count` is the element count for an array, or whether a nullable struct is there.
    fn value(&mut self, ty: &'static Type, count: usize) {
        let zeros = |n| std::iter::repeat_n(0u8, n);
        match *ty {
            Type::Int8 | Type::Bool => self.out.extend(zeros(1)),
            Type::Int16 | Type::UInt16 => self.out.extend(zeros(2)),
            Type::Int32 => self.out.extend(zeros(4)),
            Type::Int64 | Type::Float64 => self.out.extend(zeros(8)),
            Type::Uuid => self.out.extend(zeros(16)),
            Type::String { .. } => self.length(0, 2),
            Type::Bytes { .. } | Type::Records => self.length(0, 4),
            Type::Array { element, .. } => {
                self.length(count, 4);
                for _ in 0..count {
                    let inner = usize::from(type_contains(element, self.target, self.version));
                    self.value(element, inner);
                }
            }
            Type::Struct { nullable: true, .. } if count == 0 => self.out.push(0xff),
            Type::Struct { fields, nullable } => {
                if nullable {
                    self.out.push(1);
                }
                self.fields(fields);
            }
        }
    }

    fn length(&mut self, len: usize, rigid_width: usize) {
        if self.flexible {
            push_varint(&mut self.out, len as u32 + 1);
        } else {
            let bytes = (len as u32).to_be_bytes();
            self.out.extend_from_slice(&bytes[4 - rigid_width..]);
        }
    }
}

fn push_varint(out: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Whether a value of `ty` in `version` can hold `target`.
fn type_contains(ty: &'static Type, target: &'static Field, version: i16) -> bool {
    match *ty {
        Type::Array { element, .. } => type_contains(element, target, version),
        Type::Struct { fields, .. } => fields.iter().any(|f| {
            f.versions.contains(version)
                && (std::ptr::eq(f, target) || type_contains(&f.ty, target, version))
        }),
        _ => false,
    }
}

/// Every array field reachable in `version`.
fn arrays_of(fields: &'static [Field], version: i16, found: &mut Vec<&'static Field>) {
    for field in fields.iter().filter(|f| f.versions.contains(version)) {
        let mut ty = &field.ty;
        if let Type::Array { element, .. } = ty {
            if !found.iter().any(|f| std::ptr::eq(*f, field)) {
                found.push(field);
            }
            ty = element;
        }
        if let Type::Struct { fields, .. } = ty {
            arrays_of(fields, version, found);
        }
    }
}

#[test]
fn worst_case_bodies_stay_within_the_allocation_bound() {
    // The worst ratio without and with unknown tagged fields.
    let mut worst = [(0.0f64, String::new()), (0.0f64, String::new())];
    for (api_key, version, schema) in every_api_version() {
        let mut arrays = Vec::new();
        arrays_of(schema.fields, version, &mut arrays);
        for target in arrays {
            for (elements, unknown_tags) in [(1000, false), (56, true), (1000, true)] {
                let flexible = schema.is_flexible(version);
                if unknown_tags && !flexible {
                    continue;
                }
                let mut writer = WorstCaseWriter {
                    target,
                    elements,
                    unknown_tags,
                    version,
                    flexible,
                    out: Vec::new(),
                };
                writer.fields(schema.fields);
                let body = Bytes::from(writer.out);
                let (result, allocated) =
                    allocated_during(|| decode_request(api_key, version, &body).map(drop));
                let label = format!(
                    "{api_key:?} v{version} `{}` x{elements} unknown tags {unknown_tags}: \
                     {allocated} bytes for {} ({result:?})",
                    target.name,
                    body.len()
                );
                if !unknown_tags || elements < 1000 {
                    assert!(result.is_ok(), "{label}");
                }
                assert!(allocated <= allocation_bound(body.len()), "{label}");
                let ratio = allocated as f64 / body.len() as f64;
                let worst = &mut worst[usize::from(unknown_tags)];
                if ratio > worst.0 {
                    *worst = (ratio, label);
                }
            }
        }
    }
    for (ratio, label) in worst {
        eprintln!("worst allocation per body byte: {ratio:.1} ({label})");
    }
}

#[test]
fn a_ten_byte_body_claiming_two_billion_elements_is_refused() {
    // Metadata v1: topics count i32::MAX, then a little junk.
    let body = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0]);
    let (result, allocated) = allocated_during(|| decode_request(ApiKey::Metadata, 1, &body));
    assert!(
        matches!(result, Err(DecodeError::Malformed { offset: 0, .. })),
        "{result:?}"
    );
    assert!(allocated <= allocation_bound(body.len()));
}
