#!/usr/bin/env bash
# Builds a Python peer: python-venv.sh NAME DIR installs DIR/requirements.txt into the peers
# venv, which the Python peers share. Idempotent and silent on success: pip runs only when the venv is
# new or this peer's requirements changed since its last good install (a stamp per peer).
set -euo pipefail
name=$1
here=$(cd "$2" && pwd)
tools=${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}
venv=$tools/peers-venv
stamp=$venv/.built-$name
fail() {
  echo "$name peer: build failed: $*" >&2
  exit 1
}
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
mkdir -p "$tools" || fail "cannot create $tools"
# Both peers' builds may run at once; pip must not install into one venv twice over.
exec 9>"$venv.lock"
flock 9
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
# The Bytewax wheel exists for CPython 3.11 only, so both peers use 3.11.
command -v python3.11 >/dev/null 2>&1 || fail "python3.11 not found on PATH"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Re-running venv on an existing one keeps its packages and repairs a half-made one.
python3.11 -m venv "$venv" >"$log" 2>&1 || { cat "$log" >&2; fail "could not create $venv"; }
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt" \
  >"$log" 2>&1 || { cat "$log" >&2; fail "pip install -r $here/requirements.txt"; }
echo "$want" >"$stamp"
