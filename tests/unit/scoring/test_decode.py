"""Reading a consumed batch: valid events once each, a dead letter for each bad message."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from services.scoring.consumer import FoldEvents, decode_event, first_of_each
from shared.bus.consumer import DeadLetterPolicy, InvalidMessage
from shared.bus.dlq import DeadLetter, DeadLetterQueue
from shared.bus.ports import Message, OutgoingRecord
from shared.contracts.event_reader import ReadEvent
from shared.contracts.events import EventEnvelope

NOW = datetime(2026, 11, 1, tzinfo=UTC)


class _Unused:
    async def publish(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        raise AssertionError("decoding sends nothing")


POLICY = DeadLetterPolicy(DeadLetterQueue(_Unused(), "dlq"), stage=FoldEvents.stage)  # type: ignore[arg-type]


def _event(event_id: str, source: str = "web") -> bytes:
    return EventEnvelope(
        event_id=event_id, source=source, type="signup", occurred_at=NOW, received_at=NOW
    ).to_bytes()


def _message(offset: int, value: bytes) -> Message:
    return Message("t", 0, offset, None, value, 0)


def _read(batch: list[Message]) -> tuple[list[ReadEvent], list[DeadLetter]]:
    events: list[ReadEvent] = []
    letters: list[DeadLetter] = []
    for message in batch:
        try:
            events.append(decode_event(message.value))
        except InvalidMessage as exc:
            letters.append(POLICY.letter(message, exc))
    return first_of_each(events), letters


def test_the_first_occurrence_of_an_id_wins() -> None:
    batch = [_message(0, _event("a")), _message(1, _event("b")), _message(2, _event("a"))]
    events, letters = _read(batch)
    assert [(e.event_id) for e in events] == ["a", "b"]
    assert letters == []


def test_the_same_id_from_another_source_is_another_event() -> None:
    batch = [_message(0, _event("a", "web")), _message(1, _event("a", "support"))]
    events, _ = _read(batch)
    assert [(e.source, e.event_id) for e in events] == [("web", "a"), ("support", "a")]


def test_bad_messages_become_dead_letters_and_the_rest_survive() -> None:
    two_in_one = _event("x") + b"," + _event("y")  # must not pass as two events
    batch = [_message(0, _event("a")), _message(1, b"{oops"), _message(2, two_in_one)]
    events, letters = _read(batch)
    assert [e.event_id for e in events] == ["a"]
    assert [letter.source.offset for letter in letters if letter.source] == [1, 2]
    assert all(letter.reason.startswith("invalid event: ") for letter in letters)
    assert {letter.kind for letter in letters} == {"invalid_event"}
