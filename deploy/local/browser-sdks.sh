#!/usr/bin/env bash
# The browser tracking SDKs the e2e test loads in Chromium (tests/e2e/test_browser_sdks.py),
# installed with npm from the pinned tests/e2e/sdks/package-lock.json into
# .cache/browser-sdks/. Does nothing when that lock file is already installed there.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SOURCE="$REPO_ROOT/tests/e2e/sdks"
TARGET="$CACHE_DIR/browser-sdks"
STAMP="$TARGET/.installed-lock"

command -v npm >/dev/null 2>&1 || die "npm is missing: apt-get install npm (deploy/local/tools.sh does it as root)"
if [[ -f "$STAMP" ]] && cmp -s "$STAMP" "$SOURCE/package-lock.json"; then
  exit 0
fi
info "installing the browser SDKs (npm ci) into $TARGET"
mkdir -p "$TARGET"
cp "$SOURCE/package.json" "$SOURCE/package-lock.json" "$TARGET/"
# --ignore-scripts: the bundles are used as published; nothing of theirs runs here.
(cd "$TARGET" && npm ci --ignore-scripts --no-audit --no-fund) \
  >"$LOG_DIR/browser-sdks-install.log" 2>&1 \
  || { tail -n 20 "$LOG_DIR/browser-sdks-install.log" >&2; die "npm ci of the browser SDKs failed (log: $LOG_DIR/browser-sdks-install.log)"; }
cp "$SOURCE/package-lock.json" "$STAMP"
