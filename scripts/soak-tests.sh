#!/usr/bin/env bash
# Runs the whole test suite N times in a row (default 5) and reports every failure, to find
# tests that fail by chance: a flaky test is a defect. Builds once first, so the runs time
# the tests alone; run it beside another build (or `LOAD=1`, which keeps both cores busy
# with a spinning process) to see the suite on a loaded machine.
#
#   bash scripts/soak-tests.sh 5            # five runs
#   LOAD=1 bash scripts/soak-tests.sh 5     # five runs with both cores loaded beside them
#   FILTER='-p sluice-topologies --test mock_cluster' bash scripts/soak-tests.sh 30
#
# Each run's output goes to $SOAK_DIR (default target/soak-<time>/run-N.log); the summary
# lists, per run, its duration and the tests that failed.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [RUNS]   (RUNS a positive number, got '$runs')" >&2
  exit 2
fi
export PATH="$HOME/.cargo/bin:$PATH"
target="${CARGO_TARGET_DIR:-target}"
dir="${SOAK_DIR:-$target/soak-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$dir"
# shellcheck disable=SC2086 # FILTER is a list of cargo arguments
filter=(${FILTER:---workspace --all-targets})

cargo build -p sluice-topologies --bin shop
cargo test --no-run "${filter[@]}"

load_pids=()
stop_load() {
  for pid in "${load_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap stop_load EXIT
if [ "${LOAD:-0}" = 1 ]; then
  for _ in 1 2; do
    (while :; do :; done) &
    load_pids+=($!)
  done
  echo "soak: two spinning processes load both cores"
fi

failed_runs=0
summary="$dir/summary.txt"
: > "$summary"
for run in $(seq "$runs"); do
  log="$dir/run-$run.log"
  started=$(date +%s)
  # --no-fail-fast: a failing test binary must not hide the failures of those after it.
  if cargo test --no-fail-fast "${filter[@]}" > "$log" 2>&1; then
    outcome=ok
  else
    outcome=FAILED
    failed_runs=$((failed_runs + 1))
  fi
  took=$(( $(date +%s) - started ))
  failures=$(grep -E '^test .* \.\.\. FAILED$' "$log" | sed -E 's/^test (.*) \.\.\. FAILED$/\1/' | tr '\n' ' ' || true)
  line="run $run: $outcome in ${took}s${failures:+; failed: $failures}"
  echo "$line" | tee -a "$summary"
done
echo "soak: $failed_runs of $runs runs failed; logs in $dir" | tee -a "$summary"
[ "$failed_runs" -eq 0 ]
