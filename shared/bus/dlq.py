"""Dead-letter helper: a rejected record goes to the DLQ with why and where it came from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from shared.bus.ports import Message, OutgoingRecord, Publisher

REASON = "kpipulse-dlq-reason"
SOURCE_TOPIC = "kpipulse-dlq-source-topic"
SOURCE_PARTITION = "kpipulse-dlq-source-partition"
SOURCE_OFFSET = "kpipulse-dlq-source-offset"
STAGE = "kpipulse-dlq-stage"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str
    payload: bytes
    stage: str
    key: bytes | None = None
    source: Message | None = None
    #: What kind of refusal this is: the bounded label of the dead-letter counter.
    kind: str = "invalid"

    @classmethod
    def of(
        cls, message: Message, *, reason: str, stage: str, kind: str = "invalid"
    ) -> DeadLetter:
        """A consumed message as it came, with why and where it came from."""
        return cls(reason=reason, payload=message.value, stage=stage, key=message.key,
                   source=message, kind=kind)

    def to_record(self) -> OutgoingRecord:
        headers: list[tuple[str, bytes]] = [
            (REASON, self.reason.encode()[:1024]),
            (STAGE, self.stage.encode()),
        ]
        if self.source is not None:
            headers += [
                (SOURCE_TOPIC, self.source.topic.encode()),
                (SOURCE_PARTITION, str(self.source.partition).encode()),
                (SOURCE_OFFSET, str(self.source.offset).encode()),
            ]
        return OutgoingRecord(key=self.key, value=self.payload, headers=tuple(headers))


class DeadLetterQueue:
    def __init__(self, publisher: Publisher, topic: str) -> None:
        self._publisher = publisher
        self._topic = topic

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        await self._publisher.publish(self._topic, [letter.to_record() for letter in letters])

    @staticmethod
    def rejected_payload(
        raw: bytes | object, *, max_bytes: int | None = None, fallback: bytes = b""
    ) -> bytes:
        """Bytes for a rejected input, whatever shape it arrived in; never raises.

        Bytes are kept as they came. Anything else is encoded as JSON, and when it
        cannot be (nested past the encoder's depth, keys that are not strings) the
        letter carries ``fallback`` instead, the raw bytes it was read from: a dead
        letter that cannot be written would fail the publish it is part of, and with it
        every valid event beside it. ``max_bytes`` bounds the result (see ``truncated``).
        """
        data = encoded(raw)
        if data is None:
            data = fallback
        return data if max_bytes is None else truncated(data, max_bytes)


def encoded(raw: bytes | object) -> bytes | None:
    """``raw`` itself when bytes, else its JSON; None when it cannot be encoded."""
    if isinstance(raw, bytes):
        return raw
    try:
        return orjson.dumps(raw, default=str)
    except (TypeError, ValueError, RecursionError):
        return None


#: Ends a payload cut to its size bound; the numbers are what was kept and the original.
TRUNCATION_MARKER = b"...[truncated by kpipulse: %d of %d bytes]"


def truncated(data: bytes, max_bytes: int) -> bytes:
    """``data`` when it fits in ``max_bytes``, else its start and a marker, within the bound.

    Large rejected inputs would otherwise make the dead letter larger than the broker
    accepts, and the publish carrying it would fail.
    """
    if len(data) <= max_bytes:
        return data
    keep = max_bytes - len(TRUNCATION_MARKER % (max_bytes, len(data)))
    if keep <= 0:  # no room for the marker
        return data[:max_bytes]
    return data[:keep] + TRUNCATION_MARKER % (keep, len(data))


def first_problem(exc: ValidationError) -> str:
    """A letter's reason: the first thing wrong, named by its field (``value: …``)."""
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


def describe(message: Message) -> dict[str, str | int | None]:
    """Read the DLQ headers of a dead-lettered message back (for tools and tests)."""
    def text(name: str) -> str | None:
        raw = message.header(name)
        return raw.decode() if raw is not None else None

    partition = text(SOURCE_PARTITION)
    offset = text(SOURCE_OFFSET)
    return {
        "reason": text(REASON),
        "stage": text(STAGE),
        "source_topic": text(SOURCE_TOPIC),
        "source_partition": int(partition) if partition is not None else None,
        "source_offset": int(offset) if offset is not None else None,
    }
