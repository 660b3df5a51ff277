//! The inventory saga: stock levels kept from the catalog and the orders, in event-time
//! order across `order-events` and `product-updates`.
//!
//! - An item's level is its latest catalog `stock` minus what confirmed orders hold.
//! - A placed order is confirmed only if every item it asks for (over all its lines) fits
//!   the item's level; then each line is held (`StockReserved`). Otherwise the first item
//!   that does not fit gets `ReservationFailed` (`insufficient_stock`, or `unknown_item`
//!   when the catalog has no such product) and no line is held at all.
//! - `OrderCancelled` frees what a confirmed order holds, with one `release`
//!   `InventoryEvent` per line. Cancelling an order before it is seen keeps it from
//!   reserving anything later; cancelling a failed order changes nothing.
//! - Each change of an item's state (`normal`, `warning` below the threshold, `depleted` at
//!   0 or below) emits `StockLevelWarning`, `StockDepleted` or `StockLevelNormalized`,
//!   once. An item new to the catalog starts from `normal`.
//!
//! Views: `stock_levels` (per `item_id`) and `order_status` (per `order_id`: `placed` when
//! it arrived, then `confirmed`, `failed` or `cancelled`).
//!
//! An order's decision reads the levels of all its items, which live on no single worker,
//! so the saga runs on one worker (see `docs/decisions.md`). It remembers a failed or
//! cancelled order for a day of event time, and a confirmed one while it holds stock
//! ([`retention`]).

mod retention;

pub use retention::DECIDED_ORDER_RETENTION;

use serde::{Deserialize, Serialize};
use sluice::dsl::{Arrival, Either, EventTime, StateMap, Stream, Table};

use crate::events::{
    InventoryAction, InventoryEvent, InventoryEventType, InventoryRecord, OrderEvent, OrderPlaced,
    OrderStatus, ProductUpdated, ReservationFailure, StockEvent, StockLevelChange,
};
use crate::topics::INVENTORY_EVENTS;

/// An item's stock state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StockState {
    /// At or above the threshold.
    #[default]
    Normal,
    /// Above 0, below the threshold.
    Warning,
    /// At 0 or below.
    Depleted,
}

impl StockState {
    /// The state of `level` against `threshold`.
    pub fn of(level: i64, threshold: i64) -> Self {
        if level <= 0 {
            StockState::Depleted
        } else if level < threshold {
            StockState::Warning
        } else {
            StockState::Normal
        }
    }
}

/// A row of `stock_levels`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StockLevel {
    /// The catalog stock minus what confirmed orders hold.
    pub level: i64,
    /// The catalog threshold.
    pub threshold: i64,
    /// `normal`, `warning` or `depleted`.
    pub state: StockState,
    /// The latest catalog stock.
    pub stock: i64,
    /// Units that confirmed orders hold.
    pub reserved: i64,
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderState {
    /// Received; its turn has not come.
    #[default]
    Placed,
    /// Every line is held.
    Confirmed,
    /// Nothing is held: no stock, an unknown item, or the order failed upstream.
    Failed,
    /// Cancelled; what it held is free again.
    Cancelled,
}

/// Why an order failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// The catalog has no such product.
    UnknownItem,
    /// Not enough stock.
    InsufficientStock,
    /// The order came with status `failed` (at payment, say).
    OrderFailed,
}

/// A row of `order_status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderStatusRow {
    /// `placed`, `confirmed`, `failed` or `cancelled`.
    pub status: OrderState,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<FailureReason>,
    /// The item that did not fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
}

/// What the saga keeps per key: `item/{id}` or `order/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SagaEntry {
    /// An item of the catalog.
    Item(ItemStock),
    /// An order the saga has decided.
    Order(OrderHold),
}

/// An item's stock, as the saga keeps it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemStock {
    /// The latest catalog stock.
    pub stock: i64,
    /// The catalog threshold.
    pub threshold: i64,
    /// Units that confirmed orders hold.
    pub held: i64,
}

impl ItemStock {
    fn level(&self) -> i64 {
        self.stock - self.held
    }

    fn row(&self) -> StockLevel {
        StockLevel {
            level: self.level(),
            threshold: self.threshold,
            state: StockState::of(self.level(), self.threshold),
            stock: self.stock,
            reserved: self.held,
        }
    }
}

/// An order's outcome and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderHold {
    /// Its status row.
    pub status: OrderStatusRow,
    /// The lines it holds, `(item_id, quantity)`: empty unless confirmed.
    pub held: Vec<(String, u32)>,
    /// The event time of its decision, from which its retention counts. (State written
    /// before there was a retention has none, reads as 0, and so counts as long decided.)
    #[serde(default)]
    pub decided_at: i64,
}

/// What the saga emits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SagaOutput {
    /// A record for `inventory-events`.
    Event(InventoryRecord),
    /// An item's new row of `stock_levels`.
    Level(StockLevel),
    /// An order's new row of `order_status`.
    Status(OrderStatusRow),
}

fn item_key(item_id: &str) -> String {
    format!("item/{item_id}")
}

fn order_key(order_id: &str) -> String {
    format!("order/{order_id}")
}

