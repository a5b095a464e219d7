"""The governance consumer: findings, decisions, dead letters, job statuses and training samples into the store.

It reads batches, writes each batch in one transaction (idempotent upserts by id) and commits the
Kafka offsets only after the database commit: a crash between the two re-delivers the batch, which
the upserts absorb. A record that cannot be parsed is logged and skipped (it was produced by Warden
itself, so this means a version mismatch, not user input).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError
from sqlalchemy.engine import Engine

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
                 alerting: AlertingConfig, producer: Any = None) -> None:
        self.engine = engine
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
            sink = {topics.FINDINGS: findings, topics.DECISIONS: decisions, topics.DLQ: dead,
                    topics.JOB_STATUS: statuses, topics.SAMPLES: history}
            for tp, messages in batches.items():
                parse = _PARSERS[tp.topic]
                for msg in messages:
                    try:
                        sink[tp.topic].append(parse(msg.value))
                    except (ValidationError, ValueError, TypeError):
                        metrics.RECORDS_SKIPPED.labels(topic=tp.topic).inc()
                        log.error("unparseable governance record skipped",
                                  extra={"topic": tp.topic, "partition": tp.partition, "offset": msg.offset})
            started = time.perf_counter()
            result = await asyncio.to_thread(persist_batch, self.engine, findings, decisions, dead, alerting=self.alerting)
            if statuses:
                await asyncio.to_thread(persist_statuses, self.engine, statuses)
            if history:
                metrics.PERSISTED.labels(kind="sample").inc(await asyncio.to_thread(store_history, self.engine, history))
            await self._request_jobs(decisions)
            metrics.PERSIST_SECONDS.observe(time.perf_counter() - started)
            metrics.CONSUMED_BATCH.observe(sum(len(m) for m in batches.values()))
            metrics.LAST_PERSIST.set(time.time())
            metrics.PERSISTED.labels(kind="finding").inc(result.findings)
            metrics.PERSISTED.labels(kind="decision").inc(result.decisions)
            metrics.PERSISTED.labels(kind="dead_letter").inc(result.dead_letters)
            await consumer.commit()
            self.last_batch_at = time.time()

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
