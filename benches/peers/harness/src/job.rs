//! The job every peer runs, as plain data: its windows, computed here from the generated
//! orders as the reference, and compared with what a peer wrote.

use std::collections::BTreeMap;
use std::fmt::Write;

use sluice_topologies::events::{OrderPlaced, OrderStatus};

/// The analytics window, in milliseconds.
pub const WINDOW_MS: i64 = 60_000;

/// The start of the 1-minute window (aligned to the epoch) holding `event_time_ms`.
pub fn window_start(event_time_ms: i64) -> i64 {
    event_time_ms.div_euclid(WINDOW_MS) * WINDOW_MS
}

/// One shop-wide window's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderCounts {
    /// Orders placed (failed ones included).
    pub orders: u64,
    /// Orders that failed.
    pub failed: u64,
}

/// The windows of the job: what a peer wrote, or what it should have written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Windows {
    /// Order counts by window start.
    pub order_counts: BTreeMap<i64, OrderCounts>,
    /// Quantity of placed orders' lines by window start and item.
    pub item_demand: BTreeMap<(i64, String), u64>,
}

impl Windows {
    /// Counts one order into its windows, as the job says.
    pub fn add(&mut self, order: &OrderPlaced) {
        let start = window_start(order.timestamp.millis());
        let counts = self.order_counts.entry(start).or_default();
        counts.orders += 1;
        if order.status == OrderStatus::Failed {
            counts.failed += 1;
            return;
        }
        for line in &order.items {
            *self
                .item_demand
                .entry((start, line.item_id.clone()))
                .or_default() += u64::from(line.quantity);
        }
    }

    /// Only the windows that start before `end`: those the comparison covers.
    pub fn before(&self, end: i64) -> Windows {
        Windows {
            order_counts: self
                .order_counts
                .range(..end)
                .map(|(start, counts)| (*start, *counts))
                .collect(),
            item_demand: self
                .item_demand
                .iter()
                .filter(|((start, _), _)| *start < end)
                .map(|(key, quantity)| (key.clone(), *quantity))
                .collect(),
        }
    }
}

/// What the preloaded input must give: the windows, how many inventory events, and where
/// the comparison ends.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    /// Every window of every preloaded order, the closing orders' included.
    pub windows: Windows,
    /// One inventory event per line of every order.
    pub order_lines: u64,
    /// Orders preloaded, the closing ones included.
    pub orders: u64,
    /// The start of the first window holding a closing order: windows from here on stay
    /// open in a peer that emits on close, and are not compared.
    pub compared_before: i64,
}

impl Reference {
    /// The windows a peer must have written, exactly.
    pub fn compared(&self) -> Windows {
        self.windows.before(self.compared_before)
    }
}

/// The differences between what a peer wrote and the reference, one line per window,
/// at most `limit` lines (and a count of the rest); empty when they agree.
pub fn differences(expected: &Windows, written: &Windows, limit: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let starts = expected
        .order_counts
        .keys()
        .chain(written.order_counts.keys())
        .collect::<std::collections::BTreeSet<_>>();
    for start in starts {
        let want = expected.order_counts.get(start);
        let got = written.order_counts.get(start);
        if want != got {
            lines.push(format!(
                "order-counts window {}: expected {}, written {}",
                describe_start(*start),
                describe_counts(want),
                describe_counts(got)
            ));
        }
    }
    let keys = expected
        .item_demand
        .keys()
        .chain(written.item_demand.keys())
        .collect::<std::collections::BTreeSet<_>>();
    for key in keys {
        let want = expected.item_demand.get(key);
        let got = written.item_demand.get(key);
        if want != got {
            lines.push(format!(
                "item-demand window {} item {}: expected {}, written {}",
                describe_start(key.0),
                key.1,
                want.map_or("nothing".to_string(), u64::to_string),
                got.map_or("nothing".to_string(), u64::to_string)
            ));
        }
    }
    if lines.len() > limit {
        let rest = lines.len() - limit;
        lines.truncate(limit);
        let mut last = String::new();
        let _ = write!(last, "... and {rest} more windows differ");
        lines.push(last);
    }
    lines
}

fn describe_counts(counts: Option<&OrderCounts>) -> String {
    counts.map_or("nothing".to_string(), |counts| {
        format!("{} orders, {} failed", counts.orders, counts.failed)
    })
}

/// A window start as RFC 3339, for messages.
pub fn describe_start(start_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(start_ms).map_or(start_ms.to_string(), |time| {
        time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_topologies::generator::OrderGenerator;

    fn order(at: i64, status: OrderStatus, lines: &[(&str, u32)]) -> OrderPlaced {
        crate::test_orders::order(&format!("o{at}"), at, status, lines)
    }

    #[test]
    fn failed_orders_count_but_reserve_nothing() {
        let mut windows = Windows::default();
        windows.add(&order(59_999, OrderStatus::Placed, &[("a", 2), ("b", 1)]));
        windows.add(&order(60_000, OrderStatus::Failed, &[("a", 3)]));
        windows.add(&order(60_001, OrderStatus::Placed, &[("a", 1)]));
        assert_eq!(
            windows.order_counts,
            BTreeMap::from([
                (
                    0,
                    OrderCounts {
                        orders: 1,
                        failed: 0
                    }
                ),
                (
                    60_000,
                    OrderCounts {
                        orders: 2,
                        failed: 1
                    }
                ),
            ])
        );
        assert_eq!(
            windows.item_demand,
            BTreeMap::from([
                ((0, "a".to_string()), 2),
                ((0, "b".to_string()), 1),
                ((60_000, "a".to_string()), 1),
            ])
        );
        assert_eq!(window_start(-1), -60_000);
    }

    #[test]
    fn differences_name_each_window_that_differs() {
        let mut generator = OrderGenerator::new(sluice::app::GeneratorOptions {
            seed: 3,
            failure_rate: 0.1,
            start_ms: 1_705_314_600_000,
            interval_ms: 100,
        });
        let mut expected = Windows::default();
        for _ in 0..2_000 {
            expected.add(&generator.next_order());
        }
        assert!(differences(&expected, &expected.clone(), 10).is_empty());

        let mut written = expected.clone();
        let (&first, _) = written.order_counts.iter().next().unwrap();
        written.order_counts.get_mut(&first).unwrap().orders += 1;
        let (dropped, _) = written.item_demand.pop_last().unwrap();
        let lines = differences(&expected, &written, 10);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("order-counts window 2024-01-15T10:30:00Z"));
        assert!(lines[1].contains(&format!("item {}", dropped.1)));
        assert!(lines[1].ends_with("written nothing"));

        let nothing = Windows::default();
        let many = differences(&expected, &nothing, 3);
        assert_eq!(many.len(), 4);
        assert!(many[3].starts_with("... and "));
    }
}
