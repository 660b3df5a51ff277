//! The Kafka source operator: reads a worker's share of a topic's partitions and emits
//! each record with its partition's watermark, in the current checkpoint epoch.
//!
//! Each partition holds its own capability at `(epoch, watermark)`, so the operator's
//! output frontier carries the stream watermark. A record carries the exact watermark of
//! its partition after the record is taken into account, which depends only on that
//! partition's prefix; it travels at the partition's capability, a lower bound of that
//! watermark floored to the tick, shared by everything one read took. When a checkpoint begins, every partition moves to the new epoch and
//! the source hands in its offsets (see [`crate::checkpoint`]). A restored source starts
//! from the offsets and partition clocks of the last checkpoint.
//!
//! Records that cannot be decoded, or that carry no usable event time, go to the source's
//! dead-letter topic with the reason in a header, and the partition keeps moving.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{CommitMode, Consumer};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, Stream};
use tracing::{debug, error, trace};

use super::idle::IdleBoard;
use super::nesting::{MAX_NESTING, nests_deeper_than};
#[cfg(test)]
use super::reader::RawHeaders;
use super::reader::{KafkaReader, MemoryReader, RawRecord, ReadOutcome, RecordReader};
use crate::checkpoint::{Request, SourcePosition};
use crate::epoch::{NO_WATERMARK, Time, at};
use crate::kafka::producer::{ERROR_HEADER, LATE_VIEWS_HEADER, RECORD_ID_HEADER, SOURCE_HEADER};
use crate::kafka::quiet_errors::QuietConsumer;
use crate::late::{LateRules, Missed, SourceLateness};
use crate::output::{InputPosition, OutputRecord};
use crate::record::{Data, Origin, Record};
use crate::runtime::{InputMode, RunEnv};
use crate::status::EngineStatus;
use crate::time::format_millis;
use crate::watermark::PartitionClock;

/// How a source finds a record's event time.
pub(crate) enum EventTimeExtractor<T> {
    /// A function of the decoded payload; `None` when the record has no valid time.
    Payload(PayloadTime<T>),
    /// The Kafka record timestamp.
    RecordTimestamp,
}

/// Reads event time from a decoded payload.
/// Shared with the topic's [`EventType`](crate::plan::EventType), which checks events
/// produced over HTTP the same way.
pub(crate) type PayloadTime<T> = std::sync::Arc<dyn Fn(&T) -> Option<i64> + Send + Sync>;

/// Checks a decoded record; an `Err` sends it to the dead-letter topic with the reason.
pub(crate) type RecordCheck<T> = std::sync::Arc<dyn Fn(&T) -> Result<(), String> + Send + Sync>;

/// What a record without a value (a tombstone) stands for, for sources that take them.
pub(crate) type Tombstone<T> = std::sync::Arc<dyn Fn() -> T + Send + Sync>;

/// Everything the source operator needs to know about its topic.
pub(crate) struct SourceConfig<T> {
    pub index: u32,
    pub topic: String,
    pub grace_ms: i64,
    pub idle_timeout: Duration,
    pub wall_clock_advance: bool,
    pub event_time: EventTimeExtractor<T>,
    pub check: Option<RecordCheck<T>>,
    pub tombstone: Option<Tombstone<T>>,
    /// What the windowed views downstream ask this source to judge its records by; complete
    /// once the topology is built, before the first read.
    pub late_rules: Rc<RefCell<LateRules>>,
}

/// Most records read in one activation, so other operators on the worker get their turn.
const MAX_RECORDS_PER_ACTIVATION: usize = 50_000;
/// Longest time spent reading in one activation.
const MAX_TIME_PER_ACTIVATION: Duration = Duration::from_millis(20);
/// How soon to look again when nothing was waiting.
const IDLE_POLL_DELAY: Duration = Duration::from_millis(5);
/// Least time between commits of checkpointed offsets to the consumer group. They are for
/// monitoring tools only, and frequent commits load small brokers for nothing.
const GROUP_COMMIT_INTERVAL: Duration = Duration::from_secs(5);
/// How often a worker publishes its read offsets to the status.
const STATUS_INTERVAL: Duration = Duration::from_millis(100);

