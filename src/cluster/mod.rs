//! The cluster logic: who owns which identity, and what this node advertises when the
//! fleet cannot agree. The Raft group (`flotilla-raft`) stores the decisions and gossip
//! (`flotilla-gossip`) supplies liveness; this module decides.

pub mod assignment;
pub mod backend_reach;
pub mod breakers;
pub mod controller;
pub mod error;
pub mod fallback;
pub mod fence;
pub mod fleet;
pub mod offset_resets;
pub mod peer_api;
pub mod routes;
pub mod seat;
pub mod security;
pub mod status;
pub mod topic_figures;
pub mod usage;
pub mod writes;
