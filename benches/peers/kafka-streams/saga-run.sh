#!/usr/bin/env bash
# Runs the Kafka Streams inventory saga: saga-run.sh BROKERS ORDERS_TOPIC PRODUCTS_TOPIC
# OUTPUT_PREFIX APPLICATION_ID [at-least-once|exactly-once]. exec, so that the process
# measured is the JVM itself.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec java -Djava.io.tmpdir="${TMPDIR:-/tmp}" ${PEER_JVM_OPTS:--Xmx1g} -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -Dorg.slf4j.simpleLogger.logFile=System.err \
  -cp "$here/target/kafka-streams-peer.jar" sluice.peers.streams.SagaMain "$1" "$2" "$3" "$4" "$5" "${6:-at-least-once}"
