//! A reference-model property test of hopping, sliding and session windows, through the
//! `TopologyTestDriver`: random streams over several keys and partitions, out of order and
//! some late, piped in random chunks. For each kind, a count with emit on update (a view),
//! the same count with emit final (a topic), and a count that takes late records within an
//! allowed lateness (a view) must equal a brute-force reference of the rules below, which
//! knows nothing of slices, panes or merging:
//! - a partition's watermark is the largest event time it has seen minus the grace;
//! - a hopping window takes a record unless the window's end (plus the allowed lateness)
//!   is at or before the record's partition watermark; a record no window takes is late;
//! - a sliding or session record is on time when `t + 1` (plus the allowed lateness) is
//!   after its partition watermark;
//! - sliding windows are the windows ending at each record and those starting just after
//!   one that hold a record (Kafka Streams' `SlidingWindows`); sessions are the runs of
//!   records no more than the gap apart;
//! - a window is final once every partition's watermark has reached its end (a session's
//!   end plus the gap).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice::dsl::{
    HoppingWindows, LatePolicy, SessionWindows, SlidingWindows, Source, TopologyFn, Windowing,
};
use sluice::testkit::TopologyTestDriver;

const GRACE_MS: i64 = 300;
const PARTITIONS: usize = 3;
const ALLOWED_LATENESS_MS: i64 = 400;
const HOP_SIZE_MS: i64 = 1_000;
const HOP_ADVANCE_MS: i64 = 250;
const DIFFERENCE_MS: i64 = 500;
const GAP_MS: i64 = 300;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    at: i64,
}

/// The three counts of one window kind, named after `kind`.
fn counts<W: Windowing + Copy>(topology: &mut sluice::dsl::Topology<'_>, kind: &str, windows: W) {
    let windowed = topology
        .source(
            Source::<Reading>::topic(format!("{kind}-readings"))
                .event_time(|reading| reading.at)
                .grace(Duration::from_millis(GRACE_MS as u64)),
        )
        .key_by("sensor", |reading| reading.sensor.clone())
        .window(windows);
    windowed
        .on_late(LatePolicy::SideOutput(format!("{kind}-late")))
        .count()
        .materialize(&format!("{kind}-counts"));
    windowed
        .emit_final()
        .count()
        .changes()
        .to(&format!("{kind}-finals"));
    let updating = windowed.on_late(LatePolicy::Update {
        allowed_lateness: Duration::from_millis(ALLOWED_LATENESS_MS as u64),
    });
    updating.count().materialize(&format!("{kind}-updated"));
    // Final values and their corrections only (hopping windows then share slices).
    updating
        .emit_final()
        .count()
        .changes()
        .to(&format!("{kind}-corrected"));
}

fn topology() -> TopologyFn {
    Arc::new(|topology| {
        counts(
            topology,
            "hopping",
            HoppingWindows::of(Duration::from_millis(HOP_SIZE_MS as u64))
                .advance_by(Duration::from_millis(HOP_ADVANCE_MS as u64)),
        );
        counts(
            topology,
            "sliding",
            SlidingWindows::with_time_difference(Duration::from_millis(DIFFERENCE_MS as u64)),
        );
        counts(
            topology,
            "session",
            SessionWindows::with_inactivity_gap(Duration::from_millis(GAP_MS as u64)),
        );
    })
}

/// One piped reading.
#[derive(Debug, Clone)]
struct Piped {
    partition: usize,
    sensor: usize,
    at: i64,
}

