//! The DSL records the graph it builds: the plan lists every operator, view and topic.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Source, TopologyFn, TumblingWindows};
use crate::plan::{EventTimeKind, ViewKind};
use crate::runtime::plan_of;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Click {
    page: String,
    at: i64,
    ms: u32,
}

fn topology() -> TopologyFn {
    Arc::new(|topology| {
        let clicks = topology.source(
            Source::<Click>::topic("clicks")
                .event_time(|click| click.at)
                .grace(Duration::from_secs(2)),
        );
        let by_page = clicks
            .filter(|click| click.ms > 0)
            .key_by("page", |click| click.page.clone());
        let windows = by_page.window(TumblingWindows::of(Duration::from_secs(10)));
        windows.count().materialize("clicks");
        windows
            .sum(|click| f64::from(click.ms))
            .materialize("time_on_page");
        clicks.map(|click| click.page).to("pages");
    })
}

#[test]
fn the_plan_lists_operators_views_and_topics() {
    let plan = plan_of(&topology());
    let labels: Vec<&str> = plan.nodes.iter().map(|node| node.label.as_str()).collect();
    assert_eq!(
        labels,
        vec![
            "source clicks",
            "filter",
            "key_by page",
            "window tumbling 10000 ms, count",
            "materialize clicks",
            "window tumbling 10000 ms, exact sum",
            "materialize time_on_page",
            "map",
            "to pages",
        ]
    );
    assert_eq!(plan.nodes[2].inputs, vec![1]);
    assert_eq!(plan.nodes[7].inputs, vec![0]);
    assert_eq!(plan.sources[0].event_time, EventTimeKind::Payload);
    assert_eq!(plan.sources[0].grace_ms, 2_000);
    assert_eq!(plan.views[0].kind, ViewKind::Tumbling { size_ms: 10_000 });
    assert_eq!(plan.views[0].key, "page");
    assert_eq!(plan.views[1].value, serde_json::json!("number"));
    assert_eq!(
        plan.topics(),
        vec![
            "clicks",
            "clicks.dlq",
            "clicks.late",
            "monitoring-events",
            "pages"
        ]
    );
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Payment {
    account: String,
    at: i64,
    amount: f64,
}

/// Payments of wildly different sizes, whose plain `f64` total depends on the order of
/// addition, for three accounts over four partitions.
fn payments() -> (crate::testkit::MemoryInput, BTreeMap<String, i128>) {
    let mut input = crate::testkit::MemoryInput::default();
    let mut exact: BTreeMap<String, i128> = BTreeMap::new();
    let mut state: u64 = 99;
    for index in 0..2_000_i64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Multiples of 2^-10 up to 2^52 in size: an i128 of 2^-10 units sums them exactly.
        let magnitude = 1_i64 << (state % 62);
        let units = (state as i64 >> 2) % magnitude;
        let amount = units as f64 / 1024.0;
        let account = format!("account_{}", index % 3);
        *exact.entry(account.clone()).or_default() += (amount * 1024.0) as i128;
        let payment = Payment {
            account,
            at: 1_000 * index,
            amount,
        };
        input.push(
            "payments",
            (state % 4) as usize,
            crate::testkit::MemoryRecord {
                key: Vec::new(),
                payload: serde_json::to_vec(&payment).expect("encodes"),
                timestamp: payment.at,
                watermark_only: false,
                headers: Vec::new(),
            },
        );
    }
    (input, exact)
}

fn totals_of(run: &crate::testkit::CompletedRun) -> BTreeMap<String, u64> {
    let mut totals = BTreeMap::new();
    let store = run.state.window_store("totals").expect("view");
    store
        .for_each(|key, entry| {
            let value: f64 = serde_json::from_slice(&entry.value_json).expect("a number");
            let key = String::from_utf8_lossy(key).into_owned();
            assert!(
                totals.insert(key, value.to_bits()).is_none(),
                "one window per key"
            );
        })
        .expect("read");
    totals
}

