//! Idle partitions across workers. A partition that has been silent for the idle timeout
//! (and has nothing left to fetch) follows the slowest active partition of its source on
//! any worker, so that it stops holding the watermark back wherever it is read. When every
//! partition of the source is idle, they all catch up with the greatest watermark among
//! them, and event time then stands still, unless the source asked for the wall clock to
//! move it on.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::epoch::Time;

/// What the workers of one source say about their partitions.
#[derive(Debug)]
pub(crate) struct IdleBoard {
    board: Mutex<Board>,
    /// One more than the latest checkpoint epoch any worker sent records of the source in;
    /// 0 before the first.
    data_epochs: AtomicU64,
}

#[derive(Debug)]
struct Board {
    /// Per worker: the least watermark among its active partitions, if it has any.
    active_min: Vec<Option<u64>>,
    /// Per worker: the greatest watermark among its partitions.
    max_watermark: Vec<Option<u64>>,
    /// Since when every partition has been idle, and the greatest watermark then.
    quiet_since: Option<(Instant, u64)>,
    /// Per worker: the least watermark its partitions reached by their own records, idle
    /// or not (what following the others does not raise).
    own_min: Vec<Option<u64>>,
}

impl IdleBoard {
    /// A board for `workers` workers, none of which has reported.
    pub(crate) fn new(workers: usize) -> Self {
        IdleBoard {
            board: Mutex::new(Board {
                active_min: vec![None; workers],
                max_watermark: vec![None; workers],
                quiet_since: None,
                own_min: vec![None; workers],
            }),
            data_epochs: AtomicU64::new(0),
        }
    }

    /// Records the least watermark `worker`'s partitions reached by their own records.
    pub(crate) fn report_own(&self, worker: usize, own_min: Option<u64>) {
        let mut board = self
            .board
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(slot) = board.own_min.get_mut(worker) {
            *slot = own_min;
        }
    }

    /// The least watermark the source's partitions reached by their own records, on every
    /// worker that reported one. An idle partition's time follows the others', which depends
    /// on wall time; this does not, so decisions that must repeat on every run stay below it.
    pub(crate) fn least_own_watermark(&self) -> Option<u64> {
        let board = self
            .board
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        board.own_min.iter().flatten().min().copied()
    }

    /// Notes that a worker sent records of the source in checkpoint epoch `epoch`.
    pub(crate) fn sent_data_in(&self, epoch: u64) {
        self.data_epochs
            .fetch_max(epoch.saturating_add(1), Ordering::Relaxed);
    }

    /// Whether `frontier`, downstream of the source, has passed every epoch the source sent
    /// records in: then none of them is still on its way. An idle source's partitions stand
    /// still, so only a later epoch tells that what they sent has arrived.
    pub(crate) fn delivered_by(&self, frontier: &[Time]) -> bool {
        let after_data = self.data_epochs.load(Ordering::Relaxed);
        frontier.iter().all(|time| time.outer >= after_data)
    }

    /// Records what `worker`'s partitions stand at and returns the watermark its idle
    /// partitions may follow: the least watermark of the active partitions of every
    /// worker; when every partition is idle, the greatest watermark of all, plus, with
    /// `wall_clock`, the wall time since they all went quiet. `None` before any report.
    pub(crate) fn report(
        &self,
        worker: usize,
        active_min: Option<u64>,
        max_watermark: Option<u64>,
        now: Instant,
        wall_clock: bool,
    ) -> Option<u64> {
        let mut board = self
            .board
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(slot) = board.active_min.get_mut(worker) {
            *slot = active_min;
        }
        if let Some(slot) = board.max_watermark.get_mut(worker) {
            *slot = max_watermark;
        }
        if let Some(least) = board.active_min.iter().flatten().min().copied() {
            board.quiet_since = None;
            return Some(least);
        }
        // Every partition is idle: what has arrived has all been seen, so the laggards may
        // catch up with the greatest watermark (as Flink's watermark valve does when its
        // last active channel goes idle).
        let greatest = board.max_watermark.iter().flatten().max().copied()?;
        if !wall_clock {
            return Some(greatest);
        }
        let (since, from) = *board.quiet_since.get_or_insert((now, greatest));
        let elapsed = now.saturating_duration_since(since).as_millis();
        Some(from.saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX)))
    }
}

impl IdleBoard {
    /// Whether every partition of the source, on every worker, is idle now, after some
    /// partition has read data: the source then holds back no operator that also reads
    /// another source.
    pub(crate) fn is_quiet(&self) -> bool {
        let board = self
            .board
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        board.active_min.iter().all(Option::is_none)
            && board.max_watermark.iter().any(Option::is_some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn idle_partitions_follow_the_slowest_active_partition_of_any_worker() {
        let board = IdleBoard::new(2);
        let now = Instant::now();
        // Worker 1 has only an idle partition; worker 0 an active one at 9 s.
        assert_eq!(board.report(1, None, Some(2_000), now, false), Some(2_000));
        assert_eq!(
            board.report(0, Some(9_000), Some(9_000), now, false),
            Some(9_000)
        );
        assert_eq!(board.report(1, None, Some(2_000), now, false), Some(9_000));
    }

    #[test]
    fn when_everything_is_idle_the_laggards_catch_up_and_then_only_the_wall_clock_moves() {
        let board = IdleBoard::new(2);
        let start = Instant::now();
        assert_eq!(
            board.report(0, None, Some(5_000), start, false),
            Some(5_000)
        );
        assert_eq!(
            board.report(1, None, Some(7_000), start, false),
            Some(7_000)
        );
        assert_eq!(
            board.report(0, None, Some(5_000), start, false),
            Some(7_000)
        );
        assert_eq!(board.report(1, None, Some(7_000), start, true), Some(7_000));
        let later = start + Duration::from_millis(1_500);
        assert_eq!(board.report(0, None, Some(5_000), later, true), Some(8_500));
        // A record anywhere ends the quiet spell.
        assert_eq!(
            board.report(0, Some(6_000), Some(6_000), later, true),
            Some(6_000)
        );
        assert_eq!(
            board.report(0, None, Some(6_000), later + Duration::from_secs(1), true),
            Some(7_000)
        );
    }
}
