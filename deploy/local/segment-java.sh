#!/usr/bin/env bash
# The Segment Java SDK the ingest tests send with (tests/integration/ingest/test_segment_java.py),
# fetched with Maven from Maven Central as pinned in tests/integration/ingest/segment_java/pom.xml
# into .cache/segment-java/. Does nothing when that pom is already fetched there.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

POM="$REPO_ROOT/tests/integration/ingest/segment_java/pom.xml"
TARGET="$CACHE_DIR/segment-java"
STAMP="$TARGET/.installed-pom"

if [[ -f "$STAMP" ]] && cmp -s "$STAMP" "$POM"; then
  exit 0
fi
command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch the Segment Java SDK; install it (apt-get install maven)"
info "fetching the Segment Java SDK from Maven Central into $TARGET"
rm -rf "$TARGET/lib"
mkdir -p "$TARGET"
if ! mvn -q -B -f "$POM" -Dmaven.repo.local="$CACHE_DIR/m2" \
    dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$TARGET/lib" >"$LOG_DIR/segment-java-fetch.log" 2>&1; then
  tail -n 20 "$LOG_DIR/segment-java-fetch.log" >&2
  die "could not download the Segment Java SDK with Maven (log: $LOG_DIR/segment-java-fetch.log)"
fi
cp "$POM" "$STAMP"
