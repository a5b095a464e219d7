"""The outbox dispatcher: an asyncio loop that sends due notifications and records every attempt.

Each round it asks which destinations have due rows, claims up to each destination's free
in-flight slots (``governance.alerting.outbox.claim_due``), sends with one shared ``httpx.AsyncClient``
and hands outcomes to a recorder task that writes them in batches:

* 2xx → ``delivered`` (the recorder writes deliveries first);
* 429 (``Retry-After`` honoured, and the destination paused that long), 5xx, time-out, connection
  error → retry after exponential backoff with full jitter, until the destination's ``max_age_s``
  (then ``expired``, which the log and the alert's history show);
* any other status → ``failed``, no retry;
* a ``file`` destination appends one JSON line per notification (``delivered``; an I/O error retries).

Every second it also runs ``governance.alerting.sweep`` (auto-resolve, re-notification, escalation,
silences that ended). On PostgreSQL several dispatchers may run (claims use SKIP LOCKED); on SQLite
run one. A crash between a 2xx and its record re-sends that notification once its lease expires
(at-least-once); receivers may drop repeats by ``X-Warden-Delivery`` / each alert's ``delivery_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import logging
import os
import random
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from governance.alerting import AlertingConfig, sweep
from governance.alerting.delivery import metrics, payloads
from governance.alerting.delivery.destinations import Destination, Destinations
from governance.alerting.outbox import AttemptResult, OutboxItem, claim_due, record_results
from store.models import OutboxRow

log = logging.getLogger("warden.delivery")
USER_AGENT = "Warden-Alerts/1"


@dataclass(frozen=True, slots=True)
class DispatcherConfig:
    """Timings of the dispatcher (the service maps its settings to these)."""

    poll_interval_s: float = 0.05
    lease_s: float = 120.0
    sweep_interval_s: float = 1.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 60.0
    """Longest wait between two tries of one notification (full jitter below it): a page waits at most about a
    minute after its receiver is back. The fault harness saw the last notification of a 2-minute receiver outage
    delivered 2.5 minutes after the receiver returned with 300 s."""
    retry_after_max_s: float = 3600.0
    group_claim_limit: int = 200
    claim_ahead: int = 4  # claim up to this many times a destination's max_in_flight (queued locally)
    record_batch: int = 1000
    error_backoff_max_s: float = 30.0
    """A round or a record that fails (database down) is retried after 1 s, doubling up to this."""


def backoff_delay(attempt: int, *, base_s: float, max_s: float, rng: random.Random) -> float:
    """Full jitter: uniform in ``[0, min(max_s, base_s · 2^(attempt-1))]``."""
    return rng.uniform(0.0, min(max_s, base_s * (2 ** max(0, attempt - 1))))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def append_lines(path: Path, body: bytes) -> None:
    """Append JSON lines to a file readable by its owner only (created with its folder when missing)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, body)
    finally:
        os.close(fd)


def classify(status_code: int | None) -> str:
    """``delivered`` for 2xx, ``retry`` for 429/5xx/no answer (None), ``failed`` otherwise."""
    if status_code is None or status_code == 429 or status_code >= 500:
        return "retry"
    return "delivered" if 200 <= status_code < 300 else "failed"


