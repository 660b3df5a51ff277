#!/usr/bin/env bash
# Builds the Kafka Streams peer's jar (target/kafka-streams-peer.jar) when it is missing or
# older than its sources. Maven's downloads are cached under ~/.cache/sluice-tools/m2.
set -euo pipefail
cd "$(dirname "$0")"
jar=target/kafka-streams-peer.jar
if [ -f "$jar" ] && [ -z "$(find pom.xml src -newer "$jar" -print -quit)" ]; then
  exit 0
fi
command -v mvn >/dev/null || { echo "kafka-streams peer: mvn not found (Debian: apt-get install maven)" >&2; exit 1; }
if ! mvn -B -q -Dmaven.repo.local="$HOME/.cache/sluice-tools/m2" package -DskipTests >target.build.log 2>&1; then
  cat target.build.log >&2
  echo "kafka-streams peer: the Maven build failed (log above)" >&2
  exit 1
fi
rm -f target.build.log
