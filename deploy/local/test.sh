#!/usr/bin/env bash
# The whole suite against the real infrastructure: bring it up, run unit, integration
# and e2e tests, and bring it down again whatever the outcome.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
HERE="$REPO_ROOT/deploy/local"

"$HERE/tools.sh"
if [[ "${1:-}" != "chaos" ]]; then  # the SDKs only the main suite's client tests use
  "$HERE/browser-sdks.sh"
  "$HERE/node-sdks.sh"
  "$HERE/segment-java.sh"
fi
cleanup() {
  "$HERE/stack.sh" down >/dev/null 2>&1 || true
  "$HERE/kafka-cluster.sh" stop >/dev/null 2>&1 || true  # the fault test's, if it was cut short
  "$HERE/infra.sh" down || true
}
trap cleanup EXIT
"$HERE/infra.sh" up
cd "$REPO_ROOT"

# Fault injection (tests/chaos) stops Kafka and restarts Postgres, so it runs alone, after
# everything else. KPIPULSE_CHAOS_SCALE lengthens it (`make chaos`); `test.sh chaos` runs
# only it.
chaos() {
  local started=$SECONDS
  .venv/bin/pytest -q -p no:cacheprovider tests/chaos
  echo "chaos suite (scale ${KPIPULSE_CHAOS_SCALE:-1}) took $((SECONDS - started)) s"
}
if [[ "${1:-}" == "chaos" ]]; then chaos; exit; fi

started=$SECONDS
.venv/bin/pytest -q -p no:cacheprovider tests "$@"
echo "test suite took $((SECONDS - started)) s"
chaos
