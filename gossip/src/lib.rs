//! Typed wrapper over chitchat gossip: node state and liveness. Filled in by the fleet work.
