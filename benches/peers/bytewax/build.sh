#!/usr/bin/env bash
# Builds the bytewax peer into the shared Python venv (see ../python-venv.sh).
set -euo pipefail
exec bash "$(dirname "$0")/../python-venv.sh" bytewax "$(dirname "$0")"
