#!/usr/bin/env bash
# Installs what building and testing Sluice needs on a fresh Debian machine that has the
# Rust toolchain: libclang-dev (bindgen, for RocksDB) and, with --tansu, the Tansu broker
# the end-to-end tests run against. Safe to run again: it skips what is already there.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! dpkg -s libclang-dev >/dev/null 2>&1; then
  echo "setup: installing libclang-dev (needed to build RocksDB)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev
fi

if [ "${1:-}" = "--tansu" ] && ! command -v tansu >/dev/null 2>&1; then
  echo "setup: installing the Tansu broker for the end-to-end tests (about 9 minutes on 2 cores)"
  cargo install tansu --locked --features dynostore,libsql
fi
