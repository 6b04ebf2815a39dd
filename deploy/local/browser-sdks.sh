#!/usr/bin/env bash
# The browser tracking SDKs the e2e test loads in Chromium (tests/e2e/test_browser_sdks.py),
# installed with npm from the pinned tests/e2e/sdks/package-lock.json into
# .cache/browser-sdks/. Does nothing when that lock file is already installed there.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

npm_install "the browser SDKs" "$REPO_ROOT/tests/e2e/sdks" "$CACHE_DIR/browser-sdks"
