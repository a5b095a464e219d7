"""What ``/healthz`` knows beyond the API's own database and broker: every role of the deployment.

A background task of the governance service keeps, and refreshes every ``check_interval_s``:

* the stream workers' heartbeats (``warden.heartbeats``, read from a few minutes back at start-up): a
  worker that reported and has been silent longer than ``worker_stale_s`` is a reason to be degraded, as
  is — when ``expect_worker`` is set (``warden up`` sets it) — having no live worker once the start-up
  grace is over. This works whether the worker runs in this machine's ``warden up`` or in another
  container: the broker is what they share;
* the alert outbox: notifications due more than ``outbox_max_age_s`` ago and still not delivered.

Consumer lag — of the workers' group and of the governance consumer's group — comes from
:class:`api.lag.LagProbe` (cached a few seconds), and :meth:`HealthMonitor.report` turns it into reasons
too. ``/healthz`` reads the last measurements, so a probe never waits on a slow query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.config import HealthConfig
from contracts import topics
from contracts.heartbeat import Heartbeat
from store.models import OutboxRow, to_utc

log = logging.getLogger("warden.health")


@dataclass
class _Seen:
    beat: Heartbeat
    at: float
    """When the heartbeat was produced (the record's timestamp, seconds since the epoch)."""


@dataclass
class HealthReport:
    """The monitor's verdict: reasons to be degraded (none: ok), warnings, and the details."""

    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


class HealthMonitor:
    """Watches workers, lag and the outbox for ``/healthz``; ``await run()`` until ``stop()``."""

    def __init__(self, bootstrap: str, engine: Engine, config: HealthConfig, *, governance_group: str,
                 consuming: bool = True) -> None:
        self.bootstrap, self.engine, self.config = bootstrap, engine, config
        self.governance_group = governance_group
        self.consuming = consuming
        self.started = time.time()
        self.workers: dict[str, _Seen] = {}
        self.outbox: dict[str, Any] = {}
        self.measured_at: float | None = None
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    # ------------------------------------------------------------ heartbeats

    def observe(self, raw: bytes, timestamp_ms: int | None = None) -> None:
        """Take one heartbeat record (a bad one is ignored: heartbeats are Warden's own output)."""
        try:
            beat = Heartbeat.model_validate_json(raw)
        except (ValidationError, ValueError):
            return
        at = timestamp_ms / 1000 if timestamp_ms else beat.at.timestamp()
        seen = self.workers.get(beat.instance)
        if seen is None or at >= seen.at:
            self.workers[beat.instance] = _Seen(beat, at)

    async def _heartbeats(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            for messages in batches.values():
                for msg in messages:
                    if msg.value is not None:
                        self.observe(msg.value, msg.timestamp)

    @staticmethod
    async def _partitions(admin: AIOKafkaAdminClient, names: tuple[str, ...]) -> list[TopicPartition]:
        described = await admin.describe_topics(list(names))
        return [TopicPartition(t["topic"], p["partition"]) for t in described if not t.get("error_code")
                for p in sorted(t["partitions"], key=lambda p: p["partition"])]

    async def _start_consumer(self, admin: AIOKafkaAdminClient) -> AIOKafkaConsumer:
        tps = await self._partitions(admin, (topics.HEARTBEATS,))
        if not tps:
            raise RuntimeError(f"topic {topics.HEARTBEATS} not found")
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="latest")
        await consumer.start()
        consumer.assign(tps)
        since_ms = int((time.time() - max(self.config.worker_stale_s * 4, 120.0)) * 1000)
        try:  # the last few minutes: workers already running are known at once
            offsets = await consumer.offsets_for_times({tp: since_ms for tp in tps})
            for tp in tps:
                found = offsets.get(tp)
                if found is not None:
                    consumer.seek(tp, found.offset)
                else:
                    await consumer.seek_to_end(tp)
        except Exception:  # a broker without timestamp lookups: from now on
            await consumer.seek_to_end(*tps)
        return consumer

    # ------------------------------------------------------------ outbox

    def _outbox(self) -> dict[str, Any]:
        now = datetime.now(UTC)
        table = OutboxRow.__table__  # type: ignore[attr-defined]
        open_rows = table.c.status.in_(("pending", "sending"))
        with Session(self.engine) as session:
            row = session.execute(select(func.count(), func.min(table.c.next_attempt_at)).where(
                open_rows, table.c.next_attempt_at < now - timedelta(seconds=self.config.outbox_max_age_s))).one()
            waiting: int = session.execute(select(func.count()).where(open_rows)).scalar_one()
        overdue, oldest = int(row[0]), to_utc(row[1])
        return {"waiting": int(waiting), "overdue": overdue,
                "oldest_overdue_s": round((now - oldest).total_seconds()) if oldest is not None else None}

    async def measure(self) -> None:
        """Measure the outbox once (a failure leaves it unknown, it does not stop the monitor)."""
        try:
            self.outbox = await asyncio.to_thread(self._outbox)
        except Exception as exc:
            self.outbox = {"error": type(exc).__name__}
        self.measured_at = time.time()

    async def run(self) -> None:
        """Follow heartbeats and measure until stopped; reconnects after broker errors."""
        while not self._stopping.is_set():
            consumer: AIOKafkaConsumer | None = None
            admin: AIOKafkaAdminClient | None = None
            reader: asyncio.Task[None] | None = None
            try:
                admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10_000)
                await admin.start()
                consumer = await self._start_consumer(admin)
                reader = asyncio.create_task(self._heartbeats(consumer))
                while not self._stopping.is_set() and not reader.done():
                    await self.measure()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), self.config.check_interval_s)
                if reader.done() and not reader.cancelled() and reader.exception():
                    raise reader.exception()  # type: ignore[misc]
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("health monitor lost the broker; retrying", extra={"error_type": type(exc).__name__})
                with contextlib.suppress(Exception):
                    await self.measure()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), 2.0)
            finally:
                if reader is not None:
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await reader
                for client in (admin, consumer):
                    if client is not None:
                        with contextlib.suppress(Exception):
                            await (client.close() if isinstance(client, AIOKafkaAdminClient) else client.stop())

    # ------------------------------------------------------------ verdict

    def report(self, now: float | None = None, *, consumer_connected: bool = True, groups: dict[str, Any] | None = None,
               worker_group: str = "", governance_group: str = "") -> HealthReport:
        """The current verdict (pure: from what was observed and measured); ``groups`` is what
        :meth:`api.lag.LagProbe.groups` answered for the workers' and the governance consumer's groups."""
        now = now if now is not None else time.time()
        cfg = self.config
        out = HealthReport()
        workers: dict[str, Any] = {}
        live = 0
        for instance, seen in sorted(self.workers.items()):
            silent = max(0.0, now - seen.at)
            if silent > cfg.forget_after_s:
                continue
            beat = seen.beat
            state = "stopped" if beat.state == "stopped" else "silent" if silent > cfg.worker_stale_s else "running"
            workers[instance] = {"state": state, "last_seen_s": round(silent, 1), "pid": beat.pid,
                                 "started_at": beat.started_at.isoformat(), "counters": beat.counters}
            if state == "running":
                live += 1
            elif state == "silent":
                out.reasons.append(f"stream worker {instance} has not reported for {silent:.0f} s "
                                   f"(heartbeats every {beat.interval_s:g} s)")
            if beat.counters.get("agent_starts", 0) > 1:
                out.warnings.append(f"stream worker {instance}: its agent was restarted "
                                    f"{beat.counters['agent_starts'] - 1} time(s) after a crash")
        if cfg.expect_worker and live == 0:
            message = "no stream worker is running (none has reported a heartbeat recently)"
            if now - self.started < cfg.startup_grace_s and not workers:
                out.warnings.append(message + "; still within the start-up grace")
            else:
                out.reasons.append(message)
        out.details["workers"] = workers
        lags = {g["group"]: g.get("total_lag") for g in (groups or {}).get("groups", [])}
        for group, label in ((worker_group, "the stream workers' group"), (governance_group, "the governance consumer")):
            value = lags.get(group)
            if value is not None and value > cfg.max_lag:
                out.reasons.append(f"{label} ({group}) is {value} messages behind (more than {cfg.max_lag})")
        if self.consuming and not consumer_connected and now - self.started > cfg.worker_stale_s:
            out.reasons.append("the governance consumer is not connected to the broker")
        outbox = dict(self.outbox)
        if outbox.get("overdue"):
            out.reasons.append(f"{outbox['overdue']} alert notifications are overdue by more than "
                               f"{cfg.outbox_max_age_s:g} s (oldest {outbox.get('oldest_overdue_s')} s)")
        out.details["outbox"] = outbox
        out.details["measured_s_ago"] = round(now - self.measured_at, 1) if self.measured_at else None
        return out
