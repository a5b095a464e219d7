"""Never count an input offset as processed that the worker has not seen.

faust-streaming books a jump in a partition's offsets — a message more than one offset past the last one
read — as a *gap*: the offsets in between count as acknowledged and the next commit moves past them
(``Consumer._drain_messages`` → ``_add_gap``). Gaps are real in compacted and transactional topics. In
Warden's input topics (delete retention, no transactions) a jump means the message was fetched at a stale
position: after a rebalance the fetcher can deliver a batch fetched before the seek to the committed
offsets, after it (faust-streaming issues #216 and #606). Booked as a gap, every event between the
committed offset and that message is committed without having been processed: silently lost. The fault
harness (``bench/faults.py``) caught it: a worker SIGKILLed and restarted committed 4,762 → 5,217 on one
partition within 3 s of joining, and none of the 450 events in between had a finding, a sample or a dead
letter.

:func:`guard_offsets` wraps faust's ``Consumer.getmany``: on a topic whose messages are acknowledged (the
agents' topics; table changelogs are not), a message that jumps ahead of the last offset read is not
delivered; the partition is sought back to that offset, so the missing range is fetched and processed
(one event may be processed twice: every output is idempotent). If the same jump shows up again after the
re-read, the gap is real (compaction, a transaction marker) and the message goes on as faust would have it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from streams import metrics

log = logging.getLogger("warden.worker")

GetMany = Callable[[Any, float], AsyncIterator[tuple[Any, Any]]]


def guarded_getmany(original: GetMany) -> GetMany:
    """``original`` (faust's ``Consumer.getmany``) without deliveries that jump ahead of the last offset read."""

    async def getmany(self: Any, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        rechecked: dict[Any, tuple[int, int]] = self.__dict__.setdefault("_warden_rechecked", {})
        sought: set[Any] = set()
        async for tp, message in original(self, timeout):
            if tp in sought:  # the rest of a stale batch: fetched again after the seek
                continue
            last = self._read_offset.get(tp)
            offset = message.offset
            if (last is not None and offset - last > 1 and self.app.topics.acks_enabled_for(message.topic)
                    and rechecked.get(tp) != (last, offset)):
                rechecked[tp] = (last, offset)
                sought.add(tp)
                metrics.OFFSET_JUMPS.labels(message.topic).inc()
                log.warning("input partition jumped ahead of the last offset read; reading the skipped range "
                            "again instead of counting it as processed",
                            extra={"topic": tp.topic, "partition": tp.partition, "last_read": last, "got": offset})
                await self.seek(tp, last)
                continue
            yield tp, message

    getmany.__wrapped__ = original  # type: ignore[attr-defined]
    return getmany


def guard_offsets() -> None:
    """Install the guard on faust's consumer (once per process)."""
    from faust.transport.consumer import Consumer

    if not hasattr(Consumer.getmany, "__wrapped__"):
        Consumer.getmany = guarded_getmany(Consumer.getmany)  # type: ignore[method-assign,assignment]
