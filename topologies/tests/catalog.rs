//! The catalog topology through the test driver: `product-updates` upserted by product,
//! tombstones deleting, bad records dead-lettered with their reason, and state carried
//! across steps (each step restores the upsert state from the last checkpoint). A property
//! test checks random histories against a map kept here.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Value, json};
use sluice::dsl::EventTime;
use sluice::testkit::TopologyTestDriver;
use sluice_topologies::catalog::catalog;
use sluice_topologies::events::{ProductEventType, ProductUpdated};
use sluice_topologies::topics::PRODUCT_UPDATES;

const BASE: i64 = 1_705_314_600_000;

fn product(id: &str, price: f64, stock: i64, at: i64) -> ProductUpdated {
    ProductUpdated {
        event_type: ProductEventType::ProductUpdated,
        product_id: id.to_string(),
        name: id.to_uppercase(),
        price,
        stock,
        threshold: 3,
        timestamp: EventTime(BASE + at),
    }
}

fn driver() -> TopologyTestDriver {
    TopologyTestDriver::new(Arc::new(catalog))
        .expect("driver")
        .with_partitions(PRODUCT_UPDATES, 2)
}

/// Products are keyed by id, so each has one partition, as a keyed producer would choose.
fn partition_of(id: &str) -> usize {
    (sluice::record::key_hash(id) % 2) as usize
}

fn pipe(driver: &mut TopologyTestDriver, update: &ProductUpdated) {
    let at = update.timestamp.millis();
    let id = &update.product_id;
    driver
        .pipe_input_to(PRODUCT_UPDATES, partition_of(id), id, update, at)
        .expect("pipe");
}

#[test]
fn the_catalog_holds_the_latest_record_per_product_and_tombstones_delete() {
    let mut driver = driver();
    let burger = product("burger", 5.0, 10, 0);
    let fries = product("fries", 2.5, 40, 1_000);
    let dearer_burger = product("burger", 6.0, 8, 2_000);
    for update in [&burger, &fries, &dearer_burger] {
        pipe(&mut driver, update);
    }
    assert_eq!(
        driver.view("catalog").expect("view"),
        json!({"burger": dearer_burger, "fries": fries})
    );

    // The next step starts from the checkpoint: the tombstone finds fries there.
    driver.pipe_tombstone(
        PRODUCT_UPDATES,
        partition_of("fries"),
        "fries",
        BASE + 3_000,
    );
    // A product no catalog can hold is dead-lettered with the reason, and changes nothing.
    let broken = product("burger", 6.0, -1, 4_000);
    pipe(&mut driver, &broken);
    // JSON `null` is not a tombstone (that has no value at all): it is refused too.
    driver.pipe_raw(PRODUCT_UPDATES, 0, b"null", BASE + 4_500);
    // An event the product system's contract does not have (only `ProductUpdated`) is an
    // update the catalog cannot know what to do with.
    let mut removal = serde_json::to_value(&fries).expect("json");
    removal["event_type"] = json!("ProductRemoved");
    let removal = serde_json::to_vec(&removal).expect("json");
    driver.pipe_raw(PRODUCT_UPDATES, 0, &removal, BASE + 4_600);
    assert_eq!(
        driver.view("catalog").expect("view"),
        json!({"burger": dearer_burger})
    );
    let dead = driver
        .read_output(&format!("{PRODUCT_UPDATES}.dlq"))
        .expect("dead letters");
    assert_eq!(dead.len(), 3, "{dead:?}");
    assert_eq!(dead[0].headers["sluice-error"], "stock -1 is negative");
    assert_eq!(dead[0].value, serde_json::to_value(&broken).expect("json"));
    assert_eq!(
        dead[1].headers["sluice-error"],
        "a null value is not a record; a tombstone has no value"
    );
    let reason = dead[2].headers["sluice-error"].as_str();
    assert!(
        reason.contains("unknown variant `ProductRemoved`"),
        "{reason}"
    );
    assert_eq!(dead[2].value["event_type"], "ProductRemoved");

    // A tombstone for a product that is not there deletes nothing and breaks nothing.
    driver.pipe_tombstone(PRODUCT_UPDATES, partition_of("soup"), "soup", BASE + 5_000);
    pipe(&mut driver, &fries);
    assert_eq!(
        driver.view("catalog").expect("view"),
        json!({"burger": dearer_burger, "fries": fries})
    );
}

/// One step of a random history: an update of a product, a tombstone, or a look at the
/// catalog (which makes the driver checkpoint and restore there).
#[derive(Debug, Clone)]
enum Step {
    Update { id: usize, price: u8, stock: i64 },
    Delete { id: usize },
    Look,
}

const IDS: [&str; 4] = ["burger", "fries", "soda", "taco"];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (0..IDS.len(), any::<u8>(), -2i64..30)
            .prop_map(|(id, price, stock)| Step::Update { id, price, stock }),
        2 => (0..IDS.len()).prop_map(|id| Step::Delete { id }),
        1 => Just(Step::Look),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn random_histories_leave_the_catalog_a_map_would(steps in prop::collection::vec(step(), 1..24)) {
        let mut driver = driver();
        let mut expected: BTreeMap<String, Value> = BTreeMap::new();
        let mut refused = 0;
        for (at, step) in steps.iter().enumerate() {
            let at = at as i64 * 1_000;
            match step {
                Step::Update { id, price, stock } => {
                    let update = product(IDS[*id], f64::from(*price) / 4.0, *stock, at);
                    pipe(&mut driver, &update);
                    if *stock < 0 {
                        refused += 1;
                    } else {
                        expected.insert(IDS[*id].to_string(), serde_json::to_value(&update).expect("json"));
                    }
                }
                Step::Delete { id } => {
                    driver.pipe_tombstone(PRODUCT_UPDATES, partition_of(IDS[*id]), IDS[*id], BASE + at);
                    expected.remove(IDS[*id]);
                }
                Step::Look => {
                    let catalog = driver.view("catalog").expect("view");
                    prop_assert_eq!(catalog, json!(expected));
                }
            }
        }
        prop_assert_eq!(driver.view("catalog").expect("view"), json!(expected));
        let dead = driver.read_output(&format!("{PRODUCT_UPDATES}.dlq")).expect("dead letters");
        prop_assert_eq!(dead.len(), refused);
    }
}
