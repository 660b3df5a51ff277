#!/usr/bin/env bash
# Builds and starts `shop demo`: the shop topology, a generator and the HTTP API on
# rdkafka's in-memory mock broker. Extra arguments go to `shop demo` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec cargo run --release -p sluice-topologies --bin shop -- demo "$@"
