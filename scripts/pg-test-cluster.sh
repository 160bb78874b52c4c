#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback for the tests (Debian's `postgresql` package):
#   bash scripts/pg-test-cluster.sh start <dir>     creates and starts it, prints its URL
#   bash scripts/pg-test-cluster.sh stop <dir>      stops it (the caller removes <dir>)
#   bash scripts/pg-test-cluster.sh resume <dir>    starts a stopped one again, same port
# Trust authentication, loopback only, fsync off: for tests, never for data. As root (CI) the
# server runs as the `postgres` user, which PostgreSQL requires.
set -euo pipefail
cmd="${1:?start|stop|resume}"
dir="${2:?cluster folder}"
bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [ -z "$bindir" ]; then
  echo "pg-test-cluster: no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)" >&2
  exit 3
fi
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "$cmd" in
start)
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  as_owner "$bindir/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1
  echo "$port" >"$dir/port"
  bash "$0" resume "$dir"
  echo "postgres://postgres@127.0.0.1:$port/postgres"
  ;;
resume)
  port="$(cat "$dir/port")"
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >/dev/null
  ;;
stop)
  as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
  ;;
*)
  echo "usage: pg-test-cluster.sh start|stop|resume <dir>" >&2
  exit 2
  ;;
esac
