"""The ``warden jobs`` worker: a Kafka consumer group on ``warden.jobs`` that runs jobs one at a time.

Delivery: offsets are committed manually, only after the job's terminal status (succeeded, failed,
cancelled) has been published, so a worker that dies mid-job leaves its job uncommitted and the group
hands it to another member. That member sees the dead worker's last ``running`` status; once it is
older than ``3 * lease_s`` (a live worker re-publishes its status every ``lease_s``) it re-runs the job
with the next attempt number, or publishes ``failed`` when ``max_attempts`` is used up: a job is re-run
or failed, never silently lost. A job delivered twice while its first run is alive (rebalance) waits for
that run; a job that already has a terminal status is skipped (idempotent job ids).

Every worker also reads both job topics from the beginning with a group-less consumer (the "book"): it
learns cancellations at once, whichever member runs the job (a ``cancel`` command is checked between
steps and between optimiser steps), and the attempts and terminal states of every job.

Retries: an unexpected error is retried after ``retry_backoff_s`` until ``max_attempts``; a rejected job
(bad spec, too little data, nothing to roll back to), a cancelled one and a timed-out one are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from contracts.events import DeploymentEvent, dump_event
from contracts.jobs import JobCommand, JobSpec, JobState, JobStatus
from contracts.topics import DEPLOYMENTS, JOB_STATUS, JOBS
from jobs import metrics
from jobs.book import JobBook
from jobs.config import JobsConfig
from jobs.executor import JobCancelled, JobContext, JobExecutor, JobRejected, JobTimedOut

log = logging.getLogger("warden.jobs")

ExecutorFactory = Callable[[Callable[[DeploymentEvent], None]], JobExecutor]


class WorkerStopping(Exception):
    """The worker is shutting down; the job goes back to the queue (not committed)."""


class _Run:
    """Mutable state of one attempt, shared between the job thread and the event loop."""

    def __init__(self) -> None:
        self.progress = 0.0
        self.phase = "starting"
        self.message: str | None = None
        self.changed = asyncio.Event()


class JobWorker:
    """One job worker process (one GPU): consumes ``warden.jobs``, publishes ``warden.job-status``."""

    def __init__(self, config: JobsConfig, make_executor: ExecutorFactory) -> None:
        self.config = config
        self.book = JobBook()
        self._make_executor = make_executor
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="job")
        self._stopping = False
        self._seq: dict[str, int] = {}
        self._ready = asyncio.Event()
        self.producer: AIOKafkaProducer | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.executor: JobExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.handled = 0
        self._started: dict[str, float] = {}  # job_id/attempt → when this worker started it (for durations)
        self._gauges_at = 0.0

    # -- publishing --------------------------------------------------------------------------------

    async def _status(self, job: JobSpec, state: JobState, attempt: int, **fields: Any) -> JobStatus:
        key = f"{job.job_id}/{attempt}"
        seq = self._seq.get(key, 0)
        self._seq[key] = seq + 1
        st = JobStatus.of(job, state, attempt=attempt, seq=seq, worker=self.config.worker_id, **fields)
        assert self.producer is not None
        await self.producer.send_and_wait(JOB_STATUS, st.to_bytes(), key=st.key)
        self.book.observe_status(st)
        self._measure(job, state, key, fields.get("phase"))
        log.info("job status", extra={"job_id": job.job_id, "state": state, "attempt": attempt,
                                      "progress": st.progress, "phase": st.phase})
        return st

    def _measure(self, job: JobSpec, state: JobState, key: str, phase: Any) -> None:
        """Durations and outcomes of this worker's attempts (a re-queued job counts as ``requeued``)."""
        if state == "running":
            self._started.setdefault(key, time.monotonic())
            if phase == "retrying":
                metrics.RETRIES.labels(job.kind).inc()
            return
        started = self._started.pop(key, None)
        if state in ("succeeded", "failed", "cancelled", "queued") and started is not None:
            outcome = "requeued" if state == "queued" else state
            metrics.FINISHED.labels(job.kind, outcome).inc()
            metrics.DURATION.labels(job.kind, outcome).observe(time.monotonic() - started)
        elif state in ("failed", "cancelled"):
            metrics.FINISHED.labels(job.kind, state).inc()  # ended before it started here (cancelled, gave up)

    def _publish_deployment(self, event: DeploymentEvent) -> None:
        """Called from the job thread: publish and wait for the broker's ack."""
        assert self.producer is not None and self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(
            self.producer.send_and_wait(DEPLOYMENTS, dump_event(event), key=event.key), self._loop)
        fut.result(timeout=60)

    # -- the book: both job topics from the beginning, no group ---------------------------------------

    async def _watch(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.config.bootstrap, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            consumer.subscribe([JOBS, JOB_STATUS])  # no group: every partition, from the beginning
            end: dict[TopicPartition, int] | None = None
            while True:
                batch = await consumer.getmany(timeout_ms=200)
                for tp, msgs in batch.items():
                    for msg in msgs:
                        self._observe(tp.topic, msg.value)
                if time.monotonic() - self._gauges_at >= 2.0:
                    self._gauges_at = time.monotonic()
                    for state, n in self.book.open_jobs().items():
                        metrics.JOBS.labels(state).set(n)
                if self._ready.is_set():
                    continue
                assigned = consumer.assignment()
                if end is None and {tp.topic for tp in assigned} >= {JOBS, JOB_STATUS}:
                    end = await consumer.end_offsets(list(assigned))
                if end is not None and all([await consumer.position(tp) >= off for tp, off in end.items() if off > 0]):
                    self._ready.set()
        finally:
            await consumer.stop()

    def _observe(self, topic: str, value: bytes | None) -> None:
        if not value:
            return
        try:
            if topic == JOBS:
                self.book.observe_command(JobCommand.model_validate_json(value))
            else:
                self.book.observe_status(JobStatus.model_validate_json(value))
        except ValidationError:
            pass  # the main loop reports invalid commands

    # -- the main loop --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume and run jobs until ``stop`` is set."""
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        self.producer = AIOKafkaProducer(bootstrap_servers=cfg.bootstrap, acks="all", linger_ms=0)
        await self.producer.start()
        self.executor = self._make_executor(self._publish_deployment)
        watcher = asyncio.create_task(self._watch(), name="jobs-book")
        try:
            ready = asyncio.create_task(self._ready.wait())
            await asyncio.wait({ready, watcher}, timeout=cfg.catch_up_timeout_s, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if watcher.done():
                watcher.result()  # the book failed to start: raise
            if not self._ready.is_set():
                log.warning("job history not fully read; starting anyway")
            self.consumer = AIOKafkaConsumer(
                JOBS, bootstrap_servers=cfg.bootstrap, group_id=cfg.group_id, client_id=cfg.worker_id,
                enable_auto_commit=False, auto_offset_reset="earliest",
                session_timeout_ms=int(cfg.session_timeout_s * 1000),
                heartbeat_interval_ms=int(max(0.2, cfg.session_timeout_s / 3) * 1000),
                max_poll_interval_ms=int((cfg.max_job_timeout_s + 300) * 1000), max_poll_records=1,
            )
            await self.consumer.start()
            log.info("job worker ready", extra={"worker": cfg.worker_id, "group": cfg.group_id})
            while not stop.is_set():
                if watcher.done():
                    watcher.result()  # re-raise a failure of the book
                batch = await self.consumer.getmany(timeout_ms=300, max_records=1)
                for tp, msgs in batch.items():
                    for msg in msgs:
                        commit = await self._handle(msg.value, stop)
                        if not commit:
                            return  # shutting down: leave it to another member
                        try:
                            await self.consumer.commit({tp: msg.offset + 1})
                        except KafkaError as exc:  # partition moved during the job; the next owner skips it
                            log.warning("commit failed", extra={"error": str(exc)})
                        self.handled += 1
        finally:
            self._stopping = True
            watcher.cancel()
            if self.consumer is not None:
                await self.consumer.stop()
            await self.producer.stop()
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def _handle(self, value: bytes | None, stop: asyncio.Event) -> bool:
        """Handle one command; returns whether its offset may be committed."""
        try:
            cmd = JobCommand.model_validate_json(value or b"")
        except ValidationError as exc:
            log.warning("invalid job command skipped", extra={"error": str(exc)[:500]})
            return True
        self.book.observe_command(cmd)
        if cmd.op == "cancel" or cmd.job is None:
            return True
        job = cmd.job
        while True:
            if job.job_id in self.book.terminal:
                return True  # already finished (by us or another worker): idempotent
            holder = self.book.lease_holder(job.job_id, self.config.worker_id, self.config.lease_s)
            if holder is None:
                break
            if stop.is_set():
                return False
            await asyncio.sleep(0.25)  # another live worker runs it (rebalance); wait for it
        attempt = self.book.attempts(job.job_id) + 1
        if not job.approved:
            await self._status(job, "awaiting_approval", attempt - 1, message="the job needs an approval")
            return True
        if self.book.cancelled(job.job_id):
            await self._status(job, "cancelled", attempt, message=self._cancel_reason(job.job_id))
            return True
        if attempt > job.max_attempts:
            await self._status(job, "failed", attempt - 1,
                               error=f"gave up after {job.max_attempts} attempts (worker lost mid-job)")
            return True
        return await self._execute(job, attempt, stop)

    def _cancel_reason(self, job_id: str) -> str:
        cmd = self.book.cancels[job_id]
        return f"cancelled by {cmd.actor or 'unknown'}" + (f": {cmd.reason}" if cmd.reason else "")

    async def _execute(self, job: JobSpec, attempt: int, stop: asyncio.Event) -> bool:
        cfg = self.config
        timeout = min(job.timeout_s, cfg.max_job_timeout_s)
        deadline = time.monotonic() + timeout
        assert self.executor is not None
        while True:
            run = _Run()
            loop = asyncio.get_running_loop()

            def check(job_id: str = job.job_id) -> None:
                if self.book.cancelled(job_id):
                    raise JobCancelled(self._cancel_reason(job_id))
                if time.monotonic() > deadline:
                    raise JobTimedOut(f"timed out after {timeout:g}s")
                if self._stopping or stop.is_set():
                    raise WorkerStopping()

            def report(progress: float, phase: str, message: str | None, r: _Run = run,
                       on_loop: asyncio.AbstractEventLoop = loop) -> None:
                r.progress, r.phase, r.message = max(r.progress, min(progress, 0.999)), phase, message
                on_loop.call_soon_threadsafe(r.changed.set)

            await self._status(job, "running", attempt, progress=0.0, phase="starting",
                               message=f"attempt {attempt}/{job.max_attempts} on {cfg.worker_id}")
            beat = asyncio.create_task(self._heartbeat(job, attempt, run))
            fut = loop.run_in_executor(self._pool, self.executor.run, job, JobContext(check, report))
            try:
                result = await asyncio.wait_for(asyncio.shield(fut), timeout=max(1.0, deadline - time.monotonic()) + 60)
            except TimeoutError:
                await self._status(job, "failed", attempt, progress=run.progress, phase=run.phase,
                                   error=f"timed out after {timeout:g}s (the job did not stop)")
                return True
            except JobCancelled as exc:
                await self._status(job, "cancelled", attempt, progress=run.progress, phase=run.phase, message=str(exc))
                return True
            except JobTimedOut as exc:
                await self._status(job, "failed", attempt, progress=run.progress, phase=run.phase, error=str(exc))
                return True
            except WorkerStopping:
                await self._status(job, "queued", attempt, progress=run.progress, phase=run.phase,
                                   message="worker stopping; the job goes back to the queue")
                return False
            except JobRejected as exc:
                await self._status(job, "failed", attempt, progress=run.progress, phase=run.phase, error=str(exc)[:1000])
                return True
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:1000]
                log.exception("job attempt failed", extra={"job_id": job.job_id, "attempt": attempt})
                if attempt >= job.max_attempts:
                    await self._status(job, "failed", attempt, progress=run.progress, phase=run.phase, error=error)
                    return True
                await self._status(job, "running", attempt, progress=run.progress, phase="retrying",
                                   message=f"attempt {attempt} failed; retrying in {cfg.retry_backoff_s:g}s", error=error)
                try:
                    await asyncio.wait_for(stop.wait(), cfg.retry_backoff_s)
                    return False
                except TimeoutError:
                    pass
                attempt += 1
                continue
            finally:
                beat.cancel()
            await self._status(job, "succeeded", attempt, progress=1.0, phase="done", result=result)
            return True

    async def _heartbeat(self, job: JobSpec, attempt: int, run: _Run) -> None:
        """Publish progress when it changes (at most every ``progress_interval_s``), and at least every
        ``lease_s`` (the lease that tells other members this job is alive)."""
        cfg = self.config
        last = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.changed.wait(), cfg.lease_s)
            run.changed.clear()
            await self._status(job, "running", attempt, progress=round(run.progress, 4), phase=run.phase,
                               message=run.message)
            wait = cfg.progress_interval_s - (time.monotonic() - last)
            if wait > 0:
                await asyncio.sleep(wait)
            last = time.monotonic()
