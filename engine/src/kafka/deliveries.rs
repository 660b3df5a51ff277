//! Which output records the broker has not acknowledged yet, counted by generation, so
//! that a checkpoint can wait for exactly the records queued before it.
//!
//! librdkafka's own flush waits until its whole queue is empty. While workers keep
//! producing, that may take until the flush times out, and a commit that waited on it
//! would stall behind records it does not need. Here every record is tagged with the
//! generation current when it was queued; [`Deliveries::wait_for_queued`] starts a new
//! generation and waits only for the older ones.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use crate::output::Patience;

/// Counters kept, one per generation modulo this. Waits are one at a time (one commit at
/// a time), and each leaves its generation at zero unless it times out, which stops the
/// engine; a wait also covers the two generations before its own, which the current one
/// cannot share a counter with.
const SLOTS: usize = 4;

/// Unacknowledged output records, per generation.
///
/// Counting is lock-free: every output record passes here twice (queued, then settled on
/// librdkafka's thread), and a mutex there showed in profiles. Only a waiter that has to
/// sleep takes the lock.
#[derive(Debug, Default)]
pub struct Deliveries {
    current: AtomicU64,
    outstanding: [AtomicU64; SLOTS],
    waiting: AtomicBool,
    lock: Mutex<()>,
    acknowledged: Condvar,
    /// The first record the broker refused for good, described: no checkpoint may pass it.
    refusal: Mutex<Option<String>>,
}

impl Deliveries {
    fn slot(&self, generation: u64) -> &AtomicU64 {
        &self.outstanding[(generation % SLOTS as u64) as usize]
    }

    /// Counts a record about to be queued; returns the generation to settle it with.
    pub fn queued(&self) -> u64 {
        loop {
            let generation = self.current.load(Ordering::SeqCst);
            self.slot(generation).fetch_add(1, Ordering::SeqCst);
            // If a wait began in between, it may already have looked at this generation:
            // count the record in the new one instead.
            if self.current.load(Ordering::SeqCst) == generation {
                return generation;
            }
            self.settled(generation);
        }
    }

    /// Counts one more record in `generation`, which must still hold a record not settled
    /// (the one this record stands in for), so that no wait on it can have ended.
    pub fn queued_in(&self, generation: u64) {
        self.slot(generation).fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a record of `generation` as done with: acknowledged, refused by the broker,
    /// or never queued after all.
    pub fn settled(&self, generation: u64) {
        let slot = self.slot(generation);
        let before = slot
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |count| {
                count.checked_sub(1)
            })
            .unwrap_or(0);
        if before == 1 && self.waiting.load(Ordering::SeqCst) {
            // Taking the lock orders this wake-up after the waiter's check.
            let _guard = self.lock.lock();
            self.acknowledged.notify_all();
        }
    }

