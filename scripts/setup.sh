#!/usr/bin/env bash
# Installs what building and testing Sluice needs on a fresh Debian machine that has the
# Rust toolchain: libclang-dev (bindgen, for RocksDB), libssl-dev and pkg-config (librdkafka's
# TLS and SASL) and, with --test (or its old name
# --tansu), what the tests use besides: Apache Kafka's jars from Maven Central (with Java
# 17 and Maven from Debian where they are missing) for the end-to-end tests and the peers
# benchmark's smoke run (which builds its own peers: benches/peers/*/build.sh), the Tansu
# broker of the second-broker smoke test, schemathesis (PyPI, in its own virtualenv) for
# the API contract test, and Debian's Chromium with playwright-core (npm) for the
# dashboard's browser test, and openssl, which the secured-Kafka test makes its certificates
# with. Safe to run again: it skips what is already there.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# libclang-dev for RocksDB's bindings; libssl-dev and pkg-config for librdkafka's TLS and
# SASL (SCRAM), which secured Kafka clusters need.
build_missing=()
for package in libclang-dev libssl-dev pkg-config; do
  dpkg -s "$package" >/dev/null 2>&1 || build_missing+=("$package")
done
if [ "${#build_missing[@]}" -gt 0 ]; then
  echo "setup: installing ${build_missing[*]} (needed to build RocksDB and librdkafka)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${build_missing[@]}"
fi

if [ "${1:-}" != "--test" ] && [ "${1:-}" != "--tansu" ]; then
  exit 0
fi

java_ok() {
  command -v java >/dev/null 2>&1 || return 1
  local version
  version=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')
  version=${version#1.}
  [[ $version =~ ^[0-9]+$ ]] && [ "$version" -ge 17 ]
}
missing=()
java_ok || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
# The Kafka Streams and Flink peers (benches/peers) are compiled: a JDK, not only a JRE.
command -v javac >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]} for Apache Kafka, the end-to-end tests' broker, and the peers"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
bash "$(dirname "$0")/local-kafka.sh" fetch

if ! command -v tansu >/dev/null 2>&1; then
  echo "setup: installing the Tansu broker for the end-to-end tests (about 9 minutes on 2 cores)"
  cargo install tansu --locked --features dynostore,libsql
fi

SCHEMATHESIS_VERSION=4.32.5
TOOLS="$HOME/.cache/sluice-tools"
if ! "$TOOLS/schemathesis/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c "import ensurepip, venv" 2>/dev/null; then
    echo "setup: installing python3-venv (for schemathesis)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv
  fi
  echo "setup: installing schemathesis $SCHEMATHESIS_VERSION for the API contract test"
  rm -rf "$TOOLS/schemathesis"
  mkdir -p "$TOOLS"
  python3 -m venv "$TOOLS/schemathesis"
  "$TOOLS/schemathesis/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

if ! command -v openssl >/dev/null 2>&1; then
  echo "setup: installing openssl (the secured-Kafka test makes its certificates with it)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl
fi

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]} for the dashboard's browser test"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

PLAYWRIGHT_VERSION=1.61.1
if ! grep -qs "\"version\": \"$PLAYWRIGHT_VERSION\"" "$TOOLS/browser/node_modules/playwright-core/package.json"; then
  echo "setup: installing playwright-core $PLAYWRIGHT_VERSION (it drives Debian's Chromium; no browser download)"
  mkdir -p "$TOOLS/browser"
  npm install --prefix "$TOOLS/browser" --no-audit --no-fund --silent "playwright-core@$PLAYWRIGHT_VERSION"
fi
