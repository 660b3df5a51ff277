//! Crashes at random points: `shop run` killed with SIGKILL while it catches up, at kill
//! points drawn from a seed the test prints, so that a failure can be replayed with
//! `SLUICE_CRASH_SEED`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::orders::{Expected, add_sentinels, assert_views, expected};
use super::{
    DEADLINE, ShopProcess, checkpointed, get_json, order_partitions, orders_processed, wait_for,
    wait_while_progressing,
};

/// A small deterministic generator for the kill points (xorshift64*).
pub struct KillPoints(u64);

impl KillPoints {
    /// Kill points from `SLUICE_CRASH_SEED`, or from the clock (printed, to replay).
    pub fn from_env() -> Self {
        let seed = std::env::var("SLUICE_CRASH_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |since| since.as_nanos() as u64 | 1)
            });
        eprintln!("kill points from SLUICE_CRASH_SEED={seed}");
        KillPoints(seed)
    }

    /// The next number below `below`.
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % below.max(1)
    }
}

/// How many orders and kills a crash test runs: its own defaults, or `SLUICE_CRASH_EVENTS`
/// and `SLUICE_KILLS` (`scripts/faults.sh` sets them for its long runs).
pub fn crash_scale(events: u64, kills: usize) -> (u64, usize) {
    let read = |name: &str| {
        std::env::var(name).ok().map(|value| {
            value
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{name}={value} is not a count"))
        })
    };
    let events = read("SLUICE_CRASH_EVENTS").unwrap_or(events);
    let kills = read("SLUICE_KILLS").map_or(kills, |kills| kills as usize);
    eprintln!("{kills} kills over {events} orders");
    (events, kills)
}

/// How far a run has read: the sum of its `order-events` partitions' next offsets.
fn read_position(status: &Value) -> i64 {
    order_partitions(status)
        .iter()
        .map(|partition| partition["offset"].as_i64().unwrap_or(0))
        .sum()
}

/// Runs `shop` with `args` `kills` times over `events` preloaded orders, killing each run
/// with SIGKILL: once it has checkpointed past a random point of its share of the input
/// (so the crashes make progress), after a random number (below `read_on`) of further
/// records, mid-stride. Returns where each died: (checkpointed, read by that run).
pub fn kill_while_catching_up(
    shop: &Path,
    args: &[String],
    base: &str,
    (events, kills, read_on): (u64, usize, u64),
    kill_points: &mut KillPoints,
) -> Vec<(i64, u64)> {
    let mut died_at = Vec::new();
    for kill in 0..kills {
        let mut run = ShopProcess::spawn(shop, args);
        let slice = events / (kills as u64 + 1);
        let target = slice * kill as u64 + kill_points.next(slice);
        let status = wait_while_progressing(&mut run, base, |status| {
            checkpointed(status) >= target as i64 && status["processed"].as_u64().is_some()
        });
        let read_before = orders_processed(&status);
        let more = kill_points.next(read_on);
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (_, status) = get_json(base, "/status");
            let processed = orders_processed(&status);
            if processed >= read_before + more
                || read_position(&status) >= events as i64
                || Instant::now() >= deadline
            {
                died_at.push((checkpointed(&status), processed));
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        run.kill_hard();
    }
    eprintln!("killed at (checkpointed, read by that run): {died_at:?}");
    died_at
}

/// After the crashes: one more run, on the same state, reads to the end of the `events`
/// orders generated with `seed`; sentinels then close the last windows, every view is
/// checked against the independent computation, and the run stops cleanly once it has
/// checkpointed the sentinels too. Returns what the views were checked against.
pub fn finish_and_check_views(
    shop: &Path,
    args: &[String],
    (base, brokers): (&str, &str),
    (events, seed): (u64, u64),
) -> Expected {
    let mut last = ShopProcess::spawn(shop, args);
    let mut want = expected(events, seed);
    // The last run may have most of a partition to read (the broker serves partitions in
    // turn, so the killed runs can leave one far behind), through the debug build.
    wait_while_progressing(&mut last, base, |status| {
        checkpointed(status) == events as i64
    });
    add_sentinels(brokers, &mut want);
    assert_views(&mut last, base, &want);
    wait_for(&mut last, base, "/status", |status| {
        checkpointed(status) == events as i64 + 4
    });
    last.interrupt_and_wait();
    want
}
