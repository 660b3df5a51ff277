#!/usr/bin/env bash
# The end-to-end benchmark of BENCHMARKS.md: starts a broker on free loopback ports, runs
# `shop bench` against it (preload N events, then consume them from offset zero through
# the whole topology), prints the broker's own CPU share during the bench, and stops it.
#
#   scripts/bench-e2e.sh [N] [extra `shop bench` flags...]
#   BROKER=kafka scripts/bench-e2e.sh 1000000 --exactly-once
#   BROKER=kafka TLS=1 scripts/bench-e2e.sh 1000000 --topology orders
#
# BROKER is `tansu` (the default: Tansu with in-memory storage; needs `tansu`, from
# scripts/setup.sh --test) or `kafka` (Apache Kafka, KRaft, from scripts/local-kafka.sh).
# TLS=1 (Kafka only) measures through an SSL listener instead of PLAINTEXT: a certificate
# authority and a broker certificate for 127.0.0.1 are made with openssl for the run, and
# every client of `shop bench` (preload included) connects with `--kafka-config`.
# Needs a release build of `shop` (cargo build --release -p sluice-topologies --bin shop).
set -euo pipefail
EVENTS=${1:-1000000}
shift || true
SHOP=${SHOP:-${CARGO_TARGET_DIR:-target}/release/shop}
# local-tansu.sh sets BROKER to the broker's pid: keep the choice apart.
KIND=${BROKER:-tansu}
if [ "${TLS:-0}" = 1 ] && [ "$KIND" != kafka ]; then
  echo "TLS=1 needs BROKER=kafka (Tansu 0.6 has no TLS listener here)" >&2
  exit 2
fi
here=$(dirname "$0")

CLIENT_FLAGS=()

# A certificate authority and a broker certificate for 127.0.0.1 signed by it, in DIR, with
# the key and certificate together as the PEM keystore Kafka reads.
make_certificates() {
  local dir=$1
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
      -subj "/CN=sluice bench CA" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr \
      -subj "/CN=localhost" 2>/dev/null
    echo "subjectAltName=IP:127.0.0.1,DNS:localhost" >broker.ext
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -out broker.crt -days 2 -extfile broker.ext 2>/dev/null
    cat broker.key broker.crt >broker-keystore.pem
  )
}

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
    if [ "${TLS:-0}" = 1 ]; then
      tls=$KAFKA_DIR/tls
      mkdir -p "$tls"
      make_certificates "$tls"
      export KAFKA_EXTRA_LISTENERS=SSL
      export KAFKA_EXTRA_PROPERTIES="ssl.keystore.type=PEM
ssl.keystore.location=$tls/broker-keystore.pem"
      bash "$here/local-kafka.sh" start "$KAFKA_DIR" >/dev/null
      ADDRESS=$(awk '$1 == "SSL" { print $2 }' "$KAFKA_DIR/listeners")
      printf 'security.protocol=ssl\nssl.ca.location=%s\n' "$tls/ca.pem" >"$tls/client.properties"
      CLIENT_FLAGS=(--kafka-config "$tls/client.properties")
      echo "measuring through the SSL listener $ADDRESS" >&2
    else
      ADDRESS=$(bash "$here/local-kafka.sh" start "$KAFKA_DIR" | tail -n 1)
    fi
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
  --fetch-wait-max-ms 10 --log warn ${CLIENT_FLAGS[@]+"${CLIENT_FLAGS[@]}"} "$@"
awk -v before="$cpu_before" -v after="$(broker_cpu)" -v started="$started" -v ended="$(date +%s.%N)" \
  -v broker="$KIND" 'BEGIN {
    cpu = after - before; wall = ended - started
    printf "broker (%s): %.1f CPU s over the %.1f s of the bench (preload included): %.0f %% of one core\n",
      broker, cpu, wall, 100 * cpu / wall
  }'
