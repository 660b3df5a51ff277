# Sourced by scripts/peers.sh and scripts/peers-saga.sh, not run: builds `shop` and the
# harness for $PROFILE (release or debug) into $TARGET, then starts Apache Kafka for the
# benchmark in a fresh temporary directory that is removed, the broker stopped, on exit.
# Sets EVENTS, PROFILE, TARGET, SHOP, HARNESS, work and BROKERS; $1 names the benchmark in
# messages and paths, $2 is the number of orders the caller was given.
peers_label=$1
EVENTS=$2
if ! [[ "$EVENTS" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [N]   (N orders to preload, a positive number; got '$EVENTS')" >&2
  exit 2
fi
PROFILE=${PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-target}
case "$PROFILE" in
  release) cargo build --release -p sluice-topologies -p sluice-peers --bin shop --bin sluice-peers ;;
  debug) cargo build -p sluice-topologies -p sluice-peers --bin shop --bin sluice-peers ;;
  *) echo "PROFILE must be release or debug, not '$PROFILE'" >&2; exit 2 ;;
esac
SHOP=$TARGET/$PROFILE/shop
HARNESS=$TARGET/$PROFILE/sluice-peers

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-$peers_label.XXXXXX")
stop_kafka() {
  bash scripts/local-kafka.sh stop "$work/kafka" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap stop_kafka EXIT
mkdir -p "$work/kafka" "$work/tmp"
# Every run's temporary files (Flink unpacks a 21 MB jar per run) go with the broker.
export TMPDIR="$work/tmp"
# The orders' event times are in January 2024, and Kafka Streams and Quix Streams stamp
# their outputs and internal topics (the saga's repartition topic too) with them: with the
# default 7-day retention the broker would delete those records within minutes.
# The tests' broker runs C1 only, to start sooner; a benchmark wants the full JIT.
BROKERS=$(KAFKA_EXTRA_PROPERTIES="log.retention.ms=-1" \
  KAFKA_JVM_OPTS="-Xmx1g -Xms1g -XX:+UseG1GC -Djava.awt.headless=true" bash scripts/local-kafka.sh start "$work/kafka" | tail -n 1)
echo "$peers_label: Apache Kafka at $BROKERS"
