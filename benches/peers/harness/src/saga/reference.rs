//! The saga's results, computed from the input by a plain sequential model of the
//! contract's rules, written apart from Sluice's saga; and the comparison of a run's
//! results with it.
//!
//! The model applies the records in event-time order, orders before catalog records of the
//! same time (as Sluice applies its sources in the order they are declared); the closing
//! records are left out, as no run applies them.

use std::collections::{BTreeMap, HashMap};

use sluice_topologies::events::OrderStatus;

use super::input::{ShopRecord, is_closing_id};

/// An order's decision, as its events on `inventory-events` tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Every line held: `(item_id, quantity, level after)`, sorted.
    Confirmed(Vec<(String, u32, i64)>),
    /// Nothing held: the first item that did not fit.
    Failed {
        /// The item.
        item_id: String,
        /// What the order asked of it.
        requested: u32,
        /// Its level then (0 for an unknown item).
        available: i64,
        /// `insufficient_stock` or `unknown_item`.
        reason: String,
    },
}

/// What a run must write: each order's decision (orders that failed upstream write
/// nothing), and each item's changes of state in order, `(event_type, level)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SagaResults {
    /// By order.
    pub decisions: BTreeMap<String, Decision>,
    /// By item.
    pub transitions: BTreeMap<String, Vec<(String, i64)>>,
}

impl SagaResults {
    /// How many records of `inventory-events` these results are.
    pub fn events(&self) -> u64 {
        let decisions: usize = self
            .decisions
            .values()
            .map(|decision| match decision {
                Decision::Confirmed(lines) => lines.len(),
                Decision::Failed { .. } => 1,
            })
            .sum();
        let transitions: usize = self.transitions.values().map(Vec::len).sum();
        (decisions + transitions) as u64
    }