struct PartitionReader {
    partition: i32,
    clock: PartitionClock,
    capability: Option<Capability<Time>>,
    next_offset: i64,
    last_record_at: Instant,
}

impl PartitionReader {
    /// Publishes where the partition stands to the live status; `idle` when it is silent
    /// and caught up past the source's idle timeout.
    fn publish(&self, status: &EngineStatus, topic: &str, idle: bool) {
        status.set_offset(topic, self.partition, self.next_offset);
        let watermark = self.clock.max_event_time().map(|_| self.clock.watermark());
        status.set_partition_watermark(topic, self.partition, watermark, idle);
    }

    /// Whether the partition counts as idle at `now`: silent for `timeout` and caught up
    /// with what `reading` can fetch.
    fn is_idle(&self, now: Instant, timeout: Duration, reading: &dyn RecordReader) -> bool {
        now.saturating_duration_since(self.last_record_at) >= timeout
            && reading.is_caught_up(self.partition, self.next_offset)
    }

    /// Where the partition stands; `reader` says whether it has read all the broker had
    /// (it is gone once a source has stopped for good).
    fn position(&self, topic: &str, reader: Option<&dyn RecordReader>) -> SourcePosition {
        let max_event_time = self.clock.max_event_time();
        let caught_up =
            reader.is_none_or(|reader| reader.is_caught_up(self.partition, self.next_offset));
        SourcePosition {
            topic: topic.to_string(),
            partition: self.partition,
            offset: self.next_offset,
            max_event_time,
            watermark: self.clock.watermark(),
            unread: max_event_time.is_none() && !caught_up,
        }
    }
}

