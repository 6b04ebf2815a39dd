#!/usr/bin/env bash
# Run the three services as background processes against the local infrastructure:
# ingest on :8000, scoring on :8001, alerts on :8002; logs in .cache/logs.
# Usage: stack.sh up|down|status
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
KPIPULSE="$REPO_ROOT/.venv/bin/kpipulse"
declare -A PORTS=([ingest]=8000 [scoring]=8001 [alerts]=8002)

up() {
  cd "$REPO_ROOT"
  [[ -x "$KPIPULSE" ]] || die "the virtual environment is missing; run 'make install' first"
  export KPIPULSE_ADMIN_TOKEN="${KPIPULSE_ADMIN_TOKEN:-dev-admin-token}"
  # Secrets of this machine's stack, made once and kept (owner-only) under .cache: the
  # alert webhook's signing secret (alerts refuses to start without one while a KPI has
  # a webhook owner) and the token that shows the KPI gauges on /metrics.
  local secret_dir="$REPO_ROOT/.cache/secrets"
  mkdir -p "$secret_dir" && chmod 700 "$secret_dir"
  for name in alerts-webhook-secret metrics-token; do
    [[ -s "$secret_dir/$name" ]] || (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(24))' > "$secret_dir/$name")
  done
  export KPIPULSE_ALERTS__WEBHOOK_SECRET="${KPIPULSE_ALERTS__WEBHOOK_SECRET:-$(cat "$secret_dir/alerts-webhook-secret")}"
  export KPIPULSE_METRICS_TOKEN="${KPIPULSE_METRICS_TOKEN:-$(cat "$secret_dir/metrics-token")}"
  for svc in ingest scoring alerts; do
    local pidfile="$RUN_DIR/$svc.pid" port="${PORTS[$svc]}"
    if pid_alive "$pidfile"; then info "$svc already running (pid $(cat "$pidfile"))"; continue; fi
    port_open 127.0.0.1 "$port" && die "port 127.0.0.1:$port is taken; $svc cannot start"
    nohup "$KPIPULSE" "$svc" >>"$LOG_DIR/$svc.log" 2>&1 </dev/null &
    echo $! > "$pidfile"
    info "started $svc (log: $LOG_DIR/$svc.log)"
  done
  for svc in ingest scoring alerts; do
    wait_for "$svc on :${PORTS[$svc]}" 60 curl -fsS "http://127.0.0.1:${PORTS[$svc]}/healthz" \
      || { tail -n 20 "$LOG_DIR/$svc.log" >&2; die "$svc did not become healthy (log: $LOG_DIR/$svc.log)"; }
  done
  echo "admin token: $KPIPULSE_ADMIN_TOKEN"
  echo "metrics token (Prometheus' authorization): $secret_dir/metrics-token"
  echo "people: .venv/bin/kpipulse users create --email E --role admin|editor|viewer --groups g1,g2"
}

down() {
  for svc in alerts scoring ingest; do
    local pidfile="$RUN_DIR/$svc.pid"
    if pid_alive "$pidfile"; then
      local pid; pid="$(cat "$pidfile")"
      kill -TERM "$pid"
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
      info "stopped $svc"
    fi
    rm -f "$pidfile"
  done
}

status() {
  for svc in ingest scoring alerts; do
    if pid_alive "$RUN_DIR/$svc.pid"; then echo "$svc: running"; else echo "$svc: stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: $0 up|down|status" ;;
esac
