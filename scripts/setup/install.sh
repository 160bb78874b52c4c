#!/usr/bin/env bash
# Installs what ankisyncd needs on a fresh Debian machine. Idempotent: each step is skipped
# when already satisfied. Source it, or run it:
#   bash scripts/setup/install.sh          the server: gcc + SQLite headers, Bun (from npm),
#                                          the JS packages, the unicase extension
#   bash scripts/setup/install.sh --test   also the test suite's Debian packages and Python venv
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUN_VERSION="1.4.5"
APT_PACKAGES=(gcc libc6-dev libsqlite3-dev)
# Deployment tests: Caddy, the pebble ACME test server, openssl for test certificates,
# docker-compose to validate compose.yaml without an engine, setpriv to run as the container user;
# prometheus (promtool and a real scrape of /metrics; the tests start their own, its system
# service is not needed), systemd (systemd-analyze verify of the sample unit).
TEST_APT_PACKAGES=(caddy pebble openssl docker-compose util-linux prometheus systemd postgresql)

log() { printf '[setup] %s\n' "$*"; }

ensure_apt_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

ensure_bun() {
  if command -v bun >/dev/null 2>&1 && [ "$(bun --version)" = "$BUN_VERSION" ]; then return; fi
  log "installing Bun $BUN_VERSION from npm"
  npm install -g --no-fund --no-audit "bun@$BUN_VERSION" >/dev/null
  hash -r
  [ "$(bun --version)" = "$BUN_VERSION" ] || { echo "bun $BUN_VERSION did not install" >&2; exit 1; }
}

ensure_js_packages() {
  (cd "$ROOT" && bun install --frozen-lockfile >/dev/null)
}

ensure_native() {
  bash "$ROOT/scripts/build-native.sh"
  (cd "$ROOT" && bun scripts/bundle-deps.ts)
}

ensure_venv() {
  local venv="$ROOT/.venv" req="$ROOT/test/e2e/requirements.txt" stamp="$ROOT/.venv/.requirements"
  [ -x "$venv/bin/python" ] || { log "creating Python venv"; python3 -m venv "$venv"; }
  if ! cmp -s "$req" "$stamp"; then
    log "installing Python test dependencies"
    # Some machines' pip.conf names local wheel folders that may be absent; drop that noise.
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" 2>&1 |
      { grep -v "is ignored: it is neither a file nor a directory" || true; }
    cp "$req" "$stamp"
  fi
}

install_server() {
  ensure_apt_packages "${APT_PACKAGES[@]}"
  ensure_bun
  ensure_js_packages
  ensure_native
}

install_all() {
  install_server
  ensure_apt_packages "${TEST_APT_PACKAGES[@]}"
  ensure_venv
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  if [ "${1:-}" = "--test" ]; then install_all; else install_server; fi
fi