/// Builds the source operator for this worker.
pub(crate) fn kafka_source<'scope, T: Data>(
    scope: Scope<'scope, Time>,
    env: Arc<RunEnv>,
    config: SourceConfig<T>,
) -> Stream<'scope, Time, Vec<Record<T>>> {
    let name = format!("Source({})", config.topic);
    source::<_, CapacityContainerBuilder<Vec<Record<T>>>, _, _>(
        scope,
        &name,
        move |capability, info| {
            let activator = scope.activator_for(info.address);
            let (worker, peers) = (scope.index() as i32, scope.peers() as i32);
            let partition_count = env.partitions.get(&config.topic).copied().unwrap_or(0);
            let mine: Vec<i32> = (0..partition_count)
                .filter(|p| p % peers == worker)
                .collect();
            let restored = |partition: i32| {
                env.restored
                    .as_ref()
                    .and_then(|checkpoint| checkpoint.position(&config.topic, partition))
            };
            let start_offsets: Vec<(i32, i64)> = mine
                .iter()
                .map(|&partition| {
                    let key = (config.topic.clone(), partition);
                    let offset = match (env.moved_offsets.get(&key), restored(partition)) {
                        // Past offsets the log no longer holds, as --on-missing-offsets says.
                        (Some(&moved), _) => moved,
                        (None, Some(position)) => position.offset,
                        (None, None) => env
                            .start_offsets
                            .get(&(config.topic.clone(), partition))
                            .copied()
                            .unwrap_or(0),
                    };
                    (partition, offset)
                })
                .collect();
            let mut input: Option<Box<dyn RecordReader>> = match (&env.input, mine.is_empty()) {
                (_, true) => None,
                (InputMode::Kafka, false) => match env.worker_consumer(worker) {
                    Ok(shared) => {
                        shared.want(&config.topic, &start_offsets);
                        Some(Box::new(KafkaReader::new(
                            shared,
                            config.topic.clone(),
                            Arc::clone(&env.status),
                            Arc::clone(&env.shutdown),
                            env.on_missing_offsets,
                        )) as Box<dyn RecordReader>)
                    }
                    Err(reason) => {
                        error!(%reason, "cannot create a consumer");
                        env.status.set_fatal(reason);
                        env.shutdown.store(true, Ordering::Relaxed);
                        None
                    }
                },
                (InputMode::Memory(records), false) => Some(Box::new(MemoryReader::new(
                    records,
                    &config.topic,
                    &start_offsets,
                ))),
            };
            let checkpointer = Arc::clone(&env.checkpointer);
            let idle_board = env.idle_board(config.index, peers as usize);
            let participant = checkpointer.register(true);
            let thread = std::thread::current();
            trace!(participant, source = %config.topic, thread = thread.name().unwrap_or("?"), "checkpoint participant");
            let epoch = checkpointer.current_epoch();
            let mut readers: Vec<PartitionReader> = match input {
                Some(_) => start_offsets
                    .iter()
                    .map(|&(partition, next_offset)| {
                        env.status.register_partition(&config.topic, partition);
                        let clock = PartitionClock::restored(
                            config.grace_ms,
                            env.tick_ms,
                            restored(partition).and_then(|position| position.max_event_time),
                        );
                        let reader = PartitionReader {
                            partition,
                            capability: Some(
                                capability.delayed(&at(epoch, clock.capability_watermark())),
                            ),
                            clock,
                            next_offset,
                            last_record_at: Instant::now(),
                        };
                        reader.publish(&env.status, &config.topic, false);
                        reader
                    })
                    .collect(),
                None => Vec::new(),
            };
            // Nothing to read on this worker: the source has stopped before it started. It
            // still holds its epoch, never the watermark, until every source has stopped, so
            // that the operators downstream of a source with nothing to read anywhere (an
            // empty topic) stay to hand in the final checkpoint.
            let mut presence = input
                .is_none()
                .then(|| capability.delayed(&at(epoch, NO_WATERMARK)));
            drop(capability);
            if input.is_none() {
                checkpointer.retire(participant, Vec::new());
            }
            // The checkpoint this source last handed its offsets in for.
            let mut handed_in: Option<Request> = None;
            let mut stopped = false;
            let mut committed_to_group = 0;
            let mut last_group_commit = Instant::now();
            let dead_letter_topic = format!("{}.dlq", config.topic);
            let mut last_status = Instant::now();
            // What the coordinator last heard of this source: it starts behind (see
            // `checkpoint::catch_up`).
            let mut reported_caught_up = false;
            // Records read in one activation, per partition.
            let mut pending: Vec<Vec<Record<T>>> = readers.iter().map(|_| Vec::new()).collect();
            // Taken at the first read, when every view downstream has been declared.
            let mut lateness: Option<SourceLateness> = None;

            move |output| {
                let request = checkpointer.request();
                if let Some(request) = request
                    && handed_in != Some(request)
                    && !request.is_final
                {
                    // The cut: everything emitted so far is in older epochs, everything from now
                    // on is in the new one.
                    let capabilities = readers
                        .iter_mut()
                        .filter_map(|reader| reader.capability.as_mut())
                        .chain(presence.as_mut());
                    for capability in capabilities {
                        if capability.time().outer < request.epoch {
                            let moved = at(request.epoch, capability.time().inner);
                            capability.downgrade(&moved);
                        }
                    }
                    let positions = readers
                        .iter()
                        .map(|reader| reader.position(&config.topic, input.as_deref()))
                        .collect();
                    checkpointer.contribute(participant, request, positions, |_| Ok(()));
                    handed_in = Some(request);
                }
                let Some(reader_input) = input.as_mut() else {
                    if presence.is_some() {
                        if checkpointer.all_sources_stopped() {
                            presence = None;
                        } else {
                            activator.activate_after(IDLE_POLL_DELAY);
                        }
                    }
                    return;
                };
                if !env.exactly_once
                    && last_group_commit.elapsed() >= GROUP_COMMIT_INTERVAL
                    && let Some(checkpoint) = env.status.checkpoint()
                    && checkpoint.id > committed_to_group
                {
                    last_group_commit = Instant::now();
                    let offsets: Vec<(i32, i64)> = readers
                        .iter()
                        .filter_map(|reader| {
                            checkpoint
                                .position(&config.topic, reader.partition)
                                .map(|position| (reader.partition, position.offset))
                        })
                        .collect();
                    reader_input.commit(&offsets);
                    committed_to_group = checkpoint.id;
                }
                if stopped {
                    // Keep holding the watermark until every source has stopped, so that a
                    // partition that ended early does not let windows close that the others
                    // could still add to.
                    if checkpointer.all_sources_stopped() {
                        readers.clear();
                        input = None;
                    } else {
                        activator.activate_after(IDLE_POLL_DELAY);
                    }
                    return;
                }
                if env.shutdown.load(Ordering::Relaxed) {
                    stop(
                        &env,
                        participant,
                        &config.topic,
                        (&readers, reader_input.as_ref()),
                        handed_in,
                    );
                    stopped = true;
                    activator.activate();
                    return;
                }
                let started = Instant::now();
                let lateness = lateness
                    .get_or_insert_with(|| config.late_rules.borrow().of_source(config.index));
                let outcome = reader_input.read(
                    MAX_RECORDS_PER_ACTIVATION,
                    started + MAX_TIME_PER_ACTIVATION,
                    &mut |raw: RawRecord<'_>| {
                        let Some(slot) = readers.iter().position(|r| r.partition == raw.partition)
                        else {
                            return;
                        };
                        let reader = &mut readers[slot];
                        reader.next_offset = raw.offset + 1;
                        reader.last_record_at = started;
                        if raw.watermark_only {
                            if let Some(event_time) = raw.timestamp {
                                reader.clock.observe(event_time);
                            }
                            return;
                        }
                        match decode(&config, &raw) {
                            Ok(Decoded {
                                value,
                                event_time,
                                moves_clock,
                            }) => {
                                let own = if moves_clock {
                                    reader.clock.observe(event_time)
                                } else {
                                    reader.clock.watermark()
                                };
                                // The record travels at its partition's capability, which an
                                // idle partition may have moved past its own watermark (see
                                // `advance_idle_partitions`): it is judged at that time then,
                                // as the windows downstream will judge it.
                                let (epoch, floor) =
                                    reader.capability.as_ref().map_or((0, 0), |capability| {
                                        (capability.time().outer, capability.time().inner)
                                    });
                                let watermark = own.max(floor);
                                let missed = lateness.judge(event_time, watermark);
                                if !missed.is_empty() {
                                    write_late(
                                        &env,
                                        &config.topic,
                                        &raw,
                                        &missed,
                                        (watermark, epoch),
                                    );
                                }
                                let origin = Origin {
                                    source: config.index,
                                    partition: reader.partition,
                                    offset: raw.offset,
                                    index: 0,
                                };
                                let key = raw
                                    .key
                                    .map(|key| String::from_utf8_lossy(key).into_owned())
                                    .unwrap_or_default();
                                pending[slot].push(Record {
                                    key,
                                    event_time,
                                    watermark,
                                    origin,
                                    headers: raw.headers.carried(),
                                    value,
                                });
                            }
                            Err(reason) => {
                                // The epoch the record would have travelled in.
                                let epoch = reader
                                    .capability
                                    .as_ref()
                                    .map_or(0, |capability| capability.time().outer);
                                dead_letter(
                                    &env,
                                    &dead_letter_topic,
                                    &config.topic,
                                    &raw,
                                    &reason,
                                    epoch,
                                )
                            }
                        }
                    },
                );

                // Everything read from a partition in this activation travels at the
                // partition's capability, which is at or below each record's own watermark;
                // then the capability follows the partition's watermark, floored to the tick.
                // One timely time per partition and read, however many records: unique times
                // would make one-record bundles.
                for (reader, records) in readers.iter_mut().zip(pending.iter_mut()) {
                    EngineStatus::add(&env.status.processed, records.len() as u64);
                    if !records.is_empty() {
                        let read = records.len() as u64;
                        env.status.count_in(&config.topic, reader.partition, read);
                    }
                    let Some(capability) = reader.capability.as_mut() else {
                        records.clear();
                        continue;
                    };
                    if !records.is_empty() {
                        idle_board.sent_data_in(capability.time().outer);
                        let mut session = output.session(&*capability);
                        session.give_iterator(records.drain(..));
                    }
                    let target = reader.clock.capability_watermark();
                    if target > capability.time().inner {
                        let moved = at(capability.time().outer, target);
                        capability.downgrade(&moved);
                    }
                }
                let reading: &dyn RecordReader = reader_input.as_ref();
                advance_idle_partitions(
                    &mut readers,
                    &IdleRule {
                        timeout: config.idle_timeout,
                        wall_clock: config.wall_clock_advance,
                        tick_ms: env.tick_ms,
                    },
                    (&idle_board, worker as usize),
                    started,
                    reading,
                );

                let caught_up = readers
                    .iter()
                    .all(|reader| reading.is_caught_up(reader.partition, reader.next_offset));
                if caught_up != reported_caught_up {
                    checkpointer.report_caught_up(participant, caught_up);
                    reported_caught_up = caught_up;
                }
                if last_status.elapsed() >= STATUS_INTERVAL {
                    for reader in &readers {
                        let idle = reader.is_idle(started, config.idle_timeout, reading);
                        reader.publish(&env.status, &config.topic, idle);
                    }
                    last_status = Instant::now();
                }
                match outcome {
                    ReadOutcome::Read(0) => activator.activate_after(IDLE_POLL_DELAY),
                    ReadOutcome::Read(_) => activator.activate(),
                    ReadOutcome::Exhausted => {
                        stop(
                            &env,
                            participant,
                            &config.topic,
                            (&readers, reading),
                            handed_in,
                        );
                        stopped = true;
                        activator.activate();
                    }
                }
            }
        },
    )
}

