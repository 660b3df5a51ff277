//! Generated input events for `produce`, `demo` and `bench`.

/// One event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedEvent {
    /// The topic it goes to: one of its generator's [`EventGenerator::topics`].
    pub topic: &'static str,
    /// Record key.
    pub key: String,
    /// Record value (JSON).
    pub payload: Vec<u8>,
}

/// What shapes a generated stream. The same options give the same events.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorOptions {
    /// Random seed.
    pub seed: u64,
    /// Fraction of events that describe a failure, from 0 to 1.
    pub failure_rate: f64,
    /// Event time of the first event, epoch milliseconds.
    pub start_ms: i64,
    /// Event time between consecutive events, milliseconds.
    pub interval_ms: i64,
}

/// A deterministic source of events.
pub trait EventGenerator: Send {
    /// Every topic the events go to. The first is the main stream (an application's input
    /// topic): counts and rates are of its events, and the others come along as the main
    /// stream needs them, such as the reference data its events refer to.
    fn topics(&self) -> Vec<&'static str>;

    /// The next event.
    fn next_event(&mut self) -> GeneratedEvent;
}
