"""The real Segment Java SDK (3.5.4, from Maven Central) against ingest on 127.0.0.1.

Only its endpoint is changed: it posts its batches to ``/v1/import/`` with the write key
as Basic auth. deploy/local/segment-java.sh fetches the pinned jars (make test runs it).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid

import pytest

from shared.settings import Settings
from tests.integration.ingest.helpers import Keys, consume, value
from tests.support.processes import REPO

LIBS = REPO / ".cache" / "segment-java" / "lib"
PROGRAM = REPO / "tests" / "integration" / "ingest" / "segment_java" / "Send.java"


async def test_track_and_identify_arrive_in_the_topic(
    server_url: str, keys: Keys, ingest_settings: Settings
) -> None:
    java = shutil.which("java")
    if java is None or not (LIBS / "analytics-3.5.4.jar").is_file():
        pytest.fail("needs java and the SDK's jars: run deploy/local/segment-java.sh")
    run = uuid.uuid4().hex
    # A single-file source program: java compiles it in memory, nothing is built here.
    process = await asyncio.create_subprocess_exec(
        java, "-cp", f"{LIBS}/*", str(PROGRAM), keys.web, server_url, run,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(120):
        output, _ = await process.communicate()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    sent = dict(line.split()[1:3] for line in text.splitlines() if line.startswith("ok "))
    assert len(sent) == 2 and "failed" not in text, text

    found = await consume(ingest_settings, ingest_settings.kafka.topics().events, list(sent))
    events = {value(message)["type"]: value(message) for message in found.values()}
    assert set(events) == {"order_completed", "identify"}
    track = events["order_completed"]
    assert track["subject_id"] == f"java-{run}"
    assert track["value"] == 42
    assert track["context"]["library"]["name"] == "analytics-java"
    assert events["identify"]["properties"] == {"run": run, "plan": "pro"}
