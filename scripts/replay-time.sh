#!/usr/bin/env bash
# Measures `shop replay --from-beginning --yes`: N events are processed by `shop run`,
# which is then stopped; the replay wipes the state, rereads every partition from offset
# zero and is timed until its checkpoints hold all N events again (the point where it has
# caught up and starts writing output). Tansu with in-memory storage on free ports.
# Usage: scripts/replay-time.sh [N] [extra `shop replay` flags...]
# Needs `tansu` (scripts/setup.sh --tansu) and a release build of `shop`
# (cargo build --release -p sluice-topologies --bin shop).
set -euo pipefail
EVENTS=${1:-1000000}
shift || true
SHOP=${SHOP:-${CARGO_TARGET_DIR:-target}/release/shop}
source "$(dirname "$0")/local-tansu.sh"
start_tansu
HTTP=$(free_port)
checkpointed() {
  curl -s "localhost:$HTTP/status" | python3 -c "import sys,json; d=json.load(sys.stdin); print(sum(o['offset'] for o in (d.get('checkpoint') or {}).get('offsets',[])))" 2>/dev/null || echo 0
}
wait_for_all() {
  until [ "$(checkpointed)" = "$EVENTS" ]; do sleep 0.1; done
}
COMMON=(--brokers "127.0.0.1:$PORT" --state-dir "$DIR/state" --http "127.0.0.1:$HTTP" --log warn)
"$SHOP" produce --brokers "127.0.0.1:$PORT" --count "$EVENTS" --rate 0 --log warn > /dev/null
"$SHOP" run "${COMMON[@]}" > "$DIR/run.log" 2>&1 &
RUN=$!
wait_for_all
kill -INT $RUN; wait $RUN
START=$(date +%s.%N)
"$SHOP" replay --from-beginning --yes "${COMMON[@]}" "$@" > "$DIR/replay.log" 2>&1 &
REPLAY=$!
wait_for_all
END=$(date +%s.%N)
SUPPRESSED=$(curl -s "localhost:$HTTP/status" | python3 -c "import sys,json; print(json.load(sys.stdin)['suppressed'])")
kill -INT $REPLAY; wait $REPLAY
python3 -c "s=$END-$START; print(f'replayed $EVENTS events in {s:.2f} s ({$EVENTS/s:,.0f} events/s), start to caught up; {$SUPPRESSED} outputs not written again')"
