//! Whether this node can reach the backend at all. Gossip only says a node is alive; a node
//! cut off from every broker (a partition between it and the brokers) is alive too, yet
//! every client connection it accepts fails upstream, and clients keep coming back to it
//! as long as Metadata advertises it. So a node that reaches no broker for longer than the
//! takeover deadline says so in gossip (`Lifecycle::BackendUnreachable`), and the fleet
//! moves its identities away as it would a dead node's; one successful probe gives them
//! back. Reaching some brokers but not all is not this node's fault (a broker is down for
//! everyone), so one reachable broker is enough.

use std::time::{Duration, Instant};

/// How often the brokers are probed.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long one probe waits for a TCP connection to any broker.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Turns probe results into "cut off": unreachable for at least `grace`, without a
/// success in between.
#[derive(Debug)]
pub struct ReachWatch {
    grace: Duration,
    unreachable_since: Option<Instant>,
}

impl ReachWatch {
    pub fn new(grace: Duration) -> ReachWatch {
        ReachWatch {
            grace,
            unreachable_since: None,
        }
    }

    /// Records one probe at `now`; returns whether the node now counts as cut off.
    pub fn observe(&mut self, reached: bool, now: Instant) -> bool {
        if reached {
            self.unreachable_since = None;
            return false;
        }
        let since = *self.unreachable_since.get_or_insert(now);
        now.duration_since(since) >= self.grace
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_off_only_after_the_grace_and_back_at_the_first_success() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut watch = ReachWatch::new(Duration::from_secs(2));
        assert!(!watch.observe(true, at(0)));
        assert!(!watch.observe(false, at(1_000)));
        assert!(
            !watch.observe(false, at(2_900)),
            "1.9 s is within the grace"
        );
        assert!(watch.observe(false, at(3_000)));
        assert!(!watch.observe(true, at(4_000)));
        assert!(
            !watch.observe(false, at(5_000)),
            "a success restarts the grace"
        );
        assert!(watch.observe(false, at(7_000)));
    }
}
