//! Exactly-once output (`--exactly-once`): a transactional producer whose transaction
//! commits at each checkpoint, together with the checkpoint's offsets.
//!
//! One transaction holds exactly the output of one checkpoint: the records made at the
//! epochs the checkpoint takes. When a checkpoint opens (the cut), records of the new epoch
//! are held in memory until its transaction has committed, then sent in the next one. The
//! commit of checkpoint `k`, in this order:
//! 1. [`prepare`](TransactionalOutput::prepare): every record is acknowledged (still
//!    uncommitted); the transaction's records become the outbox of the checkpoint batch.
//! 2. The coordinator writes the batch: state, offsets, outbox.
//! 3. [`commit`](TransactionalOutput::commit): the offsets go into the transaction, marked
//!    `sluice-checkpoint:k` in the consumer group's offset metadata, and it commits. The
//!    coordinator then deletes the outbox.
//!
//! A crash before 2 aborts the transaction (the restart's `init_transactions` does, and
//! fences the old instance) and the restart redoes the work from checkpoint `k - 1`. A
//! crash between 2 and the end of 3 leaves the outbox: the restart asks the group whether
//! the marker of `k` committed, and if not writes the outbox again in a new transaction
//! ([`recover`](TransactionalOutput::recover)).
//!
//! The transactional id is `<group>-output`: a second instance with the same group fences
//! the first, whose next commit fails and stops it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sluice_state::{StateDb, WriteBatch};
use tracing::{info, warn};

use super::outbox::{self, OUTBOX_KEY, OutboxRecord};
use super::producer::count_delivery;
use super::quiet_errors::QuietErrors;
use super::settings::KafkaSettings;
use crate::checkpoint::Checkpoint;
use crate::error::EngineError;
use crate::output::{OutputRecord, OutputSink, Patience};
use crate::status::EngineStatus;

/// How long one transactional call (init, offsets, commit, abort) may take.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait before retrying an abort that librdkafka calls retriable.
const ABORT_RETRY_PAUSE: Duration = Duration::from_millis(100);
/// The prefix of the offset metadata that names the checkpoint a transaction committed.
const MARKER_PREFIX: &str = "sluice-checkpoint:";
/// The meta-store key of the state directory's own id, which markers carry: checkpoint ids
/// start again in a new state (after a replay), the consumer group's markers do not.
const STATE_ID_KEY: &[u8] = b"state-id";

/// The marker a transaction of checkpoint `checkpoint_id` of state `state_id` leaves in
/// the consumer group's offset metadata.
pub fn marker(state_id: &str, checkpoint_id: u64) -> String {
    format!("{MARKER_PREFIX}{state_id}:{checkpoint_id}")
}

/// The checkpoint id in an offset's metadata, if it is a marker of state `state_id`.
pub fn checkpoint_of_marker(metadata: &str, state_id: &str) -> Option<u64> {
    let (state, id) = metadata.strip_prefix(MARKER_PREFIX)?.rsplit_once(':')?;
    if state != state_id {
        return None;
    }
    id.parse().ok()
}

/// The id of the state in `db`, made the first time it is asked for.
fn state_id(db: &StateDb) -> Result<String, EngineError> {
    let meta = db.meta()?;
    if let Some(json) = meta.get(STATE_ID_KEY)?
        && let Ok(id) = serde_json::from_slice::<String>(&json)
    {
        return Ok(id);
    }
    // Unique enough among the states of one consumer group: the time and the process.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let id = format!("{nanos:x}-{:x}", std::process::id());
    let json = serde_json::to_vec(&id)
        .map_err(|error| EngineError::Dataflow(format!("cannot encode the state id: {error}")))?;
    meta.put(STATE_ID_KEY, &json)?;
    Ok(id)
}

/// Counts the records the broker refused, and marks the open transaction as one that
/// cannot commit.
pub struct FailureCounter {
    status: Arc<EngineStatus>,
    refused: Arc<AtomicBool>,
    errors: QuietErrors,
}