#[test]
fn a_float_sum_is_exact_and_the_same_for_every_worker_count_and_tick() {
    let topology: TopologyFn = Arc::new(|topology| {
        topology
            .source(Source::<Payment>::topic("payments").event_time(|payment| payment.at))
            .key_by("account", |payment| payment.account.clone())
            .window(TumblingWindows::of(Duration::from_secs(86_400)))
            .sum(|payment| payment.amount)
            .materialize("totals");
    });
    let (input, exact) = payments();
    let want: BTreeMap<String, u64> = exact
        .iter()
        .map(|(account, units)| (account.clone(), (*units as f64 / 1024.0).to_bits()))
        .collect();
    for (workers, tick_ms) in [(1, 1), (2, 100), (3, 60_000)] {
        let dir = tempfile::tempdir().expect("state dir");
        let run = crate::testkit::run_to_completion(
            Arc::clone(&topology),
            input.clone(),
            dir.path(),
            workers,
            tick_ms,
        )
        .expect("run");
        assert_eq!(
            totals_of(&run),
            want,
            "{workers} workers, {tick_ms} ms ticks"
        );
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    at: i64,
    value: f64,
}

const READING_WINDOW_MS: i64 = 10_000;

/// Readings of five sensors over three partitions, in event-time order per partition,
/// then one far-future reading of a sixth sensor on every partition, which moves the
/// watermark past every window of the others.
fn readings() -> (crate::testkit::MemoryInput, Vec<Reading>) {
    let mut input = crate::testkit::MemoryInput::default();
    let mut all = Vec::new();
    let mut state: u64 = 7;
    let push = |input: &mut crate::testkit::MemoryInput, partition: usize, reading: Reading| {
        input.push(
            "readings",
            partition,
            crate::testkit::MemoryRecord {
                key: Vec::new(),
                payload: serde_json::to_vec(&reading).expect("encodes"),
                timestamp: reading.at,
                watermark_only: false,
                headers: Vec::new(),
            },
        );
    };
    for index in 0..600_i64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let reading = Reading {
            sensor: format!("sensor_{}", state % 5),
            at: 100 * index,
            // Quarters below 1000, with zeros of both signs: sums are exact in any order.
            value: match state % 11 {
                0 => 0.0,
                1 => -0.0,
                other => ((state >> 8) % 4000) as f64 / 4.0 - 500.0 + other as f64,
            },
        };
        all.push(reading.clone());
        push(&mut input, (state % 3) as usize, reading);
    }
    for partition in 0..3 {
        push(
            &mut input,
            partition,
            Reading {
                sensor: "sentinel".into(),
                at: 10_000_000,
                value: 0.0,
            },
        );
    }
    (input, all)
}

/// Per sensor and window start: count, min, max (in total order) and mean.
fn reference(readings: &[Reading]) -> BTreeMap<(String, i64), (u64, f64, f64, f64)> {
    let mut groups: BTreeMap<(String, i64), Vec<f64>> = BTreeMap::new();
    for reading in readings {
        let start = reading.at - reading.at.rem_euclid(READING_WINDOW_MS);
        groups
            .entry((reading.sensor.clone(), start))
            .or_default()
            .push(reading.value);
    }
    groups
        .into_iter()
        .map(|(window, values)| {
            let least = values
                .iter()
                .copied()
                .min_by(f64::total_cmp)
                .unwrap_or(f64::NAN);
            let most = values
                .iter()
                .copied()
                .max_by(f64::total_cmp)
                .unwrap_or(f64::NAN);
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            (window, (values.len() as u64, least, most, mean))
        })
        .collect()
}

fn view_of(
    run: &crate::testkit::CompletedRun,
    view: &str,
) -> BTreeMap<(String, i64), (bool, serde_json::Value)> {
    let mut windows = BTreeMap::new();
    run.state
        .window_store(view)
        .expect("view")
        .for_each(|key, entry| {
            let value = serde_json::from_slice(&entry.value_json).expect("JSON");
            let key = String::from_utf8_lossy(key).into_owned();
            windows.insert((key, entry.start), (entry.is_final, value));
        })
        .expect("read");
    windows
}

