//! The filter chain: runs each request and response through the filters that asked for
//! its API and version, in the order the chain was built.
//!
//! Which filters want which (API, version) is worked out once, when the chain is built,
//! into two tables of bit sets. The connection loop asks [`FilterChain::wants_request`]
//! and [`FilterChain::wants_response`] for every message; a zero answer means the message
//! is forwarded as its bytes with nothing else done, which is what keeps Produce and Fetch
//! traffic that no feature touches as fast as a plain pass-through. A filter that has
//! nothing to do under the committed control state (no quota configured) drops out of
//! those answers until the state changes; which filters are active is worked out once per
//! state, not per message.

use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use flotilla_raft::ControlState;
use kafka_protocol::messages::{ApiKey, ResponseKind};
use prometheus::IntCounter;

use super::filter::{Env, Filter, Session, Verdict};
use super::message::{Request, Response};
use crate::metrics::Metrics;
use crate::protocol::error_response::encode_response;
use crate::protocol::header::RequestMeta;

/// At most this many filters: their positions are bits of a `u32`.
const MAX_FILTERS: usize = 32;
/// API keys are below this (kafka-protocol 0.18 knows 0 to 92).
const API_KEYS: usize = 128;
/// Versions at or above this share the last entry: only an ApiVersions probe gets here.
const VERSIONS: usize = 32;

/// What the request side does with a request after the chain.
#[derive(Debug)]
pub enum Outcome {
    /// Send these bytes to the broker.
    Forward(Bytes),
    /// Send these bytes to the client in the request's turn (an answer by the proxy).
    Answer(Bytes),
    /// Close the connection.
    Close {
        filter: &'static str,
        reason: String,
    },
}

pub struct FilterChain {
    filters: Vec<Box<dyn Filter>>,
    counters: Vec<ActionCounters>,
    requests: Interest,
    responses: Interest,
    control: Arc<ArcSwap<ControlState>>,
    active: ArcSwap<Active>,
}

/// The filters active under one control state, as bits. Holding the state keeps its
/// address from being reused while the answer is cached.
struct Active {
    control: Arc<ControlState>,
    mask: u32,
}

/// Counters resolved once per filter, so acting costs no label lookup.
struct ActionCounters {
    answered: IntCounter,
    delayed: IntCounter,
    closed: IntCounter,
    exchanged: IntCounter,
}

impl FilterChain {
    /// A chain of `filters`, in order, reading the control state from `control`.
    pub fn new(
        filters: Vec<Box<dyn Filter>>,
        control: Arc<ArcSwap<ControlState>>,
        metrics: &Metrics,
    ) -> FilterChain {
        assert!(
            filters.len() <= MAX_FILTERS,
            "at most {MAX_FILTERS} filters"
        );
        let counters = filters
            .iter()
            .map(|f| ActionCounters {
                answered: metrics.filter_action(f.name(), "answer"),
                delayed: metrics.filter_action(f.name(), "delay"),
                closed: metrics.filter_action(f.name(), "close"),
                exchanged: metrics.filter_action(f.name(), "exchange"),
            })
            .collect();
        let active = ArcSwap::from_pointee(Active::of(&filters, control.load_full()));
        FilterChain {
            requests: Interest::build(&filters, |f, key, v| f.wants_request(key, v)),
            responses: Interest::build(&filters, |f, key, v| f.wants_response(key, v)),
            filters,
            counters,
            control,
            active,
        }
    }

    pub fn wants_request(&self, api_key: ApiKey, version: i16) -> bool {
        let wanted = self.requests.mask(api_key, version);
        wanted != 0 && wanted & self.active_mask(&self.control.load()) != 0
    }

    /// Whether some filter may want the response; [`FilterChain::on_response`] then works
    /// out which ones do.
    pub fn wants_response(&self, api_key: ApiKey, version: i16) -> bool {
        self.responses.mask(api_key, version) != 0
    }

    /// The filters a response goes through: those that want it and are active, and all
    /// that want it while some filter left a note for a response (it changed the request
    /// when it was active, and must put its answer back even if the state changed since).
    fn response_mask(
        &self,
        api_key: ApiKey,
        version: i16,
        session: &Session,
        control: &Arc<ControlState>,
    ) -> u32 {
        let wanted = self.responses.mask(api_key, version);
        if wanted == 0 || !session.notes.is_empty() {
            return wanted;
        }
        wanted & self.active_mask(control)
    }

