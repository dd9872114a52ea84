//! Zone names and CIDR -> zone blocks: the rules every place that accepts them shares (a
//! node's `cluster.zone`, its `cluster.zone_map`, `proxyctl zone map set`, the Raft state
//! machine), so a zone a client can name is a zone a node can have.

use std::net::IpAddr;

pub use ipnet::IpNet;

/// Why a zone or a CIDR -> zone entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneMapError {
    #[error("cidr: `{0}` is not a CIDR block (for example 10.1.0.0/16 or fd00::/8)")]
    Malformed(String),
    #[error("cidr: `{0}` has host bits set; did you mean {1}?")]
    HostBits(String, IpNet),
    #[error("zone: `{0}` is not a zone name: 1 to 64 letters, digits, '-', '_' or '.'")]
    ZoneName(String),
    #[error("cidr: {cidr} overlaps {existing} (zone {zone}); remove that entry first")]
    Overlap {
        cidr: IpNet,
        existing: IpNet,
        zone: String,
    },
}

/// Whether `zone` may name a zone: zones travel in client ids and match broker racks, so
/// they are kept to characters both allow.
pub fn valid_zone_name(zone: &str) -> bool {
    (1..=64).contains(&zone.len())
        && zone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Parses an operator's CIDR: an address block with no host bits set.
pub fn parse_cidr(text: &str) -> Result<IpNet, ZoneMapError> {
    let net: IpNet = text
        .trim()
        .parse()
        .map_err(|_| ZoneMapError::Malformed(text.to_string()))?;
    if net.trunc() != net {
        return Err(ZoneMapError::HostBits(text.to_string(), net.trunc()));
    }
    Ok(net)
}

/// Checks that `cidr` -> `zone` may join `map`: a valid zone name, no host bits, and no
/// overlap with another block (the same block may change zone).
pub fn check_mapping<'a>(
    map: impl IntoIterator<Item = (&'a IpNet, &'a String)>,
    cidr: &IpNet,
    zone: &str,
) -> Result<(), ZoneMapError> {
    if !valid_zone_name(zone) {
        return Err(ZoneMapError::ZoneName(zone.to_string()));
    }
    if cidr.trunc() != *cidr {
        return Err(ZoneMapError::HostBits(cidr.to_string(), cidr.trunc()));
    }
    let overlaps =
        |other: &IpNet| other.contains(&cidr.network()) || cidr.contains(&other.network());
    match map
        .into_iter()
        .find(|(existing, _)| *existing != cidr && overlaps(existing))
    {
        Some((existing, zone)) => Err(ZoneMapError::Overlap {
            cidr: *cidr,
            existing: *existing,
            zone: zone.clone(),
        }),
        None => Ok(()),
    }
}

/// The zone of the block of `map` that holds `address` (blocks never overlap); an
/// IPv4-mapped IPv6 address is looked up as IPv4.
pub fn zone_in<'a>(
    map: impl IntoIterator<Item = (&'a IpNet, &'a String)>,
    address: IpAddr,
) -> Option<&'a str> {
    let address = match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    };
    map.into_iter()
        .find(|(net, _)| net.contains(&address))
        .map(|(_, zone)| zone.as_str())
}
