"""Topic creation against the real broker: the layout asked for, or an error that says why.

The suite's broker is a single node, so replication above 1 shows the refusal path; the
three-node cluster with replication 3 is exercised by ``tests/chaos/test_cluster.py``.
"""

from __future__ import annotations

import uuid

import pytest

from services.cli import main
from shared.bus.topics import TopicSetupError, ensure_topics
from shared.settings import KafkaSettings, Settings


def _kafka(settings: Settings, **changes: object) -> KafkaSettings:
    prefix = f"{settings.kafka.topic_prefix}topics-{uuid.uuid4().hex[:6]}."
    return KafkaSettings.model_validate(
        settings.kafka.model_dump() | {"topic_prefix": prefix} | changes
    )


async def test_missing_topics_get_the_configured_layout_and_are_described_after(
    settings: Settings,
) -> None:
    kafka = _kafka(settings, partitions=2)
    names = kafka.topics().all()
    first = await ensure_topics(kafka, names, timeout_s=30)
    assert [(s.name, s.created) for s in first] == [(n, True) for n in names]
    for state in first:
        assert (state.partitions, state.replication_factor, state.min_insync_replicas) == (2, 1, 1)
        assert state.differences == ()
    again = await ensure_topics(kafka, names, timeout_s=30)
    assert [s.created for s in again] == [False] * len(names)


async def test_existing_topics_are_left_alone_and_every_difference_named(
    settings: Settings,
) -> None:
    kafka = _kafka(settings, partitions=2)
    names = kafka.topics().all()
    await ensure_topics(kafka, names, timeout_s=30)
    changed = kafka.model_copy(update={"partitions": 3})
    states = await ensure_topics(changed, names, timeout_s=30)
    assert {s.partitions for s in states} == {2}
    assert all(s.differences == ("2 partitions, settings ask 3",) for s in states)


async def test_more_replicas_than_brokers_is_refused_with_the_reason(
    settings: Settings,
) -> None:
    kafka = _kafka(settings, replication_factor=2)
    with pytest.raises(TopicSetupError, match=r"replication factor 2 needs as many brokers; "
                       r"the cluster at .* has 1"):
        await ensure_topics(kafka, kafka.topics().all(), timeout_s=1)


def test_cli_refuses_more_in_sync_replicas_than_copies(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KPIPULSE_KAFKA__BOOTSTRAP_SERVERS", settings.kafka.bootstrap_servers)
    code = main(["topics", "create", "--replication-factor", "2", "--min-insync-replicas", "3"])
    assert code == 2
    assert "KPIPULSE_KAFKA__MIN_INSYNC_REPLICAS (3) exceeds" in capsys.readouterr().err


def test_cli_reports_existing_topics_that_differ_and_exits_1(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kafka = _kafka(settings)
    monkeypatch.setenv("KPIPULSE_KAFKA__BOOTSTRAP_SERVERS", kafka.bootstrap_servers)
    monkeypatch.setenv("KPIPULSE_KAFKA__TOPIC_PREFIX", kafka.topic_prefix)
    assert main(["topics", "create", "--partitions", "2", "--timeout", "30"]) == 0
    created = capsys.readouterr().out.splitlines()
    assert len(created) == 3 and all(
        line.endswith(": created (2 partitions, replication factor 1, min.insync.replicas 1)")
        for line in created
    ), created
    assert main(["topics", "create", "--partitions", "4", "--timeout", "30"]) == 1
    output = capsys.readouterr()
    assert output.err.count("differs from the settings: 2 partitions, settings ask 4") == 3
    assert "existing topics left as they are" in output.err