    /// The filters active under `control`, worked out again only when it changed.
    fn active_mask(&self, control: &Arc<ControlState>) -> u32 {
        let cached = self.active.load();
        if Arc::ptr_eq(&cached.control, control) {
            return cached.mask;
        }
        let active = Active::of(&self.filters, control.clone());
        let mask = active.mask;
        self.active.store(Arc::new(active));
        mask
    }

    /// Runs a request through the filters that want it. Awaits only for `Delay` and
    /// `Exchange`.
    pub async fn on_request(&self, meta: RequestMeta, frame: Bytes, session: &Session) -> Outcome {
        let active = self.active_mask(&self.control.load());
        let mask = self.requests.mask(meta.api_key, meta.api_version) & active;
        let mut request = Request::new(meta, frame);
        let mut filters = self.selected(mask);
        loop {
            let Some((filter, counters, verdict)) =
                self.run_until_verdict(&mut filters, &mut request, session)
            else {
                break;
            };
            match verdict {
                Verdict::Forward => {}
                Verdict::Delay(pause) => {
                    counters.delayed.inc();
                    tokio::time::sleep(pause).await;
                }
                Verdict::Answer(body) => {
                    counters.answered.inc();
                    return answer(&request, filter, &body);
                }
                Verdict::AnswerAfter(pause, body) => {
                    counters.delayed.inc();
                    counters.answered.inc();
                    tokio::time::sleep(pause).await;
                    return answer(&request, filter, &body);
                }
                Verdict::Close(reason) => {
                    counters.closed.inc();
                    return Outcome::Close {
                        filter: filter.name(),
                        reason,
                    };
                }
                Verdict::Exchange(exchange) => {
                    counters.exchanged.inc();
                    return self.exchanged(&request, filter, exchange, session).await;
                }
            }
        }
        match request.into_frame() {
            Ok(frame) => Outcome::Forward(frame),
            Err(reason) => Outcome::Close {
                filter: "request-encoder",
                reason,
            },
        }
    }

    /// The answer an exchange got, through the response filters as a broker's would go.
    async fn exchanged(
        &self,
        request: &Request,
        filter: &dyn Filter,
        exchange: super::filter::Exchange,
        session: &Session,
    ) -> Outcome {
        let body = match exchange.run().await {
            Ok(body) => body,
            Err(reason) => {
                return Outcome::Close {
                    filter: filter.name(),
                    reason,
                }
            }
        };
        let Outcome::Answer(frame) = answer(request, filter, &body) else {
            return answer(request, filter, &body);
        };
        match self.on_response(request.api_key(), request.version(), frame, session) {
            Ok(frame) => Outcome::Answer(frame),
            Err((filter, reason)) => Outcome::Close { filter, reason },
        }
    }

    /// Runs `filters` over the request until one gives a verdict other than Forward.
    /// The control state is read through a guard (no reference count touched, which
    /// every request on every core would contend on) and dropped before any wait; after
    /// a delay, the next filters see the state as it is then.
    fn run_until_verdict<'s>(
        &'s self,
        filters: &mut impl Iterator<Item = (&'s dyn Filter, &'s ActionCounters)>,
        request: &mut Request,
        session: &Session,
    ) -> Option<(&'s dyn Filter, &'s ActionCounters, Verdict)> {
        let control = self.control.load();
        let env = Env {
            session,
            control: &control,
        };
        filters.find_map(
            |(filter, counters)| match filter.on_request(request, &env) {
                Verdict::Forward => None,
                verdict => Some((filter, counters, verdict)),
            },
        )
    }

    /// Runs a broker response through the filters that want it; an error names the
    /// filter that failed.
    pub fn on_response(
        &self,
        api_key: ApiKey,
        version: i16,
        frame: Bytes,
        session: &Session,
    ) -> Result<Bytes, (&'static str, String)> {
        let control = self.control.load();
        let mask = self.response_mask(api_key, version, session, &control);
        let env = Env {
            session,
            control: &control,
        };
        let mut response = Response::new(api_key, version, frame);
        for (filter, _) in self.selected(mask) {
            filter
                .on_response(&mut response, &env)
                .map_err(|e| (filter.name(), e))?;
        }
        response.into_frame().map_err(|e| {
            let reason = format!("cannot encode the {api_key:?} v{version} response: {e}");
            ("response-encoder", reason)
        })
    }

    fn selected(&self, mask: u32) -> impl Iterator<Item = (&dyn Filter, &ActionCounters)> {
        self.filters
            .iter()
            .zip(&self.counters)
            .enumerate()
            .filter(move |(i, _)| mask & (1 << i) != 0)
            .map(|(_, (filter, counters))| (filter.as_ref(), counters))
    }
}

