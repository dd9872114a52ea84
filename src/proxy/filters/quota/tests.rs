use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flotilla_raft::{Command, ControlState, QuotaEntity, QuotaKey, QuotaKind, QuotaLimits};
use kafka_protocol::messages::{
    ApiKey, FetchResponse, MetadataRequest, ProduceRequest, ProduceResponse, ResponseHeader,
    TransactionalId,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::buckets::Bucket;
use super::rate::Others;
use super::Quotas;
use crate::cluster::usage::FleetUsage;
use crate::metrics::Metrics;
use crate::protocol::header::{parse_request, tests::encode_request};
use crate::proxy::filter::{Env, Filter, Listener, Session, Transport, Verdict};
use crate::proxy::filters::test_support::broker_response;
use crate::proxy::message::{Request, Response};

const QUOTA: u64 = 256 * 1024;

fn state_with(key: QuotaKey, limits: QuotaLimits) -> ControlState {
    let mut state = ControlState {
        feature_level: 3,
        ..ControlState::default()
    };
    state.apply(&Command::SetQuota { key, limits });
    assert!(!state.quotas.is_empty());
    state
}

fn client_quota(client_id: &str, limits: QuotaLimits) -> ControlState {
    let key = QuotaKey {
        user: None,
        client_id: Some(QuotaEntity::Named(client_id.into())),
    };
    state_with(key, limits)
}

fn produce_limit(rate: u64) -> QuotaLimits {
    QuotaLimits {
        producer_byte_rate: Some(rate),
        ..QuotaLimits::default()
    }
}

fn session(client_id: &str) -> Session {
    let mut session = Session::new(
        "127.0.0.1:1".parse().unwrap(),
        Listener::Bootstrap,
        Transport::Plaintext,
    );
    session.client_id = Some(StrBytes::from_string(client_id.into()));
    session
}

fn filter() -> (Quotas, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    (
        Quotas::new(&Arc::new(FleetUsage::default()), &metrics),
        metrics,
    )
}

/// A Produce request of about `size` bytes.
fn produce(size: usize) -> Request {
    let body = ProduceRequest::default()
        .with_acks(-1)
        .with_transactional_id(Some(TransactionalId(StrBytes::from_string(
            "x".repeat(size),
        ))));
    let frame = encode_request(ApiKey::Produce, 9, 5, &body);
    Request::new(parse_request(&frame).unwrap(), frame)
}

fn produce_response() -> Response {
    let frame = broker_response(ApiKey::Produce, 9, &ProduceResponse::default());
    Response::new(ApiKey::Produce, 9, frame)
}

fn throttle_time_of(response: Response) -> i32 {
    let mut frame = response.into_frame().unwrap();
    ResponseHeader::decode(&mut frame, 1).unwrap();
    ProduceResponse::decode(&mut frame, 9)
        .unwrap()
        .throttle_time_ms
}

#[test]
fn without_quotas_nothing_is_resolved_held_or_decoded() {
    let (filter, metrics) = filter();
    let control = ControlState::default();
    let session = session("app");
    let env = Env {
        session: &session,
        control: &control,
    };
    for _ in 0..100 {
        assert!(matches!(
            filter.on_request(&mut produce(100_000), &env),
            Verdict::Forward
        ));
    }
    let mut response = produce_response();
    let before = response.frame().clone();
    filter.on_response(&mut response, &env).unwrap();
    assert_eq!(response.into_frame().unwrap().as_ptr(), before.as_ptr());
    assert!(session.quota.muted_until().is_zero());
    let rendered = metrics.render();
    assert!(
        rendered
            .contains(r#"flotilla_quota_throttled_requests_total{kind="producer_byte_rate"} 0"#),
        "{rendered}"
    );
}

#[test]
fn a_client_over_its_produce_quota_is_held_and_told_so() {
    let (filter, metrics) = filter();
    let control = client_quota("app", produce_limit(100_000));
    let session = session("app");
    let env = Env {
        session: &session,
        control: &control,
    };
    // 150 kB in the first second of a window: 1.5 times the quota over a second.
    assert!(matches!(
        filter.on_request(&mut produce(150_000), &env),
        Verdict::Forward
    ));
    let mut response = produce_response();
    filter.on_response(&mut response, &env).unwrap();
    let told = throttle_time_of(response);
    assert!((400..=550).contains(&told), "told {told} ms");
    let Verdict::Delay(held) = filter.on_request(&mut produce(10), &env) else {
        panic!("the next request is held")
    };
    assert!(held > Duration::from_millis(300) && held <= Duration::from_millis(550));
    let rendered = metrics.render();
    assert!(
        !rendered
            .contains(r#"flotilla_quota_throttled_requests_total{kind="producer_byte_rate"} 0"#),
        "{rendered}"
    );
    assert!(
        rendered.contains(r#"flotilla_client_throttle_seconds_total{client_id="app"}"#),
        "{rendered}"
    );
}

#[test]
fn other_clients_and_other_kinds_are_not_held() {
    let (filter, _) = filter();
    let control = client_quota("app", produce_limit(1_000));
    let other = session("other");
    let env = Env {
        session: &other,
        control: &control,
    };
    for _ in 0..10 {
        assert!(matches!(
            filter.on_request(&mut produce(100_000), &env),
            Verdict::Forward
        ));
    }
    let governed = session("app");
    let env = Env {
        session: &governed,
        control: &control,
    };
    let metadata = encode_request(ApiKey::Metadata, 12, 1, &MetadataRequest::default());
    for _ in 0..10 {
        let mut request = Request::new(parse_request(&metadata).unwrap(), metadata.clone());
        assert!(matches!(
            filter.on_request(&mut request, &env),
            Verdict::Forward
        ));
    }
}

#[test]
fn a_request_rate_holds_any_api_beyond_a_seconds_burst() {
    let (filter, metrics) = filter();
    let limits = QuotaLimits {
        request_rate: Some(10),
        ..QuotaLimits::default()
    };
    let control = client_quota("chatty", limits);
    let session = session("chatty");
    let env = Env {
        session: &session,
        control: &control,
    };
    let metadata = encode_request(ApiKey::Metadata, 12, 1, &MetadataRequest::default());
    let verdicts: Vec<Verdict> = (0..15)
        .map(|_| {
            let mut request = Request::new(parse_request(&metadata).unwrap(), metadata.clone());
            filter.on_request(&mut request, &env)
        })
        .collect();
    // Ten a second, and a second's burst: the first ten go at once, then each waits.
    assert!(verdicts[..10].iter().all(|v| matches!(v, Verdict::Forward)));
    let Verdict::Delay(last) = &verdicts[14] else {
        panic!("{verdicts:?}")
    };
    assert!(*last >= Duration::from_millis(300), "held {last:?}");
    let rendered = metrics.render();
    assert!(
        !rendered.contains(r#"flotilla_quota_throttled_requests_total{kind="request_rate"} 0"#),
        "{rendered}"
    );
}

#[test]
fn fetch_bytes_are_counted_from_the_response_frame() {
    let (filter, _) = filter();
    let limits = QuotaLimits {
        consumer_byte_rate: Some(10_000),
        ..QuotaLimits::default()
    };
    let control = client_quota("reader", limits);
    let session = session("reader");
    let env = Env {
        session: &session,
        control: &control,
    };
    let body = FetchResponse::default().with_session_id(1);
    let empty = broker_response(ApiKey::Fetch, 12, &body);
    let mut small = Response::new(ApiKey::Fetch, 12, empty.clone());
    filter.on_response(&mut small, &env).unwrap();
    assert!(session.quota.muted_until().is_zero(), "under the quota");
    // A big response, as its length says (a real one would carry records).
    let big = Bytes::from(vec![0u8; 30_000]);
    let mut undecodable = Response::new(ApiKey::Fetch, 12, big);
    // Counting needs no decoding; telling the client does, and this one cannot be.
    assert!(filter.on_response(&mut undecodable, &env).is_err());
    assert!(
        !session.quota.muted_until().is_zero(),
        "muted for 30 kB at 10 kB/s"
    );
    let mut next = Response::new(ApiKey::Fetch, 12, empty);
    filter.on_response(&mut next, &env).unwrap();
    let mut out = next.into_frame().unwrap();
    ResponseHeader::decode(&mut out, 1).unwrap();
    let told = FetchResponse::decode(&mut out, 12)
        .unwrap()
        .throttle_time_ms;
    assert!(told > 1000, "told {told} ms");
}

#[test]
fn a_user_quota_needs_a_principal_without_its_prefix() {
    let (filter, _) = filter();
    let key = QuotaKey {
        user: Some(QuotaEntity::Named("alice".into())),
        client_id: None,
    };
    let control = state_with(key, produce_limit(1_000));
    let mut alice = session("app");
    let env = Env {
        session: &alice,
        control: &control,
    };
    filter.on_request(&mut produce(10_000), &env);
    assert!(alice.quota.muted_until().is_zero(), "no principal, no user");
    alice.principal = Some("User:alice".into());
    let env = Env {
        session: &alice,
        control: &control,
    };
    filter.on_request(&mut produce(10_000), &env);
    assert!(!alice.quota.muted_until().is_zero());
}

/// A fleet of nodes, each with connections of one producer that always has a request of
/// `request_bytes` ready, sharing their rates as gossip does: published every half
/// second, seen by the others half a second later.
struct Simulation {
    nodes: Vec<SimNode>,
    request_bytes: f64,
    limit: u64,
    /// What each node published, and when.
    published: Vec<Vec<(Duration, f64)>>,
}

struct SimNode {
    bucket: Bucket,
    muted_until: Duration,
    next_request: Duration,
    stops_at: Duration,
    /// (when, bytes) of every request let through.
    sent: Vec<(Duration, f64)>,
}

const TICK: Duration = Duration::from_millis(1);
const PUBLISH: Duration = Duration::from_millis(500);
const GOSSIP_DELAY: Duration = Duration::from_millis(500);

impl Simulation {
    fn new(starts: &[f64], request_bytes: f64, limit: u64) -> Simulation {
        let owner = (None, Some("app".to_string()));
        Simulation {
            nodes: starts
                .iter()
                .map(|&s| SimNode {
                    bucket: Bucket::new(QuotaKind::ProducerByteRate, &owner),
                    muted_until: Duration::ZERO,
                    next_request: Duration::from_secs_f64(s),
                    stops_at: Duration::MAX,
                    sent: Vec::new(),
                })
                .collect(),
            request_bytes,
            limit,
            published: vec![Vec::new(); starts.len()],
        }
    }

    fn others(&self, node: usize, now: Duration) -> Others {
        let seen = |reports: &Vec<(Duration, f64)>| {
            let mut visible = reports.iter().filter(|(at, _)| *at + GOSSIP_DELAY <= now);
            visible.next_back().map_or(0.0, |&(_, rate)| rate)
        };
        let others = self
            .published
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != node);
        let rates: Vec<f64> = others.map(|(_, reports)| seen(reports)).collect();
        Others {
            rate: rates.iter().sum(),
            nodes: rates.iter().filter(|&&r| r > 0.0).count() as u32,
        }
    }

    fn run(&mut self, until: Duration) {
        let mut now = Duration::ZERO;
        let mut next_publish = PUBLISH;
        while now < until {
            if now >= next_publish {
                for (i, node) in self.nodes.iter().enumerate() {
                    self.published[i].push((now, node.bucket.local_rate(now)));
                }
                next_publish += PUBLISH;
            }
            for i in 0..self.nodes.len() {
                if self.nodes[i].next_request > now || self.nodes[i].stops_at <= now {
                    continue;
                }
                let others = self.others(i, now);
                let node = &mut self.nodes[i];
                // As `Quotas::on_request`: held while muted, counted when let through.
                let release = node.muted_until.max(now);
                let throttle = node
                    .bucket
                    .charge(self.request_bytes, release, self.limit, others);
                node.muted_until = release + throttle;
                node.sent.push((release, self.request_bytes));
                // The client's next request is read once this one is let through.
                node.next_request = release + TICK;
            }
            now += TICK;
        }
    }

    /// The fleet's rate over [from, to), in seconds.
    fn rate(&self, from: f64, to: f64) -> f64 {
        let (from, to) = (Duration::from_secs_f64(from), Duration::from_secs_f64(to));
        let bytes: f64 = self
            .nodes
            .iter()
            .flat_map(|n| &n.sent)
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, b)| b)
            .sum();
        bytes / (to - from).as_secs_f64()
    }

    fn node_rate(&self, node: usize, from: f64, to: f64) -> f64 {
        let bytes: f64 = self.nodes[node]
            .sent
            .iter()
            .filter(|(at, _)| at.as_secs_f64() >= from && at.as_secs_f64() < to)
            .map(|(_, b)| b)
            .sum();
        bytes / (to - from)
    }
}

fn assert_near(what: &str, measured: f64, target: f64, tolerance: f64) {
    let ratio = measured / target;
    assert!(
        (1.0 - tolerance..=1.0 + tolerance).contains(&ratio),
        "{what}: {measured:.0}/s is {ratio:.3} of {target:.0}/s"
    );
}

#[test]
fn fleet_converges_to_the_quota_over_three_nodes() {
    for request_bytes in [16_384.0, 65_536.0] {
        let mut sim = Simulation::new(&[0.0, 0.0, 0.0], request_bytes, QUOTA);
        sim.run(Duration::from_secs(70));
        let q = QUOTA as f64;
        // Each node lets a second's burst through before gossip tells it of the others.
        assert_near("0-30 s, the start included", sim.rate(0.0, 30.0), q, 0.20);
        assert_near("10-40 s", sim.rate(10.0, 40.0), q, 0.07);
        assert_near("40-70 s", sim.rate(40.0, 70.0), q, 0.07);
        // No oscillation: every 5 s of the steady state is near the quota.
        for start in (10..65).step_by(5) {
            let from = start as f64;
            assert_near(
                &format!("{from}-{} s", from + 5.0),
                sim.rate(from, from + 5.0),
                q,
                0.15,
            );
        }
        // Each node's connections get an even share.
        for node in 0..3 {
            assert_near(
                &format!("node {node}"),
                sim.node_rate(node, 10.0, 70.0),
                q / 3.0,
                0.10,
            );
        }
    }
}

#[test]
fn fleet_converges_when_nodes_join_the_load_late() {
    let mut sim = Simulation::new(&[0.0, 7.0, 15.0], 16_384.0, QUOTA);
    sim.run(Duration::from_secs(70));
    let q = QUOTA as f64;
    assert_near("0-7 s, one node alone", sim.rate(1.0, 7.0), q, 0.10);
    assert_near("25-70 s", sim.rate(25.0, 70.0), q, 0.07);
    for node in 0..3 {
        let share = sim.node_rate(node, 25.0, 70.0);
        assert_near(&format!("node {node}"), share, q / 3.0, 0.10);
    }
}

#[test]
fn fleet_converges_when_a_node_loses_its_client() {
    let mut sim = Simulation::new(&[0.0, 0.0, 0.0], 16_384.0, QUOTA);
    sim.nodes[2].stops_at = Duration::from_secs(30);
    sim.run(Duration::from_secs(70));
    let q = QUOTA as f64;
    assert_near("10-30 s, three nodes", sim.rate(10.0, 30.0), q, 0.07);
    assert_near("30-70 s, two nodes", sim.rate(30.0, 70.0), q, 0.07);
    for node in 0..2 {
        let share = sim.node_rate(node, 40.0, 70.0);
        assert_near(&format!("node {node} after"), share, q / 2.0, 0.10);
    }
}
