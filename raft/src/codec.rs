//! One wire/disk encoding for everything Raft persists or sends (log entries, votes,
//! snapshots, RPC bodies), so a format change happens in exactly one place.
//!
//! bincode 2 in serde mode with the standard configuration; openraft's types only
//! implement serde, not bincode's own traits.

use serde::de::DeserializeOwned;
use serde::Serialize;

pub type EncodeError = bincode::error::EncodeError;
pub type DecodeError = bincode::error::DecodeError;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, EncodeError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (value, _read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())?;
    Ok(value)
}
