#!/usr/bin/env bash
# Builds the Flink peer's shaded jar (target/flink-peer-1.0.jar) when it is missing or older
# than its sources; silent on success.
set -euo pipefail
cd "$(dirname "$0")"

JAR=target/flink-peer-1.0.jar
if [ -f "$JAR" ] && [ -z "$(find pom.xml src -newer "$JAR" -print -quit)" ]; then
  exit 0
fi
command -v mvn >/dev/null 2>&1 || { echo "flink peer: mvn not found; building the Apache Flink peer needs Maven and Java 17" >&2; exit 1; }
# Maven prints colour resets even when quiet, so its output is shown only when it fails.
if ! log=$(mvn -B -q -Dmaven.repo.local="$HOME/.cache/sluice-tools/m2" package -DskipTests 2>&1); then
  printf '%s\n' "$log" >&2
  echo "flink peer: building the Apache Flink peer (benches/peers/flink) failed" >&2
  exit 1
fi
[ -f "$JAR" ] || { echo "flink peer: the Apache Flink build made no $JAR" >&2; exit 1; }