/// Readings whose times drift forward with jitter backwards of up to twice the grace, and
/// with each partition behind the others by its own lag.
fn stream() -> impl Strategy<Value = (Vec<Piped>, Vec<usize>)> {
    let reading = (0..PARTITIONS, 0..3_usize, 0..150_i64, -600..0_i64);
    (
        proptest::collection::vec(reading, 1..100),
        proptest::collection::vec(1..40_usize, 1..8),
        proptest::collection::vec(0..900_i64, PARTITIONS),
    )
        .prop_map(|(raw, chunks, lags)| {
            let mut clock = 0;
            let readings = raw
                .into_iter()
                .map(|(partition, sensor, step, jitter)| {
                    clock += step;
                    Piped {
                        partition,
                        sensor,
                        at: (clock + jitter - lags[partition]).max(0),
                    }
                })
                .collect();
            (readings, chunks)
        })
}

/// A reading with the watermark of its partition once it was read.
struct Seen {
    sensor: String,
    at: i64,
    watermark: i64,
}

/// The readings with their watermarks, and the watermark of the whole stream at the end,
/// when every partition has been advanced to at least `floor`.
fn watermarks(readings: &[Piped], floor: i64) -> (Vec<Seen>, i64) {
    let mut max_seen: BTreeMap<usize, i64> = BTreeMap::new();
    let seen = readings
        .iter()
        .map(|reading| {
            let seen = max_seen.entry(reading.partition).or_insert(reading.at);
            *seen = (*seen).max(reading.at);
            Seen {
                sensor: format!("sensor_{}", reading.sensor),
                at: reading.at,
                watermark: (*seen - GRACE_MS).max(0),
            }
        })
        .collect();
    let stream_watermark = (0..PARTITIONS)
        .map(|partition| {
            max_seen
                .get(&partition)
                .map_or(0, |seen| (seen - GRACE_MS).max(0))
                .max(floor)
        })
        .min()
        .unwrap_or(0);
    (seen, stream_watermark)
}

/// Per (sensor, window start): the count and the window's end.
type Windows = BTreeMap<(String, i64), (u64, i64)>;

/// What the rules give for one kind: the windows, the windows with the allowed lateness,
/// and the late records.
struct Expected {
    windows: Windows,
    updated: Windows,
    late: Readings,
}

fn hopping(seen: &[Seen]) -> Expected {
    let count = |lateness: i64| {
        let mut windows = Windows::new();
        let mut late = Vec::new();
        for reading in seen {
            let mut taken = false;
            // Every multiple of the advance whose window holds the reading.
            let mut start = reading.at - reading.at.rem_euclid(HOP_ADVANCE_MS);
            while start + HOP_SIZE_MS > reading.at {
                if start + HOP_SIZE_MS + lateness > reading.watermark {
                    let entry = windows
                        .entry((reading.sensor.clone(), start))
                        .or_insert((0, start + HOP_SIZE_MS));
                    entry.0 += 1;
                    taken = true;
                }
                start -= HOP_ADVANCE_MS;
            }
            if !taken {
                late.push((reading.sensor.clone(), reading.at));
            }
        }
        (windows, late)
    };
    let (windows, late) = count(0);
    let (updated, _) = count(ALLOWED_LATENESS_MS);
    Expected {
        windows,
        updated,
        late,
    }
}

/// The on-time record times per sensor, for sliding and session windows, and the late
/// records.
/// Records as (sensor, event time).
type Readings = Vec<(String, i64)>;

fn on_time(seen: &[Seen], lateness: i64) -> (BTreeMap<String, Vec<i64>>, Readings) {
    let mut times: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut late = Vec::new();
    for reading in seen {
        if reading.at + 1 + lateness > reading.watermark {
            times
                .entry(reading.sensor.clone())
                .or_default()
                .push(reading.at);
        } else {
            late.push((reading.sensor.clone(), reading.at));
        }
    }
    for list in times.values_mut() {
        list.sort_unstable();
    }
    (times, late)
}

