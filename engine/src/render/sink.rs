//! Operators that write records to Kafka topics: output topics and late-record topics.

use std::sync::Arc;

use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use super::state::{CheckpointGate, OperatorState};
use super::window::LateRecord;
use crate::checkpoint::Request;
use crate::epoch::{Time, stamp_time};
use crate::kafka::producer::{ERROR_HEADER, LATE_VIEWS_HEADER, RECORD_ID_HEADER};
use crate::output::{InputPosition, OutputRecord};
use crate::record::{Data, Origin, Record};
use crate::runtime::RunEnv;
use crate::status::EngineStatus;
use crate::time::format_millis;

/// The deterministic id of an output record: its input's `topic/partition/offset/index`.
pub fn record_id(source_topics: &[String], origin: &Origin) -> String {
    let mut id = String::new();
    write_record_id(&mut id, source_topics, origin, 0);
    id
}

/// Writes [`record_id`] into `id`, replacing what it held: sinks reuse one buffer.
///
/// `writer` tells apart the sinks that write to the same topic: two of them can emit an
/// output for the same input record at the same position, and a consumer dropping
/// duplicates by id must keep both. The first writer (0) has no suffix, the others `@n`.
fn write_record_id(id: &mut String, source_topics: &[String], origin: &Origin, writer: usize) {
    use std::fmt::Write;
    let topic = source_topics
        .get(origin.source as usize)
        .map(String::as_str)
        .unwrap_or("derived");
    id.clear();
    // Writing to a String cannot fail.
    let _ = write!(
        id,
        "{topic}/{}/{}/{}",
        origin.partition, origin.offset, origin.index
    );
    if writer > 0 {
        let _ = write!(id, "@{writer}");
    }
}

/// The input record an output came from, if it came from one.
fn input_position<'a>(source_topics: &'a [String], origin: &Origin) -> Option<InputPosition<'a>> {
    source_topics
        .get(origin.source as usize)
        .map(|topic| InputPosition {
            topic,
            partition: origin.partition,
            offset: origin.offset,
        })
}

/// Writes every record as JSON to `topic`, keyed by the record key, with its id header.
/// `writer` is the sink's position among the topology's sinks to `topic`.
pub(crate) fn to_topic<T: Data>(
    stream: Stream<'_, Time, Vec<Record<T>>>,
    env: Arc<RunEnv>,
    topic: String,
    source_topics: Vec<String>,
    writer: usize,
) {
    let state = OperatorState::new(Arc::clone(&env), format!("to {topic}"));
    let mut gate: CheckpointGate<()> = CheckpointGate::new(Some(&state));
    // Reused for every record: encoding is the sink's hot path.
    let mut payload: Vec<u8> = Vec::new();
    let mut id = String::new();
    stream.sink(
        Pipeline,
        &format!("To({topic})"),
        move |(input, frontier)| {
            let owed = gate.owed(Some(&state));
            let mut emitted = 0;
            // Per source partition, for the processing reports: counted here, added to the
            // shared status once per activation.
            let mut emitted_from: Vec<((u32, i32), u64)> = Vec::new();
            input.for_each(|stamp, records| {
                let epoch = stamp_time(stamp.stamp()).map_or(0, |time| time.outer);
                for record in records.drain(..) {
                    payload.clear();
                    // sonic-rs, as the sources read with: the same JSON, written faster.
                    if let Err(error) = sonic_rs::to_writer(&mut payload, &record.value) {
                        tracing::error!(%error, %topic, "cannot encode an output record");
                        EngineStatus::add(&env.status.delivery_failures, 1);
                        continue;
                    }
                    write_record_id(&mut id, &source_topics, &record.origin, writer);
                    let own = [(RECORD_ID_HEADER, id.as_bytes())];
                    let carried = record.headers.as_slice();
                    // Most records carry nothing: then no list is built.
                    let with_carried: Vec<(&str, &[u8])>;
                    let headers: &[(&str, &[u8])] = if carried.is_empty() {
                        &own
                    } else {
                        with_carried = carried
                            .iter()
                            .map(|(name, value)| (name.as_str(), value.as_slice()))
                            .chain(own)
                            .collect();
                        &with_carried
                    };
                    env.output.send(&OutputRecord {
                        topic: &topic,
                        key: record.key.as_bytes(),
                        payload: &payload,
                        headers,
                        origin: input_position(&source_topics, &record.origin),
                        epoch,
                    });
                    emitted += 1;
                    let from = (record.origin.source, record.origin.partition);
                    match emitted_from.iter_mut().find(|(seen, _)| *seen == from) {
                        Some((_, count)) => *count += 1,
                        None => emitted_from.push((from, 1)),
                    }
                }
            });
            // Once per activation: the counters are shared by every worker.
            EngineStatus::add(&env.status.emitted, emitted);
            if emitted > 0 {
                env.status.count_out(&topic, emitted);
            }
            for ((source, partition), count) in emitted_from {
                if let Some(source_topic) = source_topics.get(source as usize) {
                    env.status
                        .count_emitted_from(source_topic, partition, count);
                }
            }
            hand_in_sent(&mut gate, &state, owed, &frontier.frontier()[..]);
        },
    );
}

