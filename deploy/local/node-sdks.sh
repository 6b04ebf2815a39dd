#!/usr/bin/env bash
# The Node.js server SDKs the ingest tests send with (tests/integration/ingest/test_server_sdks.py),
# installed with npm from the pinned tests/integration/ingest/node_sdks/package-lock.json into
# .cache/node-sdks/. Does nothing when that lock file is already installed there.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SOURCE="$REPO_ROOT/tests/integration/ingest/node_sdks"
TARGET="$CACHE_DIR/node-sdks"
STAMP="$TARGET/.installed-lock"

command -v npm >/dev/null 2>&1 || die "npm is missing: apt-get install npm (deploy/local/tools.sh does it as root)"
if [[ -f "$STAMP" ]] && cmp -s "$STAMP" "$SOURCE/package-lock.json"; then
  exit 0
fi
info "installing the Node.js server SDKs (npm ci) into $TARGET"
mkdir -p "$TARGET"
cp "$SOURCE/package.json" "$SOURCE/package-lock.json" "$TARGET/"
# --ignore-scripts: the packages are used as published; nothing of theirs runs here
# (their optional native add-ons, for RudderStack's unused Redis queue, stay unbuilt).
(cd "$TARGET" && npm ci --ignore-scripts --no-audit --no-fund) \
  >"$LOG_DIR/node-sdks-install.log" 2>&1 \
  || { tail -n 20 "$LOG_DIR/node-sdks-install.log" >&2; die "npm ci of the Node.js server SDKs failed (log: $LOG_DIR/node-sdks-install.log)"; }
cp "$SOURCE/package-lock.json" "$STAMP"
