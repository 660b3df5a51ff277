#!/usr/bin/env bash
# Runs the Bytewax peer, which ends by itself at the end of the input:
#   run.sh BROKERS INPUT_TOPIC OUTPUT_PREFIX GROUP_ID
# Two workers (threads of one process) use both cores. It execs Python so that the pid the
# harness started is the one doing the work.
set -euo pipefail
if [ $# -ne 4 ]; then
  echo "usage: $0 BROKERS INPUT_TOPIC OUTPUT_PREFIX GROUP_ID" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
python=${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}/peers-venv/bin/python
[ -x "$python" ] || { echo "bytewax peer: $python is missing; run $here/build.sh" >&2; exit 1; }
# The arguments go into the factory call as Python string literals.
for arg in "$@"; do
  case $arg in *[\'\\]*)
    echo "bytewax peer: an argument holds a quote or backslash: $arg" >&2
    exit 2
    ;;
  esac
done
# bytewax.run imports `orders` from the working directory; -B keeps __pycache__ out of it.
cd "$here"
exec "$python" -B -m bytewax.run "orders:flow('$1', '$2', '$3', '$4')" -w 2
