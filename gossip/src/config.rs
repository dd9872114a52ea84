//! Gossip settings, and the failure-detector tuning derived from them.
//!
//! chitchat's detector is a simplified phi accrual detector: a peer's phi is the time since
//! its last heartbeat divided by the mean interval between the heartbeats this node has
//! observed for it, and the peer is dead once phi exceeds `phi_threshold`. So the detection
//! time is `phi_threshold × mean observed interval`, checked once per gossip round.
//!
//! The observed interval is not the gossip interval: a peer bumps its heartbeat every round
//! and on every message it handles, and every peer relays the freshest value it knows, so
//! with 100 ms rounds an observer sees a new heartbeat every 40 to 60 ms in a fleet of
//! three to five nodes. chitchat's defaults (threshold 8, a 5 s prior weighted as five
//! samples, a 1000-sample window, 24 h grace) are built for 1 s rounds across data centres:
//! by the same arithmetic they would take about 8 s to notice the death of a node that
//! joined a second earlier, and still over 2 s for one that joined five seconds earlier. The
//! defaults below aim at about one second, so that the identity controller's 2 s
//! `takeover_after` acts within about three seconds of a crash, while a node stalled for
//! a few hundred milliseconds is not declared dead:
//!
//! - `phi_threshold` 16: 16 × 40-60 ms of silence. Measured on one machine with 3 and 5
//!   nodes: a killed node is seen dead after 0.8-1.05 s once the fleet has run a few
//!   seconds, and after about 1.4 s right after it joined (the prior still weighs in).
//!   Thresholds of 8 and 12 gave 0.4-0.8 s; no setting from 8 to 24 flapped with 3 nodes
//!   under six CPU-bound processes on two cores for 20 s, so the margin is for stalls
//!   (pauses, swapping), not for CPU contention.
//! - `initial_interval` = one gossip round: the five prior samples then describe this
//!   fleet's rounds, not the 5 s default, so a node that dies right after joining is
//!   noticed in about as long as any other.
//! - `max_interval` = ten rounds: a longer gap (a node paused and back) is not averaged in,
//!   so one stall does not slow the detection of the next failure.
//! - `sampling_window_size` 100: about five seconds of history, so the mean follows the
//!   fleet growing or shrinking (which changes how often heartbeats are relayed) quickly.
//! - `dead_node_grace_period` 1 h: how long a dead node stays listed (as dead) before it is
//!   forgotten; long enough for operators and the controller to see who died, short enough
//!   that a churning fleet does not gossip ghosts forever.
//!
//! The `three_nodes_see_each_other_and_a_dead_one` test prints the detection time of each
//! run, and `Gossip::detection_timeouts` shows the detector's current estimate per peer.

use std::net::SocketAddr;
use std::time::Duration;

use chitchat::FailureDetectorConfig;

/// Default gossip round: fast enough for sub-second failure detection on one machine.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);
/// Default failure-detector threshold (see the module docs for the arithmetic).
pub const DEFAULT_PHI_THRESHOLD: f64 = 16.0;
/// Default time a dead node stays listed before it is forgotten.
pub const DEFAULT_DEAD_NODE_GRACE_PERIOD: Duration = Duration::from_secs(3600);

const SAMPLING_WINDOW_SIZE: usize = 100;
const MAX_INTERVAL_ROUNDS: u32 = 10;

/// How this node joins the gossip of its fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct GossipConfig {
    /// Nodes only gossip with nodes of the same cluster id.
    pub cluster_id: String,
    /// UDP address to listen on; port 0 picks a free port.
    pub listen_addr: SocketAddr,
    /// What other nodes use to reach us (usually equal to `listen_addr`); port 0 means
    /// "the port actually bound".
    pub advertise_addr: SocketAddr,
    /// `host:port` gossip addresses of other nodes; may include our own, may be empty for
    /// the first node.
    pub seeds: Vec<String>,
    /// Gossip round interval.
    pub interval: Duration,
    /// Failure-detector threshold: silence longer than this many mean heartbeat
    /// intervals marks a peer dead.
    pub phi_threshold: f64,
    /// How long a dead node stays listed before it is forgotten.
    pub dead_node_grace_period: Duration,
}

impl GossipConfig {
    /// A configuration with the default tuning, advertising the listen address.
    pub fn new(cluster_id: impl Into<String>, listen_addr: SocketAddr, seeds: Vec<String>) -> Self {
        GossipConfig {
            cluster_id: cluster_id.into(),
            listen_addr,
            advertise_addr: listen_addr,
            seeds,
            interval: DEFAULT_INTERVAL,
            phi_threshold: DEFAULT_PHI_THRESHOLD,
            dead_node_grace_period: DEFAULT_DEAD_NODE_GRACE_PERIOD,
        }
    }

    /// The chitchat failure-detector settings for this configuration.
    pub fn failure_detector(&self) -> FailureDetectorConfig {
        FailureDetectorConfig {
            phi_threshold: self.phi_threshold,
            sampling_window_size: SAMPLING_WINDOW_SIZE,
            max_interval: self.interval * MAX_INTERVAL_ROUNDS,
            initial_interval: self.interval,
            dead_node_grace_period: self.dead_node_grace_period,
        }
    }

    /// Refuses settings chitchat would accept but misbehave with.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.cluster_id.is_empty() {
            return Err("cluster_id must not be empty".to_string());
        }
        if self.interval.is_zero() {
            return Err("interval must be greater than zero".to_string());
        }
        if !(self.phi_threshold.is_finite() && self.phi_threshold > 0.0) {
            return Err(format!(
                "phi_threshold must be a positive number, got {}",
                self.phi_threshold
            ));
        }
        if self.advertise_addr.ip().is_unspecified() {
            return Err(format!(
                "advertise_addr {} is not an address peers can reach",
                self.advertise_addr
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GossipConfig {
        GossipConfig::new("c1", "127.0.0.1:7946".parse().unwrap(), vec![])
    }

    #[test]
    fn failure_detector_follows_the_interval() {
        let fd = GossipConfig {
            interval: Duration::from_millis(50),
            ..config()
        }
        .failure_detector();
        assert_eq!(fd.initial_interval, Duration::from_millis(50));
        assert_eq!(fd.max_interval, Duration::from_millis(500));
        assert_eq!(fd.phi_threshold, DEFAULT_PHI_THRESHOLD);
    }

    #[test]
    fn bad_settings_are_refused() {
        let cases = [
            GossipConfig {
                cluster_id: String::new(),
                ..config()
            },
            GossipConfig {
                interval: Duration::ZERO,
                ..config()
            },
            GossipConfig {
                phi_threshold: f64::NAN,
                ..config()
            },
            GossipConfig {
                advertise_addr: "0.0.0.0:7946".parse().unwrap(),
                ..config()
            },
        ];
        for case in cases {
            assert!(case.validate().is_err(), "{case:?}");
        }
        assert_eq!(config().validate(), Ok(()));
    }
}
