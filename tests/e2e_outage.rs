//! A broker outage in the middle of a catch-up, against Apache Kafka (KRaft,
//! `scripts/local-kafka.sh`): `shop run` reads 200,000 preloaded orders, and part-way
//! through the broker is killed (SIGKILL, as a crash), left down for longer than any
//! timeout of the engine's own (the output wait once gave up after 30 s and stopped the
//! engine for good), then started again on the same data. Meanwhile:
//! - `shop run` keeps running; `/healthz` answers 200 and `/readyz` 503, naming the
//!   brokers and the output that waits for them;
//! - the views keep answering, stamped with the last checkpoint.
//!
//! Once the broker is back, the engine resumes where it stood, `/readyz` turns 200, every
//! view equals the independent computation, and `inventory-events` holds every expected
//! event exactly once (the idempotent producer's retries write nothing twice).
//!
//! `SLUICE_OUTAGE_SECS` sets how long the output waits before the broker comes back
//! (default 35; the fault suite uses 60).

mod harness;

use std::time::{Duration, Instant};

use harness::kafka::Kafka;
use harness::orders::{add_sentinels, assert_views, distinct_ids, expected, order_line_ids};
use harness::{
    DEADLINE, PreloadedRun, ShopProcess, checkpointed, get_json, read_topic_until, wait_for,
    wait_while_progressing,
};
use serde_json::Value;

const EVENTS: u64 = 200_000;
const SEED: u64 = 37;

/// How long the output must wait for the stopped broker before it comes back.
fn outage() -> Duration {
    let seconds = std::env::var("SLUICE_OUTAGE_SECS")
        .ok()
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or(35);
    Duration::from_secs(seconds)
}

/// The holds `/readyz` names, such as `brokers` and `output`.
fn holds(ready: &Value) -> Vec<String> {
    ready["holds"]
        .as_array()
        .map(|holds| {
            holds
                .iter()
                .filter_map(|hold| hold["hold"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_broker_away_for_longer_than_any_timeout_is_waited_for_and_nothing_is_lost() {
    let mut kafka = Kafka::start();
    let brokers = kafka.brokers();
    let PreloadedRun {
        shop,
        state: _state,
        base,
        args,
    } = PreloadedRun::prepare(&brokers, EVENTS, SEED);
    let mut run = ShopProcess::spawn(&shop, &args);

    // Part-way through the backlog, with output in flight.
    let before = wait_while_progressing(&mut run, &base, |status| {
        checkpointed(status) >= EVENTS as i64 / 10
    });
    kafka.kill();
    let read = harness::orders_processed(&get_json(&base, "/status").1);
    assert!(
        read < EVENTS,
        "the whole backlog was read before the outage (checkpointed at {}): output may have been acknowledged",
        checkpointed(&before)
    );
    let stopped = Instant::now();

    // The records read before the stop make output that cannot be acknowledged: the
    // checkpoint that takes them waits, and says so.
    let ready = wait_for_ready_answer(&mut run, &base, |ready| {
        holds(ready).contains(&"output".to_string())
    });
    let output_waits_since = Instant::now();
    eprintln!(
        "output waits for the broker {} ms after the stop: {ready}",
        stopped.elapsed().as_millis()
    );
    let mut saw_brokers_hold = false;
    while output_waits_since.elapsed() < outage() {
        run.assert_running();
        let (code, health) = get_json(&base, "/healthz");
        assert_eq!(code, 200, "alive through the outage: {health}");
        let (code, ready) = get_json(&base, "/readyz");
        assert_eq!(code, 503, "unready through the outage: {ready}");
        saw_brokers_hold |= holds(&ready).contains(&"brokers".to_string());
        let (code, view) = get_json(&base, "/views/orders_per_minute");
        assert_eq!(code, 200, "views answer through the outage: {view}");
        assert!(
            view["checkpoint"]["id"].is_u64(),
            "stamped with the last checkpoint: {}",
            view["checkpoint"]
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(saw_brokers_hold, "/readyz never named the brokers");
    let waiting = get_json(&base, "/status").1;
    assert!(
        checkpointed(&waiting) < EVENTS as i64,
        "no checkpoint may pass output the broker has not acknowledged: {waiting}"
    );

    kafka.start_again();
    eprintln!(
        "the broker answers again {} s after the stop",
        stopped.elapsed().as_secs()
    );
    wait_while_progressing(&mut run, &base, |status| {
        checkpointed(status) == EVENTS as i64
    });
    wait_for_ready_answer(&mut run, &base, |ready| ready["status"] == "ready");

    let mut want = expected(EVENTS, SEED);
    add_sentinels(&brokers, &mut want);
    assert_views(&mut run, &base, &want);

    let written = want.lines + want.saga.event_count();
    let inventory = read_topic_until(&brokers, "inventory-events", |found| found.len() >= written);
    assert_eq!(order_line_ids(&inventory).len(), want.lines);
    assert_eq!(distinct_ids(&inventory).len(), written);
    assert_eq!(
        inventory.len(),
        written,
        "retries across the outage wrote a record twice"
    );
    let status = wait_for(&mut run, &base, "/status", |status| {
        checkpointed(status) == EVENTS as i64 + 4
    });
    assert_eq!(status["delivery_failures"], 0, "{status}");
    run.interrupt_and_wait();
}

/// Polls `/readyz` (which answers 503 while unready) until its answer satisfies `done`.
fn wait_for_ready_answer(
    run: &mut ShopProcess,
    base: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        run.assert_running();
        let (_, ready) = get_json(base, "/readyz");
        if done(&ready) {
            return ready;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never reached the expected state: {ready}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