impl ClientContext for FailureCounter {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.error(error, reason);
    }
}

impl ProducerContext for FailureCounter {
    type DeliveryOpaque = ();

    /// An acknowledged record is counted as delivered: into the open transaction, visible
    /// once it commits.
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Some(error) = count_delivery(&self.status, result) {
            // The first refusal of a transaction says why; `delivery_failures` counts all.
            if !self.refused.swap(true, Ordering::Relaxed) {
                warn!(%error, "output record was not delivered; its transaction will abort");
            }
        }
    }
}

/// The transactional output producer.
pub struct TransactionalOutput {
    producer: ThreadedProducer<FailureCounter>,
    /// Gives the group metadata for the offsets and reads the markers back.
    consumer: BaseConsumer,
    group: ConsumerGroupMetadata,
    transactional_id: String,
    status: Arc<EngineStatus>,
    /// Set when the broker refused a record of the open transaction.
    refused: Arc<AtomicBool>,
    /// Whether the transaction begun last was aborted already. A failed commit aborts in
    /// `transaction_error` and then again in the coordinator's `abort`: the second must
    /// neither reach librdkafka nor count as another abort.
    aborted: AtomicBool,
    open: Mutex<OpenTransaction>,
    /// The state directory's id, set by [`TransactionalOutput::recover`].
    state_id: std::sync::OnceLock<String>,
}

struct OpenTransaction {
    /// Records made at this epoch or later wait for the next transaction.
    cut: u64,
    /// The cut was lifted (the checkpoint in flight became final) and the held records
    /// are still to be sent: by the next call outside the coordinator's lock.
    release_pending: bool,
    /// Those records, in the order they came.
    held: Vec<OutboxRecord>,
    /// Every record sent in the open transaction.
    outbox: Vec<u8>,
    /// Why the open transaction must not commit (a record could not be queued).
    broken: Option<String>,
    /// Whether the open transaction holds any record.
    has_records: bool,
    /// The offsets the last commit carried: a checkpoint with no output and the same
    /// offsets commits nothing, so an idle engine makes no transactions.
    last_offsets: Vec<(String, i32, i64)>,
}

impl TransactionalOutput {
    /// Creates the producer and initializes its transactions, which aborts whatever a
    /// previous instance with the same transactional id left open and fences it.
    pub fn new(settings: &KafkaSettings, status: Arc<EngineStatus>) -> Result<Self, EngineError> {
        let transactional_id = settings.transactional_id();
        let refused = Arc::new(AtomicBool::new(false));
        let producer: ThreadedProducer<FailureCounter> = settings
            .producer_config("sluice-output")
            .set("transactional.id", &transactional_id)
            .set("transaction.timeout.ms", "60000")
            .create_with_context(FailureCounter {
                status: Arc::clone(&status),
                refused: Arc::clone(&refused),
                errors: QuietErrors::default(),
            })
            .map_err(|error| EngineError::kafka("creating the transactional producer", error))?;
        producer
            .init_transactions(TRANSACTION_TIMEOUT)
            .map_err(|error| {
                EngineError::kafka(
                    format!("initializing transactions for transactional.id {transactional_id}"),
                    error,
                )
            })?;
        let consumer: BaseConsumer = settings
            .consumer_config("sluice-output-markers")
            // Offsets of transactions still in doubt are not answered until they settle.
            .set("isolation.level", "read_committed")
            .create()
            .map_err(|error| EngineError::kafka("creating the marker reader", error))?;
        let group = consumer.group_metadata().ok_or_else(|| {
            EngineError::Dataflow(format!(
                "the consumer group {} has no metadata for transactions",
                settings.group_id
            ))
        })?;
        Ok(TransactionalOutput {
            producer,
            consumer,
            group,
            transactional_id,
            status,
            refused,
            aborted: AtomicBool::new(false),
            state_id: std::sync::OnceLock::new(),
            open: Mutex::new(OpenTransaction {
                cut: u64::MAX,
                release_pending: false,
                held: Vec::new(),
                outbox: Vec::new(),
                broken: None,
                has_records: false,
                last_offsets: Vec::new(),
            }),
        })
    }

