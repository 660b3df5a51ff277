#!/usr/bin/env bash
# Runs the whole test suite, after installing what is missing (libclang-dev, Tansu,
# schemathesis).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export PATH="$HOME/.cargo/bin:$PATH"
# The end-to-end tests start the `shop` binary as a separate process; build it first.
cargo build -p sluice-topologies --bin shop
cargo test --workspace --all-targets
cargo test --workspace --doc