/// The encoded answer a filter gave in the broker's place, or why it cannot be sent.
fn answer(request: &Request, filter: &dyn Filter, body: &ResponseKind) -> Outcome {
    let (api_key, version) = (request.api_key(), answer_version(request));
    match encode_response(request.correlation_id(), api_key, version, body) {
        Ok(answer) => Outcome::Answer(answer),
        Err(e) => Outcome::Close {
            filter: filter.name(),
            reason: format!("cannot encode its {api_key:?} v{version} answer: {e}"),
        },
    }
}

/// The version an answer is encoded in: the request's, except for an ApiVersions probe
/// newer than any known, which brokers answer in v0 so the client can read it.
fn answer_version(request: &Request) -> i16 {
    let newest = request.api_key().valid_versions().max;
    match request.api_key() {
        ApiKey::ApiVersions if request.version() > newest => 0,
        _ => request.version(),
    }
}

impl Active {
    fn of(filters: &[Box<dyn Filter>], control: Arc<ControlState>) -> Active {
        let mask = filters
            .iter()
            .enumerate()
            .filter(|(_, f)| f.is_active(&control))
            .fold(0, |mask, (i, _)| mask | 1 << i);
        Active { control, mask }
    }
}

/// For each (API, version), the set of filters that asked for it, as bits.
struct Interest(Box<[[u32; VERSIONS]; API_KEYS]>);

impl Interest {
    fn build(
        filters: &[Box<dyn Filter>],
        wants: impl Fn(&dyn Filter, ApiKey, i16) -> bool,
    ) -> Interest {
        let mut table = Box::new([[0u32; VERSIONS]; API_KEYS]);
        for raw in 0..API_KEYS as i16 {
            let Ok(api_key) = ApiKey::try_from(raw) else {
                continue;
            };
            let known = api_key.valid_versions();
            for version in known.min.max(0)..VERSIONS as i16 {
                let asked = version.min(known.max);
                for (i, filter) in filters.iter().enumerate() {
                    if wants(filter.as_ref(), api_key, asked) {
                        table[raw as usize][version as usize] |= 1 << i;
                    }
                }
            }
        }
        Interest(table)
    }

    fn mask(&self, api_key: ApiKey, version: i16) -> u32 {
        let version = usize::try_from(version).unwrap_or(0).min(VERSIONS - 1);
        self.0
            .get(api_key as i16 as usize)
            .map_or(0, |versions| versions[version])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use bytes::Bytes;
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse, ResponseKind};
    use kafka_protocol::protocol::{Decodable, Encodable};

    use super::*;
    use crate::protocol::header::{parse_request, tests::encode_request};
    use crate::proxy::filter::{Listener, Transport};

    /// Gives `verdict` for Metadata requests and counts the requests it saw.
    struct Fixed {
        name: &'static str,
        verdict: fn() -> Verdict,
        seen: Arc<AtomicUsize>,
    }