/// Stops a source for good: hands in its offsets for a checkpoint that began since its
/// last cut, and retires with where it stopped. Its capabilities stay until every source
/// has stopped.
fn stop(
    env: &RunEnv,
    participant: crate::checkpoint::ParticipantId,
    topic: &str,
    (readers, reading): (&[PartitionReader], &dyn RecordReader),
    handed_in: Option<Request>,
) {
    let checkpointer = &env.checkpointer;
    for reader in readers {
        reader.publish(&env.status, topic, false);
        // Where the partition stopped decides what waits on it at the end of the run: an
        // empty partition must be known as empty, not left to the monitor's timing.
        if reader.clock.max_event_time().is_none() {
            reading.learn_where_unknown_partition_ends(reader.partition);
        }
    }
    let positions: Vec<SourcePosition> = readers
        .iter()
        .map(|reader| reader.position(topic, Some(reading)))
        .collect();
    if let Some(request) = checkpointer.request()
        && !request.is_final
        && handed_in != Some(request)
    {
        // Nothing was emitted since the last cut: everything read is before this one.
        checkpointer.contribute(participant, request, positions.clone(), |_| Ok(()));
    }
    checkpointer.retire(participant, positions);
}

/// When a partition counts as idle, and what happens then.
struct IdleRule {
    timeout: Duration,
    wall_clock: bool,
    tick_ms: i64,
}

