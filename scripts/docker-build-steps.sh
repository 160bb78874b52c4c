#!/usr/bin/env bash
# Builds the Docker image's file tree without Docker, by interpreting the Dockerfile, then runs
# the result the way the container would and checks it. For machines without a Docker engine
# (like the test suite's): it catches a build step that fails, a file missing from the build
# context (.dockerignore is honoured), a runtime that writes outside /data or needs root.
#
#   bash scripts/docker-build-steps.sh            build into a temporary folder, check, clean up
#   KEEP=1 bash scripts/docker-build-steps.sh     keep the folder (path printed at the end)
#
# How the Dockerfile is interpreted, stage by stage (each stage's WORKDIR /app becomes
# <tmp>/stages/<name>):
#   COPY [--from=stage] src... dest   copied from the build context (the repository filtered by
#                                     .dockerignore) or from the earlier stage's folder
#   RUN                               run with bash in the stage's folder, except steps that
#                                     install Debian packages or add users: this machine has the
#                                     packages (scripts/setup/install.sh) and the user is
#                                     simulated with setpriv
#   ARG/ENV/USER/HEALTHCHECK/CMD      used for the run: /app and /data map to the temp folders
# The run: the CMD as USER (when we are root) with the image's ENV on a free port, the
# HEALTHCHECK command until it passes, a login and a meta request, then SIGTERM.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOCKERFILE="$ROOT/Dockerfile"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-40}"

log() { printf '[docker-build-steps] %s\n' "$*"; }
fail() { printf '[docker-build-steps] FAILED: %s\n' "$*" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ankisyncd-image.XXXXXX")"
chmod 755 "$WORK" # the container user must reach the app and data folders below it
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "${KEEP:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
# The build context: the repository filtered by .dockerignore (this project's is an allow-list:
# `*` then `!path` lines).
CONTEXT="$WORK/context"
mkdir -p "$CONTEXT"
[ "$(grep -v '^\s*#' "$ROOT/.dockerignore" | grep -v '^\s*$' | head -1)" = "*" ] ||
  fail ".dockerignore is expected to start with '*' (an allow-list)"
while IFS= read -r line; do
  path="${line#!}"
  path="${path%/}"
  [ -e "$ROOT/$path" ] || fail ".dockerignore allows $path, which does not exist"
  mkdir -p "$CONTEXT/$(dirname "$path")"
  cp -a "$ROOT/$path" "$CONTEXT/$path"
done < <(grep '^!' "$ROOT/.dockerignore")
log "build context: $(cd "$CONTEXT" && find . -type f | wc -l) files"

# ---------------------------------------------------------------------------------------------
# Dockerfile instructions, one per line (continuations joined, comments dropped).
mapfile -t INSTRUCTIONS < <(awk '
  /^[[:space:]]*#/ && cont == "" { next }
  {
    line = $0
    if (sub(/\\[[:space:]]*$/, "", line)) { cont = cont line " "; next }
    line = cont line; cont = ""
    if (line ~ /^[[:space:]]*$/) next
    print line
  }' "$DOCKERFILE")

declare -A ARGS=() ENVS=()
STAGE="" STAGE_DIR="" RUN_USER="" HEALTH_JSON="" CMD_JSON=""

expand() { # ${NAME} and $NAME from ARG/ENV values
  local s="$1" name
  for name in "${!ARGS[@]}"; do s="${s//\$\{$name\}/${ARGS[$name]}}"; s="${s//\$$name/${ARGS[$name]}}"; done
  printf '%s' "$s"
}

stage_path() { # /app/x of stage $1 -> its folder
  local stage="$1" path="$2"
  [[ "$path" == /app/* || "$path" == /app ]] || fail "COPY --from=$stage of $path: only /app is supported"
  printf '%s/stages/%s%s' "$WORK" "$stage" "${path#/app}"
}

for ins in "${INSTRUCTIONS[@]}"; do
  read -r keyword rest <<<"$ins"
  case "${keyword^^}" in
    FROM)
      STAGE="$(awk '{ for (i = 1; i < NF; i++) if (toupper($i) == "AS") print $(i + 1) }' <<<"$rest")"
      [ -n "$STAGE" ] || fail "every stage needs a name: FROM $rest"
      STAGE_DIR="$WORK/stages/$STAGE"
      mkdir -p "$STAGE_DIR"
      log "stage $STAGE ($(expand "${rest%% *}"))"
      ;;
    ARG)
      name="${rest%%=*}"
      if [[ "$rest" == *=* ]]; then ARGS[$name]="$(expand "${rest#*=}")"; fi
      ;;
    WORKDIR)
      [ "$rest" = "/app" ] || fail "WORKDIR $rest: only /app is supported"
      ;;
    COPY)
      read -r -a words <<<"$rest"
      from=""
      if [[ "${words[0]}" == --from=* ]]; then from="${words[0]#--from=}"; words=("${words[@]:1}"); fi
      dest="${words[-1]}"
      unset 'words[-1]'
      for src in "${words[@]}"; do
        if [ -n "$from" ]; then source="$(stage_path "$from" "$src")"; else source="$CONTEXT/$src"; fi
        [ -e "$source" ] || fail "COPY ${from:+--from=$from }$src: not in the ${from:-build context}"
        if [[ "$dest" == */ ]]; then
          mkdir -p "$STAGE_DIR/$dest"
          cp -a "$source" "$STAGE_DIR/$dest"
        else
          mkdir -p "$(dirname "$STAGE_DIR/$dest")"
          cp -a "$source" "$STAGE_DIR/$dest"
        fi
      done
      ;;
    RUN)
      if grep -Eq 'apt-get|useradd|groupadd' <<<"$rest"; then
        log "  skip (system packages and users): ${rest:0:70}..."
        continue
      fi
      log "  RUN $rest"
      (cd "$STAGE_DIR" && bash -euo pipefail -c "$rest") || fail "RUN $rest (stage $STAGE)"
      ;;
    ENV)
      read -r -a pairs <<<"$rest"
      for pair in "${pairs[@]}"; do ENVS[${pair%%=*}]="$(expand "${pair#*=}")"; done
      ;;
    USER) RUN_USER="$(expand "$rest")" ;;
    HEALTHCHECK) HEALTH_JSON="${rest#*CMD }" ;;
    CMD) CMD_JSON="$rest" ;;
    EXPOSE | VOLUME | STOPSIGNAL | LABEL) ;;
    *) fail "unsupported instruction: $keyword" ;;
  esac
