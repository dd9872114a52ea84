//! The arithmetic of a fleet-wide quota: each node's rate for a budget, measured over a
//! few one-second samples and shared in gossip; the share of the quota a node may use,
//! from the others' rates; and the pace that holds the node's connections to that share.
//!
//! Times are offsets from an epoch the caller picks (the filter's start), so the same
//! code runs under a simulated clock in the convergence tests.

use std::collections::VecDeque;
use std::time::Duration;

/// One sample's length (Kafka's `quota.window.size.seconds`).
pub const SAMPLE: Duration = Duration::from_secs(1);
/// Samples kept: the rate a node shares covers the last two to three seconds, recent
/// enough for the others to react to a change within about two seconds.
pub const SAMPLES: u64 = 3;
/// How far a budget's pace may run ahead of the clock before its connections are held:
/// a client under its quota is never throttled, and one that was idle may send a
/// second's worth at once (Kafka's one-sample burst).
pub const BURST: Duration = Duration::from_secs(1);
/// The longest throttle one request earns; a larger debt is paid by the next requests.
/// Five seconds keeps a client's queued requests well inside their 30 s request timeout.
pub const MAX_THROTTLE: Duration = Duration::from_secs(5);

/// Usage (bytes or requests) over the last [`SAMPLES`] seconds.
#[derive(Debug, Default)]
pub struct SampledRate {
    /// (sample index = whole seconds since the epoch, amount), oldest first.
    samples: VecDeque<(u64, f64)>,
    /// When the first amount of the current busy spell was recorded.
    first: Duration,
}

impl SampledRate {
    /// Adds `amount` at `at`. `at` may lie slightly ahead of the present (a request held
    /// by a throttle counts when it is let through) or behind the latest sample.
    pub fn record(&mut self, amount: f64, at: Duration) {
        self.purge(at);
        if self.samples.is_empty() {
            self.first = at;
        }
        let index = sample_index(at);
        match self.samples.iter().position(|&(i, _)| i >= index) {
            Some(p) if self.samples[p].0 == index => self.samples[p].1 += amount,
            Some(p) => self.samples.insert(p, (index, amount)),
            None => self.samples.push_back((index, amount)),
        }
    }

    /// The average rate per second at `now`.
    pub fn rate(&mut self, now: Duration) -> f64 {
        self.purge(now);
        let total: f64 = self.samples.iter().map(|&(_, amount)| amount).sum();
        total / self.window(now).as_secs_f64()
    }

    /// The time the average is taken over: from the oldest sample kept (or the first
    /// amount, in a young window) to `now`, and at least one sample.
    pub fn window(&self, now: Duration) -> Duration {
        let Some(&(oldest, _)) = self.samples.front() else {
            return SAMPLE;
        };
        let start = (SAMPLE * oldest as u32).max(self.first);
        now.saturating_sub(start).max(SAMPLE)
    }

    /// Whether nothing is left in the window at `now`.
    pub fn is_idle(&mut self, now: Duration) -> bool {
        self.purge(now);
        self.samples.is_empty()
    }

    fn purge(&mut self, now: Duration) {
        let current = sample_index(now);
        while let Some(&(index, _)) = self.samples.front() {
            if index + SAMPLES > current {
                break;
            }
            self.samples.pop_front();
        }
    }
}

fn sample_index(at: Duration) -> u64 {
    at.as_secs() / SAMPLE.as_secs()
}

/// What the other nodes report for a budget.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Others {
    /// Their summed rate.
    pub rate: f64,
    /// How many of them use it.
    pub nodes: u32,
}

/// The share of `limit` this node may use: what the others leave, and at least an even
/// split among the nodes that use the budget, so a node whose client grows gets its
/// share back from the others.
pub fn allowance(limit: u64, others: Others) -> f64 {
    let limit = limit.max(1) as f64;
    let even = limit / f64::from(others.nodes + 1);
    (limit - others.rate).max(even)
}

