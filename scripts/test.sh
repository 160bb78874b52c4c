#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, type-checks, lints, then
# runs unit and protocol tests (bun test) and the end-to-end tests with the real Anki client
# against ankisyncd and against Anki's own server (which proves the scenarios), and a short run
# of the fault suite (test/faults; `bash test/faults/run.sh --trials 50` runs many).
#   bash scripts/test.sh            everything
#   E2E_SERVERS=ours bash scripts/test.sh   skip the runs against Anki's own server and on Deno
#   E2E_CLIENTS=all bash scripts/test.sh    client scenarios with every anki version (default:
#                                           2.1.54, 2.1.66, 26.9.3; see test/e2e/clients.py)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source scripts/setup/install.sh
install_all

REPORTS="$ROOT/.test-tmp/reports"
rm -rf "$REPORTS" && mkdir -p "$REPORTS"

# One throwaway PostgreSQL cluster on loopback for the whole run: the identity stores' unit
# tests run on it as well as on session.db, and test/e2e/test_shared_state.py and
# test_scale_out.py (three nodes behind Caddy) use it.
PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/ankisyncd-pg-XXXXXX")"
ANKISYNCD_TEST_DATABASE_URL="$(bash scripts/pg-test-cluster.sh start "$PG_DIR")"
export ANKISYNCD_TEST_DATABASE_URL ANKISYNCD_TEST_PG_DIR="$PG_DIR"
trap 'bash scripts/pg-test-cluster.sh stop "$PG_DIR" || true; rm -rf "$PG_DIR"' EXIT

echo "== type-check (tsc --noEmit)"
bunx tsc --noEmit
echo "== lint and format check (biome)"
bunx biome check .
echo "== unit and protocol tests (bun test)"
bun test --reporter=junit --reporter-outfile="$REPORTS/bun.xml" || BUN_FAILED=1
# The junit reporter replaces the console one; show a short summary too.
python3 scripts/test-summary.py "$REPORTS/bun.xml" --label "bun test" || true

echo "== platform contract on Deno (deno test; bun test ran it on Bun above)"
node_modules/deno/deno test --no-check --allow-all test/platform/contract.test.ts \
  --junit-path="$REPORTS/deno-contract.xml" || BUN_FAILED=1

echo "== client versions for the e2e matrix (E2E_CLIENTS=${E2E_CLIENTS:-default}): venvs"
export E2E_CLIENTS="${E2E_CLIENTS:-default}"
.venv/bin/python test/e2e/clients.py || E2E_FAILED=1

# ours-deno: the same server on Deno, with the full, normal and media sync scenarios and the
# shared state in PostgreSQL only.
DENO_E2E="test/e2e/test_full_sync.py test/e2e/test_normal_sync.py test/e2e/test_media_sync.py test/e2e/test_shared_state.py"
for server in ${E2E_SERVERS:-ours official ours-deno}; do
  echo "== end-to-end with the real Anki client against: $server"
  files=test/e2e
  if [ "$server" = ours-deno ]; then files=$DENO_E2E; fi
  # shellcheck disable=SC2086
  E2E_SERVER="$server" .venv/bin/python -m pytest $files -q -p no:cacheprovider \
    --junitxml="$REPORTS/e2e-$server.xml" || E2E_FAILED=1
done

echo "== fault suite (test/faults): SIGKILLs at random moments, a load run, hostile input"
.venv/bin/python -m pytest test/faults -q -p no:cacheprovider \
  --junitxml="$REPORTS/faults.xml" || FAULTS_FAILED=1

echo "== benchmark smoke run (bench/run.sh --quick): keeps the benchmark working; figures not judged"
bash bench/run.sh --quick --results "$REPORTS/bench-quick.json" || BENCH_FAILED=1

python3 scripts/test-summary.py "$REPORTS"/*.xml --label "all"
if [ -n "${BUN_FAILED:-}" ] || [ -n "${E2E_FAILED:-}" ] || [ -n "${FAULTS_FAILED:-}" ] ||
  [ -n "${BENCH_FAILED:-}" ]; then exit 1; fi
