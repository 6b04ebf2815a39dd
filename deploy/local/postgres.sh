#!/usr/bin/env bash
# A real PostgreSQL server for development and tests, without Docker: Debian's server
# (installed when missing), a cluster of this checkout's own on 127.0.0.1, with a
# `kpipulse` role and database. Usage: postgres.sh start|stop|status|reset
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PG_HOST=127.0.0.1
PG_PORT="${KPIPULSE_PG_PORT:-5432}"
# The server refuses to run as root, so root runs it as the `postgres` user, which must
# reach the cluster's folder; a clone may sit where only its owner may enter (a 0700
# home such as /root). So root keeps the cluster (data and log) in the postgres
# user's home, which no other user can write to; anyone else keeps it in the cache
# folder and runs the server as themselves. Named after the checkout's cache folder
# and the port: checkouts and ports never share a cluster.
if [[ $EUID -eq 0 ]]; then
  PG_ID="$(cd "$CACHE_DIR" && pwd -P | sha256sum | cut -c1-12)"
  PG_HOME="$(getent passwd postgres 2>/dev/null | cut -d: -f6 || true)"
  PG_HOME="${PG_HOME:-/var/lib/postgresql}/kpipulse-$PG_ID-$PG_PORT"
else
  PG_HOME="$CACHE_DIR/postgres/$PG_PORT"
fi
PG_DATA="$PG_HOME/data"
PG_LOG="$PG_HOME/postgres.log"
# Where clusters were kept before (inside the cache folder, one per checkout): `stop`
# still stops one left running there, so that an upgrade does not orphan it.
LEGACY_DATA="$CACHE_DIR/postgres/data"
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

# as_owner CMD...: the server refuses to run as root, so root runs it as `postgres`
# (from /, as the current folder may be one that user cannot enter).
as_owner() {
  if [[ $EUID -eq 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
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
  # Made by its owner (for root: by `postgres`, in its own home), private to it.
  as_owner mkdir -p -m 700 "$PG_HOME" || die "cannot create $PG_HOME"
  ln -sfn "$PG_LOG" "$LOG_DIR/postgres.log"  # beside the other logs
  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    info "initialising a PostgreSQL cluster in $PG_DATA"
    as_owner "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
      >"$LOG_DIR/postgres-initdb.log" 2>&1 || die "initdb failed (log: $LOG_DIR/postgres-initdb.log)"
  fi
  info "starting postgres on $PG_HOST:$PG_PORT (cluster in $PG_HOME)"
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

stop_cluster() {
  as_owner "$PG_BIN/pg_ctl" -D "$1" -m fast -w stop >/dev/null || true
}

stop() {
  local stopped=""
  if [[ -n "$PG_BIN" && -f "$LEGACY_DATA/postmaster.pid" ]]; then
    info "stopping postgres (cluster in $LEGACY_DATA, where earlier versions kept it)"
    stop_cluster "$LEGACY_DATA"; stopped=1
  fi
  if [[ -n "$PG_BIN" && -f "$PG_DATA/postmaster.pid" ]]; then
    info "stopping postgres"
    stop_cluster "$PG_DATA"; stopped=1
  fi
  [[ -n "$stopped" ]] || info "postgres is not running"
}

status() {
  if [[ -n "$PG_BIN" ]] && ready; then echo "postgres: running on $PG_HOST:$PG_PORT"; else echo "postgres: stopped"; return 1; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  reset) stop; rm -rf "$PG_HOME" "$LEGACY_DATA"; rm -f "$LOG_DIR/postgres.log" ;;
  *) die "usage: $0 start|stop|status|reset" ;;
esac