    impl Filter for Fixed {
        fn name(&self) -> &'static str {
            self.name
        }
        fn wants_request(&self, api_key: ApiKey, version: i16) -> bool {
            api_key == ApiKey::Metadata && version >= 4
        }
        fn on_request(&self, _request: &mut Request, _env: &Env) -> Verdict {
            self.seen.fetch_add(1, Ordering::Relaxed);
            (self.verdict)()
        }
    }

    type Named = (&'static str, fn() -> Verdict);

    fn chain(verdicts: &[Named]) -> (FilterChain, Vec<Arc<AtomicUsize>>) {
        let seen: Vec<_> = verdicts.iter().map(|_| Arc::default()).collect();
        let filters = verdicts
            .iter()
            .zip(&seen)
            .map(|((name, verdict), seen)| {
                Box::new(Fixed {
                    name,
                    verdict: *verdict,
                    seen: Arc::clone(seen),
                }) as Box<dyn Filter>
            })
            .collect();
        let control = Arc::new(ArcSwap::from_pointee(ControlState::default()));
        (FilterChain::new(filters, control, &Metrics::new()), seen)
    }

    fn metadata_request() -> (RequestMeta, Bytes) {
        let frame = encode_request(ApiKey::Metadata, 12, 7, &MetadataRequest::default());
        (parse_request(&frame).unwrap(), frame)
    }

    fn session() -> Session {
        Session::new(
            "127.0.0.1:1".parse().unwrap(),
            Listener::Bootstrap,
            Transport::Plaintext,
        )
    }

    fn answer() -> Verdict {
        Verdict::Answer(Box::new(
            ResponseKind::Metadata(MetadataResponse::default()),
        ))
    }

    #[test]
    fn only_the_apis_and_versions_a_filter_asked_for_go_through_the_chain() {
        let (chain, _) = chain(&[("a", || Verdict::Forward)]);
        assert!(chain.wants_request(ApiKey::Metadata, 12));
        assert!(!chain.wants_request(ApiKey::Metadata, 3));
        assert!(!chain.wants_request(ApiKey::Produce, 9));
        assert!(!chain.wants_response(ApiKey::Metadata, 12));
    }

    /// Wants every Metadata request and response, but only while some quota exists; leaves
    /// a note on each request and counts the responses that take theirs back.
    #[derive(Default)]
    struct WhileQuotas {
        notes_taken: Arc<AtomicUsize>,
    }

    impl Filter for WhileQuotas {
        fn name(&self) -> &'static str {
            "while-quotas"
        }
        fn is_active(&self, control: &ControlState) -> bool {
            !control.quotas.is_empty()
        }
        fn wants_request(&self, api_key: ApiKey, _version: i16) -> bool {
            api_key == ApiKey::Metadata
        }
        fn wants_response(&self, api_key: ApiKey, _version: i16) -> bool {
            api_key == ApiKey::Metadata
        }
        fn on_request(&self, request: &mut Request, env: &Env) -> Verdict {
            let id = request.correlation_id();
            env.session.notes.leave(self.name(), id, ());
            Verdict::Forward
        }
        fn on_response(&self, response: &mut Response, env: &Env) -> Result<(), String> {
            let id = response.correlation_id().unwrap_or_default();
            if env.session.notes.take::<()>(self.name(), id).is_some() {
                self.notes_taken.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }
    }

    fn with_a_quota() -> ControlState {
        let mut state = ControlState {
            feature_level: 3,
            ..ControlState::default()
        };
        state.apply(&flotilla_raft::Command::SetQuota {
            key: flotilla_raft::QuotaKey {
                user: None,
                client_id: Some(flotilla_raft::QuotaEntity::Default),
            },
            limits: flotilla_raft::QuotaLimits {
                request_rate: Some(1),
                ..Default::default()
            },
        });
        state
    }

    #[test]
    fn an_inactive_filter_drops_out_until_the_state_changes() {
        let control = Arc::new(ArcSwap::from_pointee(ControlState::default()));
        let filters: Vec<Box<dyn Filter>> = vec![Box::new(WhileQuotas::default())];
        let chain = FilterChain::new(filters, control.clone(), &Metrics::new());
        assert!(!chain.wants_request(ApiKey::Metadata, 12));
        control.store(Arc::new(with_a_quota()));
        assert!(chain.wants_request(ApiKey::Metadata, 12));
        control.store(Arc::new(ControlState::default()));
        assert!(!chain.wants_request(ApiKey::Metadata, 12));
    }

    #[tokio::test]
    async fn a_filter_gets_back_the_note_it_left_after_it_went_inactive() {
        let control = Arc::new(ArcSwap::from_pointee(with_a_quota()));
        let filter = WhileQuotas::default();
        let notes_taken = filter.notes_taken.clone();
        let chain = FilterChain::new(vec![Box::new(filter)], control.clone(), &Metrics::new());
        let session = session();
        let (meta, frame) = metadata_request();
        let Outcome::Forward(_) = chain.on_request(meta, frame, &session).await else {
            panic!("forwarded")
        };
        control.store(Arc::new(ControlState::default()));
        let mut response = bytes::BytesMut::new();
        let header = kafka_protocol::messages::ResponseHeader::default().with_correlation_id(7);
        header.encode(&mut response, 1).unwrap();
        MetadataResponse::default()
            .encode(&mut response, 12)
            .unwrap();
        let response = response.freeze();
        chain
            .on_response(ApiKey::Metadata, 12, response, &session)
            .unwrap();
        assert_eq!(notes_taken.load(Ordering::Relaxed), 1);
        assert!(session.notes.is_empty());
    }

    #[tokio::test]
    async fn a_forwarded_request_leaves_as_the_same_bytes() {
        let (chain, seen) = chain(&[("a", || Verdict::Forward), ("b", || Verdict::Forward)]);
        let (meta, frame) = metadata_request();
        let Outcome::Forward(out) = chain.on_request(meta, frame.clone(), &session()).await else {
            panic!("forwarded")
        };
        assert_eq!(out.as_ptr(), frame.as_ptr(), "no copy, no re-encoding");
        assert_eq!(seen[1].load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn an_answer_ends_the_chain_and_carries_the_correlation_id() {
        let (chain, seen) = chain(&[("answers", answer), ("after", || Verdict::Forward)]);
        let (meta, frame) = metadata_request();
        let Outcome::Answer(mut out) = chain.on_request(meta, frame, &session()).await else {
            panic!("answered")
        };
        let header = kafka_protocol::messages::ResponseHeader::decode(&mut out, 1).unwrap();
        assert_eq!(header.correlation_id, 7);
        MetadataResponse::decode(&mut out, 12).unwrap();
        assert_eq!(
            seen[1].load(Ordering::Relaxed),
            0,
            "later filters never see it"
        );
    }

    #[tokio::test]
    async fn a_close_names_the_filter() {
        let (chain, _) = chain(&[("closes", || Verdict::Close("no".into()))]);
        let (meta, frame) = metadata_request();
        let outcome = chain.on_request(meta, frame, &session()).await;
        assert!(
            matches!(&outcome, Outcome::Close { filter: "closes", reason } if reason == "no"),
            "{outcome:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_delay_holds_the_request_then_goes_on() {
        let (chain, seen) = chain(&[
            ("delays", || Verdict::Delay(Duration::from_secs(3))),
            ("after", || Verdict::Forward),
        ]);
        let (meta, frame) = metadata_request();
        let started = tokio::time::Instant::now();
        let outcome = chain.on_request(meta, frame, &session()).await;
        assert!(matches!(outcome, Outcome::Forward(_)));
        assert!(started.elapsed() >= Duration::from_secs(3));
        assert_eq!(seen[1].load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_after_a_pause_waits_then_ends_the_chain() {
        let (chain, seen) = chain(&[
            ("holds", || {
                Verdict::AnswerAfter(
                    Duration::from_millis(300),
                    Box::new(ResponseKind::Metadata(MetadataResponse::default())),
                )
            }),
            ("after", || Verdict::Forward),
        ]);
        let (meta, frame) = metadata_request();
        let started = tokio::time::Instant::now();
        let outcome = chain.on_request(meta, frame, &session()).await;
        assert!(matches!(outcome, Outcome::Answer(_)), "{outcome:?}");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(seen[1].load(Ordering::Relaxed), 0);
    }

    /// Sets the controller id of every Metadata response it sees.
    struct StampsController;

    impl Filter for StampsController {
        fn name(&self) -> &'static str {
            "stamps"
        }
        fn wants_response(&self, api_key: ApiKey, _version: i16) -> bool {
            api_key == ApiKey::Metadata
        }
        fn on_response(&self, response: &mut Response, _env: &Env) -> Result<(), String> {
            response
                .edit(|body| match body {
                    ResponseKind::Metadata(m) => {
                        m.controller_id = kafka_protocol::messages::BrokerId(42);
                        true
                    }
                    _ => false,
                })
                .map_err(|e| e.to_string())
        }
    }

    #[tokio::test]
    async fn an_exchanged_answer_goes_through_the_response_filters() {
        let exchanges: fn() -> Verdict = || {
            Verdict::Exchange(super::super::filter::Exchange::new(async {
                let body = MetadataResponse::default().with_cluster_id(Some(
                    kafka_protocol::protocol::StrBytes::from_static_str("exchanged"),
                ));
                Ok(ResponseKind::Metadata(body))
            }))
        };
        let filters: Vec<Box<dyn Filter>> = vec![
            Box::new(Fixed {
                name: "exchanges",
                verdict: exchanges,
                seen: Arc::default(),
            }),
            Box::new(StampsController),
        ];
        let control = Arc::new(ArcSwap::from_pointee(ControlState::default()));
        let chain = FilterChain::new(filters, control, &Metrics::new());
        let (meta, frame) = metadata_request();
        let Outcome::Answer(mut out) = chain.on_request(meta, frame, &session()).await else {
            panic!("answered")
        };
        let header = kafka_protocol::messages::ResponseHeader::decode(&mut out, 1).unwrap();
        assert_eq!(header.correlation_id, 7);
        let body = MetadataResponse::decode(&mut out, 12).unwrap();
        assert_eq!(body.cluster_id.as_deref(), Some("exchanged"));
        assert_eq!(body.controller_id.0, 42, "the response filters ran over it");
    }

    #[tokio::test]
    async fn a_failed_exchange_closes_naming_the_filter() {
        let (chain, _) = chain(&[("exchanges", || {
            Verdict::Exchange(super::super::filter::Exchange::new(async {
                Err("cluster b unreachable".to_string())
            }))
        })]);
        let (meta, frame) = metadata_request();
        let outcome = chain.on_request(meta, frame, &session()).await;
        assert!(
            matches!(&outcome, Outcome::Close { filter: "exchanges", reason } if reason == "cluster b unreachable"),
            "{outcome:?}"
        );
    }
}
