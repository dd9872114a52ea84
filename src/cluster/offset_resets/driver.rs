//! The Raft leader's side of a reset: moves every active reset through its phases.
