#!/usr/bin/env bash
# Measures window-close latency: `shop demo` (rdkafka's in-process MOCK cluster, fed by the
# generator with wall-clock event times) runs for SECONDS, then its
# `sluice_window_close_latency_seconds` histogram is read from /metrics. Windows close at
# minute boundaries, so a run of 130 s sees two of them.
# Usage: scripts/window-close-latency.sh [RATE] [SECONDS] [extra `shop demo` flags...]
# Needs a release build of `shop` (cargo build --release -p sluice-topologies --bin shop).
set -euo pipefail
RATE=${1:-1000}
SECONDS_TO_RUN=${2:-130}
shift 2 || true
SHOP=${SHOP:-${CARGO_TARGET_DIR:-target}/release/shop}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR=$(mktemp -d)
trap 'kill $DEMO 2>/dev/null || true; rm -rf "$DIR"' EXIT
"$SHOP" demo --http "127.0.0.1:$PORT" --rate "$RATE" --state-dir "$DIR/state" "$@" > "$DIR/demo.log" 2>&1 &
DEMO=$!
sleep "$SECONDS_TO_RUN"
curl -s "localhost:$PORT/metrics" | python3 -c '
import sys
buckets, count = [], 0
for line in sys.stdin:
    if line.startswith("sluice_window_close_latency_seconds_bucket"):
        bound = line.split("le=\"")[1].split("\"")[0]
        buckets.append((float("inf") if bound == "+Inf" else float(bound), int(float(line.split()[-1]))))
    elif line.startswith("sluice_window_close_latency_seconds_count"):
        count = int(float(line.split()[-1]))
    elif line.startswith("sluice_window_close_latency_seconds_sum"):
        total = float(line.split()[-1])
def quantile(q):
    for bound, seen in buckets:
        if seen >= q * count:
            return bound
print(f"windows {count}, mean {1000 * total / max(count, 1):.1f} ms, "
      f"p50 <= {1000 * quantile(0.5):g} ms, p99 <= {1000 * quantile(0.99):g} ms")
'