    /// Settles the transaction of the restored checkpoint, if its outbox is still there,
    /// and begins the first transaction. Returns how many records it wrote again.
    pub fn recover(
        &self,
        db: &StateDb,
        restored: Option<&Checkpoint>,
    ) -> Result<usize, EngineError> {
        let this_state = state_id(db)?;
        let _ = self.state_id.set(this_state.clone());
        let meta = db.meta()?;
        let mut resent = 0;
        if let Some(bytes) = meta.get(OUTBOX_KEY)? {
            let records =
                outbox::decode(&bytes).map_err(|error| EngineError::Dataflow(error.to_string()))?;
            if let Some(checkpoint) = restored {
                let committed = self.committed_checkpoint(checkpoint, &this_state)?;
                if committed.is_some_and(|id| id >= checkpoint.id) {
                    info!(
                        id = checkpoint.id,
                        "the last checkpoint's transaction had committed"
                    );
                } else {
                    self.begin()?;
                    for waiting in &records {
                        waiting.with_output(|record| self.produce(record))?;
                    }
                    self.commit_offsets(checkpoint)?;
                    resent = records.len();
                    EngineStatus::add(&self.status.outbox_resent, resent as u64);
                    info!(
                        id = checkpoint.id,
                        records = resent,
                        "the last checkpoint's transaction had not committed; wrote its output again"
                    );
                }
            }
            let mut batch = WriteBatch::default();
            meta.delete_into(&mut batch, OUTBOX_KEY);
            db.write(batch)?;
        }
        self.begin()?;
        Ok(resent)
    }