/// What one saga step emits, keyed: events and levels by item, statuses by order.
type Outputs = Vec<(String, SagaOutput)>;

/// Declares the saga over the orders and the catalog's changes, and its views; returns
/// the stock levels' table.
pub fn inventory_saga<'scope>(
    orders: &Stream<'scope, OrderEvent>,
    catalog: &Table<'scope, ProductUpdated>,
) -> Table<'scope, StockLevel> {
    // A product deleted from the catalog keeps its last stock: orders still held must be
    // releasable, and the contract has no event for it.
    let products = catalog.changes().filter_map(|change| change.new);
    let mut sweeper = retention::Sweeper::default();
    let outputs = orders
        .in_event_time_with(&products)
        .process_together_announcing(
            "inventory saga",
            "item_id or order_id",
            announce,
            move |state, arrival, outputs| {
                sweeper.sweep_if_due(state, arrival.event_time);
                apply(state, arrival, outputs)
            },
        );
    // filter_map, not flat_map: each output keeps its position among its record's outputs,
    // which its id is made of.
    outputs
        .filter_map(|output| match output {
            SagaOutput::Event(event) => Some(event),
            _ => None,
        })
        .to(INVENTORY_EVENTS);
    let levels = outputs
        .filter_map(|output| match output {
            SagaOutput::Level(level) => Some(level),
            _ => None,
        })
        .to_table("item_id");
    levels.materialize("stock_levels");
    outputs
        .filter_map(|output| match output {
            SagaOutput::Status(status) => Some(status),
            _ => None,
        })
        .to_table("order_id")
        .materialize("order_status");
    levels
}

/// An order is `placed` as soon as it arrives, before its turn.
fn announce(value: &Either<OrderEvent, ProductUpdated>, outputs: &mut Outputs) {
    if let Either::Left(OrderEvent::OrderPlaced(order)) = value
        && order.status == OrderStatus::Placed
    {
        outputs.push((
            order.order_id.clone(),
            SagaOutput::Status(OrderStatusRow::default()),
        ));
    }
}

/// Applies one record, in event-time order. (The saga also sweeps forgotten orders out
/// of `state` now and then; that changes no decision.)
pub fn apply(
    state: &mut StateMap<SagaEntry>,
    arrival: Arrival<Either<OrderEvent, ProductUpdated>>,
    outputs: &mut Outputs,
) {
    let at = EventTime(arrival.event_time);
    match arrival.value {
        Either::Right(product) => restock(state, product, at, outputs),
        Either::Left(OrderEvent::OrderPlaced(order)) => place(state, order, at, outputs),
        Either::Left(OrderEvent::OrderCancelled(cancel)) => {
            cancel_order(state, &cancel.order_id, at, outputs)
        }
    }
}

fn item<'a>(state: &'a StateMap<SagaEntry>, item_id: &str) -> Option<&'a ItemStock> {
    match state.get(&item_key(item_id)) {
        Some(SagaEntry::Item(stock)) => Some(stock),
        _ => None,
    }
}

/// The order's hold, unless the saga no longer remembers it at `at`.
fn order_hold<'a>(
    state: &'a StateMap<SagaEntry>,
    order_id: &str,
    at: EventTime,
) -> Option<&'a OrderHold> {
    match state.get(&order_key(order_id)) {
        Some(entry @ SagaEntry::Order(hold)) if !retention::is_forgotten(entry, at.0) => Some(hold),
        _ => None,
    }
}

/// Changes an item's stock with `change`, and emits its new level and, if its state
/// changed, the transition.
fn change_item(
    state: &mut StateMap<SagaEntry>,
    item_id: &str,
    at: EventTime,
    outputs: &mut Outputs,
    change: impl FnOnce(&mut ItemStock),
) {
    let key = item_key(item_id);
    let mut stock = item(state, item_id).cloned().unwrap_or_default();
    let before = if state.get(&key).is_some() {
        StockState::of(stock.level(), stock.threshold)
    } else {
        StockState::Normal
    };
    change(&mut stock);
    let row = stock.row();
    if row.state != before {
        let level_change = StockLevelChange {
            item_id: item_id.to_string(),
            level: row.level,
            threshold: row.threshold,
            timestamp: at,
        };
        let event = match row.state {
            StockState::Normal => StockEvent::StockLevelNormalized(level_change),
            StockState::Warning => StockEvent::StockLevelWarning(level_change),
            StockState::Depleted => StockEvent::StockDepleted(level_change),
        };
        outputs.push((
            item_id.to_string(),
            SagaOutput::Event(InventoryRecord::Stock(event)),
        ));
    }
    outputs.push((item_id.to_string(), SagaOutput::Level(row)));
    state.insert(&key, SagaEntry::Item(stock));
}

fn restock(
    state: &mut StateMap<SagaEntry>,
    product: ProductUpdated,
    at: EventTime,
    outputs: &mut Outputs,
) {
    change_item(state, &product.product_id, at, outputs, |stock| {
        stock.stock = product.stock;
        stock.threshold = product.threshold;
    });
}

