"""The governance consumer: findings, decisions, dead letters, job statuses and training samples into the store.

It reads batches, writes each batch in one transaction (idempotent upserts by id) and commits the
Kafka offsets of that batch only after the database commit: a crash between the two re-delivers the
batch, which the upserts absorb. A record that cannot be parsed is logged and skipped (it was produced by
Warden itself, so this means a version mismatch, not user input).

A store that refuses the batch — PostgreSQL down, the disk under SQLite full — holds the consumer on that
batch: it is written again with exponential back-off (``retry_initial_s`` doubling up to ``retry_max_s``),
nothing more is consumed and no offset is committed until it is stored. ``store_error`` says why meanwhile
(``/healthz`` reports it); the group membership is kept, so no rebalance churns while the store is away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from api import metrics
from contracts import topics
from contracts.dead_letter import DeadLetter
from contracts.decision import Decision
from contracts.jobs import JobSpec, JobStatus
from contracts.samples import Label, Sample, parse_record
from detectors.finding import Finding
from governance.alerting import AlertingConfig
from governance.history import store_history
from governance.ingest import persist_batch
from governance.jobs import persist_statuses, request_job

log = logging.getLogger("warden.governance")

_PARSERS: dict[str, Any] = {  # one per topics.GOVERNANCE_TOPICS
    topics.FINDINGS: Finding.model_validate_json,
    topics.DECISIONS: Decision.model_validate_json,
    topics.DLQ: DeadLetter.model_validate_json,
    topics.JOB_STATUS: JobStatus.model_validate_json,
    topics.SAMPLES: parse_record,
}


class GovernanceConsumer:
    """Consumes the stream's outputs and persists them; ``run()`` until ``stop()``."""

    def __init__(self, bootstrap: str, group: str, engine: Engine, *, session_timeout_s: float = 10.0,
                 alerting: AlertingConfig, producer: Any = None, retry_initial_s: float = 0.5,
                 retry_max_s: float = 30.0) -> None:
        self.engine = engine
        self.retry_initial_s, self.retry_max_s = retry_initial_s, retry_max_s
        self.store_error: str | None = None
        """Why the store refuses the current batch (None: it does not)."""
        self.store_error_since: float | None = None
        self.alerting = alerting
        self.producer = producer  # publishes the jobs that enforce-mode policy decisions request
        self._config: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "group_id": group,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": int(session_timeout_s * 1000),
            "heartbeat_interval_ms": int(min(3.0, session_timeout_s / 3) * 1000),
            "max_poll_records": 2000,
        }
        self.consumer: AIOKafkaConsumer | None = None
        self._stopping = asyncio.Event()
        self.connected = False
        self.last_batch_at: float | None = None

    async def run(self) -> None:
        """Consume until stopped; reconnects after broker errors."""
        while not self._stopping.is_set():
            self.consumer = AIOKafkaConsumer(*_PARSERS, **self._config)
            try:
                await self.consumer.start()
                self.connected = True
                await self._loop(self.consumer)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("governance consumer failed; retrying")
                self.connected = False
                await asyncio.sleep(2.0)
            finally:
                self.connected = False
                await self.consumer.stop()

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            if not batches:
                continue
            findings: list[Finding] = []
            decisions: list[Decision] = []
            dead: list[DeadLetter] = []
            statuses: list[JobStatus] = []
            history: list[Sample | Label] = []
            sink: dict[str, list[Any]] = {topics.FINDINGS: findings, topics.DECISIONS: decisions, topics.DLQ: dead,
                    topics.JOB_STATUS: statuses, topics.SAMPLES: history}
            offsets: dict[TopicPartition, int] = {}
            for tp, messages in batches.items():
                parse = _PARSERS[tp.topic]
                for msg in messages:
                    offsets[tp] = max(offsets.get(tp, 0), msg.offset + 1)
                    try:
                        sink[tp.topic].append(parse(msg.value))
                    except (ValidationError, ValueError, TypeError):
                        metrics.RECORDS_SKIPPED.labels(topic=tp.topic).inc()
                        log.error("unparseable governance record skipped",
                                  extra={"topic": tp.topic, "partition": tp.partition, "offset": msg.offset})
            started = time.perf_counter()
            stored = await self._store_until_done(findings, decisions, dead, statuses, history)
            if not stored:
                return  # stopping: the batch is not committed, the next start reads it again
            metrics.PERSIST_SECONDS.observe(time.perf_counter() - started)
            metrics.CONSUMED_BATCH.observe(sum(len(m) for m in batches.values()))
            metrics.LAST_PERSIST.set(time.time())
            await consumer.commit(offsets)  # this batch's offsets: never past what is stored
            self.last_batch_at = time.time()

    async def _store(self, findings: list[Finding], decisions: list[Decision], dead: list[DeadLetter],
                     statuses: list[JobStatus], history: list[Sample | Label]) -> None:
        """Write one batch (every part idempotent, so a retry after a partial write is harmless)."""
        result = await asyncio.to_thread(persist_batch, self.engine, findings, decisions, dead, alerting=self.alerting)
        if statuses:
            await asyncio.to_thread(persist_statuses, self.engine, statuses)
        if history:
            metrics.PERSISTED.labels(kind="sample").inc(await asyncio.to_thread(store_history, self.engine, history))
        await self._request_jobs(decisions)
        metrics.PERSISTED.labels(kind="finding").inc(result.findings)
        metrics.PERSISTED.labels(kind="decision").inc(result.decisions)
        metrics.PERSISTED.labels(kind="dead_letter").inc(result.dead_letters)

    async def _store_until_done(self, *batch: Any) -> bool:
        """Store the batch, retrying with back-off while the store refuses it; False if stopped first."""
        delay = self.retry_initial_s
        while True:
            try:
                await self._store(*batch)
            except (SQLAlchemyError, OSError) as exc:
                problem = store_problem(exc)
                if self.store_error is None:
                    self.store_error_since = time.time()
                    log.error("the store refuses writes; consumption paused, the batch is retried",
                              extra={"problem": problem, "error_type": type(exc).__name__})
                self.store_error = problem
                metrics.STORE_RETRIES.inc()
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay)
                    return False
                except TimeoutError:
                    delay = min(delay * 2, self.retry_max_s)
                continue
            if self.store_error is not None:
                log.warning("the store takes writes again; consumption resumed",
                            extra={"paused_s": round(time.time() - (self.store_error_since or time.time()), 1)})
            self.store_error = self.store_error_since = None
            return True

    async def _request_jobs(self, decisions: list[Decision]) -> None:
        """Jobs asked for by enforce-mode decisions: stored (idempotent by decision) and published."""
        if self.producer is None:
            return
        from api import job_client

        for d in decisions:
            if d.job is None or d.mode != "enforce":
                continue
            job = JobSpec.from_decision(d)
            _, new = await asyncio.to_thread(request_job, self.engine, job, f"policy:{d.policy_id}@v{d.policy_version}")
            if new:
                await job_client.submit(self.producer, job)

    def stop(self) -> None:
        self._stopping.set()


def store_problem(exc: BaseException) -> str:
    """A short, PII-free account of why the store refused a write (never the statement or its values)."""
    text = str(getattr(exc, "orig", None) or exc).lower()
    if "disk is full" in text or "no space left" in text or "file too large" in text or "quota" in text:
        return "the disk holding the store is full"
    if "connect" in text or "server closed" in text or "terminating connection" in text:
        return f"the database is not reachable ({type(exc).__name__})"
    return type(exc).__name__
