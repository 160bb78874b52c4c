#!/usr/bin/env bash
# Benchmarks ankisyncd against Anki's own sync server (python -m anki.syncserver) on this
# machine, with the real Anki client making the load. See bench/README.md.
#   bash bench/run.sh             full run (about 10 minutes)
#   bash bench/run.sh --quick     smoke run (about a minute)
#   bash bench/run.sh --help      other options (--rounds, --only, --workdir, --results)
# Exit status: 0 when both servers completed every workload.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/setup/install.sh
install_all
exec "$ROOT/.venv/bin/python" "$ROOT/bench/bench.py" "$@"
