//! The envelope every value travels in through the dataflow.

pub use crate::carried_headers::CarriedHeaders;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What a type needs to flow through a topology: cloned into several consumers, moved
/// between worker threads, and written as JSON to topics and views.
pub trait Data: Clone + Send + Serialize + DeserializeOwned + 'static {}
impl<T: Clone + Send + Serialize + DeserializeOwned + 'static> Data for T {}

/// Where a record came from: enough to name it uniquely and deterministically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// Index of the source in the topology.
    pub source: u32,
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// Position among the records that one input record turned into.
    pub index: u32,
}

/// A value with its key, event time and origin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record<T> {
    /// The record key; the exchange key of keyed operators.
    pub key: String,
    /// Event time in epoch milliseconds.
    pub event_time: i64,
    /// Its partition's exact watermark right after it was read: the time every decision
    /// about the record (lateness above all) is made at. It is a function of the
    /// partition's prefix alone, while the timely time the record travels at is only a
    /// lower bound of it, shared by everything one read took from the partition.
    pub watermark: u64,
    /// Where it came from.
    pub origin: Origin,
    /// The headers of the input record it derives from, if it derives from one.
    #[serde(default, skip_serializing_if = "CarriedHeaders::is_empty")]
    pub headers: CarriedHeaders,
    /// The payload.
    pub value: T,
}

impl<T> Record<T> {
    /// The same envelope around another value.
    pub fn with_value<U>(&self, value: U) -> Record<U> {
        Record {
            key: self.key.clone(),
            event_time: self.event_time,
            watermark: self.watermark,
            origin: self.origin,
            headers: self.headers.clone(),
            value,
        }
    }

    /// The same envelope around `transform` of its value, moving the envelope.
    pub fn map_value<U>(self, transform: impl FnOnce(T) -> U) -> Record<U> {
        Record {
            key: self.key,
            event_time: self.event_time,
            watermark: self.watermark,
            origin: self.origin,
            headers: self.headers,
            value: transform(self.value),
        }
    }

    /// The same record with its value transformed, or `None` when `transform` keeps
    /// nothing.
    pub fn filter_map_value<U>(self, transform: impl FnOnce(T) -> Option<U>) -> Option<Record<U>> {
        Some(Record {
            key: self.key,
            event_time: self.event_time,
            watermark: self.watermark,
            origin: self.origin,
            headers: self.headers,
            value: transform(self.value)?,
        })
    }
}

/// A stable 64-bit hash of a key, used to route keys to workers. FNV-1a, so that routing
/// does not change between builds or processes.
pub fn key_hash(key: &str) -> u64 {
    stable_hash(key.bytes())
}

/// FNV-1a over `bytes`: stable across builds, processes and platforms, unlike std's
/// hashers, for anything that is stored or decides where data goes.
pub fn stable_hash(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The worker among `peers` that keyed operators route `key` to. Timely's exchange takes
/// the hash modulo the number of workers (masking, which is the same, for powers of two);
/// restored state is split the same way, so a key's state lands where its records go.
pub fn worker_of(key: &str, peers: usize) -> usize {
    (key_hash(key) % peers.max(1) as u64) as usize
}