    /// The latest checkpoint whose marker the consumer group holds for the partitions of
    /// `checkpoint`.
    fn committed_checkpoint(
        &self,
        checkpoint: &Checkpoint,
        state_id: &str,
    ) -> Result<Option<u64>, EngineError> {
        let mut partitions = TopicPartitionList::new();
        for position in &checkpoint.positions {
            partitions.add_partition(&position.topic, position.partition);
        }
        if partitions.count() == 0 {
            return Ok(None);
        }
        let committed = self
            .consumer
            .committed_offsets(partitions, TRANSACTION_TIMEOUT)
            .map_err(|error| {
                EngineError::kafka("reading the committed transaction marker", error)
            })?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|element| checkpoint_of_marker(element.metadata(), state_id))
            .max())
    }

    fn lock(&self) -> MutexGuard<'_, OpenTransaction> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn begin(&self) -> Result<(), EngineError> {
        self.producer
            .begin_transaction()
            .map_err(|error| self.transaction_error("beginning a transaction", error))?;
        self.aborted.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Queues one record in the open transaction, waiting while librdkafka's queue is full.
    fn produce(&self, record: &OutputRecord<'_>) -> Result<(), EngineError> {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (name, value) in record.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(*value),
            });
        }
        let mut pending = BaseRecord::to(record.topic)
            .key(record.key)
            .payload(record.payload)
            .headers(headers);
        let deadline = Instant::now() + TRANSACTION_TIMEOUT;
        loop {
            match self.producer.send(pending) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned))
                    if Instant::now() < deadline =>
                {
                    pending = returned;
                    self.producer.poll(Duration::from_millis(5));
                }
                Err((error, _)) => {
                    return Err(EngineError::kafka(
                        format!("queueing a record for {}", record.topic),
                        error,
                    ));
                }
            }
        }
    }

    /// Sends into the open transaction and keeps the record in its outbox.
    fn send_now(&self, open: &mut OpenTransaction, record: &OutputRecord<'_>) {
        if let Err(error) = self.produce(record) {
            EngineStatus::add(&self.status.delivery_failures, 1);
            // Once a transaction is broken, every later record of it is refused the same
            // way: the first says why, `delivery_failures` counts them all.
            if open.broken.is_none() {
                warn!(%error, "cannot queue an output record; its transaction will abort");
                open.broken = Some(error.to_string());
            }
            return;
        }
        outbox::append(&mut open.outbox, record);
        open.has_records = true;
    }

    /// Sends the records held back by the cut into the open transaction.
    fn release_held(&self, open: &mut OpenTransaction) {
        for waiting in std::mem::take(&mut open.held) {
            waiting.with_output(|record| self.send_now(open, record));
        }
    }

    /// Adds the checkpoint's offsets, marked with its id, and commits.
    fn commit_offsets(&self, checkpoint: &Checkpoint) -> Result<(), EngineError> {
        let mut offsets = TopicPartitionList::new();
        let state_id = self.state_id.get().map_or("unknown", String::as_str);
        let mark = marker(state_id, checkpoint.id);
        for position in &checkpoint.positions {
            offsets
                .add_partition_offset(
                    &position.topic,
                    position.partition,
                    Offset::Offset(position.offset),
                )
                .map_err(|error| EngineError::kafka("listing the checkpoint's offsets", error))?;
            if let Some(mut element) = offsets.find_partition(&position.topic, position.partition) {
                element.set_metadata(&mark);
            }
        }
        if offsets.count() > 0 {
            self.producer
                .send_offsets_to_transaction(&offsets, &self.group, TRANSACTION_TIMEOUT)
                .map_err(|error| {
                    self.transaction_error("adding offsets to the transaction", error)
                })?;
        }
        self.producer
            .commit_transaction(TRANSACTION_TIMEOUT)
            .map_err(|error| self.transaction_error("committing the transaction", error))?;
        EngineStatus::add(&self.status.transactions_committed, 1);
        Ok(())
    }

    /// Aborts the open transaction after a failed call, when librdkafka says it must be,
    /// and names fencing plainly: it means another instance took over.
    fn transaction_error(&self, context: &str, error: KafkaError) -> EngineError {
        let (fenced, requires_abort) = match &error {
            KafkaError::Transaction(detail) => (
                matches!(
                    detail.code(),
                    RDKafkaErrorCode::Fenced
                        | RDKafkaErrorCode::ProducerFenced
                        | RDKafkaErrorCode::InvalidProducerEpoch
                ),
                detail.txn_requires_abort(),
            ),
            _ => (false, false),
        };
        if requires_abort && !fenced {
            self.abort_open();
        }
        if fenced {
            return EngineError::Fenced {
                transactional_id: self.transactional_id.clone(),
            };
        }
        EngineError::kafka(
            format!("{context} (transactional.id {})", self.transactional_id),
            error,
        )
    }

    fn abort_open(&self) {
        if self.aborted.load(Ordering::Relaxed) {
            return;
        }
        let deadline = Instant::now() + TRANSACTION_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.producer.abort_transaction(left) {
                Ok(()) => {
                    self.aborted.store(true, Ordering::Relaxed);
                    EngineStatus::add(&self.status.transactions_aborted, 1);
                    return;
                }
                // librdkafka's advice for a retriable abort error (a timeout, a request
                // still in flight) is to call abort again: the abort may still complete.
                Err(KafkaError::Transaction(detail))
                    if detail.is_retriable() && Instant::now() < deadline =>
                {
                    warn!(error = %detail, "the output transaction's abort is retried");
                    std::thread::sleep(ABORT_RETRY_PAUSE);
                }
                Err(error) => {
                    warn!(%error, "cannot abort the output transaction");
                    return;
                }
            }
        }
    }
}

