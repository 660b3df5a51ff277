#!/usr/bin/env bash
# The saga benchmark (benches/peers/README.md, "The inventory saga"): starts Apache Kafka on
# a free loopback port, preloads the shop's input for N orders (orders and the catalog, as
# `shop bench` makes them), then runs on it, one after another, the whole shop, Sluice's
# inventory topology alone, and Kafka Streams' saga (at least once and exactly once), checks
# each one's decisions against a model of the contract's rules, and ends with `shop bench
# --no-preload` on the same topics. Writes a Markdown table and JSON results to $OUT.
#
#   bash scripts/peers-saga.sh 1000000             # the BENCHMARKS.md figures (release)
#   PROFILE=debug bash scripts/peers-saga.sh 5000   # the CI smoke: both build and agree
#
# RUNS narrows the run, e.g. RUNS="sluice-inventory kafka-streams-saga-alo".
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
ALL_RUNS="sluice-shop sluice-inventory sluice-inventory-eos kafka-streams-saga-alo kafka-streams-saga-eos shop-bench"
RUNS=${RUNS:-$ALL_RUNS}

# shellcheck source=scripts/peers-common.sh
source scripts/peers-common.sh saga "${1:-10000}"
OUT=${OUT:-$TARGET/peers-saga-$EVENTS}

runs=()
add_run() { runs+=(--run "$1"); }
streams_built=
build_streams() {
  [ -n "$streams_built" ] && return "$streams_built"
  if out=$(bash benches/peers/kafka-streams/build.sh 2>&1); then
    streams_built=0
  else
    echo "$out" | tail -n 20 >&2
    streams_reason="the build failed: $(echo "$out" | tail -n 1)"
    streams_built=1
  fi
  return "$streams_built"
}
sluice_run="$SHOP run --brokers {brokers} --group {group} --state-dir {state} --http {http} --log warn"
for run in $RUNS; do
  case "$run" in
    sluice-shop) add_run "sluice:$run=$sluice_run" ;;
    sluice-inventory) add_run "sluice:$run=$sluice_run --topology inventory" ;;
    sluice-inventory-eos) add_run "sluice:$run=$sluice_run --topology inventory --exactly-once" ;;
    kafka-streams-saga-alo|kafka-streams-saga-eos)
      guarantee=at-least-once
      [ "$run" = kafka-streams-saga-eos ] && guarantee=exactly-once
      if build_streams; then
        add_run "peer:$run=bash benches/peers/kafka-streams/saga-run.sh {brokers} {orders} {products} {prefix} {group} $guarantee"
      else
        add_run "unavailable:$run=$streams_reason"
      fi ;;
    shop-bench) add_run "bench:$run=$SHOP bench --no-preload --brokers {brokers} --log warn" ;;
    *) echo "unknown run '$run'; runs: $ALL_RUNS" >&2; exit 2 ;;
  esac
done

"$HARNESS" saga-preload --brokers "$BROKERS" --events "$EVENTS"
rm -rf "$OUT/logs"
status=0
"$HARNESS" saga-compare --brokers "$BROKERS" --events "$EVENTS" --work-dir "$OUT/logs" --out "$OUT" "${runs[@]}" || status=$?
rm -rf "$OUT"/logs/*-state
echo "saga: results in $OUT (saga.md, saga.json; each run's log in logs/)"
exit $status
