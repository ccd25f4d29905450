#!/usr/bin/env bash
# Local infrastructure without Docker: RabbitMQ (Debian package) and FerretDB 1.24.2 on SQLite.
#
#   scripts/infra.sh up        install what is missing, start what is not running, wait until both answer
#   scripts/infra.sh down      stop what this script started, and nothing else
#   scripts/infra.sh status    say what runs and who started it
#   scripts/infra.sh test-tools   install the browser and Prometheus the tests drive
#   scripts/infra.sh restart-rabbitmq | restart-ferretdb    (used by crash tests)
#
# When FRAGMENTY_RABBITMQ_URL or FRAGMENTY_MONGODB_URL name a server, that server is used and
# nothing is installed or started for it. Idempotent: a second `up` reuses what runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_DIR="${FRAGMENTY_DATA_DIR:-$ROOT/data}"
RUN_DIR="$DATA_DIR/run"
LOG_DIR="$DATA_DIR/logs"
FERRETDB_DATA="$DATA_DIR/ferretdb"
FERRETDB_ADDR="127.0.0.1:27017"
RABBITMQ_PORT=5672
mkdir -p "$RUN_DIR" "$LOG_DIR" "$FERRETDB_DATA"

log() { printf 'infra: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for_port() {  # host port seconds what
  local deadline=$((SECONDS + $3))
  until port_open "$1" "$2"; do
    [ $SECONDS -lt $deadline ] || die "$4 did not answer on $1:$2 within $3 s (logs: $LOG_DIR)"
    sleep 0.5
  done
}

# External servers named by the user are used as they are.
uses_external() {  # VAR default
  local value="${!1:-}"
  [ -n "$value" ] && [ "$value" != "$2" ]
}
external_rabbitmq() { uses_external FRAGMENTY_RABBITMQ_URL "amqp://guest:guest@127.0.0.1:5672/"; }
external_mongodb() { uses_external FRAGMENTY_MONGODB_URL "mongodb://127.0.0.1:27017/"; }

APT_UPDATED=0
apt_install() {
  [ "$(id -u)" -eq 0 ] || die "installing $* needs root (or install it yourself: apt-get install $*)"
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$LOG_DIR/apt.log" 2>&1 || die "apt-get update failed (see $LOG_DIR/apt.log)"
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >>"$LOG_DIR/apt.log" 2>&1 \
    || die "apt-get install $* failed (see $LOG_DIR/apt.log)"
}

rabbitmq_answers() { rabbitmq-diagnostics -q ping >/dev/null 2>&1; }

rabbitmq_up() {
  if external_rabbitmq; then log "RabbitMQ: using $FRAGMENTY_RABBITMQ_URL"; return; fi
  command -v rabbitmq-server >/dev/null 2>&1 || PATH="$PATH:/usr/sbin"
  command -v rabbitmq-server >/dev/null 2>&1 || apt_install rabbitmq-server
  if port_open 127.0.0.1 $RABBITMQ_PORT; then
    log "RabbitMQ: already running on port $RABBITMQ_PORT"
    return
  fi
  log "RabbitMQ: starting"
  rabbitmq-server -detached >"$LOG_DIR/rabbitmq-start.log" 2>&1 || die "rabbitmq-server -detached failed (see $LOG_DIR/rabbitmq-start.log)"
  touch "$RUN_DIR/rabbitmq.started-by-fragmenty"
  local deadline=$((SECONDS + 90))
  until rabbitmq_answers && port_open 127.0.0.1 $RABBITMQ_PORT; do
    [ $SECONDS -lt $deadline ] || die "RabbitMQ did not answer within 90 s (see /var/log/rabbitmq)"
    sleep 1
  done
  log "RabbitMQ: ready"
}

rabbitmq_down() {
  if [ -f "$RUN_DIR/rabbitmq.started-by-fragmenty" ]; then
    log "RabbitMQ: stopping (started by this project)"
    rabbitmqctl stop >/dev/null 2>&1 || true
    rm -f "$RUN_DIR/rabbitmq.started-by-fragmenty"
  fi
}

ferretdb_pid() { cat "$RUN_DIR/ferretdb.pid" 2>/dev/null || true; }

ferretdb_up() {
  if external_mongodb; then log "MongoDB: using the server in FRAGMENTY_MONGODB_URL"; return; fi
  if port_open 127.0.0.1 27017; then
    log "FerretDB/MongoDB: already answering on $FERRETDB_ADDR"
    return
  fi
  local bin
  bin="$("$ROOT/scripts/build-ferretdb.sh")"
  log "FerretDB: starting ($bin, data in $FERRETDB_DATA)"
  nohup "$bin" \
    --handler=sqlite \
    --sqlite-url="file:$FERRETDB_DATA/" \
    --listen-addr="$FERRETDB_ADDR" \
    --state-dir="$RUN_DIR" \
    --telemetry=disable \
    --debug-addr=- \
    --log-level=warn \
    >>"$LOG_DIR/ferretdb.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/ferretdb.pid"
  wait_for_port 127.0.0.1 27017 30 FerretDB
  log "FerretDB: ready"
}

ferretdb_down() {
  local pid
  pid="$(ferretdb_pid)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    log "FerretDB: stopping (pid $pid, started by this project)"
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN_DIR/ferretdb.pid"
}

# Programs the test suite drives besides the shared servers: a browser for the chart pages,
# Prometheus for the shipped scrape configuration, and the RabbitMQ and FerretDB binaries that
# crash tests start privately (so they are there with INFRA=docker or external servers too).
test_tools_up() {
  local missing=()
  PATH="$PATH:/usr/sbin"
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
  command -v rabbitmq-server >/dev/null 2>&1 || missing+=(rabbitmq-server)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
  "$ROOT/scripts/build-ferretdb.sh" >/dev/null
}

case "${1:-up}" in
  up) rabbitmq_up; ferretdb_up ;;
  test-tools) test_tools_up ;;
  down) ferretdb_down; rabbitmq_down ;;
  restart-rabbitmq)
    rabbitmqctl stop_app >/dev/null && rabbitmqctl start_app >/dev/null ;;
  restart-ferretdb) ferretdb_down; ferretdb_up ;;
  status)
    if port_open 127.0.0.1 $RABBITMQ_PORT; then
      [ -f "$RUN_DIR/rabbitmq.started-by-fragmenty" ] && echo "rabbitmq: running (started by fragmenty)" || echo "rabbitmq: running (not ours)"
    else echo "rabbitmq: stopped"; fi
    pid="$(ferretdb_pid)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "ferretdb: running (pid $pid, started by fragmenty)"
    elif port_open 127.0.0.1 27017; then echo "mongodb: running on 27017 (not ours)"
    else echo "ferretdb: stopped"; fi ;;
  *) die "usage: $0 up|down|status|restart-rabbitmq|restart-ferretdb" ;;
esac
