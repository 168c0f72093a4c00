# Shared by bin/smpp-bench, bin/fault-drill and bin/http-bench: the binaries as production runs
# them (cargo's `production` profile), a fresh database, the gateway and smpp-load as
# processes, clean-up on exit. Sourced, not run.

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/openhall-target}
REL="$CARGO_TARGET_DIR/production"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/openhall-drill.XXXXXX")
PIDS=()
PG_DB=""

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$PG_DB" ]; then
    psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# opt NAME DEFAULT ARGS… → the value following NAME in ARGS, or DEFAULT.
opt() {
  local name=$1 default=$2; shift 2
  while [ $# -gt 0 ]; do
    if [ "$1" = "$name" ] && [ $# -gt 1 ]; then echo "$2"; return; fi
    shift
  done
  echo "$default"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The release profile with fat LTO and one codegen unit (Cargo.toml): slower to build, and
# 20 % less CPU a page view and 5 % less a command than plain `--release` when measured.
build_release() {
  echo "== cargo build --profile production (server, sms-gateway, smpp-load)" >&2
  cargo build --profile production --quiet -p server -p sms-gateway --bins
}

# fresh_database 0|1: a SQLite file in $WORK, or a fresh PostgreSQL database (+ Redis).
fresh_database() {
  if [ "$1" = 1 ]; then
    PG_ADMIN=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
    PG_DB="oh_drill_$$"
    psql -q "$PG_ADMIN" -c "CREATE DATABASE $PG_DB" >/dev/null
    export DATABASE_URL="${PG_ADMIN%/*}/$PG_DB"
    export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
    export OPENHALL_REDIS_PREFIX="oh_drill_$$:"
    DB_KIND="PostgreSQL + Redis"
  else
    export DATABASE_URL="sqlite://$WORK/openhall.db"
    unset REDIS_URL
    DB_KIND="SQLite"
  fi
  export OPENHALL_DEMO=0 OPENHALL_GATEWAY_HTTP_ADDR=${OPENHALL_GATEWAY_HTTP_ADDR:-off}
  export RUST_LOG=${RUST_LOG:-warn}
}

seed() {
  echo "== server seed --subscribers $1 ($DB_KIND)" >&2
  "$REL/server" seed --subscribers "$1" >/dev/null
}

# start_load PORT [smpp-load options…]: smpp-load in the background, its output in load.log.
start_load() {
  local port=$1; shift
  "$REL/smpp-load" --listen "127.0.0.1:$port" "$@" >"$WORK/load.log" 2>&1 &
  LOAD_PID=$!
  PIDS+=("$LOAD_PID")
  for _ in $(seq 100); do
    grep -q 'waiting for a gateway' "$WORK/load.log" 2>/dev/null && return
    sleep 0.05
  done
  cat "$WORK/load.log" >&2
  echo "smpp-load did not start" >&2
  exit 2
}

# start_gateway PORT: sms-gateway bound to smpp-load at PORT, its log in gateway.log.
start_gateway() {
  OPENHALL_SMSC="smpp://loadtest:loadtest@127.0.0.1:$1" "$REL/sms-gateway" >>"$WORK/gateway.log" 2>&1 &
  GATEWAY_PID=$!
  PIDS+=("$GATEWAY_PID")
}

stop_gateway() {
  kill -TERM "$GATEWAY_PID" 2>/dev/null || true
  wait "$GATEWAY_PID" 2>/dev/null || true
}

# watch_rss PID: the process's highest resident set (kB) into $WORK/rss, until killed.
watch_rss() {
  local peak=0 now
  echo 0 >"$WORK/rss"
  while kill -0 "$1" 2>/dev/null; do
    now=$(awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0)
    if [ "${now:-0}" -gt "$peak" ]; then peak=$now; echo "$peak" >"$WORK/rss"; fi
    sleep 0.2
  done
}

# hall_counts: MO stored, MO handled, replies queued, in the database the drill used.
hall_counts() {
  local q="SELECT (SELECT COUNT(*) FROM sms_inbox), (SELECT COUNT(*) FROM sms_inbox WHERE status = 'handled'), (SELECT COUNT(*) FROM outbox WHERE kind = 'reply')"
  local row
  case "$DATABASE_URL" in
    postgres*) row=$(psql -qtA -F ' ' "$DATABASE_URL" -c "$q") ;;
    *) row=$(python3 -c 'import sqlite3,sys; print(*sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone())' "${DATABASE_URL#sqlite://}" "$q") ;;
  esac
  read -r stored handled replies <<<"$row"
  echo "MO stored $stored, handled $handled, replies queued $replies"
}

# wait_http PORT: until the server's /healthz answers (up to 2 minutes: under valgrind the
# server starts slowly).
wait_http() {
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return
    sleep 0.2
  done
  echo "the server did not answer /healthz" >&2
  exit 2
}

# sign_in PORT: 13800138000 signs in with its password; sets $cookie and checks that the
# home page shows the subscriber.
sign_in() {
  local port=$1 jar="$WORK/cookies" page csrf
  page=$(curl -s -c "$jar" -b "$jar" -H 'Accept: text/html' "http://127.0.0.1:$port/login")
  csrf=$(grep -o 'name="csrf" value="[^"]*"' <<<"$page" | head -n1 | sed 's/.*value="//; s/"$//')
  curl -s -o /dev/null -c "$jar" -b "$jar" \
    --data-urlencode "csrf=$csrf" --data-urlencode msisdn=13800138000 --data-urlencode password=147258 \
    "http://127.0.0.1:$port/api/sign_in_password"
  cookie=$(awk '$6 == "openhall_session" { print $6 "=" $7 }' "$jar")
  [ -n "$cookie" ] || { echo "sign-in failed: no session cookie" >&2; exit 1; }
  curl -s -o "$WORK/home.html" -H "Cookie: $cookie" -H 'Accept: text/html' "http://127.0.0.1:$port/"
  grep -q '120.00' "$WORK/home.html" ||
    { echo "the home page did not show the signed-in subscriber" >&2; exit 1; }
}
