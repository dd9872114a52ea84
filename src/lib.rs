//! flotilla: a Kafka-protocol proxy node, one of a fleet in front of Apache Kafka.
//!
//! Where things live, lower layers first (a module imports only from modules above it in
//! this list, never from below):
//! - [`api`]: the admin API's JSON types, shared with `proxyctl` and the tests;
//! - [`protocol`]: the Kafka wire format (framing, request headers, safe decoding of
//!   request bodies, error answers);
//! - [`sasl`]: SASL mechanisms (PLAIN, SCRAM), as messages in and out, no I/O;
//! - [`directory`]: broker, slot and advertised address of every identity;
//! - [`metrics`], [`logging`], [`supervisor`]: observability and task supervision;
//! - [`stream`]: a client's or broker's byte stream, plain TCP or TLS;
//! - [`tls`]: certificates, the TLS listeners' and the broker connections' TLS;
//! - [`backend`]: the backend cluster's brokers, and connections to them;
//! - [`cluster`]: the fleet (gossip and Raft wiring, assignment, controller, fencing);
//! - [`monitoring`]: traffic per topic, client and principal, and the client connections
//!   and what they do; its metrics are part of [`metrics`], the data path feeds it, and
//!   it lists connections through the data path's registry of them;
//! - [`context`]: what every connection and admin handler of a node may read;
//! - [`proxy`]: the data path (listeners, connection loop, the filter chain and its
//!   filters);
//! - [`admin`]: the admin HTTP API;
//! - [`node`]: start-up, supervision and graceful stop; it wires the rest together and
//!   nothing imports it.

pub mod admin;
pub mod api;
pub mod backend;
pub mod cluster;
pub mod context;
pub mod directory;
pub mod logging;
pub mod metrics;
pub mod monitoring;
pub mod node;
pub mod protocol;
pub mod proxy;
pub mod sasl;
pub mod stream;
pub mod supervisor;
pub mod tls;
