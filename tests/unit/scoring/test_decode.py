"""Reading a consumed batch: valid events once each, a dead letter for each bad message."""

from __future__ import annotations

from datetime import UTC, datetime

from services.scoring.handlers import valid_events
from shared.bus.dlq import DeadLetter
from shared.bus.ports import Message
from shared.contracts.events import EventEnvelope

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _event(event_id: str) -> bytes:
    return EventEnvelope(
        event_id=event_id, source="web", type="signup", occurred_at=NOW, received_at=NOW
    ).to_bytes()


def _message(offset: int, value: bytes) -> Message:
    return Message("t", 0, offset, None, value, 0)


def test_the_first_occurrence_of_an_id_wins_and_ids_are_collected() -> None:
    seen: set[str] = set()
    letters: list[DeadLetter] = []
    batch = [_message(0, _event("a")), _message(1, _event("b")), _message(2, _event("a"))]
    events = list(valid_events(batch, seen, letters))
    assert [(e.event_id) for e in events] == ["a", "b"]
    assert seen == {"a", "b"} and letters == []


def test_bad_messages_become_dead_letters_and_the_rest_survive() -> None:
    two_in_one = _event("x") + b"," + _event("y")  # must not pass as two events
    batch = [_message(0, _event("a")), _message(1, b"{oops"), _message(2, two_in_one)]
    letters: list[DeadLetter] = []
    events = list(valid_events(batch, set(), letters))
    assert [e.event_id for e in events] == ["a"]
    assert [letter.source.offset for letter in letters if letter.source] == [1, 2]
    assert all(letter.reason.startswith("invalid event: ") for letter in letters)
