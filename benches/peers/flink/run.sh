#!/usr/bin/env bash
# Runs the Flink peer: run.sh BROKERS INPUT_TOPIC OUTPUT_PREFIX GROUP_ID. The job is bounded, so
# the JVM exits 0 once it has read what the input topic held at start and written its windows.
set -euo pipefail
cd "$(dirname "$0")"
[ $# -eq 4 ] || { echo "usage: $0 BROKERS INPUT_TOPIC OUTPUT_PREFIX GROUP_ID" >&2; exit 2; }

JAR=target/flink-peer-1.0.jar
[ -f "$JAR" ] || { echo "flink peer: $JAR is missing; run build.sh first" >&2; exit 1; }

# Flink 2 reaches into the JDK's internals by reflection; its distribution opens these in
# env.java.opts.all, which a jar run by hand must repeat.
OPENS=()
for p in java.lang java.lang.reflect java.io java.net java.nio sun.nio.ch java.text java.time \
  java.util java.util.concurrent java.util.concurrent.atomic java.util.concurrent.locks; do
  OPENS+=("--add-opens=java.base/$p=ALL-UNNAMED")
done

# The job peaks under 0.5 GiB of RSS; a 1 GiB heap is ample and leaves the shared machine the rest.
# exec: the harness measures this very process.
exec java -Djava.io.tmpdir="${TMPDIR:-/tmp}" -Xms256m -Xmx1g -XX:+IgnoreUnrecognizedVMOptions "${OPENS[@]}" \
  --add-exports=java.base/sun.net.util=ALL-UNNAMED \
  -jar "$JAR" "$@"