/// Moves every partition's capability to its tick-floored watermark. A partition that is
/// caught up and silent for longer than the idle timeout stops holding the watermark back:
/// it follows the slowest active partition of the source on any worker, and when all are
/// silent the greatest watermark among them (see [`IdleBoard`]).
fn advance_idle_partitions(
    readers: &mut [PartitionReader],
    rule: &IdleRule,
    (board, worker): (&IdleBoard, usize),
    now: Instant,
    reading: &dyn RecordReader,
) {
    let is_idle = |reader: &PartitionReader| reader.is_idle(now, rule.timeout, reading);
    let active_min = readers
        .iter()
        .filter(|r| !is_idle(r))
        .map(|r| r.clock.capability_watermark())
        .min();
    let max_watermark = readers.iter().map(|r| r.clock.capability_watermark()).max();
    board.report_own(
        worker,
        readers.iter().map(|r| r.clock.capability_watermark()).min(),
    );
    let follow = board
        .report(worker, active_min, max_watermark, now, rule.wall_clock)
        .map(|watermark| watermark - watermark % rule.tick_ms.max(1) as u64);
    for reader in readers.iter_mut() {
        let mut target = reader.clock.capability_watermark();
        if is_idle(reader)
            && let Some(follow) = follow
        {
            target = target.max(follow);
        }
        if let Some(capability) = reader.capability.as_mut()
            && target > capability.time().inner
        {
            let moved = at(capability.time().outer, target);
            capability.downgrade(&moved);
        }
    }
}