#[test]
fn count_min_max_avg_and_emit_final_match_a_reference() {
    let topology: TopologyFn = Arc::new(|topology| {
        let windowed = topology
            .source(Source::<Reading>::topic("readings").event_time(|reading| reading.at))
            .key_by("sensor", |reading| reading.sensor.clone())
            .window(TumblingWindows::of(Duration::from_millis(
                READING_WINDOW_MS as u64,
            )));
        windowed.count().materialize("counts");
        windowed.min(|reading| reading.value).materialize("least");
        windowed.max(|reading| reading.value).materialize("most");
        windowed.avg(|reading| reading.value).materialize("mean");
        let final_counts = windowed.count().emit_final();
        final_counts.materialize("final_counts");
        final_counts.changes().to("final-counts");
    });
    let (input, all) = readings();
    let want = reference(&all);
    let dir = tempfile::tempdir().expect("state dir");
    let run = crate::testkit::run_to_completion(topology, input, dir.path(), 2, 100).expect("run");

    let (counts, least, most, mean) = (
        view_of(&run, "counts"),
        view_of(&run, "least"),
        view_of(&run, "most"),
        view_of(&run, "mean"),
    );
    for (window, (count, min, max, avg)) in &want {
        let context = format!("{window:?}");
        assert_eq!(
            counts[window],
            (true, serde_json::json!(count)),
            "{context}"
        );
        assert_eq!(
            least[window].1.as_f64().map(f64::to_bits),
            Some(min.to_bits()),
            "{context}"
        );
        assert_eq!(
            most[window].1.as_f64().map(f64::to_bits),
            Some(max.to_bits()),
            "{context}"
        );
        assert_eq!(
            mean[window].1.as_f64().map(f64::to_bits),
            Some(avg.to_bits()),
            "{context}"
        );
    }
    // The sentinels' window is still open: on update it shows, emitted final it does not.
    let sentinel = ("sentinel".to_string(), 10_000_000);
    assert_eq!(counts[&sentinel], (false, serde_json::json!(3)));
    let final_counts = view_of(&run, "final_counts");
    assert!(!final_counts.contains_key(&sentinel));
    let want_final: BTreeMap<(String, i64), (bool, serde_json::Value)> = want
        .iter()
        .map(|(window, (count, ..))| (window.clone(), (true, serde_json::json!(count))))
        .collect();
    assert_eq!(final_counts, want_final);

    // Downstream, emit final sends each closed window once, with its bounds and no old
    // value.
    let mut sent: BTreeMap<(String, i64), u64> = BTreeMap::new();
    for record in run.output.records("final-counts") {
        let change: serde_json::Value = serde_json::from_slice(&record.payload).expect("JSON");
        let start = change["window"]["start"].as_i64().expect("start");
        assert_eq!(
            change["window"]["end"].as_i64(),
            Some(start + READING_WINDOW_MS)
        );
        assert_eq!(change["is_final"], serde_json::json!(true));
        assert!(change["old"].is_null(), "{change}");
        let key = (String::from_utf8_lossy(&record.key).into_owned(), start);
        assert!(
            sent.insert(key, change["new"].as_u64().expect("count"))
                .is_none()
        );
    }
    let want_sent: BTreeMap<(String, i64), u64> = want
        .iter()
        .map(|(window, (count, ..))| (window.clone(), *count))
        .collect();
    assert_eq!(sent, want_sent);
}

/// One partition of readings a second apart, with late readings in between: the input of
/// the late-policy test. The first `prefix` records are read by a first run.
fn late_script(prefix: Option<usize>) -> crate::testkit::MemoryInput {
    let mut input = crate::testkit::MemoryInput::default();
    let mut push = |at_s: i64| {
        let reading = Reading {
            sensor: "s".into(),
            at: at_s * 1_000,
            value: 1.0,
        };
        input.push(
            "readings",
            0,
            crate::testkit::MemoryRecord {
                key: Vec::new(),
                payload: serde_json::to_vec(&reading).expect("encodes"),
                timestamp: reading.at,
                watermark_only: false,
                headers: Vec::new(),
            },
        );
    };
    (0..=25).for_each(&mut push);
    // Watermark 25 s: [0, 10) closed at 10 s, kept for corrections until 40 s.
    push(5);
    (26..=45).for_each(&mut push);
    // Watermark 45 s: [0, 10) no longer takes records, [10, 20) does until 50 s.
    push(15);
    push(3);
    (46..=60).for_each(&mut push);
    if let Some(prefix) = prefix {
        for partition in input.topics.values_mut().flatten() {
            std::sync::Arc::make_mut(partition).truncate(prefix);
        }
    }
    input
}

