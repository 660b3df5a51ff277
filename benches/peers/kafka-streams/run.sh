#!/usr/bin/env bash
# Runs the Kafka Streams peer: run.sh BROKERS INPUT_TOPIC OUTPUT_PREFIX APPLICATION_ID
# [at-least-once|exactly-once]. exec, so that the process measured is the JVM itself.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec java -Djava.io.tmpdir="${TMPDIR:-/tmp}" ${PEER_JVM_OPTS:--Xmx1g} -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -Dorg.slf4j.simpleLogger.logFile=System.err \
  -jar "$here/target/kafka-streams-peer.jar" "$1" "$2" "$3" "$4" "${5:-at-least-once}"
