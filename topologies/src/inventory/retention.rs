//! How long the saga remembers an order that holds nothing (failed or cancelled), so that
//! its state grows with the stock that confirmed orders hold rather than with every order
//! ever placed.
//!
//! A decided order is kept so that a duplicate meets its decision and a cancellation finds
//! what to release. A confirmed order holds stock until it is cancelled, so it stays. A
//! failed or cancelled order has nothing left to release: it is kept for
//! [`DECIDED_ORDER_RETENTION`] of event time after its decision, as Kafka Streams keeps a
//! de-duplication store for its window's retention, and then forgotten.
//!
//! Forgetting is two rules. Which orders the saga sees is decided by event time alone
//! ([`is_forgotten`] at the record's event time), so every replay decides alike. When the
//! forgotten entries leave memory (and RocksDB, at the next checkpoint) is a sweep now and
//! then ([`Sweeper`]), which changes no decision.

use std::time::Duration;

use sluice::dsl::StateMap;

use super::{OrderState, SagaEntry};

/// How long a failed or cancelled order is remembered after its decision, in event time:
/// a day, as windows are kept (`sluice::dsl::DEFAULT_RETENTION`). A duplicate of it that
/// comes later is decided afresh; a cancellation of it that comes later records a
/// cancellation.
pub const DECIDED_ORDER_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

const RETENTION_MS: i64 = DECIDED_ORDER_RETENTION.as_millis() as i64;

/// How much event time passes between two sweeps: a twenty-fourth of the retention, so
/// forgotten orders outstay it by at most that, and a sweep (which visits every entry) is
/// rare.
const SWEEP_EVERY_MS: i64 = RETENTION_MS / 24;

/// Whether `entry` is an order the saga no longer remembers at event time `at`.
pub(super) fn is_forgotten(entry: &SagaEntry, at: i64) -> bool {
    match entry {
        SagaEntry::Order(hold) => {
            hold.status.status != OrderState::Confirmed
                && at.saturating_sub(hold.decided_at) >= RETENTION_MS
        }
        SagaEntry::Item(_) => false,
    }
}

/// Removes forgotten orders from the saga's state every [`SWEEP_EVERY_MS`] of event time.
/// It keeps no state of its own: after a restart the first record sweeps.
#[derive(Debug, Default)]
pub(super) struct Sweeper {
    next_sweep_at: Option<i64>,
}

impl Sweeper {
    /// Sweeps if the last sweep is far enough behind `at`.
    pub(super) fn sweep_if_due(&mut self, state: &mut StateMap<SagaEntry>, at: i64) {
        if self.next_sweep_at.is_some_and(|next| at < next) {
            return;
        }
        state.retain(|_, entry| !is_forgotten(entry, at));
        self.next_sweep_at = Some(at.saturating_add(SWEEP_EVERY_MS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{ItemStock, OrderHold, OrderStatusRow};

    fn order(status: OrderState, decided_at: i64) -> SagaEntry {
        SagaEntry::Order(OrderHold {
            status: OrderStatusRow {
                status,
                reason: None,
                item_id: None,
            },
            held: Vec::new(),
            decided_at,
        })
    }

    #[test]
    fn only_orders_that_hold_nothing_are_forgotten_and_only_after_the_retention() {
        let decided = 1_000;
        let last_remembered = decided + RETENTION_MS - 1;
        for status in [
            OrderState::Failed,
            OrderState::Cancelled,
            OrderState::Placed,
        ] {
            assert!(!is_forgotten(&order(status, decided), last_remembered));
            assert!(is_forgotten(&order(status, decided), last_remembered + 1));
        }
        assert!(!is_forgotten(
            &order(OrderState::Confirmed, decided),
            i64::MAX
        ));
        assert!(!is_forgotten(
            &SagaEntry::Item(ItemStock::default()),
            i64::MAX
        ));
        // A record behind the decision (a late one) forgets nothing.
        assert!(!is_forgotten(&order(OrderState::Failed, decided), i64::MIN));
    }
}