/// A sink has nothing to store, but it takes part in checkpoints: its part says that it has
/// handed every record of the checkpoint's epochs to the producer, which the commit then
/// flushes.
fn hand_in_sent(
    gate: &mut CheckpointGate<()>,
    state: &OperatorState,
    owed: Option<Request>,
    frontier: &[Time],
) {
    gate.try_hand_in(Some(state), owed, frontier, |_, _| Ok(()));
}

/// Names the views of a windowed aggregation, comma-separated, once they are known.
pub(crate) type ViewNames = Box<dyn Fn() -> String>;

/// Writes the records a window operator alone found late (records the topology derived,
/// which no source judged: see [`crate::late`]) to `<source topic>.late`, or `sluice.late`
/// when they come from no single input record (or to `destination`, a side output), as
/// the window saw them, with the reason and the window in headers; counts them per view
/// and partition.
pub(crate) fn late_to_topics(
    stream: Stream<'_, Time, Vec<LateRecord>>,
    env: Arc<RunEnv>,
    source_topics: Vec<String>,
    (destination, names): (Option<String>, ViewNames),
) {
    let state = OperatorState::new(Arc::clone(&env), "late records".to_string());
    let mut gate: CheckpointGate<()> = CheckpointGate::new(Some(&state));
    // Named once the topology is built, when the views it is materialized as are known.
    let mut views: Option<String> = None;
    stream.sink(Pipeline, "LateRecords", move |(input, frontier)| {
        let owed = gate.owed(Some(&state));
        let views = views.get_or_insert_with(&names);
        input.for_each(|stamp, records| {
            let epoch = stamp_time(stamp.stamp()).map_or(0, |time| time.outer);
            for late in records.drain(..) {
                // Derived records share their origin (often none): the id names the view,
                // key and event time too, so that it is the record's own.
                let id = format!(
                    "{}@{views}/{}/{}",
                    record_id(&source_topics, &late.origin),
                    late.key,
                    late.event_time
                );
                let source = source_topics
                    .get(late.origin.source as usize)
                    .map_or("derived", String::as_str);
                let topic = match &destination {
                    Some(topic) => topic.clone(),
                    None if source == "derived" => "sluice.late".to_string(),
                    None => format!("{source}.late"),
                };
                env.status.count_late(views, source, late.origin.partition);
                let reason = format!(
                    "late for views {views}: window [{}, {}) had closed at partition watermark {}",
                    format_millis(late.window.start),
                    format_millis(late.window.end),
                    format_millis(late.watermark as i64)
                );
                env.output.send(&OutputRecord {
                    topic: &topic,
                    key: late.key.as_bytes(),
                    payload: late.payload.as_bytes(),
                    headers: &[
                        (ERROR_HEADER, reason.as_bytes()),
                        (RECORD_ID_HEADER, id.as_bytes()),
                        (LATE_VIEWS_HEADER, views.as_bytes()),
                    ],
                    origin: input_position(&source_topics, &late.origin),
                    epoch,
                });
                EngineStatus::add(&env.status.late, 1);
            }
        });
        hand_in_sent(&mut gate, &state, owed, &frontier.frontier()[..]);
    });
}
