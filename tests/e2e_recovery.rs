//! Crash recovery and replay against Apache Kafka (KRaft, `scripts/local-kafka.sh`), with
//! `shop` as a separate process:
//! - `kill -9` in the middle of a run, then a restart: the restart reads only what the last
//!   checkpoint did not hold, and every view equals the independent computation (nothing
//!   counted twice, nothing lost);
//! - a restart on state another topology wrote is refused with the replay command named;
//! - `shop replay --from-beginning --yes` rebuilds every view byte for byte, with the same
//!   worker count and with another, and writes no output the first runs had already
//!   written.
//!
//! The output topics are read back after crashes in `e2e_crash.rs`.

mod harness;

use harness::kafka::Kafka;
use harness::orders::{
    add_sentinels, all_views, assert_views, expected, produce_orders, wait_for_views,
};
use harness::{
    ShopPlace, ShopProcess, checkpointed, free_port, get_json, orders_processed, shop_binary,
    wait_for,
};
use serde_json::Value;

const EVENTS: u64 = 8_000;
const SEED: u64 = 23;

/// Rewrites the state's owner record as if a different topology had written the state.
fn claim_for_another_topology(state_dir: &std::path::Path) {
    let db = sluice_state::StateDb::open(state_dir, []).expect("the stopped run's state opens");
    let meta = db.meta().expect("meta store");
    let json = meta.get(b"topology").expect("readable").expect("claimed");
    let mut claim: Value = serde_json::from_slice(&json).expect("JSON claim");
    claim["fingerprint"] = Value::from("another topology");
    meta.put(b"topology", &serde_json::to_vec(&claim).expect("encodes"))
        .expect("written");
}

#[test]
fn a_killed_run_recovers_exactly_and_a_replay_reproduces_every_view() {
    let kafka = Kafka::start();
    let brokers = kafka.brokers();
    let shop = shop_binary();
    produce_orders(&shop, &brokers, EVENTS, SEED);
    let state = tempfile::tempdir().expect("state dir");
    let state_dir = state.path().display().to_string();
    let http_port = free_port();
    let http = format!("127.0.0.1:{http_port}");
    let base = format!("http://{http}");
    let place = ShopPlace {
        brokers: &brokers,
        state_dir: &state_dir,
        http: &http,
    };
    let run_args_with = |command: &str, workers: u16| place.args(command, workers);
    let run_args = |command: &str| run_args_with(command, 2);
    let spawn = |args: &[String]| ShopProcess::spawn(&shop, args);

    // The first run dies without warning once it has checkpointed part of the input.
    let mut first = spawn(&run_args("run"));
    let status = wait_for(&mut first, &base, "/status", |status| {
        checkpointed(status) > 0
    });
    first.kill_hard();
    let seen_before_kill = checkpointed(&status);

    // The restart continues from the last checkpoint (at or after the one seen).
    let mut second = spawn(&run_args("run"));
    let status = wait_for(&mut second, &base, "/status", |status| {
        checkpointed(status) == EVENTS as i64
    });
    let reread = orders_processed(&status) as i64;
    assert!(
        reread <= EVENTS as i64 - seen_before_kill,
        "the restart read {reread} records, but {seen_before_kill} of {EVENTS} were checkpointed"
    );
    let mut want = expected(EVENTS, SEED);
    add_sentinels(&brokers, &mut want);
    assert_views(&mut second, &base, &want);
    wait_for(&mut second, &base, "/status", |status| {
        checkpointed(status) == EVENTS as i64 + 4
    });
    let before_replay = all_views(&base);
    second.interrupt_and_wait();

    // State that another topology wrote is refused. (The binary has one topology, so the
    // claim is rewritten as another topology's would be.)
    claim_for_another_topology(state.path());
    let refused = std::process::Command::new(&shop)
        .args(run_args("run"))
        .output()
        .expect("shop runs");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("shop replay --from-beginning"), "{stderr}");

    // A replay rebuilds every view exactly and writes nothing the earlier runs wrote.
    let mut replay_args = run_args("replay");
    replay_args.extend(["--from-beginning".to_string(), "--yes".to_string()]);
    let mut replay = spawn(&replay_args);
    let status = wait_for(&mut replay, &base, "/status", |status| {
        checkpointed(status) == EVENTS as i64 + 4
    });
    // Every output the replay made had been written before, so none was sent.
    let suppressed = status["suppressed"].as_u64().unwrap_or(0);
    assert_eq!(status["emitted"].as_u64(), Some(suppressed), "{status}");
    assert!(suppressed >= want.lines as u64, "{status}");
    wait_for_views(&base, &before_replay);
    assert_eq!(get_json(&base, "/views").0, 200);
    replay.interrupt_and_wait();

    // Again with three workers instead of two: keys hash to other workers and partitions
    // interleave differently, and every view is still the same, byte for byte.
    let mut replay_args = run_args_with("replay", 3);
    replay_args.extend(["--from-beginning".to_string(), "--yes".to_string()]);
    let mut replay = spawn(&replay_args);
    wait_for(&mut replay, &base, "/status", |status| {
        checkpointed(status) == EVENTS as i64 + 4
    });
    wait_for_views(&base, &before_replay);
    replay.interrupt_and_wait();
}
