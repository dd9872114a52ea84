//! This node's traffic rates right now, for `/api/v1/traffic` and `proxyctl top`: the
//! counters' totals are sampled every second, and a rate is the growth since the sample
//! one window ago (or the oldest one, just after start).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::api::{ClientTraffic, TopicTraffic};

use super::metrics::TrafficMetrics;

pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Cumulative counts of one topic: bytes in, bytes out, records in, records out,
/// requests.
type TopicTotals = [u64; 5];
/// Cumulative counts of one client id: bytes in, bytes out, records, requests.
type ClientTotals = [u64; 4];

#[derive(Clone, Default)]
struct Totals {
    topics: HashMap<String, TopicTotals>,
    clients: HashMap<String, ClientTotals>,
}

pub struct Rates {
    window: Duration,
    samples: Mutex<VecDeque<(Instant, Totals)>>,
}

impl Rates {
    pub fn new(window: Duration) -> Rates {
        Rates {
            window,
            samples: Mutex::default(),
        }
    }

    /// Takes one sample and forgets those older than the window needs.
    pub fn sample(&self, metrics: &TrafficMetrics) {
        let now = Instant::now();
        let totals = totals(metrics);
        let mut samples = self.lock();
        samples.push_back((now, totals));
        while samples
            .get(1)
            .is_some_and(|(at, _)| now.duration_since(*at) >= self.window)
        {
            samples.pop_front();
        }
    }

    /// Rates per second over the window, busiest first; labels with no traffic in the
    /// window are left out.
    pub fn current(&self, metrics: &TrafficMetrics) -> (Vec<TopicTraffic>, Vec<ClientTraffic>) {
        let now = Instant::now();
        let latest = totals(metrics);
        let (since, base) = match self.lock().front() {
            Some((at, base)) => (*at, base.clone()),
            None => return (Vec::new(), Vec::new()),
        };
        let seconds = now.duration_since(since).as_secs_f64().max(0.001);
        let per_second = |now: u64, then: Option<&u64>| {
            now.saturating_sub(then.copied().unwrap_or(0)) as f64 / seconds
        };
        let mut topics: Vec<TopicTraffic> = latest
            .topics
            .iter()
            .map(|(topic, t)| {
                let b = base.topics.get(topic);
                let rate = |i: usize| per_second(t[i], b.map(|b| &b[i]));
                TopicTraffic {
                    topic: topic.clone(),
                    bytes_in_per_sec: rate(0),
                    bytes_out_per_sec: rate(1),
                    records_in_per_sec: rate(2),
                    records_out_per_sec: rate(3),
                    requests_per_sec: rate(4),
                }
            })
            .filter(TopicTraffic::is_busy)
            .collect();
        let mut clients: Vec<ClientTraffic> = latest
            .clients
            .iter()
            .map(|(client_id, c)| {
                let b = base.clients.get(client_id);
                let rate = |i: usize| per_second(c[i], b.map(|b| &b[i]));
                ClientTraffic {
                    client_id: client_id.clone(),
                    bytes_in_per_sec: rate(0),
                    bytes_out_per_sec: rate(1),
                    records_per_sec: rate(2),
                    requests_per_sec: rate(3),
                }
            })
            .filter(ClientTraffic::is_busy)
            .collect();
        crate::api::sort_busiest(&mut topics, &mut clients);
        (topics, clients)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Instant, Totals)>> {
        self.samples.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn totals(metrics: &TrafficMetrics) -> Totals {
    let topics = metrics
        .topics
        .all()
        .into_iter()
        .map(|(name, t)| {
            let totals = [
                t.bytes_in.get(),
                t.bytes_out.get(),
                t.records_in.get(),
                t.records_out.get(),
                t.produce_requests.get() + t.fetch_requests.get(),
            ];
            (name.to_string(), totals)
        })
        .collect();
    let clients = metrics
        .clients
        .all()
        .into_iter()
        .map(|(id, c)| {
            let totals = [
                c.bytes_in.get(),
                c.bytes_out.get(),
                c.records.load(Ordering::Relaxed),
                c.requests.load(Ordering::Relaxed),
            ];
            (id.to_string(), totals)
        })
        .collect();
    Totals { topics, clients }
}