done
[ "$STAGE" = "runtime" ] || fail "the last stage is expected to be 'runtime', not $STAGE"
[ -n "$CMD_JSON" ] && [ -n "$HEALTH_JSON" ] && [ -n "$RUN_USER" ] ||
  fail "the runtime stage needs CMD, HEALTHCHECK and USER"
APP="$WORK/stages/runtime"
DATA="$WORK/data"
log "image tree: $(du -sh "$APP" | cut -f1) in $APP"

# ---------------------------------------------------------------------------------------------
# Run it as the container would.
json_words() { python3 -c 'import json, sys; print("\n".join(json.loads(sys.argv[1])))' "$1"; }
mapfile -t CMD < <(json_words "$CMD_JSON")
mapfile -t HEALTH < <(json_words "$HEALTH_JSON")
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
uid="${RUN_USER%%:*}" gid="${RUN_USER#*:}"

mkdir -p "$DATA"
AS_USER=()
if [ "$(id -u)" = 0 ]; then
  chown "$uid:$gid" "$DATA"
  chmod 2770 "$DATA"
  chown -R root:root "$APP"
  chmod -R go-w "$APP"
  AS_USER=(setpriv "--reuid=$uid" "--regid=$gid" --clear-groups --)
  log "running as $uid:$gid (the container user); the app folder belongs to root"
else
  log "not root: running as $(id -u):$(id -g), not as the container user $RUN_USER"
fi

RUN_ENV=(PATH="/usr/local/bin:/usr/bin:/bin" HOME=/nonexistent)
for name in "${!ENVS[@]}"; do
  value="${ENVS[$name]}"
  case "$value" in /data | /data/*) value="$DATA${value#/data}" ;; /app | /app/*) value="$APP${value#/app}" ;; esac
  RUN_ENV+=("$name=$value")
done
RUN_ENV+=(SYNC_HOST=127.0.0.1 "SYNC_PORT=$PORT" SYNC_USER1=smoke:smoke-pass ANKISYNCD_WORKERS=1)

marker="$WORK/.started"
touch "$marker"
sleep 1 # mtime granularity for the "nothing written outside /data" check
(cd "$APP" && exec env -i "${RUN_ENV[@]}" "${AS_USER[@]}" "${CMD[@]}") >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
log "started ${CMD[*]} (pid $SERVER_PID, port $PORT)"

deadline=$((SECONDS + HEALTH_TIMEOUT))
until (cd "$APP" && env -i "${RUN_ENV[@]}" "${AS_USER[@]}" "${HEALTH[@]}") >/dev/null 2>&1; do
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; fail "the server exited"; }
  [ "$SECONDS" -lt "$deadline" ] || { cat "$WORK/server.log" >&2; fail "not healthy after ${HEALTH_TIMEOUT}s"; }
  sleep 0.5
done
log "healthy: ${HEALTH[*]} passed"

# A login and a meta request: session.db (migrations), a worker thread, a collection.
(cd "$ROOT" && bun -e '
  const url = `http://127.0.0.1:${process.argv[1]}/sync/`;
  const post = async (method, body, k = "") => {
    const res = await fetch(url + method, {
      method: "POST",
      headers: { "anki-sync": JSON.stringify({ v: 11, k, c: "smoke,1.0,linux", s: "s1" }) },
      body: Bun.zstdCompressSync(new TextEncoder().encode(JSON.stringify(body))),
    });
    if (res.status !== 200) throw new Error(`${method}: status ${res.status}`);
    return JSON.parse(new TextDecoder().decode(Bun.zstdDecompressSync(new Uint8Array(await res.arrayBuffer()))));
  };
  const { key } = await post("hostKey", { u: "smoke", p: "smoke-pass" });
  const meta = await post("meta", { v: 11, cv: "smoke,1.0,linux" }, key);
  if (typeof meta.usn !== "number") throw new Error(`meta: ${JSON.stringify(meta)}`);
' "$PORT") || { cat "$WORK/server.log" >&2; fail "login and meta"; }
log "login and meta: ok"

kill -TERM "$SERVER_PID"
status=0
wait "$SERVER_PID" || status=$?
SERVER_PID=""
[ "$status" = 0 ] || { cat "$WORK/server.log" >&2; fail "exit status $status after SIGTERM"; }
log "stopped cleanly on SIGTERM"

written="$(find "$APP" -newer "$marker" -print | head -5)"
[ -z "$written" ] || fail "the server wrote outside /data: $written"
[ -f "$DATA/session.db" ] || fail "no session.db in the data folder"
[ -n "$(find "$DATA/collections" -name collection.anki2 -print -quit)" ] || fail "no collection created"
if [ "$(id -u)" = 0 ]; then
  foreign="$(find "$DATA" ! -user "$uid" -print | head -5)"
  [ -z "$foreign" ] || fail "files in the data folder not owned by $uid: $foreign"
fi
log "ok: the image's steps build, and the result runs as $RUN_USER writing only to /data"