    /// These results without the closing records' orders and items.
    pub fn without_closing(&self) -> SagaResults {
        SagaResults {
            decisions: self
                .decisions
                .iter()
                .filter(|(order_id, _)| !is_closing_id(order_id))
                .map(|(id, decision)| (id.clone(), decision.clone()))
                .collect(),
            transitions: self
                .transitions
                .iter()
                .filter(|(item_id, _)| !is_closing_id(item_id))
                .map(|(id, changes)| (id.clone(), changes.clone()))
                .collect(),
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Item {
    stock: i64,
    threshold: i64,
    held: i64,
}

impl Item {
    fn level(&self) -> i64 {
        self.stock - self.held
    }

    fn state(&self) -> &'static str {
        if self.level() <= 0 {
            "StockDepleted"
        } else if self.level() < self.threshold {
            "StockLevelWarning"
        } else {
            "StockLevelNormalized"
        }
    }
}

/// Changes an item, noting its change of state; gives its level after. An item new to
/// the catalog starts from normal.
fn change_item(
    items: &mut HashMap<String, Item>,
    results: &mut SagaResults,
    item_id: &str,
    apply: impl FnOnce(&mut Item),
) -> i64 {
    let existed = items.contains_key(item_id);
    let item = items.entry(item_id.to_string()).or_default();
    let before = if existed {
        item.state()
    } else {
        "StockLevelNormalized"
    };
    apply(item);
    let after = item.state();
    if after != before {
        results
            .transitions
            .entry(item_id.to_string())
            .or_default()
            .push((after.to_string(), item.level()));
    }
    item.level()
}

/// The results the contract's rules give for `records`.
pub fn expected(records: &[ShopRecord]) -> SagaResults {
    let mut ordered: Vec<&ShopRecord> = records.iter().filter(|r| !r.is_closing()).collect();
    // A stable sort: records of the same time and kind stay in the order generated.
    ordered.sort_by_key(|record| {
        let rank = match record {
            ShopRecord::Order(..) => 0,
            ShopRecord::Product(..) => 1,
        };
        (record.event_time(), rank)
    });
    let mut items: HashMap<String, Item> = HashMap::new();
    let mut results = SagaResults::default();
    let mut seen_orders: std::collections::HashSet<String> = Default::default();
    for record in ordered {
        match record {
            ShopRecord::Product(_, product) => {
                change_item(&mut items, &mut results, &product.product_id, |item| {
                    item.stock = product.stock;
                    item.threshold = product.threshold;
                });
            }
            ShopRecord::Order(_, order) => {
                if !seen_orders.insert(order.order_id.clone())
                    || order.status == OrderStatus::Failed
                {
                    continue;
                }
                let mut asked: Vec<(&str, u32)> = Vec::new();
                for line in &order.items {
                    match asked.iter_mut().find(|(id, _)| *id == line.item_id) {
                        Some((_, quantity)) => *quantity += line.quantity,
                        None => asked.push((&line.item_id, line.quantity)),
                    }
                }
                let short =
                    asked
                        .iter()
                        .find_map(|&(item_id, requested)| match items.get(item_id) {
                            None => Some((item_id, requested, 0, "unknown_item")),
                            Some(item) if item.level() < i64::from(requested) => {
                                Some((item_id, requested, item.level(), "insufficient_stock"))
                            }
                            Some(_) => None,
                        });
                let decision = match short {
                    Some((item_id, requested, available, reason)) => Decision::Failed {
                        item_id: item_id.to_string(),
                        requested,
                        available,
                        reason: reason.to_string(),
                    },
                    None => {
                        let mut lines = Vec::new();
                        for line in &order.items {
                            let quantity = line.quantity;
                            let level =
                                change_item(&mut items, &mut results, &line.item_id, |item| {
                                    item.held += i64::from(quantity)
                                });
                            lines.push((line.item_id.clone(), quantity, level));
                        }
                        lines.sort();
                        Decision::Confirmed(lines)
                    }
                };
                results.decisions.insert(order.order_id.clone(), decision);
            }
        }
    }
    results
}

/// The differences between what a run wrote and what it should have, at most `limit`.
pub fn differences(expected: &SagaResults, written: &SagaResults, limit: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let missing = expected
        .decisions
        .keys()
        .filter(|id| !written.decisions.contains_key(*id))
        .count();
    if missing > 0 {
        lines.push(format!(
            "{missing} of {} decisions missing",
            expected.decisions.len()
        ));
    }
    for (order_id, decision) in &written.decisions {
        match expected.decisions.get(order_id) {
            None => lines.push(format!(
                "order {order_id}: decided ({decision:?}) but should not be"
            )),
            Some(want) if want != decision => lines.push(format!(
                "order {order_id}: wrote {decision:?}, expected {want:?}"
            )),
            Some(_) => {}
        }
    }
    let items: std::collections::BTreeSet<&String> = expected
        .transitions
        .keys()
        .chain(written.transitions.keys())
        .collect();
    for item_id in items {
        let want = expected
            .transitions
            .get(item_id)
            .map_or(&[][..], Vec::as_slice);
        let got = written
            .transitions
            .get(item_id)
            .map_or(&[][..], Vec::as_slice);
        if want != got {
            let first = want
                .iter()
                .zip(got)
                .position(|(a, b)| a != b)
                .unwrap_or(want.len().min(got.len()));
            lines.push(format!(
                "item {item_id}: {} changes of state written, {} expected; first difference at #{first}: wrote {:?}, expected {:?}",
                got.len(),
                want.len(),
                got.get(first),
                want.get(first)
            ));
        }
    }
    let total = lines.len();
    lines.truncate(limit);
    if total > limit {
        lines.push(format!("… and {} more differences", total - limit));
    }
    lines
}

#[cfg(test)]
mod tests {
    use sluice::dsl::EventTime;
    use sluice_topologies::events::ProductUpdated;

    use super::*;

    fn product(id: &str, stock: i64, at: i64) -> ShopRecord {
        ShopRecord::Product(
            None,
            ProductUpdated {
                product_id: id.into(),
                stock,
                threshold: 5,
                timestamp: EventTime(at),
                ..ProductUpdated::default()
            },
        )
    }

    fn order(id: &str, lines: &[(&str, u32)], status: OrderStatus, at: i64) -> ShopRecord {
        ShopRecord::Order(None, crate::test_orders::order(id, at, status, lines))
    }

    fn failed(item: &str, requested: u32, available: i64, reason: &str) -> Decision {
        Decision::Failed {
            item_id: item.into(),
            requested,
            available,
            reason: reason.into(),
        }
    }

    #[test]
    fn decisions_follow_event_time_and_the_contract() {
        let records = vec![
            // Read before the catalog, but later in event time: it fits.
            order("o3", &[("burger", 6)], OrderStatus::Placed, 30),
            product("burger", 8, 0),
            product("fries", 2, 0),
            order(
                "o1",
                &[("burger", 2), ("fries", 1)],
                OrderStatus::Placed,
                10,
            ),
            // Asks 2 fries over two lines; one is left: nothing is held.
            order(
                "o2",
                &[("fries", 1), ("burger", 1), ("fries", 1)],
                OrderStatus::Placed,
                20,
            ),
            // Failed upstream: no decision to write, nothing held.
            order("o4", &[("burger", 1)], OrderStatus::Failed, 40),
            order("o5", &[("soda", 1)], OrderStatus::Placed, 50),
            order("o1", &[("burger", 2)], OrderStatus::Placed, 60),
            // A restock at the same time as an order comes after it.
            product("burger", 20, 70),
            order("o6", &[("burger", 1)], OrderStatus::Placed, 70),
        ];
        let results = expected(&records);
        let confirmed = |lines: &[(&str, u32, i64)]| {
            Decision::Confirmed(
                lines
                    .iter()
                    .map(|(item, quantity, level)| (item.to_string(), *quantity, *level))
                    .collect(),
            )
        };
        let want: BTreeMap<String, Decision> = [
            ("o1", confirmed(&[("burger", 2, 6), ("fries", 1, 1)])),
            ("o2", failed("fries", 2, 1, "insufficient_stock")),
            ("o3", confirmed(&[("burger", 6, 0)])),
            ("o5", failed("soda", 1, 0, "unknown_item")),
            ("o6", failed("burger", 1, 0, "insufficient_stock")),
        ]
        .into_iter()
        .map(|(id, decision)| (id.to_string(), decision))
        .collect();
        assert_eq!(results.decisions, want);
        let transitions = |changes: &[(&str, i64)]| {
            changes
                .iter()
                .map(|(kind, level)| (kind.to_string(), *level))
                .collect::<Vec<_>>()
        };
        // fries starts below its threshold of 5.
        assert_eq!(
            results.transitions["fries"],
            transitions(&[("StockLevelWarning", 2)])
        );
        assert_eq!(
            results.transitions["burger"],
            transitions(&[("StockDepleted", 0), ("StockLevelNormalized", 12)])
        );
        assert_eq!(results.events(), 2 + 1 + 1 + 1 + 1 + 1 + 2);
    }

    #[test]
    fn the_differences_name_what_differs() {
        let records = vec![
            product("burger", 8, 0),
            order("o1", &[("burger", 2)], OrderStatus::Placed, 10),
        ];
        let want = expected(&records);
        assert!(differences(&want, &want, 10).is_empty());
        let mut wrong = want.clone();
        wrong
            .decisions
            .insert("o1".into(), failed("burger", 2, 8, "insufficient_stock"));
        wrong
            .transitions
            .insert("burger".into(), vec![("StockDepleted".into(), 0)]);
        let lines = differences(&want, &wrong, 10);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("order o1: wrote Failed"), "{lines:?}");
        assert!(lines[1].starts_with("item burger: 1 changes"), "{lines:?}");
        wrong.decisions.clear();
        assert!(differences(&want, &wrong, 10)[0].starts_with("1 of 1 decisions missing"));
    }
}
