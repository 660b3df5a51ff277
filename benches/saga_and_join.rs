//! The inventory saga and the catalog join in process, with a catalog of 10,000 items: orders
//! per second through the saga (`inventory` topology), order lines per second through the
//! stream-table join and the enriched windows, orders per second through the saga with
//! the table-table join of the catalog and the levels behind it (`product_stock`), and the
//! saga's state per item. No broker:
//! records are read from memory and outputs kept in memory.
//!
//! `cargo bench --bench saga_and_join`

use std::time::Duration;

/// The allocator the `shop` binary uses, so that the figures match.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice::dsl::{EventTime, Topology};
use sluice::record::key_hash;
use sluice::testkit::{MemoryInput, MemoryRecord, run_to_completion};
use sluice_topologies::events::{
    OrderEvent, OrderLine, OrderPlaced, OrderStatus, ProductEventType, ProductUpdated,
};
use sluice_topologies::topics::{ORDER_EVENTS, PRODUCT_UPDATES};
use sluice_topologies::{catalog, inventory, orders, product_stock, sales};

const ITEMS: usize = 10_000;
const ORDERS: usize = 50_000;
const PARTITIONS: u64 = 4;
const START_MS: i64 = 1_705_314_600_000;

fn push(input: &mut MemoryInput, topic: &str, key: &str, payload: Vec<u8>) {
    let partition = (key_hash(key) % PARTITIONS) as usize;
    let record = MemoryRecord {
        key: key.as_bytes().to_vec(),
        payload,
        timestamp: 0,
        watermark_only: false,
        headers: Vec::new(),
    };
    input.push(topic, partition, record);
}

/// The catalog (every item with enough stock for about half the orders' demand, so some
/// orders fail and items cross their thresholds), then orders of one to three lines, 10 ms
/// apart, spread over the items by a fixed pseudo-random sequence.
fn input() -> MemoryInput {
    let mut input = MemoryInput::default();
    for item in 0..ITEMS {
        let product = ProductUpdated {
            event_type: ProductEventType::ProductUpdated,
            product_id: format!("item_{item:05}"),
            name: format!("Item {item}"),
            price: 1.0 + (item % 50) as f64 / 4.0,
            stock: 6,
            threshold: 2,
            timestamp: EventTime(START_MS - 1),
        };
        let payload = serde_json::to_vec(&product).expect("encodes");
        push(&mut input, PRODUCT_UPDATES, &product.product_id, payload);
    }
    let mut state: u64 = 7;
    let mut next = |below: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize % below
    };
    for order in 0..ORDERS {
        let items = (0..1 + next(3))
            .map(|_| OrderLine {
                item_id: format!("item_{:05}", next(ITEMS)),
                quantity: 1 + next(2) as u32,
                price: 2.0,
            })
            .collect();
        let placed = OrderPlaced {
            order_id: format!("order_{order:06}"),
            user_id: "user_1".into(),
            items,
            total_amount: 2.0,
            status: OrderStatus::Placed,
            timestamp: EventTime(START_MS + order as i64 * 10),
        };
        let key = placed.order_id.clone();
        let payload = serde_json::to_vec(&OrderEvent::OrderPlaced(placed)).expect("encodes");
        push(&mut input, ORDER_EVENTS, &key, payload);
    }
    // The catalog publishes one more product on every partition a minute after the last
    // order: the orders wait for the catalog's watermark to pass them, as they would for
    // its next updates.
    let after = START_MS + ORDERS as i64 * 10 + 60_000;
    let mut covered = std::collections::BTreeSet::new();
    for n in 0.. {
        if covered.len() == PARTITIONS as usize {
            break;
        }
        let product_id = format!("new_{n}");
        if !covered.insert(key_hash(&product_id) % PARTITIONS) {
            continue;
        }
        let product = ProductUpdated {
            event_type: ProductEventType::ProductUpdated,
            name: product_id.clone(),
            product_id,
            price: 1.0,
            stock: 1,
            threshold: 1,
            timestamp: EventTime(after),
        };
        let payload = serde_json::to_vec(&product).expect("encodes");
        push(&mut input, PRODUCT_UPDATES, &product.product_id, payload);
    }
    input
}

