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
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR=$(mktemp -d)
(cd "$DIR" && exec tansu broker --listener-url "tcp://127.0.0.1:$PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$PORT" --storage-engine memory://tansu/ \
  > tansu.log 2>&1) &
BROKER=$!
trap 'kill $BROKER 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
  sleep 0.1
done
"$SHOP" bench --brokers "127.0.0.1:$PORT" --events "$EVENTS" --partitions 4 \
  --fetch-wait-max-ms 10 --log warn "$@"
