//! What the headers of a record batch set say, read without decoding a single record.
//!
//! Monitoring counts records per topic, and `proxyctl clients` shows which compression
//! codecs and whether idempotence a producer uses. All of it sits in the fixed-size header
//! of each batch (magic 2: record count, attributes, producer id), so the walk jumps from
//! header to header by `batchLength` and touches one cache line per batch, whatever the
//! batch holds. The bytes come from clients and brokers: every offset is checked against
//! what is left, and a batch that does not fit ends the walk (a Fetch response may end
//! with a partial batch, which clients discard too).

/// Where the fields sit in a magic-2 batch header (KIP-98).
mod v2 {
    pub const BATCH_LENGTH: usize = 8;
    pub const MAGIC: usize = 16;
    pub const ATTRIBUTES: usize = 21;
    pub const PRODUCER_ID: usize = 43;
    pub const RECORD_COUNT: usize = 57;
    pub const HEADER: usize = 61;
}

/// Where the fields sit in a magic-0/1 message: offset, size, crc, magic, attributes.
mod legacy {
    pub const ATTRIBUTES: usize = 17;
    pub const HEADER: usize = 18;
}

/// Offset and `batchLength`/`messageSize`: the bytes before the length counts from.
const LOG_OVERHEAD: usize = 12;

const COMPRESSION_MASK: u16 = 0x07;
const TRANSACTIONAL: u16 = 0x10;
const CONTROL: u16 = 0x20;

/// A compression codec, as the low three bits of a batch's attributes name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Codec {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

impl Codec {
    pub const ALL: [Codec; 5] = [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ];

    /// The name Kafka's `compression.type` uses.
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }

    fn from_attributes(attributes: u16) -> Option<Codec> {
        Codec::ALL
            .get(usize::from(attributes & COMPRESSION_MASK))
            .copied()
    }
}

/// A set of codecs, one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Codecs(pub u8);

impl Codecs {
    pub fn insert(&mut self, codec: Codec) {
        self.0 |= 1 << codec as u8;
    }

    pub fn contains(self, codec: Codec) -> bool {
        self.0 & (1 << codec as u8) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Codec> {
        Codec::ALL.into_iter().filter(move |&c| self.contains(c))
    }
}

/// What the batch headers of one record set add up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchSummary {
    /// Whole batches read.
    pub batches: u32,
    /// Records in data batches (control batches hold transaction markers, not records).
    pub records: u64,
    pub codecs: Codecs,
    /// Some batch carries a producer id (idempotent or transactional producer).
    pub idempotent: bool,
    pub transactional: bool,
    /// Bytes after the last whole batch: a partial batch at the end of a Fetch response,
    /// or garbage.
    pub leftover: usize,
}

/// Walks the batch headers of a record set (the `records` field of a Produce partition
/// or a Fetch response partition). Never panics, whatever the bytes.
pub fn summarize(records: &[u8]) -> BatchSummary {
    let mut summary = BatchSummary::default();
    let mut rest = records;
    while let Some(batch_len) = next_batch_len(rest) {
        let batch = &rest[..batch_len];
        if !add_batch(&mut summary, batch) {
            break;
        }
        rest = &rest[batch_len..];
    }
    summary.leftover = rest.len();
    summary
}

/// The length of the whole batch at the start of `rest`, if it is all there.
fn next_batch_len(rest: &[u8]) -> Option<usize> {
    let length = i32::from_be_bytes(array_at(rest, v2::BATCH_LENGTH)?);
    let total = LOG_OVERHEAD.checked_add(usize::try_from(length).ok()?)?;
    (total <= rest.len()).then_some(total)
}

/// Adds one whole batch; false if its header does not make sense.
fn add_batch(summary: &mut BatchSummary, batch: &[u8]) -> bool {
    match batch.get(v2::MAGIC) {
        Some(2) if batch.len() >= v2::HEADER => {
            let attributes =
                u16::from_be_bytes(array_at(batch, v2::ATTRIBUTES).unwrap_or_default());
            let producer_id =
                i64::from_be_bytes(array_at(batch, v2::PRODUCER_ID).unwrap_or_default());
            let count = i32::from_be_bytes(array_at(batch, v2::RECORD_COUNT).unwrap_or_default());
            if attributes & CONTROL == 0 {
                summary.records += u64::try_from(count).unwrap_or(0);
            }
            add_codec(summary, attributes);
            summary.idempotent |= producer_id >= 0;
            summary.transactional |= attributes & TRANSACTIONAL != 0;
        }
        // One message each; a compressed wrapper's inner messages are not counted.
        Some(0 | 1) if batch.len() >= legacy::HEADER => {
            summary.records += 1;
            add_codec(summary, u16::from(batch[legacy::ATTRIBUTES]));
        }
        _ => return false,
    }
    summary.batches += 1;
    true
}

