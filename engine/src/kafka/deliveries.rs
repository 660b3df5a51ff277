//! Which output records the broker has not acknowledged yet, counted by generation, so
//! that a checkpoint can wait for exactly the records queued before it.
//!
//! librdkafka's own flush waits until its whole queue is empty. While workers keep
//! producing, that may take until the flush times out, and a commit that waited on it
//! would stall behind records it does not need. Here every record is tagged with the
//! generation current when it was queued; [`Deliveries::wait_for_queued`] starts a new
//! generation and waits only for the older ones.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Unacknowledged output records, per generation.
#[derive(Debug, Default)]
pub struct Deliveries {
    state: Mutex<Generations>,
    acknowledged: Condvar,
}

#[derive(Debug, Default)]
struct Generations {
    current: u64,
    outstanding: BTreeMap<u64, u64>,
}

impl Deliveries {
    fn lock(&self) -> MutexGuard<'_, Generations> {
        // Counters stay consistent whatever panicked while holding the lock.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a record about to be queued; returns the generation to acknowledge it with.
    pub fn queued(&self) -> u64 {
        let mut state = self.lock();
        let generation = state.current;
        *state.outstanding.entry(generation).or_default() += 1;
        generation
    }

    /// Counts a record of `generation` as done with: acknowledged, refused by the broker,
    /// or never queued after all.
    pub fn settled(&self, generation: u64) {
        let mut state = self.lock();
        let emptied = match state.outstanding.get_mut(&generation) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                state.outstanding.remove(&generation);
                true
            }
            None => false,
        };
        if emptied {
            self.acknowledged.notify_all();
        }
    }

    /// Waits until every record queued before this call is settled; `false` if `timeout`
    /// passed first.
    pub fn wait_for_queued(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        let waited_for = state.current;
        state.current += 1;
        loop {
            let pending = state
                .outstanding
                .first_key_value()
                .is_some_and(|(generation, _)| *generation <= waited_for);
            if !pending {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = match self.acknowledged.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Records not yet settled, in every generation.
    pub fn outstanding(&self) -> u64 {
        self.lock().outstanding.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_wait_covers_only_records_queued_before_it() {
        let deliveries = Arc::new(Deliveries::default());
        let before = deliveries.queued();
        let waiter = {
            let deliveries = Arc::clone(&deliveries);
            std::thread::spawn(move || deliveries.wait_for_queued(Duration::from_secs(30)))
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while deliveries.lock().current == 0 {
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
        assert!(!deliveries.wait_for_queued(Duration::from_millis(10)));
        deliveries.settled(after);
        assert!(deliveries.wait_for_queued(Duration::from_millis(10)));
        assert_eq!(deliveries.outstanding(), 0);
    }

    #[test]
    fn settling_an_unknown_generation_changes_nothing() {
        let deliveries = Deliveries::default();
        deliveries.settled(7);
        assert_eq!(deliveries.outstanding(), 0);
        assert!(deliveries.wait_for_queued(Duration::ZERO));
    }
}
