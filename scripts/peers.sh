#!/usr/bin/env bash
# The peers benchmark (benches/peers/README.md): starts Apache Kafka on a free loopback
# port, preloads N generated orders into `order-events`, then runs Sluice's orders topology
# and every peer on them one after another, checks each one's windows against the
# reference, and writes a Markdown table, an SVG chart and JSON results to $OUT.
#
#   bash scripts/peers.sh 1000000            # the BENCHMARKS.md figures (release builds)
#   PROFILE=debug bash scripts/peers.sh 10000 # the CI smoke: every peer builds and agrees
#
# PEERS narrows the run to some peers, e.g. PEERS="sluice ceiling kafka-streams-alo".
# A peer that cannot be built is reported by name and the others still run; the script
# exits non-zero if any peer was unavailable or did not agree with the reference.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
ALL_PEERS="sluice sluice-eos ceiling kafka-streams-alo kafka-streams-eos flink quix bytewax"
PEERS=${PEERS:-$ALL_PEERS}

# shellcheck source=scripts/peers-common.sh
source scripts/peers-common.sh peers "${1:-10000}"
OUT=${OUT:-$TARGET/peers-$EVENTS}

# Each peer's build; one that fails is run as unavailable, with its reason.
runs=()
add_run() { runs+=(--run "$1"); }
build_peer() {
  local dir=$1 name=$2
  if ! out=$(bash "benches/peers/$dir/build.sh" 2>&1); then
    echo "$out" | tail -n 20 >&2
    add_run "unavailable:$name=the build failed: $(echo "$out" | tail -n 1)"
    return 1
  fi
}
for peer in $PEERS; do
  case "$peer" in
    sluice) add_run "sluice:sluice=$SHOP run --topology orders --brokers {brokers} --group {group} --state-dir {state} --http {http} --log warn" ;;
    sluice-eos) add_run "sluice:sluice-eos=$SHOP run --topology orders --exactly-once --brokers {brokers} --group {group} --state-dir {state} --http {http} --log warn" ;;
    ceiling) add_run "ceiling:ceiling=$HARNESS ceiling {brokers} {input} {prefix} {group}" ;;
    kafka-streams-alo)
      build_peer kafka-streams "$peer" && add_run "peer:$peer=bash benches/peers/kafka-streams/run.sh {brokers} {input} {prefix} {group} at-least-once" ;;
    kafka-streams-eos)
      build_peer kafka-streams "$peer" && add_run "peer:$peer=bash benches/peers/kafka-streams/run.sh {brokers} {input} {prefix} {group} exactly-once" ;;
    quix)
      build_peer quix quix && add_run "peer:quix=bash benches/peers/quix/run.sh {brokers} {input} {prefix} {group} {state}" ;;
    flink|bytewax)
      build_peer "$peer" "$peer" && add_run "peer:$peer=bash benches/peers/$peer/run.sh {brokers} {input} {prefix} {group}" ;;
    *) echo "unknown peer '$peer'; peers: $ALL_PEERS" >&2; exit 2 ;;
  esac
done

"$HARNESS" preload --brokers "$BROKERS" --events "$EVENTS"
# Logs stay beside the results; the peers' state goes with the broker.
rm -rf "$OUT/logs"
status=0
"$HARNESS" compare --brokers "$BROKERS" --events "$EVENTS" --work-dir "$OUT/logs" --out "$OUT" "${runs[@]}" || status=$?
rm -rf "$OUT"/logs/*-state
echo "peers: results in $OUT (peers.md, peers.svg, peers.json; each peer's log in logs/)"
exit $status
