#!/usr/bin/env bash
# Key lookups under ingestion, for BENCHMARKS.md. Starts a Tansu broker (in-memory storage)
# and `shop run`, then has `shop produce` publish RATE orders per second for the whole run
# (about half of what `shop bench` consumes at most on this machine). Three phases of
# SECONDS each, after a warm-up:
#   1. ingestion alone: orders read per second, and window-close latency;
#   2. wrk (CONNECTIONS connections) on GET /views/order_totals/all, a table key;
#   3. wrk on GET /views/item_demand/burger, a window key with all its windows;
# each with the orders read per second beside it, the window closes of that phase, and
# where the two cores went (each process's share of a core, and `shop`'s by thread kind).
# Usage: scripts/query-load.sh [RATE] [SECONDS] [CONNECTIONS] [extra `shop run` flags...]
# LOG sets `shop run`'s log filter (default warn), SHOP_LOG where its log goes,
# FETCH_WAIT_MS its --fetch-wait-max-ms (default 10, which Tansu needs; see settings.rs).
# Needs `tansu` (scripts/setup.sh --tansu), wrk (apt-get install wrk) and a release build
# of `shop` (cargo build --release -p sluice-topologies --bin shop).
set -euo pipefail
RATE=${1:-100000}
PHASE_SECONDS=${2:-20}
CONNECTIONS=${3:-32}
shift 3 || shift $#
SHOP=${SHOP:-${CARGO_TARGET_DIR:-target}/release/shop}
WARMUP_SECONDS=15
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }
source "$(dirname "$0")/local-tansu.sh"
start_tansu
BROKERS="127.0.0.1:$PORT"
HTTP=$(free_port)
BASE="http://127.0.0.1:$HTTP"
PIDS=()
trap 'kill "${PIDS[@]}" $BROKER 2>/dev/null || true; rm -rf "$DIR"' EXIT

"$SHOP" run --brokers "$BROKERS" --partitions 4 --fetch-wait-max-ms "${FETCH_WAIT_MS:-10}" \
  --log "${LOG:-warn}" --http "127.0.0.1:$HTTP" --state-dir "$DIR/state" "$@" > "${SHOP_LOG:-$DIR/shop.log}" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do
  curl -sf "$BASE/healthz" > /dev/null && break
  sleep 0.1
done
# Event time 1 ms apart: at RATE per second a minute of event time passes every 60,000/RATE
# seconds, so windows keep closing while the load runs.
TOTAL=$((RATE * (WARMUP_SECONDS + 3 * PHASE_SECONDS + 30)))
"$SHOP" produce --brokers "$BROKERS" --count "$TOTAL" --rate "$RATE" --interval-ms 1 \
  --log warn > "$DIR/produce.log" 2>&1 &
PIDS+=($!)

# Orders read so far, from /status (monitoring-events is read too, and left out).
orders_read() {
  curl -s "$BASE/status" | python3 -c '
import json, sys
status = json.load(sys.stdin)
print(sum(p["processed"] for p in status["partitions"] if p["topic"] == "order-events"))'
}

# A histogram's buckets, as "bound count" lines: window closes or checkpoint durations.
buckets() {
  curl -s "$BASE/metrics" | python3 -c '
import sys
name = sys.argv[1] + "_bucket"
for line in sys.stdin:
    if line.startswith(name):
        print(line.split("le=\"")[1].split("\"")[0], line.split()[-1])' "$1"
}

# The count, p50 and p99 of what a histogram observed between two bucket readings.
quantiles() {
  python3 - "$1" "$2" <<'EOF'
import sys
def read(text):
    return [(float("inf") if b == "+Inf" else float(b), float(c))
            for b, c in (line.split() for line in text.splitlines() if line)]
before, after = read(sys.argv[1]), read(sys.argv[2])
delta = [(bound, later - earlier) for (bound, later), (_, earlier) in zip(after, before)]
count = delta[-1][1] if delta else 0
def quantile(q):
    return next((bound for bound, seen in delta if seen >= q * count), float("nan"))
print(f"{int(count)}, p50 <= {1000 * quantile(0.5):g} ms, p99 <= {1000 * quantile(0.99):g} ms")
EOF
}

CPU_USE="$(dirname "$0")/cpu-use.py"
cpu_snapshot() {
  python3 "$CPU_USE" snapshot tansu="$BROKER" shop="${PIDS[0]}" producer="${PIDS[1]}"
}

# Runs one phase: ingestion alone (no URL) or wrk on a URL, with the orders read per second,
# the window closes, the checkpoints and the CPU use over the same span.
phase() {
  local name=$1 url=${2:-}
  local closes_before checkpoints_before read_before cpu_before started finished read_after
  local cpu_after wrk_cpu=""
  closes_before=$(buckets sluice_window_close_latency_seconds)
  checkpoints_before=$(buckets sluice_checkpoint_duration_seconds)
  read_before=$(orders_read)
  cpu_before=$(cpu_snapshot)
  started=$(date +%s.%N)
  if [ -n "$url" ]; then
    # wrk's own CPU (user and system seconds), from bash's `time`.
    wrk_cpu=$( { TIMEFORMAT='%U %S'; time wrk -t2 -c"$CONNECTIONS" -d"${PHASE_SECONDS}s" \
      --latency "$url" > "$DIR/wrk.txt"; } 2>&1 )
  else
    sleep "$PHASE_SECONDS"
  fi
  finished=$(date +%s.%N)
  cpu_after=$(cpu_snapshot)
  read_after=$(orders_read)
  local ingest
  ingest=$(python3 -c "print(round(($read_after - $read_before) / ($finished - $started)))")
  echo "== $name"
  echo "orders read per second: $ingest"
  echo "windows closed: $(quantiles "$closes_before" "$(buckets sluice_window_close_latency_seconds)")"
  echo "checkpoints: $(quantiles "$checkpoints_before" "$(buckets sluice_checkpoint_duration_seconds)")"
  if [ -n "$url" ]; then
    grep -E "Requests/sec|Non-2xx|Socket errors" "$DIR/wrk.txt" || true
    grep -E "^ +(50|75|90|99)%" "$DIR/wrk.txt" | tr -s ' ' | sed 's/^ /latency /'
  fi
  local seconds
  seconds=$(python3 -c "print($finished - $started)")
  python3 "$CPU_USE" report "$cpu_before" "$cpu_after" "$seconds"
  if [ -n "$wrk_cpu" ]; then
    python3 -c "import sys; u, s = map(float, sys.argv[1].split()); \
print(f'cpu wrk: {100 * (u + s) / float(sys.argv[2]):5.1f} % of a core')" "$wrk_cpu" "$seconds"
  fi
}

sleep "$WARMUP_SECONDS"
phase "ingestion at $RATE orders/s, no queries"
phase "ingestion plus lookups of order_totals/all" "$BASE/views/order_totals/all"
phase "ingestion plus lookups of item_demand/burger" "$BASE/views/item_demand/burger"
echo "== lag at the end"
curl -s "$BASE/status" | python3 -c '
import json, sys
status = json.load(sys.stdin)
print(sum(p["lag"] or 0 for p in status["partitions"] if p["topic"] == "order-events"),
      "orders not read yet")'
