#!/usr/bin/env bash
# A real PostgreSQL server for development and tests, without Docker: Debian's server
# (installed when missing), a cluster in the cache folder run as the `postgres` user on
# 127.0.0.1, with a `kpipulse` role and database. Usage: postgres.sh start|stop|status|reset
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PG_HOST=127.0.0.1
PG_PORT="${KPIPULSE_PG_PORT:-5432}"
PG_DATA="$CACHE_DIR/postgres/data"
PG_LOG="$LOG_DIR/postgres.log"
DB_NAME=kpipulse
DB_USER=kpipulse
DB_PASSWORD=kpipulse

find_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  [[ -n "$dir" && -x "$dir/pg_ctl" ]] && echo "$dir"
}

install_server() {
  [[ $EUID -eq 0 ]] || die "PostgreSQL server is not installed; run as root or: sudo apt-get install postgresql"
  info "installing PostgreSQL from Debian"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -q && apt-get install -y -q --no-install-recommends postgresql; } \
    >"$LOG_DIR/postgres-install.log" 2>&1 \
    || { tail -n 20 "$LOG_DIR/postgres-install.log" >&2; die "apt-get install postgresql failed (log: $LOG_DIR/postgres-install.log)"; }
  # Debian starts its own cluster on 5432 on install; ours runs instead.
  if command -v pg_ctlcluster >/dev/null; then
    for cluster in $(ls /etc/postgresql 2>/dev/null); do
      pg_ctlcluster "$cluster" main stop 2>/dev/null || true
    done
  fi
}

PG_BIN="$(find_bin || true)"

# as_owner CMD...: the server refuses to run as root, so root runs it as `postgres`.
as_owner() {
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ready() { as_owner "$PG_BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT"; }

psql_admin() {
  as_owner "$PG_BIN/psql" -v ON_ERROR_STOP=1 -q -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres "$@"
}

start() {
  if [[ -z "$PG_BIN" ]]; then install_server; PG_BIN="$(find_bin)" || die "PostgreSQL binaries not found after install"; fi
  if [[ -f "$PG_DATA/postmaster.pid" ]] && ready; then
    info "postgres already running on $PG_HOST:$PG_PORT"
    return
  fi
  port_open "$PG_HOST" "$PG_PORT" && die "port $PG_HOST:$PG_PORT is taken by another process; stop it or set KPIPULSE_PG_PORT"
  mkdir -p "$(dirname "$PG_DATA")"
  if [[ $EUID -eq 0 ]]; then
    chown postgres: "$(dirname "$PG_DATA")"
    # The postgres user must be able to reach its data folder through the repository.
    runuser -u postgres -- test -x "$(dirname "$PG_DATA")" \
      || die "the postgres user cannot reach $PG_DATA; set KPIPULSE_CACHE_DIR to a world-traversable folder"
  fi
  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    info "initialising a PostgreSQL cluster in $PG_DATA"
    as_owner "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
      >"$LOG_DIR/postgres-initdb.log" 2>&1 || die "initdb failed (log: $LOG_DIR/postgres-initdb.log)"
  fi
  touch "$PG_LOG"; [[ $EUID -eq 0 ]] && chown postgres: "$PG_LOG"
  info "starting postgres on $PG_HOST:$PG_PORT"
  as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start \
    -o "-c listen_addresses=$PG_HOST -p $PG_PORT -k /tmp -c max_connections=200 -c fsync=on -c shared_buffers=256MB" \
    >/dev/null || { tail -n 20 "$PG_LOG" >&2; die "postgres did not start (log: $PG_LOG)"; }
  wait_for "postgres" 60 ready || die "postgres is not accepting connections (log: $PG_LOG)"
  psql_admin <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD' CREATEDB;
  END IF;
END \$\$;
SQL
  if ! psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
    psql_admin -c "CREATE DATABASE $DB_NAME OWNER $DB_USER"
  fi
}

stop() {
  if [[ -n "$PG_BIN" && -f "$PG_DATA/postmaster.pid" ]]; then
    info "stopping postgres"
    as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null || true
  else
    info "postgres is not running"
  fi
}

status() {
  if [[ -n "$PG_BIN" ]] && ready; then echo "postgres: running on $PG_HOST:$PG_PORT"; else echo "postgres: stopped"; return 1; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  reset) stop; rm -rf "$PG_DATA" ;;
  *) die "usage: $0 start|stop|status|reset" ;;
esac