    /// Waits until every record queued before this call is settled; `false` if `patience`
    /// ran out first.
    pub fn wait_for_queued(&self, patience: &dyn Patience) -> bool {
        let started = Instant::now();
        let waited_for = self.current.fetch_add(1, Ordering::SeqCst);
        let slots = [
            self.slot(waited_for),
            self.slot(waited_for.wrapping_sub(1)),
            self.slot(waited_for.wrapping_sub(2)),
        ];
        let outstanding = || slots.iter().map(|slot| slot.load(Ordering::SeqCst)).sum();
        let mut guard = self
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.waiting.store(true, Ordering::SeqCst);
        let mut next_check = started + patience.check_every();
        let settled = loop {
            let unacknowledged: u64 = outstanding();
            if unacknowledged == 0 {
                break true;
            }
            let now = Instant::now();
            if now >= next_check {
                if !patience.keep_waiting(now - started, unacknowledged) {
                    break false;
                }
                next_check = now + patience.check_every();
            }
            guard = match self
                .acknowledged
                .wait_timeout(guard, next_check.saturating_duration_since(now))
            {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        };
        self.waiting.store(false, Ordering::SeqCst);
        settled
    }

    /// Records that the broker refused a record for good (librdkafka retries what can be
    /// retried until `message.timeout.ms`): `described` names it. The first one is kept.
    pub fn refused(&self, described: String) {
        let mut refusal = self
            .refusal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        refusal.get_or_insert(described);
    }

    /// The first record the broker refused, if any.
    pub fn refusal(&self) -> Option<String> {
        self.refusal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Records not yet settled, in every generation.
    pub fn outstanding(&self) -> u64 {
        self.outstanding
            .iter()
            .map(|slot| slot.load(Ordering::SeqCst))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_wait_covers_only_records_queued_before_it() {
        let deliveries = Arc::new(Deliveries::default());
        let before = deliveries.queued();
        let waiter = {
            let deliveries = Arc::clone(&deliveries);
            std::thread::spawn(move || deliveries.wait_for_queued(&Duration::from_secs(30)))
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while deliveries.current.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "the wait never began");
            std::thread::yield_now();
        }
        // Queued after the wait began: a later wait's business.
        let after = deliveries.queued();
        assert_ne!(before, after);
        deliveries.settled(before);
        assert!(
            waiter.join().expect("waits"),
            "the wait saw its record settled"
        );
        assert_eq!(deliveries.outstanding(), 1);
        assert!(!deliveries.wait_for_queued(&Duration::from_millis(10)));
        deliveries.settled(after);
        assert!(deliveries.wait_for_queued(&Duration::from_millis(10)));
        assert_eq!(deliveries.outstanding(), 0);
    }

    #[test]
    fn settling_an_unknown_generation_changes_nothing() {
        let deliveries = Deliveries::default();
        deliveries.settled(7);
        assert_eq!(deliveries.outstanding(), 0);
        assert!(deliveries.wait_for_queued(&Duration::ZERO));
    }

    #[test]
    fn under_concurrent_traffic_a_wait_returns_only_once_its_records_are_settled() {
        use std::sync::Mutex as StdMutex;
        use std::sync::atomic::AtomicBool;
        const RECORDS_PER_PRODUCER: usize = 20_000;
        let deliveries = Arc::new(Deliveries::default());
        // Every record queued so far: its generation and whether it was settled.
        type Queued = Vec<(u64, Arc<AtomicBool>)>;
        let records: Arc<StdMutex<Queued>> = Arc::default();
        let producers: Vec<_> = (0..2)
            .map(|_| {
                let (deliveries, records) = (Arc::clone(&deliveries), Arc::clone(&records));
                std::thread::spawn(move || {
                    for _ in 0..RECORDS_PER_PRODUCER {
                        let mut records = records.lock().expect("records");
                        let generation = deliveries.queued();
                        records.push((generation, Arc::new(AtomicBool::new(false))));
                    }
                })
            })
            .collect();
        let settler = {
            let (deliveries, records) = (Arc::clone(&deliveries), Arc::clone(&records));
            std::thread::spawn(move || {
                let mut next = 0;
                while next < 2 * RECORDS_PER_PRODUCER {
                    let batch: Vec<_> = records.lock().expect("records")[next..].to_vec();
                    next += batch.len();
                    // Settle newest first, as acknowledgements of several partitions may.
                    for (generation, settled) in batch.into_iter().rev() {
                        settled.store(true, Ordering::SeqCst);
                        deliveries.settled(generation);
                    }
                    std::thread::yield_now();
                }
            })
        };
        let mut waits = 0;
        while !settler.is_finished() || waits == 0 {
            let before: Vec<Arc<AtomicBool>> = records
                .lock()
                .expect("records")
                .iter()
                .map(|(_, settled)| Arc::clone(settled))
                .collect();
            assert!(deliveries.wait_for_queued(&Duration::from_secs(30)));
            assert!(
                before.iter().all(|settled| settled.load(Ordering::SeqCst)),
                "a wait returned before a record queued ahead of it was settled"
            );
            waits += 1;
        }
        for thread in producers {
            thread.join().expect("producer");
        }
        settler.join().expect("settler");
        assert_eq!(deliveries.outstanding(), 0);
        assert!(waits > 1, "only {waits} waits overlapped the traffic");
    }
}
