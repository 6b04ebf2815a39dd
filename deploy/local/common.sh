# Shared helpers for the local infrastructure scripts (sourced, not run).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE_DIR="${KPIPULSE_CACHE_DIR:-$REPO_ROOT/.cache}"
RUN_DIR="$CACHE_DIR/run"
LOG_DIR="$CACHE_DIR/logs"
mkdir -p "$RUN_DIR" "$LOG_DIR"

die() { echo "error: $*" >&2; exit 1; }
info() { echo "==> $*"; }

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_for DESCRIPTION SECONDS COMMAND...: retry COMMAND until it succeeds or time is up.
wait_for() {
  local what="$1" seconds="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS >= deadline )); then return 1; fi
    sleep 0.5
  done
  info "$what is ready"
}

# pid_alive FILE: true when FILE names a running process.
pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Ports can move (e.g. a second checkout testing beside a running one); the services and
# the tests then follow through the settings variables derived here.
KPIPULSE_KAFKA_PORT="${KPIPULSE_KAFKA_PORT:-9092}"
KPIPULSE_PG_PORT="${KPIPULSE_PG_PORT:-5432}"
export KPIPULSE_KAFKA__BOOTSTRAP_SERVERS="${KPIPULSE_KAFKA__BOOTSTRAP_SERVERS:-127.0.0.1:$KPIPULSE_KAFKA_PORT}"
export KPIPULSE_DATABASE__URL="${KPIPULSE_DATABASE__URL:-postgresql+asyncpg://kpipulse:kpipulse@127.0.0.1:$KPIPULSE_PG_PORT/kpipulse}"
export KPIPULSE_TEST_KAFKA="${KPIPULSE_TEST_KAFKA:-127.0.0.1:$KPIPULSE_KAFKA_PORT}"
export KPIPULSE_TEST_SERVER_DSN="${KPIPULSE_TEST_SERVER_DSN:-postgresql://kpipulse:kpipulse@127.0.0.1:$KPIPULSE_PG_PORT/kpipulse}"

# npm_install WHAT SOURCE_DIR TARGET_DIR: `npm ci` of SOURCE_DIR's pinned package-lock.json
# into TARGET_DIR, skipped when that lock file is already installed there. --ignore-scripts:
# the packages are used as published; nothing of theirs runs here.
npm_install() {
  local what="$1" source="$2" target="$3" name
  local stamp="$target/.installed-lock"
  name="$(basename "$target")"
  command -v npm >/dev/null 2>&1 || die "npm is missing: apt-get install npm (deploy/local/tools.sh does it as root)"
  if [[ -f "$stamp" ]] && cmp -s "$stamp" "$source/package-lock.json"; then
    return 0
  fi
  info "installing $what (npm ci) into $target"
  mkdir -p "$target"
  cp "$source/package.json" "$source/package-lock.json" "$target/"
  (cd "$target" && npm ci --ignore-scripts --no-audit --no-fund) >"$LOG_DIR/$name-install.log" 2>&1 \
    || { tail -n 20 "$LOG_DIR/$name-install.log" >&2; die "npm ci of $what failed (log: $LOG_DIR/$name-install.log)"; }
  cp "$source/package-lock.json" "$stamp"
}
