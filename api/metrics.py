"""Prometheus metrics of the governance service (served on ``GET /metrics``).

Labels are bounded: routes are templates (``/v1/alerts/{alert_id}/history``), never raw paths; alert
destinations come from the configuration; no event, alert or key id is ever a label."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

log = logging.getLogger("warden.api")

EVENTS_INGESTED = Counter("warden_http_events_total", "Events received on POST /v1/events", ["outcome"])
PERSISTED = Counter("warden_persisted_total", "Records newly written to the store", ["kind"])
RECORDS_SKIPPED = Counter("warden_records_skipped_total", "Governance records that could not be parsed", ["topic"])
PERSIST_SECONDS = Histogram("warden_persist_batch_seconds", "Time to persist one consumed batch",
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
CONSUMED_BATCH = Histogram("warden_governance_batch_records", "Records in one batch the governance consumer persisted",
                           buckets=(1, 10, 50, 100, 250, 500, 1000, 2000))
STORE_RETRIES = Counter("warden_governance_store_retries_total", "Times the governance consumer retried a batch the "
                        "store refused (database down, disk full): nothing is consumed or committed meanwhile")
CONSUMER_CONNECTED = Gauge("warden_governance_consumer_connected", "1 while the governance consumer is connected")
LAST_PERSIST = Gauge("warden_governance_last_batch_timestamp_seconds", "When the governance consumer last persisted a batch")

HTTP_SECONDS = Histogram("warden_http_request_duration_seconds", "HTTP request latency by route template and status",
                         ["method", "route", "status"],
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

OTLP_SPANS = Counter("warden_otlp_spans_total", "Spans received on POST /v1/traces, by kind (llm, tool, retrieval, "
                     "agent, embedding, other) and outcome (accepted, rejected, failed, not_stored)", ["kind", "outcome"])
OTLP_THROTTLED = Counter("warden_otlp_throttled_total", "Trace exports answered 429 (too many in flight)")

OUTBOX_DEPTH = Gauge("warden_alert_outbox_depth", "Notifications waiting in the outbox", ["destination", "status"])
OUTBOX_OLDEST = Gauge("warden_alert_outbox_oldest_pending_seconds", "Age of the oldest pending notification",
                      ["destination"])

AUDIT_VALID = Gauge("warden_audit_chain_valid", "1 when the last verification of the audit hash chain passed, else 0")
AUDIT_ENTRIES = Gauge("warden_audit_chain_entries", "Entries the last audit verification checked")
AUDIT_VERIFIED_AT = Gauge("warden_audit_verify_timestamp_seconds", "When the audit chain was last verified")
AUDIT_SECONDS = Histogram("warden_audit_verify_duration_seconds", "Time to verify the audit hash chain",
                          buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300))

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class RequestMetrics:
    """ASGI middleware: the latency of every HTTP request by method, route template and status."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Callable[..., Awaitable[Any]],
                       send: Callable[..., Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        code = [500]

        async def send_status(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                code[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            HTTP_SECONDS.labels(method if method in _METHODS else "OTHER", route, str(code[0])).observe(
                time.perf_counter() - started)


def refresh_outbox(engine: Engine, destinations: list[str]) -> None:
    """Set the outbox gauges from the store (called on each scrape): depth by destination and status,
    age of the oldest pending notification. ``destinations`` (the configured ones) are always present."""
    from store.models import OutboxRow

    now = datetime.now(UTC)
    depth = {(d, s): 0 for d in destinations for s in ("pending", "sending")}
    oldest = dict.fromkeys(destinations, 0.0)
    dest_col, status_col = col(OutboxRow.destination), col(OutboxRow.status)
    stmt = (select(dest_col, status_col, func.count(), func.min(col(OutboxRow.created_at)))
            .where(status_col.in_(("pending", "sending"))).group_by(dest_col, status_col))
    with Session(engine) as session:
        rows: list[Any] = list(session.execute(stmt).all())
    for dest, status, n, first in rows:
        depth[(dest, status)] = n
        if status == "pending" and first is not None:
            first = first if first.tzinfo else first.replace(tzinfo=UTC)
            oldest[dest] = max(oldest.get(dest, 0.0), (now - first).total_seconds())
    for (dest, status), n in depth.items():
        OUTBOX_DEPTH.labels(dest, status).set(n)
    for dest, age in oldest.items():
        OUTBOX_OLDEST.labels(dest).set(age)


def observe_audit(ok: bool, checked: int, seconds: float) -> None:
    """Record an audit-chain verification (the periodic one and ``GET /v1/audit/verify``)."""
    AUDIT_VALID.set(1 if ok else 0)
    AUDIT_ENTRIES.set(checked)
    AUDIT_VERIFIED_AT.set(time.time())
    AUDIT_SECONDS.observe(seconds)