fn add_codec(summary: &mut BatchSummary, attributes: u16) {
    if let Some(codec) = Codec::from_attributes(attributes) {
        summary.codecs.insert(codec);
    }
}

fn array_at<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    use proptest::prelude::*;

    use super::*;

    pub fn record(i: usize, producer_id: i64) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: if producer_id >= 0 { 0 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch where offset minus sequence changes.
            sequence: i as i32,
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![b'v'; 100])),
            headers: Default::default(),
        }
    }

    /// One batch of `count` records, as a producer would send it. This build of
    /// kafka-protocol has no codecs, so a compressed batch is an uncompressed one whose
    /// attributes name `codec`: the walker reads headers only (real compressed batches
    /// come from librdkafka in tests/monitoring.rs).
    pub fn batch(count: usize, codec: Codec, producer_id: i64) -> Bytes {
        let records: Vec<Record> = (0..count).map(|i| record(i, producer_id)).collect();
        let mut out = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut out, &records, &options).unwrap();
        out[v2::ATTRIBUTES + 1] |= codec as u8;
        out.freeze()
    }

    #[test]
    fn counts_records_and_reads_codec_and_producer_of_each_batch() {
        for codec in Codec::ALL {
            let summary = summarize(&batch(7, codec, -1));
            assert_eq!(summary.batches, 1);
            assert_eq!(summary.records, 7, "{codec:?}");
            assert_eq!(summary.codecs.iter().collect::<Vec<_>>(), vec![codec]);
            assert!(!summary.idempotent);
            assert_eq!(summary.leftover, 0);
        }
        let idempotent = summarize(&batch(3, Codec::Lz4, 4242));
        assert!(idempotent.idempotent);
        assert!(!idempotent.transactional);
    }

    #[test]
    fn transaction_markers_are_not_records() {
        let mut transactional = batch(3, Codec::None, 5).to_vec();
        transactional[v2::ATTRIBUTES + 1] |= TRANSACTIONAL as u8;
        let summary = summarize(&transactional);
        assert!(summary.transactional && summary.idempotent);
        assert_eq!(summary.records, 3);
        let mut marker = transactional;
        marker[v2::ATTRIBUTES + 1] |= CONTROL as u8;
        assert_eq!(
            summarize(&marker).records,
            0,
            "a control batch holds markers"
        );
    }

    #[test]
    fn sums_several_batches_and_stops_at_a_partial_one() {
        let (a, b) = (batch(5, Codec::None, -1), batch(2, Codec::Gzip, 9));
        let whole = [&a[..], &b[..]].concat();
        let summary = summarize(&whole);
        assert_eq!((summary.batches, summary.records), (2, 7));
        assert!(summary.idempotent);
        assert!(summary.codecs.contains(Codec::None) && summary.codecs.contains(Codec::Gzip));
        // A Fetch response may end in the middle of a batch.
        let cut = &whole[..whole.len() - 10];
        let partial = summarize(cut);
        assert_eq!((partial.batches, partial.records), (1, 5));
        assert_eq!(partial.leftover, b.len() - 10);
    }

    #[test]
    fn truncated_or_garbage_bytes_count_what_is_whole_and_never_panic() {
        let one = batch(4, Codec::Snappy, -1);
        for cut in 0..one.len() {
            let summary = summarize(&one[..cut]);
            assert_eq!(summary.records, 0, "cut at {cut}");
            assert_eq!(summary.leftover, cut);
        }
        let mut negative = one.to_vec();
        negative[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert_eq!(summarize(&negative).records, 0);
        let mut bad_magic = one.to_vec();
        bad_magic[16] = 7;
        assert_eq!(summarize(&bad_magic).batches, 0);
        let mut huge_count = one.to_vec();
        huge_count[57..61].copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(
            summarize(&huge_count).records,
            0,
            "a negative count adds nothing"
        );
        assert_eq!(summarize(&[]), BatchSummary::default());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let summary = summarize(&bytes);
            prop_assert!(summary.leftover <= bytes.len());
        }
    }
}
