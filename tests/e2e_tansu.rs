//! End to end against a second implementation of the Kafka protocol: Tansu with SQLite
//! storage on a free loopback port, a cheap smoke test beside Apache Kafka (which the
//! other end-to-end tests use): a different broker catches different bugs. `shop produce`
//! publishes 10,000 orders, `shop run` runs as its own process, and every orders view is
//! checked over HTTP against an independent computation from the same deterministic
//! generator. The monitoring topology in the same dataflow reads the shop's own processing
//! reports back from Tansu. Ctrl-C must then stop `shop run` cleanly.

mod harness;

use harness::Tansu;
use harness::shop_run::shop_matches_an_independent_computation;

const EVENTS: u64 = 10_000;
const SEED: u64 = 11;

#[test]
fn shop_on_tansu_matches_an_independent_computation() {
    let tansu = Tansu::start();
    let checked = shop_matches_an_independent_computation(&tansu.brokers(), EVENTS, SEED);
    checked.run.interrupt_and_wait();
}