fn sliding(seen: &[Seen]) -> Expected {
    let count = |lateness: i64| {
        let (times, late) = on_time(seen, lateness);
        let mut windows = Windows::new();
        for (sensor, times) in &times {
            let holds = |start: i64| {
                times
                    .iter()
                    .filter(|time| start <= **time && **time <= start + DIFFERENCE_MS)
                    .count() as u64
            };
            for time in times {
                let ending = time - DIFFERENCE_MS;
                windows.insert((sensor.clone(), ending), (holds(ending), time + 1));
                let after = time + 1;
                if holds(after) > 0 {
                    windows.insert(
                        (sensor.clone(), after),
                        (holds(after), after + DIFFERENCE_MS + 1),
                    );
                }
            }
        }
        (windows, late)
    };
    let (windows, late) = count(0);
    let (updated, _) = count(ALLOWED_LATENESS_MS);
    Expected {
        windows,
        updated,
        late,
    }
}

fn session(seen: &[Seen]) -> Expected {
    let count = |lateness: i64| {
        let (times, late) = on_time(seen, lateness);
        let mut windows = Windows::new();
        for (sensor, times) in &times {
            let mut runs: Vec<(i64, i64, u64)> = Vec::new();
            for time in times {
                match runs.last_mut() {
                    Some((_, last, count)) if time - *last <= GAP_MS => {
                        *last = *time;
                        *count += 1;
                    }
                    _ => runs.push((*time, *time, 1)),
                }
            }
            for (first, last, count) in runs {
                windows.insert((sensor.clone(), first), (count, last + 1));
            }
        }
        (windows, late)
    };
    let (windows, late) = count(0);
    let (updated, _) = count(ALLOWED_LATENESS_MS);
    Expected {
        windows,
        updated,
        late,
    }
}

/// A view as (sensor, start) -> (count, end, final).
fn view(driver: &mut TopologyTestDriver, name: &str) -> BTreeMap<(String, i64), (u64, i64, bool)> {
    let view: Value = driver.view(name).expect("view");
    view.as_array()
        .into_iter()
        .flatten()
        .map(|window| {
            (
                (
                    window["key"].as_str().unwrap_or_default().to_string(),
                    window["start"].as_i64().unwrap_or(i64::MIN),
                ),
                (
                    window["value"].as_u64().unwrap_or(0),
                    window["end"].as_i64().unwrap_or(i64::MIN),
                    window["final"].as_bool().unwrap_or(false),
                ),
            )
        })
        .collect()
}

/// Final windows as (sensor, start) -> (count, end).
type Finals = BTreeMap<(String, i64), (u64, i64)>;

/// Reads the final windows of `kind` written since the last read into `finals`; false if
/// a window was sent final twice.
fn read_finals(driver: &mut TopologyTestDriver, kind: &str, finals: &mut Finals) -> bool {
    let mut once = true;
    for event in driver
        .read_output(&format!("{kind}-finals"))
        .expect("finals")
    {
        let window = &event.value["window"];
        let start = window["start"].as_i64().unwrap_or(i64::MIN);
        let end = window["end"].as_i64().unwrap_or(i64::MIN);
        let count = event.value["new"].as_u64().unwrap_or(0);
        once &= finals.insert((event.key, start), (count, end)).is_none();
    }
    once
}

/// Applies the final values and corrections of `kind` written since the last read to
/// `latest`, the value last sent for each window (a removed session leaves it).
fn read_corrected(driver: &mut TopologyTestDriver, kind: &str, latest: &mut Finals) {
    for event in driver
        .read_output(&format!("{kind}-corrected"))
        .expect("corrected")
    {
        let window = &event.value["window"];
        let start = window["start"].as_i64().unwrap_or(i64::MIN);
        if event.value["removed"].as_bool().unwrap_or(false) {
            latest.remove(&(event.key, start));
            continue;
        }
        let end = window["end"].as_i64().unwrap_or(i64::MIN);
        let count = event.value["new"].as_u64().unwrap_or(0);
        latest.insert((event.key, start), (count, end));
    }
}

