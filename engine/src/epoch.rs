//! The timely timestamp: a checkpoint epoch and an event-time watermark.
//!
//! A record travels at `(epoch, watermark)`, ordered as a product: one time is at or
//! after another only when both parts are.
//! - The watermark part is the record's partition watermark when it was read. Windows
//!   close when every time still to come has a watermark part past their end, and a record
//!   is late by its own watermark part, so lateness depends only on the partition's data.
//! - The epoch part is the checkpoint barrier. When a checkpoint begins, every source moves
//!   its partitions to the next epoch, at once and whatever their data, and records the
//!   offsets where it did. When no time of an older epoch is left anywhere, every operator
//!   has seen exactly the records before those offsets, and writes its state. A quiet
//!   partition therefore never holds a checkpoint back, while it does hold back windows.

use timely::order::Product;
use timely::progress::Stamp;

/// A timely time: `outer` is the checkpoint epoch, `inner` the watermark in epoch ms.
pub type Time = Product<u64, u64>;

/// The time of epoch `epoch` at watermark `watermark`.
pub fn at(epoch: u64, watermark: u64) -> Time {
    Product::new(epoch, watermark)
}

/// The least upper bound of two times.
pub fn join(a: &Time, b: &Time) -> Time {
    Product::new(a.outer.max(b.outer), a.inner.max(b.inner))
}

/// The time a received message travels at. Every operator here sends under a single
/// capability, so stamps hold one time; should one hold several, the least in (epoch,
/// watermark) order stands for it, which is one of them and so a valid capability time.
/// A message sent under no capability has no time.
pub fn stamp_time(stamp: &Stamp<Time>) -> Option<Time> {
    stamp
        .iter()
        .min_by_key(|time| (time.outer, time.inner))
        .copied()
}

/// The watermark part of a time that holds only its epoch: a source with nothing to read
/// holds one, so that what is downstream of it takes part in every checkpoint, up to the
/// final one, without holding any watermark back.
pub const NO_WATERMARK: u64 = u64::MAX;

/// The watermark below which no record can still arrive, or `None` when no partition
/// holds one: nothing can arrive any more (the sources stopped), or only times that hold
/// an epoch are left ([`NO_WATERMARK`]).
pub fn watermark_of(frontier: &[Time]) -> Option<u64> {
    frontier
        .iter()
        .map(|time| time.inner)
        .filter(|&watermark| watermark != NO_WATERMARK)
        .min()
}

/// Whether every record of the epochs before `epoch` has arrived.
pub fn epochs_done_before(frontier: &[Time], epoch: u64) -> bool {
    frontier.iter().all(|time| time.outer >= epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_is_the_least_over_the_frontier() {
        assert_eq!(watermark_of(&[at(3, 500), at(2, 900)]), Some(500));
        assert_eq!(watermark_of(&[]), None);
        assert_eq!(watermark_of(&[at(4, NO_WATERMARK), at(3, 700)]), Some(700));
        assert_eq!(watermark_of(&[at(4, NO_WATERMARK)]), None);
    }

    #[test]
    fn an_epoch_is_done_when_no_older_time_remains() {
        assert!(!epochs_done_before(&[at(3, 500), at(2, 900)], 3));
        assert!(epochs_done_before(&[at(3, 500), at(4, 100)], 3));
        assert!(epochs_done_before(&[], u64::MAX));
    }

    #[test]
    fn join_takes_each_part_at_its_largest() {
        assert_eq!(join(&at(1, 900), &at(2, 100)), at(2, 900));
    }
}
