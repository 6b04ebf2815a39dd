"""The consumer side of scoring: fold a batch of events into buckets, exactly once.

One Postgres transaction per batch holds the partitions' stored offsets (row-locked),
the dedupe ids and the bucket deltas, and writes the next offsets last. Whatever
happens — a kill -9, a rebalance that briefly gives a partition to two instances — a
message is applied once: messages below the stored offset are skipped, and an event id
already counted within the dedupe horizon is not counted again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import chain

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.catalog_state import CatalogState
from services.scoring.domain.aggregates import FoldResult, TermAggregate
from services.scoring.metrics import ScoringMetrics
from services.scoring.repository import BucketRepository, PartitionBucket
from shared.bus.dlq import DeadLetter, DeadLetterQueue, first_problem
from shared.bus.ports import Message, PartitionId, Rewind
from shared.contracts.event_reader import ReadEvent, read_event, validate_event
from shared.db.engine import transaction
from shared.db.offsets import OffsetRepository

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FoldHandler:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        catalog: CatalogState,
        buckets: BucketRepository,
        offsets: OffsetRepository,
        dlq: DeadLetterQueue,
        metrics: ScoringMetrics,
        on_folded: Callable[[dict[str, datetime]], None],
        wait_for_flush: bool = True,
        clock: Clock = _utcnow,
    ) -> None:
        self._sessions = sessions
        self._catalog = catalog
        self._buckets = buckets
        self._offsets = offsets
        self._dlq = dlq
        self._metrics = metrics
        self._on_folded = on_folded
        self._wait_for_flush = wait_for_flush
        self._clock = clock
        # Partitions sent back to their stored offset, and which (see ``_unapplied``).
        self._rewound: dict[PartitionId, int] = {}

    async def _unapplied(
        self, session: AsyncSession, messages: Sequence[Message]
    ) -> dict[tuple[str, int], list[Message]]:
        """The messages not applied yet, per partition, in offset order (row-locks the
        partitions' stored offsets until the transaction ends).

        Raises ``Rewind`` when a partition's batch starts above its stored offset: the
        database lost the latest folds (with asynchronous commits, a crash may), so the
        messages in between are read again. If, read again from there, the partition
        still starts above it, the log holds nothing in between (deleted by retention,
        or transaction markers) and the batch is taken.
        """
        by_partition: dict[tuple[str, int], list[Message]] = defaultdict(list)
        for message in messages:
            by_partition[message.topic, message.partition].append(message)
        stored = await self._offsets.locked(
            session, [PartitionId(*key) for key in sorted(by_partition)]
        )
        behind: dict[PartitionId, int] = {}
        for (topic, partition), batch in list(by_partition.items()):
            key = PartitionId(topic, partition)
            # Nothing stored: nothing applied, so the partition is read from offset 0 (or,
            # past a rewind, from the first offset its log still holds).
            floor = stored.get(key, 0)
            # A consumer hands each partition's records in offset order, so one look at
            # the first tells whether any of them was applied already.
            first = batch[0].offset
            if first > floor and self._rewound.pop(key, None) != floor:
                behind[key] = floor
                continue
            self._rewound.pop(key, None)
            if first < floor:
                batch[:] = [m for m in batch if m.offset >= floor]
                if not batch:
                    del by_partition[topic, partition]
        if behind:
            self._rewound.update(behind)
            raise Rewind(behind)
        return by_partition

    def _fold(self, decoded: dict[tuple[str, int], list[ReadEvent]], now: datetime) -> FoldResult:
        # The whole batch at once: its buckets are written under one slot (see __call__).
        return self._catalog.folder.fold(chain.from_iterable(decoded.values()), now=now)

    async def _claim_while_folding(
        self,
        session: AsyncSession,
        decoded: dict[tuple[str, int], list[ReadEvent]],
        ids: list[str],
        now: datetime,
    ) -> tuple[FoldResult, set[str]]:
        """Fold the batch while Postgres records its ids; return the fold, the new ids.

        The claim is the batch's longest statement and the fold its largest CPU cost:
        run one beside the other, a batch takes about the fold's time less.
        """
        claim = asyncio.ensure_future(self._buckets.claim_new_events(session, ids, now))
        try:
            await asyncio.sleep(0)  # the claim reaches Postgres before the fold holds the loop
            results = self._fold(decoded, now)
        except BaseException:
            # Never leave a statement running on the session that is about to roll back;
            # the fold's error is the one to report (the claim's, if any, is dropped).
            await asyncio.wait([claim])
            if not claim.cancelled():
                claim.exception()
            raise
        return results, await claim

    async def __call__(self, messages: Sequence[Message]) -> None:
        started = time.perf_counter()
        now = self._clock()
        # Per KPI, the oldest bucket the batch wrote to (the evaluator re-reads from there).
        touched: dict[str, datetime] = {}
        # Not waiting for the disk takes the disk's stalls (fsyncs of 150-260 ms were seen
        # on a shared disk) out of every event's latency; what a Postgres crash loses,
        # ``_unapplied`` has the consumer read again.
        async with transaction(self._sessions, wait_for_flush=self._wait_for_flush) as session:
            by_partition = await self._unapplied(session, messages)
            if not by_partition:
                return  # another instance applied these while the partition moved
            seen: set[str] = set()
            letters: list[DeadLetter] = []
            decoded = {
                key: list(valid_events(batch, seen, letters))
                for key, batch in by_partition.items()
            }
            result, new_ids = await self._claim_while_folding(session, decoded, list(seen), now)
            duplicates = len(seen) - len(new_ids)
            if duplicates:
                # Rare (a client's retry, a replay past the offsets): fold the batch again
                # without the events an earlier batch already counted.
                decoded = {
                    key: [event for event in events if event.event_id in new_ids]
                    for key, events in decoded.items()
                }
                result = self._fold(decoded, now)
            # The batch's buckets go to one row each, under the lowest partition of the
            # batch: only a transaction holding that partition's stored offset (locked
            # above, until the commit) writes rows under it, so a stored sketch is never
            # merged into by two writers at once. One row per partition would multiply the
            # rows, and the upserts, by the number of partitions in the batch.
            slot = min(partition for _, partition in by_partition)
            deltas: dict[PartitionBucket, TermAggregate] = {}
            for key, aggregate in result.buckets.items():
                deltas[PartitionBucket(key, slot)] = aggregate
                oldest = touched.get(key.kpi_key)
                if oldest is None or key.bucket_start < oldest:
                    touched[key.kpi_key] = key.bucket_start
            refused = len(result.refused)
            letters.extend(
                DeadLetter(
                    reason=refusal.reason,
                    payload=refusal.event.to_bytes(),
                    stage="scoring",
                    key=refusal.event.event_id.encode(),
                )
                for refusal in result.refused
            )
            await self._buckets.add(session, deltas)
            if letters:
                # Before the commit: a crash after it would otherwise lose the letters;
                # a crash before it re-sends them (the DLQ is at-least-once).
                await self._dlq.send(letters)
            await self._offsets.save(
                session,
                {
                    PartitionId(topic, partition): batch[-1].offset + 1
                    for (topic, partition), batch in by_partition.items()
                },
            )
        self._metrics.batch_done(
            folded=len(new_ids),
            duplicates=duplicates,
            refused=refused,
            malformed=len(letters) - refused,
            seconds=time.perf_counter() - started,
        )
        if touched:
            self._on_folded(touched)


def valid_events(
    messages: Iterable[Message],
    seen: set[str],
    letters: list[DeadLetter],
) -> Iterator[ReadEvent]:
    """The valid events of ``messages``, decoded one at a time.

    An id in ``seen`` is not yielded again (the first occurrence in a batch wins);
    yielded ids are added to ``seen``, and each invalid message becomes a letter.
    """
    for message in messages:
        # Fast when certain, else the contract decides (and names what is wrong).
        event = read_event(message.value)
        if event is None:
            try:
                event = validate_event(message.value)
            except ValidationError as exc:
                reason = f"invalid event: {first_problem(exc)}"
                letters.append(DeadLetter.of(message, reason=reason, stage="scoring"))
                continue
        event_id = event.event_id
        if event_id in seen:
            continue
        seen.add(event_id)
        yield event
