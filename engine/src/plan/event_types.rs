//! What each source topic accepts, for producers outside the dataflow (the HTTP event
//! producer): an event is checked exactly as the source will read it, so what is accepted
//! is never dead-lettered later.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// An event that passed its topic's check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedEvent {
    /// The record key the topic's records carry, when the source declares one.
    pub key: Option<String>,
    /// The event time the source will read from the payload, if it reads it there.
    pub event_time: Option<i64>,
}

type Check = dyn Fn(&[u8]) -> Result<CheckedEvent, String> + Send + Sync;

/// How one source topic decodes its records.
pub struct EventType {
    /// The Rust type the records decode into.
    pub type_name: &'static str,
    check: Box<Check>,
}

impl EventType {
    /// An event type from its decoding check.
    pub(crate) fn new(
        type_name: &'static str,
        check: impl Fn(&[u8]) -> Result<CheckedEvent, String> + Send + Sync + 'static,
    ) -> Self {
        EventType {
            type_name,
            check: Box::new(check),
        }
    }

    /// Decodes `payload` as the source would, or says why it cannot be read.
    pub fn check(&self, payload: &[u8]) -> Result<CheckedEvent, String> {
        (self.check)(payload)
    }
}

/// The event type of every source topic.
#[derive(Clone, Default)]
pub struct EventTypes(BTreeMap<String, Arc<EventType>>);

impl EventTypes {
    /// Records the event type of `topic`.
    pub(crate) fn insert(&mut self, topic: String, event_type: EventType) {
        self.0.insert(topic, Arc::new(event_type));
    }

    /// The event type of `topic`, if a source reads it.
    pub fn get(&self, topic: &str) -> Option<&EventType> {
        self.0.get(topic).map(Arc::as_ref)
    }

    /// The topics that have one.
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl fmt::Debug for EventTypes {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_map()
            .entries(self.0.iter().map(|(topic, kind)| (topic, kind.type_name)))
            .finish()
    }
}
