#!/usr/bin/env bash
# Runs the Quix Streams peer until it is stopped: run.sh BROKERS INPUT_TOPIC OUTPUT_PREFIX GROUP_ID.
# It execs Python so that the pid the harness started is the one doing the work.
set -euo pipefail
if [ $# -ne 4 ] && [ $# -ne 5 ]; then
  echo "usage: $0 BROKERS INPUT_TOPIC OUTPUT_PREFIX GROUP_ID [STATE_DIR]" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
python=${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}/peers-venv/bin/python
[ -x "$python" ] || { echo "quix peer: $python is missing; run $here/build.sh" >&2; exit 1; }
# RocksDB state lives under STATE_DIR/GROUP_ID, so a fresh group starts from empty state.
# Local state must start empty with a fresh broker: Quix refuses a changelog that is behind
# the state it finds on disk.
exec "$python" "$here/orders.py" "$1" "$2" "$3" "$4" "${5:-${TMPDIR:-/tmp}/sluice-peers-quix-state}"