/// Orders and the catalog, joined for the enriched views, without the saga.
fn join(topology: &mut Topology<'_>) {
    let orders = orders::order_events(topology);
    let catalog = catalog::catalog_table(topology);
    sales::sales(&orders, &catalog);
}

/// The saga, and the catalog left-joined with its levels (a table-table join).
fn saga_with_product_stock(topology: &mut Topology<'_>) {
    let orders = orders::order_events(topology);
    let catalog = catalog::catalog_table(topology);
    let levels = inventory::inventory_saga(&orders, &catalog);
    product_stock::product_stock(&catalog, &levels);
}

/// Checks that `product_stock` holds a row per catalog product, with the level
/// `stock_levels` has for it.
fn check_product_stock(input: &MemoryInput, dir: &std::path::Path) {
    let run = run_to_completion(
        std::sync::Arc::new(saga_with_product_stock),
        input.clone(),
        dir,
        2,
        100,
    )
    .expect("run");
    let rows = |view: &str| {
        let mut rows = std::collections::BTreeMap::new();
        run.state
            .table_store(view)
            .expect("view")
            .for_each(|key, value| {
                let value: serde_json::Value = serde_json::from_slice(&value).expect("json");
                rows.insert(key.to_vec(), value["level"].clone());
            })
            .expect("read");
        rows
    };
    let joined = rows("product_stock");
    let levels = rows("stock_levels");
    assert_eq!(joined.len(), rows("catalog").len());
    assert!(levels.len() >= ITEMS);
    for (item, level) in &levels {
        assert_eq!(joined.get(item), Some(level));
    }
}

fn saga_and_join(c: &mut Criterion) {
    let input = input();
    let dir = tempfile::tempdir().expect("temporary state directory");

    // The work is real: every order is decided, and the saga's state per item is measured.
    let run = run_to_completion(
        std::sync::Arc::new(sluice_topologies::inventory),
        input.clone(),
        dir.path(),
        2,
        100,
    )
    .expect("run");
    let mut decided = 0;
    run.state
        .table_store("order_status")
        .expect("view")
        .for_each(|_, value| {
            decided += usize::from(!String::from_utf8_lossy(&value).contains("placed"));
        })
        .expect("read");
    let (mut items, mut item_bytes, mut kept_orders, mut order_bytes) = (0, 0, 0, 0);
    for store in run.plan.stores() {
        if store.starts_with("state.sequence") {
            run.state
                .table_store(&store)
                .expect("store")
                .for_each(|key, value| {
                    if key.starts_with(b"s/item/") {
                        items += 1;
                        item_bytes += key.len() + value.len();
                    } else if key.starts_with(b"s/order/") {
                        kept_orders += 1;
                        order_bytes += key.len() + value.len();
                    }
                })
                .expect("read");
        }
    }
    eprintln!(
        "{decided} of {ORDERS} orders decided; saga state {items} items, {:.0} bytes per item, \
         and {kept_orders} orders (all within the retention), {:.0} bytes per order, in RocksDB \
         (key and JSON value)",
        item_bytes as f64 / items.max(1) as f64,
        order_bytes as f64 / kept_orders.max(1) as f64
    );
    assert_eq!(items, ITEMS);
    // Every decided order is within the day's retention, so the saga still knows it.
    assert_eq!(kept_orders, decided);
    assert!(
        decided * 10 >= ORDERS * 9,
        "{decided} of {ORDERS} orders decided"
    );
    drop(run);
    check_product_stock(&input, dir.path());

    let mut group = c.benchmark_group("catalog_of_10000_items");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Elements(ORDERS as u64));
    group.bench_function("saga_orders", |b| {
        b.iter(|| {
            run_to_completion(
                std::sync::Arc::new(sluice_topologies::inventory),
                input.clone(),
                dir.path(),
                2,
                100,
            )
            .expect("run")
        });
    });
    group.bench_function("saga_with_product_stock_orders", |b| {
        b.iter(|| {
            run_to_completion(
                std::sync::Arc::new(saga_with_product_stock),
                input.clone(),
                dir.path(),
                2,
                100,
            )
            .expect("run")
        });
    });
    group.bench_function("join_orders", |b| {
        b.iter(|| {
            run_to_completion(std::sync::Arc::new(join), input.clone(), dir.path(), 2, 100)
                .expect("run")
        });
    });
    group.finish();
}

criterion_group!(benches, saga_and_join);
criterion_main!(benches);
