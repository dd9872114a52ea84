//! Whether a JoinGroup says its member still owns partitions.
//!
//! A consumer's JoinGroup carries, per assignor it offers, a `ConsumerProtocolSubscription`
//! (versions 0-3, never flexible): version, subscribed topics, user data, then from v1 the
//! partitions the member owns. librdkafka fills them from the assignment it holds, so a
//! join without a member id that names owned partitions comes from a member that kept its
//! positions through a fence. The bytes come from the client: every length is checked
//! against what is left, nothing is allocated, and anything malformed reads as "owns
//! nothing" (the broker judges the metadata, not the proxy).

use kafka_protocol::messages::JoinGroupRequest;

/// Kafka's protocol type for consumer groups; other types (Connect) carry other metadata.
const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

pub(super) fn claims_owned_partitions(request: &JoinGroupRequest) -> bool {
    &*request.protocol_type == CONSUMER_PROTOCOL_TYPE
        && request
            .protocols
            .iter()
            .any(|p| owns_partitions(&p.metadata).unwrap_or(false))
}

/// Whether one subscription names at least one owned partition; `None` if malformed.
fn owns_partitions(metadata: &[u8]) -> Option<bool> {
    let mut r = Reader(metadata);
    let version = r.i16()?;
    if version < 1 {
        return Some(false);
    }
    for _ in 0..r.count()? {
        r.string()?;
    }
    r.nullable_bytes()?;
    for _ in 0..r.count()? {
        r.string()?;
        if r.count()? > 0 {
            return Some(true);
        }
    }
    Some(false)
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    /// An array length; a null or negative array counts as empty.
    fn count(&mut self) -> Option<usize> {
        Some(usize::try_from(self.i32()?).unwrap_or(0))
    }

    fn string(&mut self) -> Option<()> {
        let len = usize::try_from(self.i16()?).ok()?;
        self.take(len).map(|_| ())
    }

    fn nullable_bytes(&mut self) -> Option<()> {
        let len = self.i32()?;
        if len < 0 {
            return Some(());
        }
        self.take(usize::try_from(len).ok()?).map(|_| ())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A `ConsumerProtocolSubscription` as librdkafka writes it (v3).
    pub fn subscription(topics: &[&str], owned: &[(&str, &[i32])]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(3i16.to_be_bytes());
        out.extend((topics.len() as i32).to_be_bytes());
        for t in topics {
            out.extend((t.len() as i16).to_be_bytes());
            out.extend(t.as_bytes());
        }
        out.extend(0i32.to_be_bytes()); // empty user data
        out.extend((owned.len() as i32).to_be_bytes());
        for (t, partitions) in owned {
            out.extend((t.len() as i16).to_be_bytes());
            out.extend(t.as_bytes());
            out.extend((partitions.len() as i32).to_be_bytes());
            for p in *partitions {
                out.extend(p.to_be_bytes());
            }
        }
        out.extend((-1i32).to_be_bytes()); // generation
        out.extend((-1i16).to_be_bytes()); // null rack
        out
    }

    #[test]
    fn owned_partitions_are_read() {
        assert_eq!(owns_partitions(&subscription(&["t"], &[])), Some(false));
        assert_eq!(
            owns_partitions(&subscription(&["t"], &[("t", &[])])),
            Some(false)
        );
        assert_eq!(
            owns_partitions(&subscription(&["a", "t"], &[("t", &[0, 2])])),
            Some(true)
        );
    }

    #[test]
    fn version_0_owns_nothing() {
        let mut v0 = 0i16.to_be_bytes().to_vec();
        v0.extend(0i32.to_be_bytes());
        v0.extend((-1i32).to_be_bytes());
        assert_eq!(owns_partitions(&v0), Some(false));
    }

    #[test]
    fn malformed_metadata_is_refused_without_panic() {
        let full = subscription(&["topic"], &[("topic", &[1])]);
        // Up to the first owned topic's partition count, 10 bytes from the end.
        for cut in 0..full.len() - 10 {
            assert_ne!(owns_partitions(&full[..cut]), Some(true), "cut at {cut}");
        }
        let mut huge = 3i16.to_be_bytes().to_vec();
        huge.extend(i32::MAX.to_be_bytes());
        assert_eq!(owns_partitions(&huge), None);
    }
}
