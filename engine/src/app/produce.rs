//! Publishing generated events: steady-rate or as fast as the broker takes them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};

use super::generator::EventGenerator;
use crate::error::EngineError;
use crate::kafka::KafkaSettings;

/// What a produce run did.
#[derive(Debug, Clone, PartialEq)]
pub struct ProduceReport {
    /// Events acknowledged by the broker.
    pub delivered: u64,
    /// Events the broker refused.
    pub failed: u64,
    /// Wall time from the first send to the last acknowledgement.
    pub elapsed: Duration,
    /// Events sent per destination topic, the main stream's first.
    pub sent: Vec<(String, u64)>,
}

impl ProduceReport {
    /// "10000 events to order-events and 2010 to product-updates".
    pub fn describe_sent(&self) -> String {
        let parts: Vec<String> = self
            .sent
            .iter()
            .enumerate()
            .map(|(index, (topic, count))| match index {
                0 => format!("{count} events to {topic}"),
                _ => format!("{count} to {topic}"),
            })
            .collect();
        match parts.split_last() {
            None => "no events".to_string(),
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        }
    }
}

#[derive(Default)]
struct Acknowledgements {
    delivered: AtomicU64,
    failed: AtomicU64,
}

struct CountingContext(Arc<Acknowledgements>);

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.0.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.0.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// How to publish.
pub struct ProduceOptions {
    /// Destination of the main stream's events (the generator's first topic); its other
    /// events go to the topics they name.
    pub topic: String,
    /// How many events of the main stream; `None` runs until `stop` is set.
    pub count: Option<u64>,
    /// Main-stream events per second of wall time; 0 means as fast as possible.
    pub rate: f64,
    /// Show a progress bar on the terminal.
    pub progress: bool,
}

/// Publishes events from `generator` and waits for every acknowledgement.
pub fn produce(
    settings: &KafkaSettings,
    generator: &mut dyn EventGenerator,
    options: &ProduceOptions,
    stop: &AtomicBool,
) -> Result<ProduceReport, EngineError> {
    let acknowledgements = Arc::new(Acknowledgements::default());
    let producer: ThreadedProducer<CountingContext> = settings
        .producer_config("sluice-producer")
        .create_with_context(CountingContext(Arc::clone(&acknowledgements)))
        .map_err(|error| EngineError::kafka("creating the producer", error))?;
    let bar = match (options.progress, options.count) {
        (true, Some(count)) => ProgressBar::new(count),
        (true, None) => ProgressBar::new_spinner(),
        (false, _) => ProgressBar::hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let main_topic = generator.topics().first().copied().unwrap_or_default();
    let mut sent_to: Vec<(String, u64)> = vec![(options.topic.clone(), 0)];
    let started = Instant::now();
    let mut sent: u64 = 0;
    while options.count.is_none_or(|count| sent < count) && !stop.load(Ordering::Relaxed) {
        let event = generator.next_event();
        let is_main = event.topic == main_topic;
        if is_main && options.rate > 0.0 {
            // Pace against the start, not the previous send, so the rate does not drift.
            let due = started + Duration::from_secs_f64(sent as f64 / options.rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let topic = if is_main { &options.topic } else { event.topic };
        let mut record = BaseRecord::to(topic)
            .key(&event.key)
            .payload(&event.payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    producer.poll(Duration::from_millis(5));
                }
                Err((error, _)) => return Err(EngineError::kafka("queueing an event", error)),
            }
        }
        match sent_to.iter_mut().find(|(seen, _)| seen == topic) {
            Some((_, count)) => *count += 1,
            None => sent_to.push((topic.to_string(), 1)),
        }
        if !is_main {
            continue;
        }
        sent += 1;
        if sent.is_multiple_of(1024) {
            bar.set_position(sent);
        }
    }
    bar.set_position(sent);
    producer
        .flush(Duration::from_secs(60))
        .map_err(|error| EngineError::kafka("waiting for acknowledgements", error))?;
    bar.finish_and_clear();
    Ok(ProduceReport {
        delivered: acknowledgements.delivered.load(Ordering::Relaxed),
        failed: acknowledgements.failed.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        sent: sent_to,
    })
}
