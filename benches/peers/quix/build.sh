#!/usr/bin/env bash
# Builds the quix peer into the shared Python venv (see ../python-venv.sh).
set -euo pipefail
exec bash "$(dirname "$0")/../python-venv.sh" quix "$(dirname "$0")"
