#!/usr/bin/env bash
# Runs the whole test suite, after installing what is missing (libclang-dev, Kafka's jars,
# a JDK and Maven, Tansu, schemathesis, Chromium): rustfmt and clippy, the tests, then the
# smoke runs of the peers and saga benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export PATH="$HOME/.cargo/bin:$PATH"
# The lints are part of the suite: each crate's lib.rs denies unwrap, expect and panic
# outside tests (input and I/O reach nearly every path), and nothing else may warn.
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The end-to-end tests start the `shop` binary as a separate process; build it first.
cargo build -p sluice-topologies --bin shop
cargo test --workspace --all-targets
cargo test --workspace --doc
# The peers benchmark's smoke run: Sluice and every peer build, run on the same 10,000
# orders on a local Apache Kafka, and agree with the reference (scripts/peers.sh).
PROFILE=debug OUT="${CARGO_TARGET_DIR:-target}/peers-smoke" bash scripts/peers.sh 10000
# The saga benchmark's smoke run: Sluice's saga and Kafka Streams' agree with the model of
# the contract on the shop's input for 5,000 orders (scripts/peers-saga.sh).
PROFILE=debug OUT="${CARGO_TARGET_DIR:-target}/peers-saga-smoke" bash scripts/peers-saga.sh 5000
