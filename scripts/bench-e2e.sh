#!/usr/bin/env bash
# The end-to-end benchmark of BENCHMARKS.md: starts a Tansu broker with in-memory storage
# on a free loopback port, runs `shop bench` against it (preload N events, then consume them
# from offset zero through the whole topology) and stops the broker.
# Usage: scripts/bench-e2e.sh [N] [extra `shop bench` flags...]
# Needs `tansu` (scripts/setup.sh --tansu) and a release build of `shop`
# (cargo build --release -p sluice-topologies --bin shop).
set -euo pipefail
EVENTS=${1:-1000000}
shift || true
SHOP=${SHOP:-${CARGO_TARGET_DIR:-target}/release/shop}
source "$(dirname "$0")/local-tansu.sh"
start_tansu
"$SHOP" bench --brokers "127.0.0.1:$PORT" --events "$EVENTS" --partitions 4 \
  --fetch-wait-max-ms 10 --log warn "$@"
