"""A delivery that jumps ahead of the last offset read is never booked as processed (``streams.offsets``).

Driven through faust-streaming's own ``Consumer._drain_messages`` (the loop that books gaps as acknowledged),
with the fetch replaced by a fake partition: the defect the fault harness found after a worker restart — a
batch fetched at a stale position delivered after the seek to the committed offset — is replayed exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import faust
import pytest
from faust.types import TP, Message

from streams.offsets import guard_offsets, guarded_getmany

TOPIC = "warden.inference"


class Partition:
    """A fake partition: each fetch returns the next ``batch`` offsets from the position; seeking moves it."""

    def __init__(self, tp: TP, position: int, *, end: int | None = None, batch: int = 4) -> None:
        self.tp, self.position, self.end, self.batch = tp, position, end, batch
        self.seeks: list[int] = []
        self.missing: set[int] = set()
        """Offsets that do not exist (compaction, transaction markers)."""

    async def fetch(self, _consumer: Any, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        start = self.position
        self.position = start + self.batch
        for offset in range(start, start + self.batch):
            if offset not in self.missing and (self.end is None or offset < self.end):
                yield self.tp, Message(self.tp.topic, self.tp.partition, offset, 0.0, 0, None, b"k", b"v", None)

    async def seek(self, _tp: TP, offset: int) -> None:
        self.seeks.append(offset)
        self.position = offset


def drain(partition: Partition, *, read_offset: int, committed: int, guard: bool, deliveries: int,
          acked: bool = True) -> tuple[list[int], int | None]:
    """Run faust's fetch loop until ``deliveries`` messages reached the stream; returns their offsets and the
    offset the next commit would write."""

    async def run() -> tuple[list[int], int | None]:
        app = faust.App("t-offsets", broker="kafka://127.0.0.1:1", store="memory://", web_enabled=False)
        consumer: Any = app.consumer
        tp = partition.tp
        if acked:
            topics: Any = app.topics
            topics._acking_topics.add(tp.topic)
        consumer._read_offset[tp] = read_offset  # as Consumer.perform_seek leaves it
        consumer._committed_offset[tp] = committed
        consumer._seek = partition.seek
        fetch = guarded_getmany(partition.fetch) if guard else partition.fetch
        consumer.getmany = lambda timeout: fetch(consumer, timeout)
        seen: list[int] = []

        class Fetcher:
            _stopped = asyncio.Event()

        async def delivered(message: Message) -> None:  # the stream processes it and acknowledges it
            seen.append(message.offset)
            consumer._acked[tp].append(message.offset)
            if len(seen) >= deliveries:
                Fetcher._stopped.set()

        consumer.callback = delivered
        await asyncio.wait_for(consumer._drain_messages(Fetcher()), 10)
        return seen, consumer._new_offset(tp)

    return asyncio.run(run())


def test_without_the_guard_faust_commits_past_events_it_never_delivered() -> None:
    """The defect itself (faust-streaming 0.15.3): a stale batch after the seek books the range as a gap."""
    stale = Partition(TP(TOPIC, 1), position=5216)
    seen, commit = drain(stale, read_offset=4762, committed=4762, guard=False, deliveries=4)
    assert seen == [5216, 5217, 5218, 5219]
    assert commit is not None and commit > 4763, "faust moves the commit past offsets never delivered"


def test_a_stale_batch_after_the_seek_is_read_again_from_the_last_offset_not_committed_past() -> None:
    stale = Partition(TP(TOPIC, 1), position=5216)
    seen, commit = drain(stale, read_offset=4762, committed=4762, guard=True, deliveries=12)
    assert stale.seeks == [4762]
    assert seen == list(range(4762, 4774)), "every offset from the committed one on, in order"
    assert commit == 4774


def test_contiguous_offsets_pass_untouched() -> None:
    partition = Partition(TP(TOPIC, 0), position=101)
    seen, commit = drain(partition, read_offset=100, committed=100, guard=True, deliveries=8)
    assert partition.seeks == [] and seen == list(range(101, 109)) and commit == 109


def test_a_real_gap_is_accepted_after_one_re_read() -> None:
    """Compaction or a transaction marker: the re-read shows the same jump, and faust's gap is right."""
    partition = Partition(TP(TOPIC, 2), position=11, batch=6)
    partition.missing = {11, 12, 13}
    seen, commit = drain(partition, read_offset=10, committed=10, guard=True, deliveries=5)
    assert partition.seeks == [10]  # one re-read, then the jump is taken as real
    assert seen[:2] == [10, 14]
    assert commit is not None and commit >= 15, "the commit moves past a gap that is really there"


@pytest.mark.parametrize("acked", [False])
def test_topics_without_acks_table_changelogs_are_left_to_faust(acked: bool) -> None:
    partition = Partition(TP("warden-worker-detector-state-changelog", 0), position=50)
    seen, _ = drain(partition, read_offset=10, committed=10, guard=True, deliveries=4, acked=acked)
    assert partition.seeks == [] and seen == [50, 51, 52, 53]


def test_guard_is_installed_once_on_fausts_consumer() -> None:
    from faust.transport.consumer import Consumer

    guard_offsets()
    installed = Consumer.getmany
    guard_offsets()
    assert Consumer.getmany is installed and hasattr(installed, "__wrapped__")
    assert not hasattr(installed.__wrapped__, "__wrapped__")
