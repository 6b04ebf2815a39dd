#!/usr/bin/env bash
# The Node.js server SDKs the ingest tests send with (tests/integration/ingest/test_server_sdks.py),
# installed with npm from the pinned tests/integration/ingest/node_sdks/package-lock.json into
# .cache/node-sdks/. Does nothing when that lock file is already installed there. (Their
# optional native add-ons, for RudderStack's unused Redis queue, stay unbuilt.)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

npm_install "the Node.js server SDKs" "$REPO_ROOT/tests/integration/ingest/node_sdks" "$CACHE_DIR/node-sdks"