class _Paused(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


@dataclass(slots=True)
class OutgoingRequest:
    """One HTTP request carrying one or more outbox items."""

    items: list[OutboxItem]
    body: bytes
    headers: dict[str, str]


def build_requests(dest: Destination, items: Sequence[OutboxItem], *, url_template: str | None = None,
                   env: Mapping[str, str] | None = None, now: float | None = None) -> list[OutgoingRequest]:
    """The requests for claimed items: PagerDuty one event each; Slack and webhooks one request per
    notification group; items without a group go alone to Slack and up to ``max_batch`` together to a webhook."""
    if dest.type == "file":
        lines = [payloads.encode({**i.payload, "delivery_id": i.delivery_id}) + b"\n" for i in items]
        return [OutgoingRequest(list(items), b"".join(lines), {})] if items else []
    base = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **dest.headers}
    if dest.type == "pagerduty":
        key = dest.resolved_routing_key(env)
        return [OutgoingRequest([i], payloads.encode(payloads.pagerduty_event(i.payload, key, url_template=url_template)),
                                dict(base)) for i in items]
    batches: dict[str, list[OutboxItem]] = defaultdict(list)
    loose: list[OutboxItem] = []  # ungrouped items: a webhook takes them max_batch at a time
    for i in items:
        if i.group_key:
            batches[i.group_key].append(i)
        elif dest.type == "webhook":
            loose.append(i)
        else:
            batches[f"\x00{i.id}"].append(i)
    chunks = list(batches.values()) + [loose[s: s + dest.max_batch] for s in range(0, len(loose), dest.max_batch)]
    out = []
    for batch in chunks:
        notes = [{**i.payload, "delivery_id": i.delivery_id} for i in batch]
        delivery = batch[0].delivery_id if len(batch) == 1 else hashlib.sha256(
            ",".join(i.delivery_id for i in batch).encode()).hexdigest()[:32]
        headers = {**base, payloads.DELIVERY_HEADER: delivery}
        if dest.type == "slack":
            body = payloads.encode(payloads.slack_message(notes, url_template=url_template))
        else:
            body = payloads.encode(payloads.webhook_body(notes, delivery, url_template=url_template))
            headers[payloads.EVENT_HEADER] = ",".join(sorted({i.event for i in batch}))
            headers.update(payloads.signed_headers(dest.resolved_secret(env), body, now=now))
        out.append(OutgoingRequest(batch, body, headers))
    return out


@dataclass
class DispatcherStats:
    """Counters since start (per outcome) and the send latency of deliveries."""

    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    requests: int = 0
    swept: int = 0