#[test]
fn late_records_are_dropped_side_output_or_update_their_window() {
    use crate::window::LatePolicy;
    let topology: TopologyFn = Arc::new(|topology| {
        let readings = topology
            .source(
                Source::<Reading>::topic("readings")
                    .event_time(|reading| reading.at)
                    .grace(Duration::ZERO),
            )
            .key_by("sensor", |reading| reading.sensor.clone())
            .window(TumblingWindows::of(Duration::from_secs(10)));
        readings
            .on_late(LatePolicy::Drop)
            .count()
            .materialize("dropped");
        readings
            .on_late(LatePolicy::SideOutput("late-readings".into()))
            .count()
            .materialize("side");
        let updated = readings
            .on_late(LatePolicy::Update {
                allowed_lateness: Duration::from_secs(30),
            })
            .count();
        updated.materialize("updated");
        updated.changes().to("updated-changes");
        updated.emit_final().changes().to("updated-finals");
    });
    // A first run reads up to 25 s and stops: its end closes [0, 10) and [10, 20). The
    // second continues from its checkpoint, with the closed windows kept for corrections
    // restored from state, and reads the late records.
    let dir = tempfile::tempdir().expect("state dir");
    crate::testkit::run_to_completion(
        Arc::clone(&topology),
        late_script(Some(26)),
        dir.path(),
        2,
        100,
    )
    .expect("first run");
    let run = crate::testkit::resume_to_completion(topology, late_script(None), dir.path(), 2, 100)
        .expect("second run");
    let count =
        |view: &str, start_s: i64| view_of(&run, view)[&("s".to_string(), start_s * 1_000)].clone();
    for view in ["dropped", "side"] {
        assert_eq!(count(view, 0), (true, serde_json::json!(10)), "{view}");
        assert_eq!(count(view, 10), (true, serde_json::json!(10)), "{view}");
    }
    assert_eq!(count("updated", 0), (true, serde_json::json!(11)));
    assert_eq!(count("updated", 10), (true, serde_json::json!(11)));
    assert_eq!(count("updated", 20), (true, serde_json::json!(10)));

    // Drop: all three to readings.late; update: only the one past its lateness.
    let late_at = |topic: &str| -> Vec<i64> {
        let mut times: Vec<i64> = run
            .output
            .records(topic)
            .iter()
            .map(|record| {
                serde_json::from_slice::<Reading>(&record.payload)
                    .expect("a reading")
                    .at
                    / 1_000
            })
            .collect();
        times.sort();
        times
    };
    // Each late reading once per destination, as it was read, with the views it missed:
    // the one at 3 s came when [0, 10) had passed its allowed lateness too.
    let missed = |topic: &str| -> Vec<(i64, String)> {
        let mut missed: Vec<(i64, String)> = run
            .output
            .records(topic)
            .iter()
            .map(|record| {
                let at = serde_json::from_slice::<Reading>(&record.payload)
                    .expect("a reading")
                    .at
                    / 1_000;
                let views = record
                    .headers
                    .iter()
                    .find(|(name, _)| name == "sluice-late-views")
                    .map(|(_, views)| String::from_utf8_lossy(views).into_owned())
                    .unwrap_or_default();
                (at, views)
            })
            .collect();
        missed.sort();
        missed
    };
    assert_eq!(late_at("late-readings"), vec![3, 5, 15]);
    assert_eq!(late_at("readings.late"), vec![3, 5, 15]);
    let views = |list: [(i64, &str); 3]| -> Vec<(i64, String)> {
        list.iter()
            .map(|(at, views)| (*at, views.to_string()))
            .collect()
    };
    assert_eq!(
        missed("readings.late"),
        views([(3, "dropped,updated"), (5, "dropped"), (15, "dropped")])
    );
    assert_eq!(
        missed("late-readings"),
        views([(3, "side"), (5, "side"), (15, "side")])
    );
    assert_eq!(crate::status::EngineStatus::count(&run.status.late), 3);
    let late_by: BTreeMap<String, u64> = run
        .status
        .late_by()
        .into_iter()
        .map(|((view, topic, partition), count)| {
            assert_eq!((topic.as_str(), partition), ("readings", 0));
            (view, count)
        })
        .collect();
    let mut counts: Vec<u64> = late_by.values().copied().collect();
    counts.sort();
    assert_eq!(counts, vec![1, 3, 3], "{late_by:?}");

    // The corrections, in the changes and in emit-final output.
    let changes = |topic: &str| -> Vec<serde_json::Value> {
        run.output
            .records(topic)
            .iter()
            .map(|record| serde_json::from_slice(&record.payload).expect("JSON"))
            .filter(|change: &serde_json::Value| change["correction"] == serde_json::json!(true))
            .collect()
    };
    for topic in ["updated-changes", "updated-finals"] {
        let corrections: Vec<(i64, u64, u64)> = changes(topic)
            .iter()
            .map(|change| {
                assert_eq!(change["is_final"], serde_json::json!(true));
                (
                    change["window"]["start"].as_i64().unwrap_or(-1),
                    change["old"].as_u64().unwrap_or(0),
                    change["new"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        assert_eq!(corrections, vec![(0, 10, 11), (10_000, 10, 11)], "{topic}");
    }
    // Emit final sent each window's first final (the rest; the first two were sent by the
    // first run) without an old value.
    let first_finals = run
        .output
        .records("updated-finals")
        .iter()
        .map(|record| serde_json::from_slice::<serde_json::Value>(&record.payload).expect("JSON"))
        .filter(|change| change["correction"] == serde_json::json!(false))
        .all(|change| change["old"].is_null());
    assert!(first_finals);
}

#[test]
fn a_record_late_on_its_partition_joins_a_window_that_is_still_open_elsewhere() {
    use crate::testkit::TopologyTestDriver;
    use crate::window::LatePolicy;
    let topology: TopologyFn = Arc::new(|topology| {
        topology
            .source(
                Source::<Reading>::topic("readings")
                    .event_time(|reading| reading.at)
                    .grace(Duration::ZERO),
            )
            .key_by("sensor", |reading| reading.sensor.clone())
            .window(TumblingWindows::of(Duration::from_secs(1)))
            .on_late(LatePolicy::Update {
                allowed_lateness: Duration::from_millis(400),
            })
            .count()
            .materialize("counts");
    });
    let mut driver = TopologyTestDriver::new(topology)
        .expect("driver")
        .with_partitions("readings", 2);
    let mut pipe = |partition: usize, sensor: &str, at: i64| {
        let reading = Reading {
            sensor: sensor.into(),
            at,
            value: 1.0,
        };
        driver
            .pipe_input_to("readings", partition, sensor, &reading, at)
            .expect("piped");
    };
    // Partition 0 is at 4.3 s: its reading of `a` at 3.5 s is late there, within the
    // allowed lateness. Partition 1 is at 3.2 s, so [3 s, 4 s) is still open, and its
    // reading of `a` is on time.
    pipe(0, "b", 4_300);
    pipe(0, "a", 3_500);
    pipe(1, "a", 3_200);
    driver.advance_watermark(10_000);
    let view = driver.view("counts").expect("view");
    let a = view
        .as_array()
        .expect("windows")
        .iter()
        .find(|window| window["key"] == "a" && window["start"] == 3_000)
        .cloned()
        .expect("a's window");
    assert_eq!(a["value"], serde_json::json!(2), "{view}");
    assert_eq!(a["final"], serde_json::json!(true));
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Price {
    item: String,
    cents: u32,
    at: i64,
}

/// What a table of prices sends for each change: the item, and the prices before and after.
fn price_changes() -> TopologyFn {
    Arc::new(|topology| {
        topology
            .table(
                "item",
                Source::<Price>::topic("prices").event_time(|price| price.at),
            )
            .changes()
            .map(|change| {
                (
                    change.old.map(|price| price.cents),
                    change.new.map(|price| price.cents),
                )
            })
            .to("price-changes");
    })
}

#[test]
fn a_tables_changes_carry_the_value_before_and_after_and_skip_what_changed_nothing() {
    let mut driver = crate::testkit::TopologyTestDriver::new(price_changes()).expect("driver");
    let price = |item: &str, cents, at| Price {
        item: item.into(),
        cents,
        at,
    };
    for (record, at) in [
        (price("tea", 100, 1), 1),
        (price("tea", 100, 1), 2), // the same record again: no change
        (price("jam", 300, 3), 3),
        (price("tea", 120, 4), 4),
    ] {
        let key = record.item.clone();
        driver
            .pipe_input("prices", &key, &record, at)
            .expect("pipe");
    }
    driver.pipe_tombstone("prices", 0, "jam", 5);
    // Read after a restore from the step's checkpoint: the table's state came back.
    let first = driver.read_output("price-changes").expect("read");
    driver.pipe_tombstone("prices", 0, "tea", 6);
    driver.pipe_tombstone("prices", 0, "tea", 7); // already gone: no change
    let second = driver.read_output("price-changes").expect("read");
    let sent: Vec<(String, serde_json::Value)> = first
        .iter()
        .chain(&second)
        .map(|event| (event.key.clone(), event.value.clone()))
        .collect();
    assert_eq!(
        sent,
        vec![
            ("tea".to_string(), serde_json::json!([null, 100])),
            ("jam".to_string(), serde_json::json!([null, 300])),
            ("tea".to_string(), serde_json::json!([100, 120])),
            ("jam".to_string(), serde_json::json!([300, null])),
            ("tea".to_string(), serde_json::json!([120, null])),
        ]
    );
    let plan = plan_of(&price_changes());
    assert_eq!(plan.state_stores, vec!["state.upsert#1".to_string()]);
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Line {
    item: String,
    quantity: u32,
    at: i64,
}

/// Order lines upserted by order, regrouped by item: the quantity each item has in the
/// current lines.
fn quantity_per_item() -> TopologyFn {
    Arc::new(|topology| {
        topology
            .table(
                "order_id",
                Source::<Line>::topic("lines").event_time(|line| line.at),
            )
            .group_by("item", |_order, line| (line.item.clone(), line.quantity))
            .aggregate(|| 0u32, |total, quantity| *total += quantity)
            .materialize("quantity_per_item");
    })
}

#[test]
fn a_regrouped_table_moves_a_rows_value_between_groups_as_the_row_changes() {
    let mut driver = crate::testkit::TopologyTestDriver::new(quantity_per_item()).expect("driver");
    let line = |item: &str, quantity, at| Line {
        item: item.into(),
        quantity,
        at,
    };
    // The rows as a map beside the driver: the aggregates must be its sums per item.
    let mut rows: BTreeMap<&str, Line> = BTreeMap::new();
    let check = |driver: &mut crate::testkit::TopologyTestDriver, rows: &BTreeMap<&str, Line>| {
        let mut want = serde_json::Map::new();
        for line in rows.values() {
            let total = want
                .entry(line.item.clone())
                .or_insert(serde_json::json!(0u32));
            *total = serde_json::json!(total.as_u64().unwrap_or(0) + u64::from(line.quantity));
        }
        assert_eq!(
            driver.view("quantity_per_item").expect("view"),
            serde_json::Value::Object(want)
        );
    };
    for (order, record) in [
        ("o1", line("tea", 2, 1)),
        ("o2", line("tea", 3, 2)),
        ("o3", line("jam", 1, 3)),
        ("o1", line("jam", 5, 4)), // o1 moves from tea to jam
    ] {
        driver
            .pipe_input("lines", order, &record, record.at)
            .expect("pipe");
        rows.insert(order, record);
    }
    check(&mut driver, &rows);
    // Across a restore: o2 is deleted, o3 changes its quantity.
    driver.pipe_tombstone("lines", 0, "o2", 5);
    rows.remove("o2");
    let o3 = line("jam", 4, 6);
    driver.pipe_input("lines", "o3", &o3, 6).expect("pipe");
    rows.insert("o3", o3);
    // Tea's rows all left (o1 moved, o2 was deleted): it has no aggregate any more.
    assert!(!rows.values().any(|line| line.item == "tea"));
    check(&mut driver, &rows);
    let plan = plan_of(&quantity_per_item());
    assert_eq!(
        plan.state_stores,
        vec![
            "state.upsert#1".to_string(),
            "state.aggregate_rows#3".to_string(),
            "state.aggregate#3".to_string()
        ]
    );
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sale {
    item: String,
    quantity: u32,
    at: i64,
}

/// Sales joined with the price table as of each sale's event time, both kept (left join)
/// and only those with a price (inner join).
fn priced_sales() -> TopologyFn {
    Arc::new(|topology| {
        let prices = topology.table(
            "item",
            Source::<Price>::topic("prices").event_time(|price| price.at),
        );
        let sales = topology
            .source(Source::<Sale>::topic("sales").event_time(|sale| sale.at))
            .key_by("item", |sale| sale.item.clone());
        sales
            .left_join_table(&prices, "price as of the sale", |sale, price| {
                (sale.at, sale.quantity, price.map(|price| price.cents))
            })
            .to("priced-sales");
        sales
            .join_table(&prices, "price as of the sale, if any", |sale, price| {
                (sale.at, sale.quantity * price.cents)
            })
            .to("sale-amounts");
    })
}

/// What `topic` received since the last read, in event-time order.
fn sent_in_time_order(
    driver: &mut crate::testkit::TopologyTestDriver,
    topic: &str,
) -> Vec<(String, serde_json::Value)> {
    let mut sent: Vec<(String, serde_json::Value)> = driver
        .read_output(topic)
        .expect("read")
        .into_iter()
        .map(|event| (event.key, event.value))
        .collect();
    sent.sort_by_key(|(_, value)| value[0].as_i64());
    sent
}

#[test]
fn a_stream_table_join_sees_each_row_as_it_stood_at_the_records_event_time() {
    use serde_json::json;
    let mut driver = crate::testkit::TopologyTestDriver::new(priced_sales()).expect("driver");
    let sale = |item: &str, quantity, at| Sale {
        item: item.into(),
        quantity,
        at,
    };
    let price = |cents, at| Price {
        item: "tea".into(),
        cents,
        at,
    };
    // The sales are read before the prices: only event time decides what each meets.
    for record in [
        sale("tea", 1, 5_000),
        sale("tea", 2, 20_000),
        sale("tea", 3, 30_000), // the same instant as the second price: the table came first
        sale("tea", 4, 40_000),
        sale("jam", 5, 45_000), // jam never has a price
        sale("tea", 6, 60_000), // after tea's row was deleted
    ] {
        let key = record.item.clone();
        driver
            .pipe_input("sales", &key, &record, record.at)
            .expect("pipe");
    }
    driver
        .pipe_input("prices", "tea", &price(100, 10_000), 10_000)
        .expect("pipe");
    driver
        .pipe_input("prices", "tea", &price(120, 30_000), 30_000)
        .expect("pipe");
    driver.pipe_tombstone("prices", 0, "tea", 50_000);
    driver.advance_watermark(100_000);
    assert_eq!(
        sent_in_time_order(&mut driver, "priced-sales"),
        vec![
            ("tea".to_string(), json!([5_000, 1, null])),
            ("tea".to_string(), json!([20_000, 2, 100])),
            ("tea".to_string(), json!([30_000, 3, 120])),
            ("tea".to_string(), json!([40_000, 4, 120])),
            ("jam".to_string(), json!([45_000, 5, null])),
            ("tea".to_string(), json!([60_000, 6, null])),
        ]
    );
    assert_eq!(
        sent_in_time_order(&mut driver, "sale-amounts"),
        vec![
            ("tea".to_string(), json!([20_000, 200])),
            ("tea".to_string(), json!([30_000, 360])),
            ("tea".to_string(), json!([40_000, 480])),
        ]
    );

    // A step restored from the checkpoint: the join's rows came back with it.
    driver
        .pipe_input("prices", "tea", &price(200, 200_000), 200_000)
        .expect("pipe");
    driver
        .pipe_input("sales", "tea", &sale("tea", 7, 210_000), 210_000)
        .expect("pipe");
    driver.advance_watermark(300_000);
    assert_eq!(
        sent_in_time_order(&mut driver, "priced-sales"),
        vec![("tea".to_string(), json!([210_000, 7, 200]))]
    );
}

#[test]
fn positions_of_nested_expansions_never_collide() {
    use super::stream::expanded_position;
    use std::collections::BTreeSet;
    // Straight from a source, an expansion's positions are its own.
    assert_eq!(
        (0..5)
            .map(|index| expanded_position(0, index))
            .collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    // Expanding the outputs of an expansion (and those again) gives distinct positions.
    let mut seen = BTreeSet::new();
    for first in 0..40u32 {
        for second in 0..40u32 {
            let once = expanded_position(0, first);
            assert!(
                seen.insert(expanded_position(once, second)),
                "{first} {second}"
            );
        }
    }
}