/// Commits checkpointed offsets to the consumer group, for monitoring tools only.
pub(crate) fn commit_to_group(consumer: &QuietConsumer, topic: &str, offsets: &[(i32, i64)]) {
    let mut list = TopicPartitionList::new();
    for &(partition, offset) in offsets {
        if list
            .add_partition_offset(topic, partition, Offset::Offset(offset))
            .is_err()
        {
            return;
        }
    }
    if let Err(error) = consumer.commit(&list, CommitMode::Async) {
        debug!(%error, topic, "cannot commit offsets to the consumer group (monitoring only)");
    }
}

/// Decodes a record's JSON payload, or says why it cannot be read.
pub(crate) fn decode_payload<T: Data>(payload: &[u8]) -> Result<T, String> {
    if nests_deeper_than(payload, MAX_NESTING) {
        return Err(format!(
            "cannot decode record: it nests arrays or objects deeper than {MAX_NESTING} levels"
        ));
    }
    // sonic-rs rather than serde_json: the same serde types, decoded with SIMD; reading
    // JSON was the largest share of a worker's time in the end-to-end benchmark.
    sonic_rs::from_slice(payload).map_err(|error| format!("cannot decode record: {error}"))
}

/// A record read: its value, its event time, and whether that time moves the partition's
/// clock.
struct Decoded<T> {
    value: T,
    event_time: i64,
    /// A tombstone's time is when it was written, on the producer's clock, not an event
    /// time of the data: it must not move the watermark of a topic timed by its payloads.
    moves_clock: bool,
}

fn decode<T: Data>(config: &SourceConfig<T>, raw: &RawRecord<'_>) -> Result<Decoded<T>, String> {
    let Some(payload) = raw.payload else {
        let tombstone = config
            .tombstone
            .as_ref()
            .ok_or_else(|| "record has no value".to_string())?;
        let event_time = raw
            .timestamp
            .ok_or_else(|| "tombstone has no timestamp".to_string())
            .and_then(usable_event_time)?;
        let moves_clock = matches!(config.event_time, EventTimeExtractor::RecordTimestamp);
        return Ok(Decoded {
            value: tombstone(),
            event_time,
            moves_clock,
        });
    };
    let value: T = decode_payload(payload)?;
    if let Some(check) = &config.check {
        check(&value)?;
    }
    let event_time = match &config.event_time {
        EventTimeExtractor::Payload(extract) => {
            extract(&value).ok_or_else(|| "record has no valid event time".to_string())?
        }
        EventTimeExtractor::RecordTimestamp => raw
            .timestamp
            .ok_or_else(|| "record has no timestamp".to_string())?,
    };
    let event_time = usable_event_time(event_time)?;
    Ok(Decoded {
        value,
        event_time,
        moves_clock: true,
    })
}

/// Event times within about 146 million years of 1970, either way: windows and watermarks
/// do arithmetic on them, which must not overflow.
const EVENT_TIME_LIMIT: i64 = 1 << 62;

fn usable_event_time(event_time: i64) -> Result<i64, String> {
    match (-EVENT_TIME_LIMIT..=EVENT_TIME_LIMIT).contains(&event_time) {
        true => Ok(event_time),
        false => Err(format!(
            "event time {event_time} ms is out of range (at most {EVENT_TIME_LIMIT} ms from 1970 either way)"
        )),
    }
}

