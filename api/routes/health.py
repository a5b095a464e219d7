"""Health and metrics (no authentication: probes and Prometheus scrape these)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api import metrics
from api.lag import LagProbe

log = logging.getLogger("warden.api")
router = APIRouter()


def _db_ok(engine: Engine) -> bool:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return True


def lag_probe(state: Any) -> LagProbe:
    """The process's :class:`LagProbe` (made on first use; the app's lifespan closes it)."""
    probe: LagProbe | None = getattr(state, "lag_probe", None)
    if probe is None:
        probe = state.lag_probe = LagProbe(state.config.bootstrap)
    return probe


async def health_report(state: Any) -> tuple[bool, dict[str, Any]]:
    """What ``/healthz`` answers (and the console's overview shows): every role of the deployment.

    ``ok`` is false, with the ``reasons``, when the database or the broker is down, a stream worker went
    silent (heartbeats on ``warden.heartbeats``; none at all when ``WARDEN_HEALTH_EXPECT_WORKER``), the
    workers' or the governance consumer's group lags beyond ``WARDEN_HEALTH_MAX_LAG``, the governance
    consumer is disconnected, or alert notifications are overdue in the outbox (see ``api.monitor``).
    ``warnings`` name what does not degrade the service but someone should know: alert routes without a
    destination (their alerts are recorded, nobody is notified), an agent restarted after a crash."""
    reasons: list[str] = []
    db: dict[str, object] = {"dialect": state.engine.dialect.name}
    try:
        db["ok"] = await asyncio.wait_for(asyncio.to_thread(_db_ok, state.engine), timeout=5)
    except Exception as exc:
        db.update(ok=False, error=type(exc).__name__)
        reasons.append(f"the database is not reachable ({type(exc).__name__})")
    broker: dict[str, object] = {"bootstrap": state.config.bootstrap}
    try:
        await asyncio.wait_for(state.producer.client.fetch_all_metadata(), timeout=5)
        broker["ok"] = True
    except Exception as exc:
        broker.update(ok=False, error=type(exc).__name__)
        reasons.append(f"the broker is not reachable ({type(exc).__name__})")
    consumer = state.consumer
    broker["consumer_connected"] = bool(consumer.connected)
    last = getattr(consumer, "last_batch_at", None)
    broker["consumer_last_batch_s_ago"] = round(time.time() - last, 1) if last else None
    groups: dict[str, Any] = {"ok": False, "error": "broker down", "groups": []}
    if broker["ok"]:
        groups = await lag_probe(state).groups([state.config.worker_group, state.config.governance_group])
    body: dict[str, Any] = {"broker": broker, "database": db, "consumer_groups": groups}
    warnings: list[str] = []
    unrouted = list(getattr(state, "unrouted_routes", []))
    if unrouted:
        warnings.append("alert routes without a destination (alerts recorded, nobody notified): " + ", ".join(unrouted))
    body["alerting"] = {"unrouted_routes": unrouted}
    monitor = getattr(state, "monitor", None)
    if monitor is not None:
        report = monitor.report(consumer_connected=bool(consumer.connected), groups=groups,
                                worker_group=state.config.worker_group,
                                governance_group=state.config.governance_group)
        reasons += report.reasons
        warnings += report.warnings
        body.update(report.details)
    ok = not reasons
    return ok, {"status": "ok" if ok else "degraded", "reasons": reasons, "warnings": warnings, **body}


@router.get("/healthz", tags=["health"])
async def healthz(request: Request) -> JSONResponse:
    """Every role of the deployment: 200 ``ok``, or 503 ``degraded`` with the ``reasons`` (see
    :func:`health_report`), with the workers' and the governance consumer's group state and lag."""
    ok, body = await health_report(request.app.state)
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", tags=["health"])
def prometheus_metrics(request: Request) -> Response:
    """Prometheus exposition (the outbox gauges are read from the store on each scrape)."""
    state = request.app.state
    dispatcher = getattr(state, "dispatcher", None)
    try:
        metrics.refresh_outbox(state.engine, list(dispatcher.destinations.destinations) if dispatcher else [])
    except Exception as exc:  # a scrape still answers while the database is down (healthz reports it)
        log.warning("outbox metrics not refreshed", extra={"error": type(exc).__name__})
    consumer = getattr(state, "consumer", None)
    metrics.CONSUMER_CONNECTED.set(1 if consumer is not None and consumer.connected else 0)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
