#!/usr/bin/env bash
# The fault suite with as many trials as asked; see test/faults/faults.py for the options.
#   bash test/faults/run.sh --trials 50
#   bash test/faults/run.sh --only load --users 40 --secs 120
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
exec .venv/bin/python test/faults/faults.py "$@"