fn read_late(driver: &mut TopologyTestDriver, kind: &str, late: &mut Readings) {
    for event in driver.read_output(&format!("{kind}-late")).expect("late") {
        late.push((
            event.value["sensor"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            event.value["at"].as_i64().unwrap_or(i64::MIN),
        ));
    }
}

const KINDS: [&str; 3] = ["hopping", "sliding", "session"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_window_kind_agrees_with_the_reference(
        (readings, chunks) in stream(),
        floor in 0..10_000_i64,
    ) {
        let mut driver = TopologyTestDriver::new(topology()).expect("driver");
        for kind in KINDS {
            driver = driver.with_partitions(&format!("{kind}-readings"), PARTITIONS);
        }
        let mut finals: BTreeMap<&str, Finals> = BTreeMap::new();
        let mut late: BTreeMap<&str, Readings> = BTreeMap::new();
        let mut corrected: BTreeMap<&str, Finals> = BTreeMap::new();
        let mut next = 0;
        for chunk in chunks.iter().cycle() {
            if next >= readings.len() {
                break;
            }
            for reading in &readings[next..(next + chunk).min(readings.len())] {
                let piped = Reading {
                    sensor: format!("sensor_{}", reading.sensor),
                    at: reading.at,
                };
                for kind in KINDS {
                    driver
                        .pipe_input_to(&format!("{kind}-readings"), reading.partition, &piped.sensor, &piped, piped.at)
                        .expect("piped");
                }
            }
            next += chunk;
            for kind in KINDS {
                prop_assert!(read_finals(&mut driver, kind, finals.entry(kind).or_default()), "{} sent a window final twice", kind);
                read_late(&mut driver, kind, late.entry(kind).or_default());
                read_corrected(&mut driver, kind, corrected.entry(kind).or_default());
            }
        }
        driver.advance_watermark(floor);
        let (seen, stream_watermark) = watermarks(&readings, floor);
        for (kind, want) in [("hopping", hopping(&seen)), ("sliding", sliding(&seen)), ("session", session(&seen))] {
            prop_assert!(read_finals(&mut driver, kind, finals.entry(kind).or_default()), "{} sent a window final twice", kind);
            read_late(&mut driver, kind, late.entry(kind).or_default());
            read_corrected(&mut driver, kind, corrected.entry(kind).or_default());
            // A session closes a gap after its last record.
            let closes_after = if kind == "session" { GAP_MS } else { 0 };
            let is_final = |end: i64| end + closes_after <= stream_watermark;
            let want_view: BTreeMap<(String, i64), (u64, i64, bool)> = want
                .windows
                .iter()
                .map(|(window, (count, end))| (window.clone(), (*count, *end, is_final(*end))))
                .collect();
            prop_assert_eq!(view(&mut driver, &format!("{kind}-counts")), want_view, "{} view", kind);
            let want_finals: Finals = want
                .windows
                .iter()
                .filter(|(_, (_, end))| is_final(*end))
                .map(|(window, value)| (window.clone(), *value))
                .collect();
            prop_assert_eq!(finals.get(kind).cloned().unwrap_or_default(), want_finals, "{} finals", kind);
            let updated: Finals = view(&mut driver, &format!("{kind}-updated"))
                .into_iter()
                .map(|(window, (count, end, _))| (window, (count, end)))
                .collect();
            prop_assert_eq!(updated, want.updated.clone(), "{} with allowed lateness", kind);
            let want_corrected: Finals = want
                .updated
                .iter()
                .filter(|(_, (_, end))| is_final(*end))
                .map(|(window, value)| (window.clone(), *value))
                .collect();
            prop_assert_eq!(
                corrected.get(kind).cloned().unwrap_or_default(),
                want_corrected,
                "{} final values and corrections", kind
            );
            let mut got_late = late.get(kind).cloned().unwrap_or_default();
            got_late.sort();
            let mut want_late = want.late;
            want_late.sort();
            prop_assert_eq!(got_late, want_late, "{} late records", kind);
        }
    }
}
