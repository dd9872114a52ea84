//! Zones in the control state: where clients are (a CIDR -> zone map) and which node of
//! each zone serves each identity (per-zone owners).
//!
//! Every node serves every identity port, so the fleet may tell a client in zone `eu-1` a
//! node of `eu-1` for each identity and a client in `eu-2` a node of `eu-2`. Both answers
//! must be the same on every node a client asks, so the per-zone owners are committed here
//! by the leader's controller, as the fleet-wide owners are, and under the same assignment
//! epoch (a zone's table changes only against the epoch its proposer read). The zone map
//! is here so that `proxyctl zone map set` reaches every node at once and survives them.
//!
//! Every enum here is encoded by bincode through its variant's position: variants are only
//! ever appended.

use std::collections::BTreeMap;
use std::net::IpAddr;

use flotilla_config::zones::{check_mapping, zone_in};
pub use flotilla_config::zones::{parse_cidr, valid_zone_name, ZoneMapError};
use ipnet::IpNet;

use crate::state::{CommandResult, ControlState};

/// The fleet feature level that introduced zones (see [`crate::state`]).
pub const LEVEL: u16 = 5;

impl ControlState {
    /// Whether the state holds anything only level 5 can record.
    pub fn has_zone_data(&self) -> bool {
        !self.zone_map.is_empty() || !self.zone_owners.is_empty()
    }

    /// Checks a new zone map entry against the map: a valid zone name, and no overlap with
    /// another block (replacing the same block's zone is allowed).
    pub fn check_zone_mapping(&self, cidr: &IpNet, zone: &str) -> Result<(), ZoneMapError> {
        check_mapping(&self.zone_map, cidr, zone)
    }

    /// The zone the map gives a client address.
    pub fn zone_of_address(&self, address: IpAddr) -> Option<&str> {
        zone_in(&self.zone_map, address)
    }

    pub(crate) fn set_zone_mapping(&mut self, cidr: &IpNet, zone: &str) -> CommandResult {
        if let Err(e) = self.check_zone_mapping(cidr, zone) {
            return CommandResult::Conflict {
                reason: e.to_string(),
            };
        }
        self.zone_map.insert(*cidr, zone.to_string());
        CommandResult::Ok
    }

    pub(crate) fn remove_zone_mapping(&mut self, cidr: &IpNet) -> CommandResult {
        self.zone_map.remove(cidr);
        CommandResult::Ok
    }

    /// Replaces zone `zone`'s owner table (an empty one removes the zone) if the epoch is
    /// still `expected_epoch`; bumps the epoch.
    pub(crate) fn assign_zone(
        &mut self,
        expected_epoch: u64,
        zone: &str,
        owners: &[(i32, u64)],
    ) -> CommandResult {
        if expected_epoch != self.assignment_epoch {
            return CommandResult::StaleEpoch {
                current: self.assignment_epoch,
            };
        }
        let table: BTreeMap<i32, u64> = owners
            .iter()
            .filter(|(id, _)| self.identities.contains_key(id))
            .copied()
            .collect();
        if table.is_empty() {
            self.zone_owners.remove(zone);
        } else {
            self.zone_owners.insert(zone.to_string(), table);
        }
        self.assignment_epoch += 1;
        CommandResult::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Command;

    fn at_level_5() -> ControlState {
        let mut state = ControlState::default();
        state.apply(&Command::SetFeatureLevel { level: LEVEL });
        state
    }

    fn set(state: &mut ControlState, cidr: &str, zone: &str) -> CommandResult {
        state.apply(&Command::SetZoneMapping {
            cidr: parse_cidr(cidr).unwrap(),
            zone: zone.into(),
        })
    }

    #[test]
    fn malformed_cidrs_are_refused_naming_the_field() {
        for bad in ["10.0.0.0", "10.0.0.0/33", "ten/8", "", "fd00::/129"] {
            let err = parse_cidr(bad).unwrap_err();
            assert!(err.to_string().starts_with("cidr:"), "{err}");
        }
        let err = parse_cidr("10.1.2.3/16").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cidr: `10.1.2.3/16` has host bits set; did you mean 10.1.0.0/16?"
        );
        assert!(parse_cidr("fd00::/8").is_ok());
    }

    #[test]
    fn overlapping_blocks_are_refused_and_the_map_is_unchanged() {
        let mut state = at_level_5();
        assert_eq!(set(&mut state, "10.1.0.0/16", "eu-1"), CommandResult::Ok);
        for overlapping in ["10.1.2.0/24", "10.0.0.0/8"] {
            let result = set(&mut state, overlapping, "eu-2");
            let CommandResult::Conflict { reason } = result else {
                panic!("{overlapping} accepted");
            };
            assert!(
                reason.contains("overlaps 10.1.0.0/16 (zone eu-1)"),
                "{reason}"
            );
        }
        assert_eq!(set(&mut state, "10.2.0.0/16", "eu-2"), CommandResult::Ok);
        assert_eq!(set(&mut state, "10.1.0.0/16", "eu-3"), CommandResult::Ok);
        assert_eq!(state.zone_map.len(), 2);
        assert_eq!(
            state.zone_of_address("10.1.9.9".parse().unwrap()),
            Some("eu-3")
        );
        assert_eq!(state.zone_of_address("10.3.0.1".parse().unwrap()), None);
    }

    #[test]
    fn ipv4_mapped_ipv6_clients_find_their_ipv4_block() {
        let mut state = at_level_5();
        set(&mut state, "127.0.0.0/24", "a");
        let mapped: IpAddr = "::ffff:127.0.0.9".parse().unwrap();
        assert_eq!(state.zone_of_address(mapped), Some("a"));
    }

    #[test]
    fn bad_zone_names_are_refused() {
        let mut state = at_level_5();
        for bad in ["", "eu 1", "a,b", &"z".repeat(65)] {
            assert!(matches!(
                set(&mut state, "10.0.0.0/8", bad),
                CommandResult::Conflict { .. }
            ));
        }
    }

    #[test]
    fn zone_owners_follow_the_epoch_and_an_empty_table_removes_the_zone() {
        let mut state = at_level_5();
        state.apply(&Command::SyncBrokers {
            brokers: vec![(
                1,
                crate::BrokerAddr {
                    host: "b".into(),
                    port: 1,
                    rack: None,
                },
            )],
        });
        let assign = |epoch, owners: Vec<(i32, u64)>| Command::AssignZone {
            expected_epoch: epoch,
            zone: "a".into(),
            owners,
        };
        assert_eq!(
            state.apply(&assign(0, vec![(1, 4), (9, 4)])),
            CommandResult::Ok
        );
        assert_eq!(state.zone_owners["a"], BTreeMap::from([(1, 4)]));
        assert_eq!(
            state.apply(&assign(0, vec![(1, 5)])),
            CommandResult::StaleEpoch { current: 1 }
        );
        assert_eq!(state.apply(&assign(1, vec![])), CommandResult::Ok);
        assert!(state.zone_owners.is_empty());
    }

    #[test]
    fn zone_commands_wait_for_level_5() {
        let mut state = ControlState::default();
        state.apply(&Command::SetFeatureLevel { level: 4 });
        assert!(matches!(
            set(&mut state, "10.0.0.0/8", "a"),
            CommandResult::Refused { needed: 5, .. }
        ));
    }
}
