#!/usr/bin/env bash
# System tools the test suite uses, from Debian's packages, installed when missing:
# promtool (prometheus), docker-compose (validates docker-compose.yml), chromium (the
# browser tests drive it with Playwright), npm (browser-sdks.sh installs the tracking SDKs
# the browser test loads, node-sdks.sh the Node.js server SDKs an ingest test runs), and the PostgreSQL server (postgres.sh installs that one itself).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

declare -A NEEDED=(
  [promtool]=prometheus
  [prometheus]=prometheus
  [docker-compose]=docker-compose
  [chromium]=chromium
  [npm]=npm
)
# vegeta (the open-loop HTTP load generator of bench/e2e.py) is not a Debian package: it is
# built from the Go module proxy at a pinned version into $CACHE_DIR/tools/bin (ignored by
# git), and rebuilt only when the binary there is missing or of another version.
VEGETA_MODULE=github.com/tsenart/vegeta/v12
VEGETA_VERSION=v12.13.0
install_vegeta() {
  local bin="$CACHE_DIR/tools/bin"
  if [[ -x "$bin/vegeta" ]] && command -v go >/dev/null 2>&1 \
     && go version -m "$bin/vegeta" 2>/dev/null | grep -qE "^\s+mod\s+$VEGETA_MODULE\s+$VEGETA_VERSION\b"; then
    return 0
  fi
  command -v go >/dev/null 2>&1 || die "vegeta needs Go to build it: install Go (https://go.dev/dl/)"
  info "building vegeta $VEGETA_VERSION into $bin (go install)"
  mkdir -p "$bin"
  GOBIN="$bin" go install "$VEGETA_MODULE@$VEGETA_VERSION" >"$LOG_DIR/vegeta-install.log" 2>&1 \
    || { tail -n 20 "$LOG_DIR/vegeta-install.log" >&2; die "go install vegeta failed (log: $LOG_DIR/vegeta-install.log)"; }
}

# Extra tools a target needs beyond the tests (e.g. `tools.sh wrk` for the benchmarks).
for extra in "$@"; do
  if [[ $extra == vegeta ]]; then install_vegeta; else NEEDED[$extra]=$extra; fi
done
missing=()
for tool in "${!NEEDED[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${NEEDED[$tool]}")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
[[ $EUID -eq 0 ]] || die "missing Debian packages: ${missing[*]} — install them: sudo apt-get install ${missing[*]}"
info "installing ${missing[*]} from Debian"
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d keeps Debian from starting the packaged Prometheus service on :9090.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
{ apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
  >"$LOG_DIR/tools-install.log" 2>&1 \
  || { tail -n 20 "$LOG_DIR/tools-install.log" >&2; die "apt-get install ${missing[*]} failed (log: $LOG_DIR/tools-install.log)"; }