fn decide(state: &mut StateMap<SagaEntry>, order_id: &str, hold: OrderHold, outputs: &mut Outputs) {
    outputs.push((
        order_id.to_string(),
        SagaOutput::Status(hold.status.clone()),
    ));
    state.insert(&order_key(order_id), SagaEntry::Order(hold));
}

fn place(
    state: &mut StateMap<SagaEntry>,
    order: OrderPlaced,
    at: EventTime,
    outputs: &mut Outputs,
) {
    if let Some(known) = order_hold(state, &order.order_id, at) {
        // A duplicate, or an order cancelled before it was placed: the decision stands,
        // and is said again, since its arrival announced `placed`.
        let status = known.status.clone();
        outputs.push((order.order_id, SagaOutput::Status(status)));
        return;
    }
    if order.status == OrderStatus::Failed {
        let status = OrderStatusRow {
            status: OrderState::Failed,
            reason: Some(FailureReason::OrderFailed),
            item_id: None,
        };
        decide(
            state,
            &order.order_id,
            OrderHold {
                status,
                held: Vec::new(),
                decided_at: at.0,
            },
            outputs,
        );
        return;
    }
    // What the order asks of each item, over all its lines, in the order items first
    // appear.
    let mut asked: Vec<(&str, u32)> = Vec::new();
    for line in &order.items {
        match asked
            .iter_mut()
            .find(|(item_id, _)| *item_id == line.item_id)
        {
            Some((_, quantity)) => *quantity = quantity.saturating_add(line.quantity),
            None => asked.push((&line.item_id, line.quantity)),
        }
    }
    let short = asked
        .iter()
        .find_map(|&(item_id, quantity)| match item(state, item_id) {
            None => Some((item_id, quantity, 0, ReservationFailure::UnknownItem)),
            Some(stock) if stock.level() < i64::from(quantity) => Some((
                item_id,
                quantity,
                stock.level(),
                ReservationFailure::InsufficientStock,
            )),
            Some(_) => None,
        });
    if let Some((item_id, requested, available, reason)) = short {
        let failed = StockEvent::ReservationFailed {
            order_id: order.order_id.clone(),
            item_id: item_id.to_string(),
            requested,
            available,
            reason,
            timestamp: at,
        };
        outputs.push((
            item_id.to_string(),
            SagaOutput::Event(InventoryRecord::Stock(failed)),
        ));
        let status = OrderStatusRow {
            status: OrderState::Failed,
            reason: Some(match reason {
                ReservationFailure::UnknownItem => FailureReason::UnknownItem,
                ReservationFailure::InsufficientStock => FailureReason::InsufficientStock,
            }),
            item_id: Some(item_id.to_string()),
        };
        let order_id = order.order_id.clone();
        decide(
            state,
            &order_id,
            OrderHold {
                status,
                held: Vec::new(),
                decided_at: at.0,
            },
            outputs,
        );
        return;
    }
    let mut held = Vec::with_capacity(order.items.len());
    for line in order.items {
        let mut level = 0;
        let mut reserved = Vec::new();
        change_item(state, &line.item_id, at, &mut reserved, |stock| {
            stock.held += i64::from(line.quantity);
            level = stock.level();
        });
        outputs.push((
            line.item_id.clone(),
            SagaOutput::Event(InventoryRecord::Stock(StockEvent::StockReserved {
                order_id: order.order_id.clone(),
                item_id: line.item_id.clone(),
                quantity: line.quantity,
                level,
                timestamp: at,
            })),
        ));
        // The reservation first, then the state it led to.
        outputs.append(&mut reserved);
        held.push((line.item_id, line.quantity));
    }
    let status = OrderStatusRow {
        status: OrderState::Confirmed,
        reason: None,
        item_id: None,
    };
    decide(
        state,
        &order.order_id,
        OrderHold {
            status,
            held,
            decided_at: at.0,
        },
        outputs,
    );
}

fn cancel_order(
    state: &mut StateMap<SagaEntry>,
    order_id: &str,
    at: EventTime,
    outputs: &mut Outputs,
) {
    let hold = match order_hold(state, order_id, at) {
        Some(hold) if hold.status.status != OrderState::Confirmed => return,
        Some(hold) => hold.clone(),
        None => OrderHold {
            status: OrderStatusRow::default(),
            held: Vec::new(),
            decided_at: at.0,
        },
    };
    for (item_id, quantity) in &hold.held {
        outputs.push((
            item_id.clone(),
            SagaOutput::Event(InventoryRecord::Line(InventoryEvent {
                event_type: InventoryEventType::InventoryEvent,
                order_id: order_id.to_string(),
                item_id: item_id.clone(),
                quantity: *quantity,
                action: InventoryAction::Release,
                timestamp: at,
            })),
        ));
        change_item(state, item_id, at, outputs, |stock| {
            stock.held -= i64::from(*quantity);
        });
    }
    let status = OrderStatusRow {
        status: OrderState::Cancelled,
        reason: None,
        item_id: None,
    };
    decide(
        state,
        order_id,
        OrderHold {
            status,
            held: Vec::new(),
            decided_at: at.0,
        },
        outputs,
    );
}