class Dispatcher:
    """Sends the outbox. ``await run()`` until ``stop()``; ``wake()`` after a commit that queued
    notifications cuts the wait to the next poll."""

    def __init__(self, engine: Engine, destinations: Destinations, config: DispatcherConfig | None = None, *,
                 alerting: AlertingConfig | None = None, client: httpx.AsyncClient | None = None,
                 rng: random.Random | None = None, env: Mapping[str, str] | None = None) -> None:
        self.engine = engine
        self.destinations = destinations
        self.config = config or DispatcherConfig()
        self.alerting = alerting or destinations.alerting_config()
        self.stats = DispatcherStats()
        self._client = client
        self._own_client = client is None
        self._rng = rng or random.Random()
        self._env = env
        self._inflight: dict[str, int] = defaultdict(int)  # claimed, not yet answered (queued or sending)
        self._sems: dict[str, asyncio.Semaphore] = {}
        self._paused: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._results: asyncio.Queue[AttemptResult] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._last_sweep = 0.0
        self._recording = False

    # ------------------------------------------------------------ control

    def wake(self) -> None:
        """Look for due notifications now."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def __aenter__(self) -> Dispatcher:
        if self._client is None:
            self._client = httpx.AsyncClient(limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.drain_inflight()
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def _backoff(self, failures: int) -> float:
        return min(self.config.error_backoff_max_s, 2.0 ** min(failures - 1, 10))

    async def run(self) -> None:
        """Send until stopped; database errors are retried with back-off (1 s doubling up to
        ``error_backoff_max_s``), the first with its traceback and the repeats in one line each (nothing is
        lost: rows stay pending, and claimed rows come back when their lease expires)."""
        async with self:
            recorder = asyncio.create_task(self._recorder())
            failures = 0
            try:
                while not self._stopping.is_set():
                    try:
                        await self.pump()
                        if time.monotonic() - self._last_sweep >= self.config.sweep_interval_s:
                            await self.sweep_once()
                        if failures:
                            log.warning("alert dispatcher works again", extra={"failed_rounds": failures})
                            failures = 0
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        failures += 1
                        delay = self._backoff(failures)
                        if failures == 1:
                            log.exception("alert dispatcher round failed; retrying with back-off",
                                          extra={"retry_in_s": delay})
                        else:
                            log.warning("alert dispatcher round failed again", extra={
                                "error_type": type(exc).__name__, "failed_rounds": failures, "retry_in_s": delay})
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(self._stopping.wait(), delay)
                    self._wake.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.config.poll_interval_s)
            finally:
                await self.drain_inflight()
                while self._recording or not self._results.empty():
                    await asyncio.sleep(0.01)
                recorder.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await recorder
                await self.flush_results()

    async def sweep_once(self) -> None:
        """Run the lifecycle sweep now (auto-resolve, re-notify, escalate, end of silences)."""
        self._last_sweep = time.monotonic()
        result = await asyncio.to_thread(sweep, self.engine, config=self.alerting)
        changed = result.auto_resolved + result.renotified + result.escalated + result.released
        self.stats.swept += changed
        if changed:
            self.wake()

    # ------------------------------------------------------------ claiming and sending

    def _due_destinations(self, now: datetime) -> list[str]:
        destination, status = col(OutboxRow.destination), col(OutboxRow.status)
        stmt = select(destination).where(or_(
            and_(status == "pending", col(OutboxRow.next_attempt_at) <= now),
            and_(status == "sending", col(OutboxRow.lease_until) < now),
        )).group_by(destination)
        with Session(self.engine) as session:
            return list(session.scalars(stmt))

    def _claim_round(self) -> list[tuple[Destination, list[OutboxItem]]]:
        now = datetime.now(UTC)
        out = []
        for name in self._due_destinations(now):
            dest = self.destinations.get(name)
            if dest is None:
                log.warning("outbox rows for an unknown destination wait", extra={"destination": name})
                continue
            if self._paused.get(name, 0.0) > time.monotonic():
                continue
            per_request = dest.max_batch if dest.type == "webhook" else 1
            free = dest.max_in_flight * self.config.claim_ahead * per_request - self._inflight[name]
            if free <= 0:
                continue
            limit = self.config.group_claim_limit if dest.group_by and dest.type != "pagerduty" else free
            items = claim_due(self.engine, name, limit=limit, lease_s=self.config.lease_s, now=now)
            if items:
                out.append((dest, items))
        return out

    async def pump(self) -> int:
        """Claim what is due and start sending it; returns how many items were claimed."""
        claimed = await asyncio.to_thread(self._claim_round)
        n = 0
        for dest, items in claimed:
            try:
                requests = build_requests(dest, items, url_template=self.destinations.alert_url_template, env=self._env)
            except ValueError as exc:  # a secret is missing: retry later, the operator can fix the env
                now = datetime.now(UTC)
                for i in items:
                    self._results.put_nowait(self._retry_or_expire(dest, i, now, None, f"config: {exc}", 0.0, None))
                continue
            for req in requests:
                self._inflight[dest.name] += len(req.items)
                task = asyncio.create_task(self._write(dest, req) if dest.type == "file" else self._send(dest, req))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            n += len(items)
        return n

    def _retry_or_expire(self, dest: Destination, item: OutboxItem, now: datetime, code: int | None, error: str,
                         latency_ms: float, retry_after: float | None) -> AttemptResult:
        delay = retry_after if retry_after is not None else backoff_delay(
            item.attempts, base_s=self.config.backoff_base_s, max_s=self.config.backoff_max_s, rng=self._rng)
        delay = min(delay, self.config.retry_after_max_s)
        if (now + timedelta(seconds=delay) - item.created_at).total_seconds() > dest.max_age_s:
            return AttemptResult(item, "expired", now, code, f"gave up after {item.attempts} attempts: {error}",
                                 latency_ms=latency_ms)
        return AttemptResult(item, "retry", now, code, error, now + timedelta(seconds=delay), latency_ms)

    async def _write(self, dest: Destination, req: OutgoingRequest) -> None:
        """Append a file destination's notifications; an I/O error (disk full, permissions) retries."""
        started = time.perf_counter()
        error: str | None = None
        try:
            await asyncio.to_thread(append_lines, Path(str(dest.path)), req.body)
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc.strerror or exc}"[:300]
        finally:
            self._inflight[dest.name] -= len(req.items)
        latency_ms = (time.perf_counter() - started) * 1000
        now = datetime.now(UTC)
        self.stats.requests += 1
        for item in req.items:
            result = (AttemptResult(item, "delivered", now, latency_ms=latency_ms) if error is None else
                      self._retry_or_expire(dest, item, now, None, error, latency_ms, None))
            self.stats.outcomes[result.outcome] += 1
            self._results.put_nowait(result)
        if error is not None:
            log.warning("alert delivery attempt did not succeed", extra={
                "destination": dest.name, "outcome": "retry", "error": error, "items": len(req.items)})
        self.wake()

    async def _send(self, dest: Destination, req: OutgoingRequest) -> None:
        assert self._client is not None
        started = time.perf_counter()
        code: int | None = None
        error: str | None = None
        retry_after: float | None = None
        sem = self._sems.get(dest.name)
        if sem is None:
            sem = self._sems[dest.name] = asyncio.Semaphore(dest.max_in_flight)
        try:
            async with sem:
                started = time.perf_counter()
                paused = self._paused.get(dest.name, 0.0) - time.monotonic()
                if paused > 0:  # a 429 arrived while this one waited: do not send into it
                    raise _Paused(paused)
                resp = await self._client.post(str(dest.url), content=req.body, headers=req.headers,
                                               timeout=httpx.Timeout(dest.timeout_s))
                code = resp.status_code
            if code == 429:
                retry_after = parse_retry_after(resp.headers.get("Retry-After"), datetime.now(UTC))
                if retry_after is not None:
                    self._paused[dest.name] = time.monotonic() + min(retry_after, self.config.retry_after_max_s)
            if not 200 <= code < 300:
                error = f"HTTP {code}: {resp.text[:200]}"
        except _Paused as exc:
            retry_after, error = exc.seconds, "not sent: destination paused by a 429 Retry-After"
        except httpx.TimeoutException as exc:
            error = f"timeout after {dest.timeout_s:g} s ({type(exc).__name__})"
        except httpx.HTTPError as exc:  # connection refused, reset, protocol error …
            error = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            self._inflight[dest.name] -= len(req.items)
        latency_ms = (time.perf_counter() - started) * 1000
        now = datetime.now(UTC)
        outcome = classify(code)
        self.stats.requests += 1
        if not (code is None and retry_after is not None):  # a request held back by a 429 pause was not sent
            metrics.SEND_SECONDS.labels(dest.name).observe(latency_ms / 1000)
        for item in req.items:
            if outcome == "retry":
                result = self._retry_or_expire(dest, item, now, code, error or "", latency_ms, retry_after)
            else:
                result = AttemptResult(item, outcome, now, code, error, latency_ms=latency_ms)
            self.stats.outcomes[result.outcome] += 1
            self._results.put_nowait(result)
        if outcome != "delivered":
            log.warning("alert delivery attempt did not succeed", extra={
                "destination": dest.name, "outcome": outcome, "status_code": code, "error": error,
                "items": len(req.items)})
        self.wake()

    # ------------------------------------------------------------ recording

    async def _recorder(self) -> None:
        while True:
            first = await self._results.get()
            self._recording = True
            try:
                batch = [first]
                while len(batch) < self.config.record_batch and not self._results.empty():
                    batch.append(self._results.get_nowait())
                await self._record(batch)
            finally:
                self._recording = False

    async def _record(self, batch: list[AttemptResult]) -> None:
        for result in batch:
            metrics.ATTEMPTS.labels(result.item.destination, result.outcome).inc()
        failures = 0
        while True:
            try:
                await asyncio.to_thread(record_results, self.engine, batch)
                break
            except Exception as exc:  # kept in memory and retried: a 2xx already received is never forgotten
                failures += 1
                delay = min(self._backoff(failures), 5.0)
                if failures == 1:
                    log.exception("recording delivery outcomes failed; retrying", extra={"outcomes": len(batch)})
                else:
                    log.warning("recording delivery outcomes failed again", extra={
                        "error_type": type(exc).__name__, "failures": failures, "outcomes": len(batch)})
                await asyncio.sleep(delay)
        self.wake()

    async def flush_results(self) -> None:
        """Write every outcome still queued."""
        batch = []
        while not self._results.empty():
            batch.append(self._results.get_nowait())
        if batch:
            await self._record(batch)

    async def drain_inflight(self) -> None:
        """Wait for requests already sent to finish (each is bounded by its destination's timeout)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