/// Writes a late record as it was read, once per destination, with the views it misses,
/// and counts it once (and once per view it misses).
fn write_late(
    env: &RunEnv,
    topic: &str,
    raw: &RawRecord<'_>,
    missed: &[Missed],
    (watermark, epoch): (u64, u64),
) {
    let input_headers = raw.headers.to_vec();
    let id = format!("{topic}/{}/{}/0", raw.partition, raw.offset);
    let source = format!("{topic}/{}/{}", raw.partition, raw.offset);
    let default_destination = format!("{topic}.late");
    for entry in missed {
        let views = entry.views.join(",");
        let reason = format!(
            "late for views {}: window [{}, {}) had closed at partition watermark {}",
            entry.views.join(", "),
            format_millis(entry.window.start),
            format_millis(entry.window.end),
            format_millis(i64::try_from(watermark).unwrap_or(i64::MAX))
        );
        let headers = headers_after(
            &input_headers,
            [
                (ERROR_HEADER, reason.as_bytes()),
                (RECORD_ID_HEADER, id.as_bytes()),
                (LATE_VIEWS_HEADER, views.as_bytes()),
                (SOURCE_HEADER, source.as_bytes()),
            ],
        );
        let destination = entry.destination.as_deref().unwrap_or(&default_destination);
        send_as_read(env, (topic, destination), raw, &headers, epoch);
        for view in &entry.views {
            env.status.count_late(view, topic, raw.partition);
        }
    }
    EngineStatus::add(&env.status.late, 1);
}

/// Writes the record read from `topic` to `destination` as it came (key and payload), with
/// `headers`, in the output of `epoch`.
fn send_as_read(
    env: &RunEnv,
    (topic, destination): (&str, &str),
    raw: &RawRecord<'_>,
    headers: &[(&str, &[u8])],
    epoch: u64,
) {
    env.output.send(&OutputRecord {
        topic: destination,
        key: raw.key.unwrap_or_default(),
        payload: raw.payload.unwrap_or_default(),
        headers,
        origin: Some(InputPosition {
            topic,
            partition: raw.partition,
            offset: raw.offset,
        }),
        epoch,
    });
}

/// An input record's own headers, as it came, then Sluice's. An input header of a name
/// Sluice sets (a record read back from a late or dead-letter topic has them) is left out:
/// a reader that takes the first `sluice-id` must find this record's.
fn headers_after<'a, const N: usize>(
    input: &'a [(String, Vec<u8>)],
    ours: [(&'a str, &'a [u8]); N],
) -> Vec<(&'a str, &'a [u8])> {
    input
        .iter()
        .filter(|(name, _)| !ours.iter().any(|(set, _)| set == name))
        .map(|(name, value)| (name.as_str(), value.as_slice()))
        .chain(ours)
        .collect()
}

