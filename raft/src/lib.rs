//! Control state replicated through Raft (openraft). Filled in by the fleet work.
