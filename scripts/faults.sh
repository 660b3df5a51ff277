#!/usr/bin/env bash
# The fault suite of RELIABILITY.md: every fault test of the project, at sizes of your
# choosing, one after another, with a summary of what passed and how long each took. The
# suite (scripts/test.sh, in CI) runs the same tests at their short defaults; this runs
# the long versions.
#
#   bash scripts/faults.sh                                  # 50 kills over 1,000,000 orders, a 60 s outage
#   KILLS=5 EVENTS=200000 OUTAGE=35 bash scripts/faults.sh  # about the sizes the suite runs
#   PROFILE=dev KILLS=10 EVENTS=100000 bash scripts/faults.sh
#
# KILLS and EVENTS size the kill loops (at least once, and --exactly-once with a committed
# reader); OUTAGE is how long the broker stays away mid-stream, in seconds. PROFILE is the
# cargo profile of the tests and of `shop` (release by default: the long loops take hours
# in a debug build). A failed test is reported and the others still run; the exit code
# says whether all passed. Each test's output goes to $OUT (default
# $CARGO_TARGET_DIR/faults-<time>/NAME.log).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

KILLS=${KILLS:-50}
EVENTS=${EVENTS:-1000000}
OUTAGE=${OUTAGE:-60}
PROFILE=${PROFILE:-release}
for value in "$KILLS" "$EVENTS" "$OUTAGE"; do
  if ! [[ "$value" =~ ^[1-9][0-9]*$ ]]; then
    echo "KILLS, EVENTS and OUTAGE must be positive numbers (got '$value')" >&2
    exit 2
  fi
done
target="${CARGO_TARGET_DIR:-target}"
out="${OUT:-$target/faults-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"

cargo build --profile "$PROFILE" -p sluice-topologies --bin shop
cargo test --profile "$PROFILE" --workspace --no-run

results=()
failed=0
# run NAME WHAT [VAR=VALUE...] -- CARGO TEST ARGUMENTS
run() {
  local name=$1 what=$2
  shift 2
  local env=()
  while [ "$1" != "--" ]; do
    env+=("$1")
    shift
  done
  shift
  local started ended outcome
  started=$(date +%s)
  echo "== $name: $what" >&2
  # The tests' own reports (kill points, duplicates, records kept) go to the log too.
  # ${env[@]+...}: an empty array is "unbound" under set -u before bash 4.4.
  if env RUST_TEST_NOCAPTURE=1 ${env[@]+"${env[@]}"} cargo test --profile "$PROFILE" "$@" >"$out/$name.log" 2>&1; then
    outcome=passed
  else
    outcome=FAILED
    failed=1
  fi
  ended=$(date +%s)
  results+=("$(printf '%-22s %-7s %6d s  %s' "$name" "$outcome" $((ended - started)) "$what")")
  echo "   $outcome in $((ended - started)) s (log: $out/$name.log)" >&2
}

run kills "$KILLS kills of shop run over $EVENTS orders, at least once" \
  SLUICE_KILLS="$KILLS" SLUICE_CRASH_EVENTS="$EVENTS" -- -p sluice-suite --test e2e_crash
run kills-exactly-once "$KILLS kills over $EVENTS orders, --exactly-once, read committed" \
  SLUICE_KILLS="$KILLS" SLUICE_CRASH_EVENTS="$EVENTS" -- -p sluice-suite --test e2e_exactly_once
run outage "the broker killed for $OUTAGE s mid-stream" \
  SLUICE_OUTAGE_SECS="$OUTAGE" -- -p sluice-suite --test e2e_outage
run missing-offsets "records deleted while stopped and ahead of a lagging engine" \
  -- -p sluice-suite --test e2e_missing_offsets
run refused-output "output the broker refuses (an ACL), stopped or dead-lettered" \
  -- -p sluice-suite --test e2e_output_refused
run new-partitions "partitions added to a source topic while running" \
  -- -p sluice-suite --test e2e_new_partitions
run secured-brokers "SASL_SSL and SSL listeners, a wrong password, an untrusted CA" \
  -- -p sluice-suite --test e2e_security
run bad-state-and-flags "damaged, locked and misplaced state directories; bad flags" \
  -- -p sluice-suite --test cli_errors
run hostile-records "garbage, empty, misencoded and deeply nested records" \
  -- -p sluice-topologies --test hostile_records
run hostile-payloads "the same and a 20 MiB record, decoded one by one" \
  -- -p sluice --lib garbage_huge_empty
run api-limits "tokens, body, stream and connection limits" \
  -- -p sluice --lib -- query::admission query::access

echo
echo "fault suite ($PROFILE, KILLS=$KILLS EVENTS=$EVENTS OUTAGE=$OUTAGE), logs in $out:"
printf '%s\n' "${results[@]}"
exit "$failed"