fn dead_letter(
    env: &RunEnv,
    dead_letter_topic: &str,
    topic: &str,
    raw: &RawRecord<'_>,
    reason: &str,
    epoch: u64,
) {
    let origin = format!("{topic}/{}/{}", raw.partition, raw.offset);
    let input_headers = raw.headers.to_vec();
    let headers = headers_after(
        &input_headers,
        [
            (ERROR_HEADER, reason.as_bytes()),
            (SOURCE_HEADER, origin.as_bytes()),
        ],
    );
    send_as_read(env, (topic, dead_letter_topic), raw, &headers, epoch);
    EngineStatus::add(&env.status.dead_lettered, 1);
    env.status.count_failed(topic, raw.partition);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Click {
        page: String,
        at: i64,
    }

    fn config() -> SourceConfig<Click> {
        SourceConfig {
            index: 0,
            topic: "clicks".to_string(),
            grace_ms: 0,
            idle_timeout: Duration::from_secs(1),
            wall_clock_advance: false,
            event_time: EventTimeExtractor::Payload(std::sync::Arc::new(|click: &Click| {
                (click.at >= 0).then_some(click.at)
            })),
            check: None,
            tombstone: None,
            late_rules: Rc::default(),
        }
    }

    fn raw(payload: Option<&[u8]>, timestamp: Option<i64>) -> RawRecord<'_> {
        RawRecord {
            partition: 0,
            offset: 0,
            key: None,
            payload,
            timestamp,
            watermark_only: false,
            headers: RawHeaders::Memory(&[]),
        }
    }

    fn decoded(payload: Option<&[u8]>) -> Result<(Click, i64), String> {
        decode(&config(), &raw(payload, None)).map(|record| (record.value, record.event_time))
    }

    #[test]
    fn a_check_that_fails_says_why_and_a_tombstone_takes_the_record_timestamp() {
        let mut config = config();
        config.check = Some(std::sync::Arc::new(|click: &Click| {
            if click.page.starts_with('/') {
                Ok(())
            } else {
                Err(format!("page `{}` is not a path", click.page))
            }
        }));
        config.tombstone = Some(std::sync::Arc::new(|| Click {
            page: String::new(),
            at: -1,
        }));
        let bad = decode(&config, &raw(Some(br#"{"page":"x","at":1}"#), None));
        assert_eq!(bad.err(), Some("page `x` is not a path".to_string()));
        let good = decode(&config, &raw(Some(br#"{"page":"/a","at":1}"#), None)).unwrap();
        assert!(good.moves_clock);
        let deleted = decode(&config, &raw(None, Some(77))).unwrap();
        assert_eq!((deleted.value.at, deleted.event_time), (-1, 77));
        // Timed by its payloads, the topic's clock does not follow a tombstone's.
        assert!(!deleted.moves_clock);
        assert_eq!(
            decode(&config, &raw(None, None)).err(),
            Some("tombstone has no timestamp".to_string())
        );
    }

    #[test]
    fn a_good_record_decodes_with_its_event_time() {
        let (click, event_time) = decoded(Some(br#"{"page":"/","at":42}"#)).unwrap();
        assert_eq!(click.page, "/");
        assert_eq!(event_time, 42);
    }

    #[test]
    fn bad_records_say_what_is_wrong() {
        for (payload, says) in [
            (&b"not json"[..], "cannot decode record"),
            (br#"{"page":"/"}"#, "missing field `at`"),
            (br#"{"page":"/","at":"soon"}"#, "invalid type"),
            (br#"{"page":"/","at":-5}"#, "record has no valid event time"),
            (
                br#"{"page":"/","at":9223372036854775807}"#,
                "event time 9223372036854775807 ms is out of range",
            ),
        ] {
            let error = decoded(Some(payload)).unwrap_err();
            assert!(error.contains(says), "{error}");
        }
        assert_eq!(decoded(None).unwrap_err(), "record has no value");
    }

    /// Hostile payloads are errors with a reason, never a crash of the worker: every one
    /// must reach the dead-letter topic and let the partition move on.
    #[test]
    fn garbage_huge_empty_misencoded_and_deeply_nested_payloads_are_errors() {
        let deep = |depth: usize| {
            let mut nested = "[".repeat(depth);
            nested.push_str(&"]".repeat(depth));
            nested
        };
        let ignored_field = format!(r#"{{"page":"a","at":1,"extra":{}}}"#, deep(1_000_000));
        let huge_page = format!(r#"{{"page":"{}","at":1}}"#, "x".repeat(20 << 20));
        let mut utf16 = vec![0xFF, 0xFE];
        for unit in r#"{"page":"a","at":1}"#.encode_utf16() {
            utf16.extend(unit.to_le_bytes());
        }
        let bad_utf8 = b"{\"page\":\"\xff\xfe\",\"at\":1}".to_vec();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("garbage", vec![0, 159, 146, 150, 255, 1, 2, 3]),
            ("empty", Vec::new()),
            ("UTF-16", utf16),
            ("invalid UTF-8 in a string", bad_utf8),
            ("a million open brackets", deep(1_000_000).into_bytes()),
            ("unclosed nesting", "[".repeat(1_000_000).into_bytes()),
            (
                "deep nesting in an unknown field",
                ignored_field.into_bytes(),
            ),
        ];
        for (what, payload) in &cases {
            let error = decoded(Some(payload)).expect_err(what);
            assert!(error.contains("cannot decode"), "{what}: {error}");
        }
        // A huge record is read like any other: its size is the broker's limit to set.
        let (click, _) = decoded(Some(huge_page.as_bytes())).expect("a 20 MiB record decodes");
        assert_eq!(click.page.len(), 20 << 20);
    }
}