/// A budget's pace on one node: the instant by which everything it let through would
/// have been sent at its allowance (GCRA's theoretical arrival time).
#[derive(Debug, Default)]
pub struct Pace {
    caught_up_at: Duration,
}

impl Pace {
    /// Charges `amount` let through at `at`, at `allowance` per second, and returns how
    /// long the connection must hold its next request: the pace's lead over the clock
    /// beyond [`BURST`], at most [`MAX_THROTTLE`].
    pub fn charge(&mut self, amount: f64, at: Duration, allowance: f64) -> Duration {
        let cost = Duration::from_secs_f64(amount / allowance.max(1.0));
        self.caught_up_at = self.caught_up_at.max(at) + cost;
        (self.caught_up_at - at)
            .saturating_sub(BURST)
            .min(MAX_THROTTLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_young_window_averages_over_its_own_age_and_at_least_a_sample() {
        let mut rate = SampledRate::default();
        rate.record(1000.0, secs(100.2));
        assert_eq!(rate.rate(secs(100.3)), 1000.0, "one sample at least");
        rate.record(1000.0, secs(101.2));
        assert_eq!(rate.rate(secs(102.2)), 1000.0, "2000 over 2 s");
    }

    #[test]
    fn a_full_window_covers_the_last_two_to_three_seconds() {
        let mut rate = SampledRate::default();
        for second in 0..30 {
            rate.record(100.0, secs(second as f64 + 0.5));
        }
        // Samples 27..=29 are kept (300), from 27 s to 29.9 s.
        let now = secs(29.9);
        assert!((rate.window(now).as_secs_f64() - 2.9).abs() < 1e-9);
        assert!((rate.rate(now) - 300.0 / 2.9).abs() < 1e-9);
        assert!(rate.is_idle(secs(33.0)), "everything aged out");
        assert_eq!(rate.rate(secs(33.0)), 0.0);
    }

    #[test]
    fn amounts_recorded_out_of_order_land_in_their_own_sample() {
        let mut rate = SampledRate::default();
        rate.record(1.0, secs(5.5));
        rate.record(2.0, secs(3.5));
        rate.record(4.0, secs(5.1));
        rate.record(8.0, secs(4.0));
        assert_eq!(rate.samples, VecDeque::from([(3, 2.0), (4, 8.0), (5, 5.0)]));
    }

    #[test]
    fn a_node_may_use_what_the_others_leave_and_at_least_an_even_share() {
        let alone = Others::default();
        assert_eq!(allowance(900, alone), 900.0);
        let busy = Others {
            rate: 900.0,
            nodes: 2,
        };
        assert_eq!(allowance(900, busy), 300.0, "an even third");
        let light = Others {
            rate: 100.0,
            nodes: 2,
        };
        assert_eq!(allowance(900, light), 800.0, "what the others leave");
        assert_eq!(allowance(0, alone), 1.0, "a zero limit is one a second");
    }

    #[test]
    fn a_pace_holds_only_beyond_a_second_of_lead_and_at_most_five() {
        let mut pace = Pace::default();
        // 1000/s: 500 at 10 s is half a second of lead, under the burst.
        assert_eq!(pace.charge(500.0, secs(10.0), 1000.0), Duration::ZERO);
        assert_eq!(pace.charge(1000.0, secs(10.0), 1000.0), secs(0.5));
        // Let through at 10.5 s, when held: the lead is again 1.5 s.
        assert_eq!(pace.charge(500.0, secs(10.5), 1000.0), secs(0.5));
        assert_eq!(pace.charge(1e6, secs(11.0), 1000.0), MAX_THROTTLE);
        // An idle budget starts again from the clock.
        let mut idle = Pace::default();
        idle.charge(100.0, secs(1.0), 1000.0);
        assert_eq!(idle.charge(1000.0, secs(100.0), 1000.0), Duration::ZERO);
    }
}
