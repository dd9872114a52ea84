//! The data path: listeners accept clients, and each client connection is forwarded to its
//! broker through the filter chain.
//!
//! - [`listener`]: the bootstrap and identity ports;
//! - [`clients`]: the node's client connections as a whole: the limit, and stopping;
//! - [`connection`]: the per-connection loop, both directions;
//! - [`in_flight`]: the answers a connection owes its client, in request order;
//! - [`redirect`]: what a connection answers while its node stops;
//! - [`filter`], [`message`], [`chain`]: the request pipeline every feature plugs into;
//! - [`filters`]: the filters a node runs (address rewrites, ApiVersions narrowing, ...).
//!
//! Nothing here waits on a lock shared between connections or on Raft: filters read the
//! committed control state through a snapshot, and the directory through its own.

pub mod auth;
pub mod chain;
pub mod clients;
pub mod connection;
pub mod filter;
pub mod filters;
pub mod in_flight;
pub mod listener;
pub mod message;
pub mod redirect;
