#!/usr/bin/env bash
# Start or stop the local infrastructure: Kafka and PostgreSQL; `up` also creates the
# topics and applies the migrations. Idempotent. Usage: infra.sh up|down|status
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
HERE="$REPO_ROOT/deploy/local"
KPIPULSE="$REPO_ROOT/.venv/bin/kpipulse"

case "${1:-}" in
  up)
    "$HERE/postgres.sh" start
    "$HERE/kafka.sh" start
    [[ -x "$KPIPULSE" ]] || die "the virtual environment is missing; run 'make install' first"
    info "creating topics"
    "$KPIPULSE" topics create --timeout 120
    info "applying migrations"
    "$KPIPULSE" migrate
    ;;
  down)
    "$HERE/kafka.sh" stop
    "$HERE/postgres.sh" stop
    ;;
  status)
    rc=0
    "$HERE/postgres.sh" status || rc=1
    "$HERE/kafka.sh" status || rc=1
    exit $rc
    ;;
  *) die "usage: $0 up|down|status" ;;
esac
