#!/usr/bin/env bash
# The end-to-end benchmark of BENCHMARKS.md: starts a broker on free loopback ports, runs
# `shop bench` against it (preload N events, then consume them from offset zero through
# the whole topology), prints the broker's own CPU share during the bench, and stops it.
#
#   scripts/bench-e2e.sh [N] [extra `shop bench` flags...]
#   BROKER=kafka scripts/bench-e2e.sh 1000000 --exactly-once
#
# BROKER is `tansu` (the default: Tansu with in-memory storage; needs `tansu`, from
# scripts/setup.sh --test) or `kafka` (Apache Kafka, KRaft, from scripts/local-kafka.sh).
# Needs a release build of `shop` (cargo build --release -p sluice-topologies --bin shop).
set -euo pipefail
EVENTS=${1:-1000000}
shift || true
SHOP=${SHOP:-${CARGO_TARGET_DIR:-target}/release/shop}
# local-tansu.sh sets BROKER to the broker's pid: keep the choice apart.
KIND=${BROKER:-tansu}
here=$(dirname "$0")

case "$KIND" in
  tansu)
    source "$here/local-tansu.sh"
    start_tansu
    ADDRESS="127.0.0.1:$PORT"
    BROKER_PID=$BROKER
    ;;
  kafka)
    KAFKA_DIR=$(mktemp -d)
    trap 'bash "$here/local-kafka.sh" stop "$KAFKA_DIR" >/dev/null 2>&1; rm -rf "$KAFKA_DIR"' EXIT
    ADDRESS=$(bash "$here/local-kafka.sh" start "$KAFKA_DIR" | tail -n 1)
    BROKER_PID=$(cat "$KAFKA_DIR/kafka.pid")
    ;;
  *)
    echo "BROKER must be tansu or kafka, not '$KIND'" >&2
    exit 2
    ;;
esac

# CPU seconds (user + system) the broker process has used so far, from /proc.
broker_cpu() {
  awk -v ticks="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / ticks }' "/proc/$BROKER_PID/stat"
}

cpu_before=$(broker_cpu)
started=$(date +%s.%N)
"$SHOP" bench --brokers "$ADDRESS" --events "$EVENTS" --partitions 4 \
  --fetch-wait-max-ms 10 --log warn "$@"
awk -v before="$cpu_before" -v after="$(broker_cpu)" -v started="$started" -v ended="$(date +%s.%N)" \
  -v broker="$KIND" 'BEGIN {
    cpu = after - before; wall = ended - started
    printf "broker (%s): %.1f CPU s over the %.1f s of the bench (preload included): %.0f %% of one core\n",
      broker, cpu, wall, 100 * cpu / wall
  }'
