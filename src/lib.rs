//! flotilla: a Kafka-protocol proxy node, one of a fleet in front of Apache Kafka.
//!
//! Where things live:
//! - the data path: [`frame`] (framing), [`header`] (what is read of each request),
//!   [`connection`] (the per-connection loop), [`rewrite`] (one file per rewritten API),
//!   [`server`] (listeners);
//! - what clients are told: [`directory`] (broker, slot and advertised address);
//! - the backend cluster: [`backend`];
//! - operating it: [`admin`], [`metrics`], [`logging`], [`node`] (start-up).

pub mod admin;
pub mod backend;
pub mod cluster;
pub mod connection;
pub mod directory;
pub mod logging;
pub mod metrics;
pub mod node;
pub mod protocol;
pub mod rewrite;
pub mod server;