impl OutputSink for TransactionalOutput {
    fn send(&self, record: &OutputRecord<'_>) {
        let mut open = self.lock();
        if open.release_pending {
            open.release_pending = false;
            self.release_held(&mut open);
        }
        if record.epoch >= open.cut {
            open.held.push(OutboxRecord::from_output(record));
        } else {
            self.send_now(&mut open, record);
        }
    }

    /// At shutdown: what no checkpoint committed is dropped, and written again by the
    /// next run from the last checkpoint.
    fn flush(&self, _patience: &dyn Patience) -> Result<(), EngineError> {
        let open = self.lock();
        if !open.outbox.is_empty() || !open.held.is_empty() {
            self.abort_open();
        }
        Ok(())
    }

    /// Called under the coordinator's lock, so it only moves the cut: the held records
    /// are sent by the next call, which every worker is not waiting on.
    fn cut(&self, epoch: u64) {
        let mut open = self.lock();
        open.cut = epoch;
        if epoch == u64::MAX && !open.held.is_empty() {
            open.release_pending = true;
        }
    }

    fn prepare(&self, patience: &dyn Patience) -> Result<Option<Vec<u8>>, EngineError> {
        let outbox = {
            let mut open = self.lock();
            if open.release_pending {
                open.release_pending = false;
                self.release_held(&mut open);
            }
            if let Some(reason) = open.broken.take() {
                return Err(EngineError::Dataflow(format!(
                    "an output record was not queued: {reason}"
                )));
            }
            std::mem::take(&mut open.outbox)
        };
        // An empty transaction has nothing to write again: only offsets, which the next
        // transaction carries anyway.
        let outbox = (!outbox.is_empty()).then_some(outbox);
        // Only this transaction's records are in librdkafka's queue: later ones are held.
        let started = Instant::now();
        loop {
            match self.producer.flush(patience.check_every()) {
                Ok(()) => break,
                Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut))
                    if patience.keep_waiting(
                        started.elapsed(),
                        u64::try_from(self.producer.in_flight_count()).unwrap_or(0),
                    ) => {}
                Err(error) => {
                    return Err(EngineError::kafka(
                        "flushing the transaction's output",
                        error,
                    ));
                }
            }
        }
        if self.refused.swap(false, Ordering::Relaxed) {
            return Err(EngineError::Dataflow(
                "the broker refused output records of this transaction".to_string(),
            ));
        }
        Ok(outbox)
    }

    fn commit(&self, checkpoint: &Checkpoint) -> Result<(), EngineError> {
        let offsets: Vec<(String, i32, i64)> = checkpoint
            .positions
            .iter()
            .map(|position| (position.topic.clone(), position.partition, position.offset))
            .collect();
        let idle = {
            let open = self.lock();
            !open.has_records && open.last_offsets == offsets
        };
        // An idle checkpoint leaves the (empty) transaction open for the next one.
        if !idle {
            self.commit_offsets(checkpoint)?;
            self.begin()?;
        }
        let mut open = self.lock();
        open.has_records = false;
        open.last_offsets = offsets;
        open.cut = u64::MAX;
        self.release_held(&mut open);
        Ok(())
    }

    fn abort(&self) {
        let mut open = self.lock();
        open.outbox.clear();
        open.held.clear();
        open.release_pending = false;
        self.refused.store(false, Ordering::Relaxed);
        self.abort_open();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_names_its_state_and_checkpoint_and_nothing_else_does() {
        assert_eq!(checkpoint_of_marker(&marker("s1", 42), "s1"), Some(42));
        // A marker of another state (before a replay) says nothing about this one.
        assert_eq!(checkpoint_of_marker(&marker("s0", 900), "s1"), None);
        assert_eq!(checkpoint_of_marker("", "s1"), None);
        assert_eq!(checkpoint_of_marker("sluice-checkpoint:", "s1"), None);
        assert_eq!(checkpoint_of_marker("sluice-checkpoint:s1:", "s1"), None);
        assert_eq!(checkpoint_of_marker("other:s1:42", "s1"), None);
    }
}
